//! Reads: whole stored batches, bounded by a byte budget and a maximum offset, either as `Bytes`
//! in memory or as ranges of segment files to `sendfile` to a socket.
//!
//! A read is planned under the log's lock (find the segment, binary-search the offset index,
//! walk a few headers to the batch holding the offset, note the file's committed length) and
//! executed without it. [`ReadPlan::execute`] preads into one buffer and walks the headers in it to
//! keep whole batches below the bound; the returned chunks are slices of that buffer.
//! [`ReadPlan::execute_for_send`] reads only the headers (a small window at a time) to find the
//! same boundaries and returns a [`FileRange`], so a fetch's record bytes never pass through the
//! broker's memory. Reading from a file (pread, sendfile) rather than a mapping means a concurrent
//! truncation can shorten a read but never fault the reader.
//!
//! **Invariant**: batches are served byte for byte. Reads into memory (the broker's own readers:
//! replication catch-up, group offsets, small fetches) check every batch's CRC-32C, since the bytes
//! are in hand anyway. Ranges for `sendfile` (the consumer hot path) are not re-checked: their CRC
//! was verified when they entered the log (produce validation, follower append) and by recovery
//! past the recovery point, and consumers verify it again (librdkafka `check.crcs`, `BatchIter`);
//! re-verifying on every fetch cost about 15% of the consume path. A header that does not parse
//! is still reported as corruption on either path.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::log::batch::{check_crc, Header, HEADER_BYTES};
use crate::log::error::{LogError, LogResult};
use crate::log::limits::{HEADER_WALK_WINDOW_BYTES, SEND_FILE_BYTES_MIN};
use crate::log::partition_log::PartitionLog;
use crate::log::storage::Storage;

/// Stored batches returned by a read: in memory (`Bytes`, the default) or for sending
/// ([`SendChunk`]).
#[derive(Debug, Clone, Default)]
pub struct ReadResult<C = Bytes> {
    /// Whole batches, back to back, as stored.
    pub chunks: Vec<C>,
    /// Offset after the last returned batch (the next offset to read).
    pub next_offset: i64,
    /// Bytes in `chunks`.
    pub bytes: usize,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
    /// Log end offset at the time of the read.
    pub log_end_offset: i64,
}

/// A byte range of a segment file holding whole stored batches, to be sent as it is on disk.
#[derive(Debug, Clone)]
pub struct FileRange {
    /// The segment file (a real file: [`Storage::as_file`] is `Some`).
    pub file: Arc<dyn Storage>,
    /// Where the first batch starts.
    pub position: u64,
    /// Bytes, ending at a batch boundary.
    pub len: usize,
}

/// Part of a read for sending: small reads in memory, large ones as a range of a segment file.
#[derive(Debug, Clone)]
pub enum SendChunk {
    /// Batches read into memory.
    Bytes(Bytes),
    /// Batches left in the file, to `sendfile`.
    File(FileRange),
}

impl SendChunk {
    /// Bytes of stored batches in this chunk.
    pub fn len(&self) -> usize {
        match self {
            SendChunk::Bytes(b) => b.len(),
            SendChunk::File(r) => r.len,
        }
    }

