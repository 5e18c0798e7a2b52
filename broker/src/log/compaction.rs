//! Compaction (`cleanup.policy=compact`): keep the last record per key, offsets unchanged.
//!
//! A pass covers the sealed segments that are wholly durable (below the recovery point) and whose
//! newest record is older than `min.compaction.lag.ms`. It runs in three steps so the heavy part
//! holds no lock: [`PartitionLog::plan_compaction`] (under the lock: pick segments),
//! [`CompactionPlan::run`] (no lock: build the key -> last offset map over those segments, then
//! rewrite each into `<base>.log.cleaned` with its indexes in `<base>.index.cleaned` and
//! `<base>.timeindex.cleaned`, all fsynced; every rebuilt batch is checked, CRC included, before
//! it is written), [`PartitionLog::finish_compaction`] (under the lock: check each segment is
//! unchanged, then swap it in: renames and two directory fsyncs, no reads).
//!
//! Per batch: kept as stored when every record survives, dropped when none does, otherwise
//! rebuilt with the surviving records (offset deltas, last offset delta, timestamps, codec and
//! producer fields kept;
//! base offset and leader epoch stamped back). A record survives if it has no key, or it is the
//! last record for its key, unless it is a tombstone (null value) whose batch is older than
//! `delete.retention.ms`.
//!
//! The swap is crash-safe: rename every `.log.cleaned` -> `.log.swap`, fsync the directory (the
//! commit point), remove the old segments' files, rename `.swap` -> `.log` and the cleaned indexes
//! into place, fsync the directory. Recovery deletes leftover `.cleaned` files and finishes a
//! leftover `.swap` (see [`crate::log::recovery`]); a segment whose index files are missing gets
//! them rebuilt when it is opened.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::record::{BatchOptions, RecordBatch, RecordBatchBuilder};
use tracing::{debug, warn};

