//! Compaction (`cleanup.policy=compact`): keep the last record per key, offsets unchanged.
//!
//! A pass covers the sealed segments that are wholly durable (below the recovery point) and whose
//! newest record is older than `min.compaction.lag.ms`. It runs in three steps so the heavy part
//! holds no lock: [`PartitionLog::plan_compaction`] (under the lock: pick segments),
//! [`CompactionPlan::run`] (no lock: build the key -> last offset map over those segments, then
//! rewrite each into `<base>.log.cleaned`, fsynced), [`PartitionLog::finish_compaction`] (under the
//! lock: check each segment is unchanged, then swap it in).
//!
//! Per batch: kept as stored when every record survives, dropped when none does, otherwise
//! rebuilt with the surviving records (offset deltas, timestamps, codec and producer fields kept;
//! base offset and leader epoch stamped back). A record survives if it has no key, or it is the
//! last record for its key, unless it is a tombstone (null value) whose batch is older than
//! `delete.retention.ms`.
//!
//! The swap is crash-safe: rename `.cleaned` -> `.swap`, fsync the directory (the commit point),
//! remove the old segment's files, rename `.swap` -> `.log`, fsync the directory. Recovery deletes a
//! leftover `.cleaned` and finishes a leftover `.swap` (see [`crate::log::recovery`]).

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::{BatchOptions, RecordBatch, RecordBatchBuilder};
use tracing::{debug, warn};

use crate::log::batch::{stamp, Header};
use crate::log::error::{LogError, LogResult};
use crate::log::limits::COMPACTION_KEYS_MAX;
use crate::log::partition_log::PartitionLog;
use crate::log::recovery::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::log::scan::{scan, ScanEnd, Visit};
use crate::log::segment::{file_name, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::log::storage::{Directory, Storage};

/// Segments chosen for one pass.
#[derive(Debug)]
pub struct CompactionPlan {
    dir: Arc<dyn Directory>,
    segments: Vec<(i64, Arc<dyn Storage>, u64)>,
    tombstone_horizon_ms: i64,
}

/// Rewritten segments ready to swap in.
#[derive(Debug)]
pub struct Cleaned {
    segments: Vec<(i64, u64)>,
}

fn corrupt(e: impl ToString) -> LogError {
    LogError::CorruptBatch(e.to_string())
}

impl PartitionLog {
    /// Picks the segments a compaction pass may clean now; `None` when there is nothing to do.
    pub fn plan_compaction(&self, now_ms: i64) -> Option<CompactionPlan> {
        if !self.config.cleanup_policy.compact {
            return None;
        }
        let n = self.segments.len();
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut chosen = Vec::new();
        for (i, seg) in self.segments.values().take(n - 1).enumerate() {
            let next_base = bases[i + 1];
            let durable = next_base <= self.recovery_point;
            let old_enough = seg.max_timestamp() <= now_ms - self.config.min_compaction_lag_ms;
            if !durable || !old_enough {
                break;
            }
            chosen.push((seg.base_offset(), seg.file().clone(), seg.size()));
        }
        if chosen.is_empty() {
            return None;
        }
        Some(CompactionPlan {
            dir: self.dir.clone(),
            segments: chosen,
            tombstone_horizon_ms: now_ms - self.config.delete_retention_ms,
        })
    }

    /// Swaps in the segments a pass rewrote, skipping any that changed meanwhile; returns how many
    /// were swapped.
    pub fn finish_compaction(&mut self, cleaned: Cleaned) -> LogResult<usize> {
        let dir = self.dir.clone();
        let mut swapped = 0;
        let last_base = self.active().base_offset();
        for (base, old_size) in cleaned.segments {
            let cleaned_name = format!("{}{CLEANED_SUFFIX}", file_name(base, LOG_SUFFIX));
            let unchanged = base != last_base
                && self
                    .segments
                    .get(&base)
                    .is_some_and(|s| s.size() == old_size);
            if !unchanged {
                dir.remove(&cleaned_name)?;
                continue;
            }
            let log_name = file_name(base, LOG_SUFFIX);
            let swap_name = format!("{log_name}{SWAP_SUFFIX}");
            dir.rename(&cleaned_name, &swap_name)?;
            dir.sync()?;
            for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                dir.remove(&file_name(base, s))?;
            }
            dir.rename(&swap_name, &log_name)?;
            let entries = self.config.index_entries_max();
            let (mut seg, end) = Segment::open_validated(
                &*dir,
                base,
                entries,
                self.config.index_interval_bytes,
                None,
                |_| {},
            )?;
            if let ScanEnd::Invalid { position, reason } = end {
                return Err(LogError::Offline {
                    path: dir.path().join(&log_name),
                    position,
                    reason,
                });
            }
            for f in seg.write_indexes(&*dir)? {
                f.sync()?;
            }
            dir.sync()?;
            self.segments.insert(base, seg);
            swapped += 1;
        }
        Ok(swapped)
    }
}