    /// True when the chunk holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
pub enum ReadOutcome<C = Bytes> {
    /// Whole batches and the offset after them.
    Batches(C, i64),
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
        let buf = match self.file.read_bytes(self.position, len) {
            Ok(buf) => buf,
            // Truncated under us (replication); the caller retries from a fresh plan.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(ReadOutcome::Truncated)
            }
            Err(e) => return Err(e.into()),
        };
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
            return Ok(self.unreadable());
        }
        Ok(ReadOutcome::Batches(buf.slice(..at), next))
    }

    /// Like [`Self::execute`], but leaves large reads in the file: walks only the batch headers (a
    /// [`HEADER_WALK_WINDOW_BYTES`] window at a time) and returns the byte range of the whole
    /// batches that fit. Reads under [`SEND_FILE_BYTES_MIN`], and storage without a real file,
    /// come back in memory as from [`Self::execute`].
    pub fn execute_for_send(
        &self,
        max_bytes: usize,
        max_offset_exclusive: i64,
    ) -> LogResult<ReadOutcome<SendChunk>> {
        if self.first_last_offset >= max_offset_exclusive {
            return Ok(ReadOutcome::Nothing);
        }
        let available = (self.end - self.position) as usize;
        if available < self.first_batch_bytes {
            return Ok(ReadOutcome::Truncated);
        }
        let len = max_bytes.max(self.first_batch_bytes).min(available);
        if len < SEND_FILE_BYTES_MIN || self.file.as_file().is_none() {
            return Ok(match self.execute(max_bytes, max_offset_exclusive)? {
                ReadOutcome::Batches(bytes, next) => {
                    ReadOutcome::Batches(SendChunk::Bytes(bytes), next)
                }
                ReadOutcome::Nothing => ReadOutcome::Nothing,
                ReadOutcome::Truncated => ReadOutcome::Truncated,
                ReadOutcome::Corrupt(e) => ReadOutcome::Corrupt(e),
            });
        }
        let mut window = [0u8; HEADER_WALK_WINDOW_BYTES];
        let (mut window_at, mut window_len) = (0usize, 0usize);
        let mut at = 0usize;
        let mut next = -1;
        while at + HEADER_BYTES <= len {
            if at + HEADER_BYTES > window_at + window_len {
                let n = HEADER_WALK_WINDOW_BYTES.min(len - at);
                match self
                    .file
                    .read_at(self.position + at as u64, &mut window[..n])
                {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Ok(ReadOutcome::Truncated)
                    }
                    Err(e) => return Err(e.into()),
                }
                (window_at, window_len) = (at, n);
            }
            let Ok(h) = Header::parse(&window[at - window_at..window_len]) else {
                break;
            };
            let total = h.total_bytes();
            if at + total > len || h.last_offset() >= max_offset_exclusive {
                break;
            }
            next = h.last_offset() + 1;
            at += total;
        }
        if at == 0 {
            return Ok(self.unreadable());
        }
        let range = FileRange {
            file: self.file.clone(),
            position: self.position,
            len: at,
        };
        Ok(ReadOutcome::Batches(SendChunk::File(range), next))
    }

    /// The first batch at the planned position does not parse whole: corruption on disk.
    fn unreadable<C>(&self) -> ReadOutcome<C> {
        ReadOutcome::Corrupt(LogError::Offline {
            path: self.path.clone(),
            position: self.position,
            reason: "unreadable batch".into(),
        })
    }

    /// True when `next` reached the end of the planned segment.
    pub fn at_segment_end(&self, next: i64) -> bool {
        next >= self.segment_next_offset
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::config::LogConfig;
    use crate::log::recovery::open;
    use crate::log::storage::{Directory, FileDirectory};

    fn bytes_of(chunk: &SendChunk) -> Vec<u8> {
        match chunk {
            SendChunk::Bytes(b) => b.to_vec(),
            SendChunk::File(r) => r.file.read_bytes(r.position, r.len).expect("read").to_vec(),
        }
    }

    /// The file range a send-read returns holds exactly the batches an in-memory read returns,
    /// under every byte budget and offset bound: whole batches, at least one.
    #[test]
    fn send_reads_cover_the_same_whole_batches_as_memory_reads() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir: Arc<dyn Directory> = Arc::new(FileDirectory::create(tmp.path()).expect("dir"));
        let mut log = open(dir, LogConfig::default(), 0).expect("open");
        // Batches of 3 records, 1..=30 KiB values: some ranges exceed SEND_FILE_BYTES_MIN.
        for i in 0..40usize {
            let payload = vec![i as u8; 1024 * (1 + i % 30)];
            log.append_leader(&Bytes::from(batch(0, 3, 0, None, &payload)), 0, 0)
                .expect("append");
        }
        let end = log.log_end_offset();
        let mut saw_file = false;
        for offset in [0, 1, 5, 60] {
            for max_bytes in [1, 70_000, 200_000, usize::MAX] {
                for bound in [2, 61, end] {
                    let plan = log.plan_read(offset).expect("plan").expect("data");
                    let memory = plan.execute(max_bytes, bound).expect("read");
                    let send = plan.execute_for_send(max_bytes, bound).expect("send read");
                    match (memory, send) {
                        (ReadOutcome::Batches(b, next), ReadOutcome::Batches(c, next2)) => {
                            saw_file |= matches!(c, SendChunk::File(_));
                            assert_eq!(next, next2);
                            assert_eq!(b.to_vec(), bytes_of(&c), "{offset} {max_bytes} {bound}");
                        }
                        (ReadOutcome::Nothing, ReadOutcome::Nothing) => {}
                        (a, b) => panic!("{offset} {max_bytes} {bound}: {a:?} vs {b:?}"),
                    }
                }
            }
        }
        assert!(saw_file, "large reads come back as file ranges");
    }
}