use crate::log::batch::{stamp, validate, Header};
use crate::log::error::{LogError, LogResult};
use crate::log::limits::COMPACTION_KEYS_MAX;
use crate::log::partition_log::PartitionLog;
use crate::log::recovery::{CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::log::scan::{scan, ScanEnd, Visit};
use crate::log::segment::{
    file_name, remove_segment_files, Appended, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::log::storage::{Directory, Storage};

/// Segments chosen for one pass.
#[derive(Debug)]
pub struct CompactionPlan {
    dir: Arc<dyn Directory>,
    segments: Vec<(i64, Arc<dyn Storage>, u64)>,
    tombstone_horizon_ms: i64,
    delete_retention_ms: i64,
    /// Offset after the last chosen segment.
    range_end: i64,
    index_entries_max: usize,
    index_interval_bytes: u64,
}

/// Rewritten segments ready to swap in.
pub struct Cleaned {
    /// (base offset, size of the segment the pass read, the rewritten segment).
    segments: Vec<(i64, u64, Segment)>,
    /// The range cleaned when the pass covered the whole plan, else -1.
    range_end: i64,
    /// When a kept tombstone becomes old enough to go (so another pass is worth it).
    recheck_ms: i64,
}

/// `<base><suffix>.cleaned`: where a pass writes a segment's new file.
fn cleaned_name(base: i64, suffix: &str) -> String {
    format!("{}{CLEANED_SUFFIX}", file_name(base, suffix))
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
        let range_end = bases[chosen.len()];
        // Nothing new sealed since the last pass and no kept tombstone due: a pass would read
        // everything again and change nothing.
        if chosen.is_empty()
            || (range_end == self.compacted_upto && now_ms < self.compaction_recheck_ms)
        {
            return None;
        }
        Some(CompactionPlan {
            dir: self.dir.clone(),
            segments: chosen,
            tombstone_horizon_ms: now_ms - self.config.delete_retention_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            range_end,
            index_entries_max: self.config.index_entries_max(),
            index_interval_bytes: self.config.index_interval_bytes,
        })
    }

    /// Swaps in the segments a pass rewrote, skipping any that changed meanwhile; returns how many
    /// were swapped. File renames and two directory fsyncs, whatever the segments' sizes.
    pub fn finish_compaction(&mut self, cleaned: Cleaned) -> LogResult<usize> {
        self.compacted_upto = cleaned.range_end;
        self.compaction_recheck_ms = cleaned.recheck_ms;
        let dir = self.dir.clone();
        let last_base = self.active().base_offset();
        let mut swapping = Vec::new();
        for (base, old_size, segment) in cleaned.segments {
            let unchanged = base != last_base
                && self
                    .segments
                    .get(&base)
                    .is_some_and(|s| s.size() == old_size);
            if unchanged {
                swapping.push(segment);
            } else {
                for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    dir.remove(&cleaned_name(base, s))?;
                }
            }
        }
        if swapping.is_empty() {
            return Ok(0);
        }
        for seg in &swapping {
            let log_name = file_name(seg.base_offset(), LOG_SUFFIX);
            dir.rename(
                &cleaned_name(seg.base_offset(), LOG_SUFFIX),
                &format!("{log_name}{SWAP_SUFFIX}"),
            )?;
        }
        // The commit point: from here recovery finishes the swaps.
        dir.sync()?;
        for seg in &swapping {
            let base = seg.base_offset();
            remove_segment_files(&*dir, base)?;
            let log_name = file_name(base, LOG_SUFFIX);
            dir.rename(&format!("{log_name}{SWAP_SUFFIX}"), &log_name)?;
            for s in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                dir.rename(&cleaned_name(base, s), &file_name(base, s))?;
            }
        }
        dir.sync()?;
        let swapped = swapping.len();
        for seg in swapping {
            if let Some(replaced) = self.segments.insert(seg.base_offset(), seg) {
                self.retire(replaced);
            }
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
        let mut earliest_tombstone: Option<i64> = None;
        for (base, file, size) in self.segments.iter().take(usable) {
            let (rewritten, tombstone) = self.rewrite(*base, &**file, *size, &last)?;
            if let Some(segment) = rewritten {
                done.push((*base, *size, segment));
            }
            earliest_tombstone = match (earliest_tombstone, tombstone) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let range_end = if usable == self.segments.len() {
            self.range_end
        } else {
            -1
        };
        let recheck_ms = earliest_tombstone.map_or(i64::MAX, |t| {
            t.saturating_add(self.delete_retention_ms).saturating_add(1)
        });
        debug!(
            segments = done.len(),
            keys = last.len(),
            "compaction pass written"
        );
        Ok(Cleaned {
            segments: done,
            range_end,
            recheck_ms,
        })
    }

    /// Rewrites segment `base` into `<base>.log.cleaned` with its index files; `None` (and no
    /// files left) when every record survives. Also returns the earliest kept tombstone's time.
    fn rewrite(
        &self,
        base: i64,
        file: &dyn Storage,
        size: u64,
        last: &HashMap<Vec<u8>, i64>,
    ) -> LogResult<(Option<Segment>, Option<i64>)> {
        let mut changed = false;
        let mut earliest_tombstone: Option<i64> = None;
        let name = cleaned_name(base, LOG_SUFFIX);
        self.dir.remove(&name)?;
        let mut out = Segment::create_as(
            &*self.dir,
            &name,
            base,
            self.index_entries_max,
            self.index_interval_bytes,
        )?;
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
                    if record.value().is_none() {
                        earliest_tombstone = Some(
                            earliest_tombstone.map_or(h.max_timestamp, |t| t.min(h.max_timestamp)),
                        );
                    }
                    keep.push(record);
                }
            }
            changed |= keep.len() != total;
            let position = out.size();
            if keep.len() == total {
                let stored = Header::parse(batch.as_bytes()).map_err(corrupt)?;
                out.append(
                    &[IoSlice::new(batch.as_bytes())],
                    &[Appended::of(&stored, position)],
                )?;
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
                // Keep the batch's last offset, as Kafka's cleaner does, so producer state and the
                // segment's next offset stay what they were.
                b.keep_last_offset_delta(h.last_offset_delta);
                let rebuilt = b.finish().map_err(corrupt)?;
                let mut head = [0u8; 16];
                head.copy_from_slice(&rebuilt[..16]);
                stamp(&mut head, h.base_offset, h.partition_leader_epoch);
                let mut stored = Vec::with_capacity(rebuilt.len());
                stored.extend_from_slice(&head);
                stored.extend_from_slice(&rebuilt[16..]);
                // Nothing reads the cleaned file back before it is served: check it here.
                let written = validate(&stored).map_err(corrupt)?;
                out.append(
                    &[IoSlice::new(&stored)],
                    &[Appended::of(&written, position)],
                )?;
            }
            Ok(())
        })?;
        if !changed {
            self.dir.remove(&name)?;
            return Ok((None, earliest_tombstone));
        }
        out.file().sync()?;
        for index in out.write_indexes_as(&*self.dir, CLEANED_SUFFIX)? {
            index.sync()?;
        }
        Ok((Some(out), earliest_tombstone))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::Bytes;
    use sluice_protocol::record::{BatchOptions, RecordBatch, RecordBatchBuilder};

    use crate::log::config::LogConfig;
    use crate::log::mem_storage::{MemDirectory, Rng};
    use crate::log::partition_log::PartitionLog;
    use crate::log::recovery::{open, CLEANED_SUFFIX, SWAP_SUFFIX};
    use crate::log::storage::Directory;

    fn config() -> LogConfig {
        let p: BTreeMap<String, String> = [
            ("segment.bytes", "600"),
            ("cleanup.policy", "compact"),
            ("delete.retention.ms", "1000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        LogConfig::from_props(&p).unwrap()
    }

    fn put(log: &mut PartitionLog, ts: i64, records: &[(&str, Option<&str>)]) {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        for (k, v) in records {
            b.append(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[])
                .unwrap();
        }
        log.append_leader(&b.finish().unwrap(), 0, ts).unwrap();
    }

    fn sync(log: &mut PartitionLog) {
        let mut plan = log.begin_sync(0);
        plan.execute().unwrap();
        log.complete_sync(&plan);
    }

    /// (offset, key, value) of every record in the log.
    fn contents(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let r = log
            .read(log.log_start_offset(), usize::MAX, i64::MAX)
            .unwrap();
        let mut out = vec![];
        for chunk in r.chunks {
            let mut at = 0;
            while at < chunk.len() {
                let h = crate::log::batch::validate(&chunk[at..]).unwrap();
                let b = RecordBatch::parse(chunk.slice(at..at + h.total_bytes())).unwrap();
                for rec in b.records().unwrap() {
                    let rec = rec.unwrap();
                    let s = |b: Option<&Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                    out.push((rec.offset(), s(rec.key()).unwrap(), s(rec.value())));
                }
                at += h.total_bytes();
            }
        }
        out
    }

    async fn compact(log: &mut PartitionLog, now: i64) -> usize {
        let Some(plan) = log.plan_compaction(now) else {
            return 0;
        };
        let cleaned = plan.run().unwrap();
        log.finish_compaction(cleaned).unwrap()
    }

    #[tokio::test]
    async fn keeps_last_value_per_key_with_offsets_and_expires_tombstones() {
        let d: Arc<dyn Directory> = Arc::new(MemDirectory::new());
        let mut log = open(d.clone(), config(), 0).unwrap();
        for round in 0..6 {
            let v = format!("v{round}");
            put(
                &mut log,
                100,
                &[("a", Some(&v)), ("b", Some(&v)), ("c", Some("c"))],
            );
        }
        put(&mut log, 100, &[("b", None)]);
        for i in 0..8 {
            put(&mut log, 100, &[("filler", Some(&"x".repeat(50 + i)))]);
        }
        sync(&mut log);
        let before = contents(&log);
        let swapped = compact(&mut log, 200).await;
        assert!(swapped > 0);
        let after = contents(&log);
        // Offsets never change: every surviving record is at its original offset.
        for rec in &after {
            assert!(before.contains(rec), "{rec:?} was not in the log before");
        }
        let last = |k: &str, recs: &[(i64, String, Option<String>)]| {
            recs.iter().rev().find(|r| r.1 == k).cloned()
        };
        for k in ["a", "b", "c", "filler"] {
            assert_eq!(last(k, &after), last(k, &before), "key {k}");
        }
        assert_eq!(after.iter().filter(|r| r.1 == "a").count(), 1);
        assert_eq!(log.log_end_offset(), before.last().unwrap().0 + 1);
        // The tombstone for b stays until delete.retention.ms has passed, then goes.
        assert!(after.iter().any(|r| r.1 == "b" && r.2.is_none()));
        compact(&mut log, 100 + 1001).await;
        let later = contents(&log);
        assert!(!later.iter().any(|r| r.1 == "b"));
        // Reopen after a crash: the compacted log is what recovery sees.
        drop(log);
        let log = open(d, config(), 0).unwrap();
        assert_eq!(contents(&log), later);
    }

    #[test]
    fn interrupted_swap_is_finished_or_discarded() {
        for (suffix, finished) in [(SWAP_SUFFIX, true), (CLEANED_SUFFIX, false)] {
            let mem = MemDirectory::new();
            let d: Arc<dyn Directory> = Arc::new(mem.clone());
            let mut log = open(d.clone(), config(), 0).unwrap();
            for round in 0..12 {
                put(&mut log, 100, &[("k", Some(&format!("value-{round:040}")))]);
            }
            sync(&mut log);
            let plan = log.plan_compaction(200).unwrap();
            plan.run().unwrap();
            let first = log.segments().next().unwrap().base_offset();
            let name = crate::log::segment::file_name(first, ".log");
            if suffix == SWAP_SUFFIX {
                d.rename(
                    &format!("{name}{CLEANED_SUFFIX}"),
                    &format!("{name}{SWAP_SUFFIX}"),
                )
                .unwrap();
            }
            d.sync().unwrap();
            let before = contents(&log);
            drop(log);
            mem.crash(&mut Rng::new(7));
            let log = open(d.clone(), config(), 0).unwrap();
            let after = contents(&log);
            assert!(d
                .list()
                .unwrap()
                .iter()
                .all(|n| !n.ends_with(SWAP_SUFFIX) && !n.ends_with(CLEANED_SUFFIX)));
            if finished {
                assert!(after.len() < before.len());
            } else {
                assert_eq!(after, before);
            }
            assert_eq!(after.last(), before.last());
        }
    }
}