impl CompactionPlan {
    /// Builds the key map and writes the cleaned segments (fsynced). Holds no lock.
    pub fn run(self) -> LogResult<Cleaned> {
        let mut last: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut usable = 0;
        for (_, file, size) in &self.segments {
            let before = last.len();
            for_each_batch(&**file, *size, |batch| {
                for record in batch.records().map_err(corrupt)? {
                    let record = record.map_err(corrupt)?;
                    if let Some(key) = record.key() {
                        last.insert(key.to_vec(), record.offset());
                    }
                }
                Ok(())
            })?;
            if last.len() > COMPACTION_KEYS_MAX {
                warn!(
                    keys = last.len(),
                    "compaction key map full; cleaning fewer segments this pass"
                );
                let _ = before;
                break;
            }
            usable += 1;
        }
        let mut done = Vec::new();
        for (base, file, size) in self.segments.iter().take(usable) {
            self.rewrite(*base, &**file, *size, &last)?;
            done.push((*base, *size));
        }
        debug!(
            segments = done.len(),
            keys = last.len(),
            "compaction pass written"
        );
        Ok(Cleaned { segments: done })
    }

    fn rewrite(
        &self,
        base: i64,
        file: &dyn Storage,
        size: u64,
        last: &HashMap<Vec<u8>, i64>,
    ) -> LogResult<()> {
        let name = format!("{}{CLEANED_SUFFIX}", file_name(base, LOG_SUFFIX));
        self.dir.remove(&name)?;
        let out = self.dir.open(&name, true)?;
        for_each_batch(file, size, |batch| {
            let h = batch.header();
            let tombstones_expire = h.max_timestamp < self.tombstone_horizon_ms;
            let mut keep = Vec::new();
            let mut total = 0usize;
            for record in batch.records().map_err(corrupt)? {
                let record = record.map_err(corrupt)?;
                total += 1;
                let latest = match record.key() {
                    None => true,
                    Some(k) => last.get(&k[..]).is_none_or(|&o| o == record.offset()),
                };
                let expired_tombstone = record.value().is_none() && tombstones_expire;
                if latest && !expired_tombstone {
                    keep.push(record);
                }
            }
            if keep.len() == total {
                out.append(&[IoSlice::new(batch.as_bytes())])?;
            } else if !keep.is_empty() {
                let options = BatchOptions {
                    compression: h.attributes.compression().map_err(corrupt)?,
                    producer_id: h.producer_id,
                    producer_epoch: h.producer_epoch,
                    base_sequence: h.base_sequence,
                    timestamp_type: h.attributes.timestamp_type(),
                    is_transactional: h.attributes.is_transactional(),
                    is_control: h.attributes.is_control(),
                    partition_leader_epoch: h.partition_leader_epoch,
                };
                let mut b = RecordBatchBuilder::new(options);
                for r in &keep {
                    b.append_record(r).map_err(corrupt)?;
                }
                let rebuilt = b.finish().map_err(corrupt)?;
                let mut head = [0u8; 16];
                head.copy_from_slice(&rebuilt[..16]);
                stamp(&mut head, h.base_offset, h.partition_leader_epoch);
                out.append(&[IoSlice::new(&head), IoSlice::new(&rebuilt[16..])])?;
            }
            Ok(())
        })?;
        out.sync()?;
        Ok(())
    }
}

/// Calls `f` with every batch of a sealed segment file, validated.
fn for_each_batch(
    file: &dyn Storage,
    size: u64,
    mut f: impl FnMut(&RecordBatch) -> LogResult<()>,
) -> LogResult<()> {
    let mut err = None;
    let end = scan(file, 0, size, true, None, |_, _h: &Header, bytes| {
        let parsed = RecordBatch::parse(Bytes::copy_from_slice(bytes))
            .map_err(corrupt)
            .and_then(|b| f(&b));
        match parsed {
            Ok(()) => Visit::Continue,
            Err(e) => {
                err = Some(e);
                Visit::Stop
            }
        }
    })
    .map_err(LogError::from)?;
    if let Some(e) = err {
        return Err(e);
    }
    if let ScanEnd::Invalid { reason, .. } = end {
        return Err(LogError::from(io::Error::new(
            io::ErrorKind::InvalidData,
            reason,
        )));
    }
    Ok(())
}
