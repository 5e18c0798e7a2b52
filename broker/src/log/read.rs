//! Reads: whole stored batches as `Bytes`, bounded by a byte budget and a maximum offset.
//!
//! A read is planned under the log's lock (find the segment, binary-search the offset index,
//! walk a few headers to the batch holding the offset, note the file's committed length) and
//! executed without it: one pread into one buffer, then a header walk that keeps whole batches
//! below the bound and checks each batch's CRC-32C, so a corrupt batch is never served. The
//! returned chunks are slices of that buffer: no per-batch or per-record copies. Reading from a
//! file with pread (not a mapping) means a concurrent truncation can shorten a read but never
//! fault the reader.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::log::batch::{check_crc, Header};
use crate::log::error::{LogError, LogResult};
use crate::log::partition_log::PartitionLog;
use crate::log::storage::Storage;

/// Stored batches returned by a read.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    /// Whole batches, back to back, as stored.
    pub chunks: Vec<Bytes>,
    /// Offset after the last returned batch (the next offset to read).
    pub next_offset: i64,
    /// Bytes in `chunks`.
    pub bytes: usize,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// A read located under the lock, to run without it.
#[derive(Debug)]
pub struct ReadPlan {
    file: Arc<dyn Storage>,
    path: PathBuf,
    position: u64,
    end: u64,
    first_batch_bytes: usize,
    first_last_offset: i64,
    /// Offset after the segment's last batch at planning time.
    pub segment_next_offset: i64,
}

/// What executing a plan found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// Whole batches and the offset after them.
    Batches(Bytes, i64),
    /// The first batch is at or past the offset bound.
    Nothing,
    /// The file shrank under the read (a concurrent truncation): plan again.
    Truncated,
    /// A stored batch failed its check: the partition must go offline.
    Corrupt(LogError),
}

impl PartitionLog {
    /// Locates `offset`; `Ok(None)` when there is nothing to read there (end of log).
    pub fn plan_read(&self, offset: i64) -> LogResult<Option<ReadPlan>> {
        let end = self.log_end_offset();
        if offset < self.log_start_offset || offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end,
            });
        }
        let Some(seg) = self.segment_for(offset) else {
            return Ok(None);
        };
        let Some((position, header)) = seg.locate(offset.max(seg.base_offset()))? else {
            return Ok(None);
        };
        Ok(Some(ReadPlan {
            file: seg.file().clone(),
            path: self.segment_path(seg.base_offset()),
            position,
            end: seg.size(),
            first_batch_bytes: header.total_bytes(),
            first_last_offset: header.last_offset(),
            segment_next_offset: seg.next_offset(),
        }))
    }
}

impl PartitionLog {
    /// Plans and executes a read under the caller's borrow (tests, replication catch-up, and
    /// anything already holding the log); the async [`crate::log::partition::Partition::read`]
    /// executes without the lock instead.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
    ) -> LogResult<ReadResult> {
        let mut result = ReadResult {
            chunks: Vec::new(),
            next_offset: offset,
            bytes: 0,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        };
        loop {
            let Some(plan) = self.plan_read(result.next_offset)? else {
                break;
            };
            let budget = max_bytes.saturating_sub(result.bytes);
            if !result.chunks.is_empty() && budget < plan.first_batch_bytes {
                break;
            }
            match plan.execute(budget, max_offset_exclusive)? {
                ReadOutcome::Batches(chunk, next) => {
                    result.bytes += chunk.len();
                    result.chunks.push(chunk);
                    result.next_offset = next;
                    if !plan.at_segment_end(next) {
                        break;
                    }
                }
                ReadOutcome::Nothing | ReadOutcome::Truncated => break,
                ReadOutcome::Corrupt(e) => return Err(e),
            }
        }
        Ok(result)
    }
}

impl ReadPlan {
    /// Bytes of the first batch at the planned position.
    pub fn first_batch_bytes(&self) -> usize {
        self.first_batch_bytes
    }

    /// Reads whole batches from the planned position: at least the first one (even past
    /// `max_bytes`, as Kafka does, so a large batch cannot stall a consumer), then as many as fit,
    /// none containing an offset >= `max_offset_exclusive`.
    pub fn execute(&self, max_bytes: usize, max_offset_exclusive: i64) -> LogResult<ReadOutcome> {
        if self.first_last_offset >= max_offset_exclusive {
            return Ok(ReadOutcome::Nothing);
        }
        let available = (self.end - self.position) as usize;
        if available < self.first_batch_bytes {
            return Ok(ReadOutcome::Truncated);
        }
        let len = max_bytes.max(self.first_batch_bytes).min(available);
        let mut buf = bytes::BytesMut::zeroed(len);
        if let Err(e) = self.file.read_at(self.position, &mut buf) {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                // Truncated under us (replication); the caller retries from a fresh plan.
                return Ok(ReadOutcome::Truncated);
            }
            return Err(e.into());
        }
        let buf = buf.freeze();
        let mut at = 0usize;
        let mut next = -1;
        while at < buf.len() {
            let Ok(h) = Header::parse(&buf[at..]) else {
                break;
            };
            let total = h.total_bytes();
            if at + total > buf.len() || h.last_offset() >= max_offset_exclusive {
                break;
            }
            if let Err(e) = check_crc(&buf[at..at + total], &h) {
                return Ok(ReadOutcome::Corrupt(LogError::Offline {
                    path: self.path.clone(),
                    position: self.position + at as u64,
                    reason: e.to_string(),
                }));
            }
            next = h.last_offset() + 1;
            at += total;
        }
        if at == 0 {
            // The first batch must parse whole: anything else is corruption on disk.
            return Ok(ReadOutcome::Corrupt(LogError::Offline {
                path: self.path.clone(),
                position: self.position,
                reason: "unreadable batch".into(),
            }));
        }
        Ok(ReadOutcome::Batches(buf.slice(..at), next))
    }

    /// True when `next` reached the end of the planned segment.
    pub fn at_segment_end(&self, next: i64) -> bool {
        next >= self.segment_next_offset
    }
}
