//! `PartitionLog`: the synchronous core of one partition's log.
//!
//! It owns the segments, the log start offset, the leader epoch cache and the producer state, and
//! turns appends, truncations and syncs into file operations through the [`Directory`] trait. It
//! takes `now_ms` as an argument and never blocks on fsync: durability is planned here
//! ([`PartitionLog::begin_sync`]) and executed by the caller without the log's lock
//! ([`SyncPlan::execute`]), which is what lets group commit overlap appends with fsyncs.
//! [`crate::log::partition::Partition`] wraps it for async callers; recovery lives in
//! [`crate::log::recovery`], reads in [`crate::log::read`].

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tracing::warn;

use crate::log::batch::{self, Header};
use crate::log::checkpoint::{self, write_atomic_in};
use crate::log::config::{LogConfig, TimestampType};
use crate::log::error::{LogError, LogResult};
use crate::log::leader_epoch::LeaderEpochCache;
use crate::log::limits::{SEGMENT_OFFSET_SPAN_MAX, SPARES_PER_PARTITION_MAX};
use crate::log::producer_state::{ProducerState, SequenceCheck, SNAPSHOT_SUFFIX};
use crate::log::segment::{file_name, Appended, IndexFiles, Segment, LOG_SUFFIX};
use crate::log::spare::{
    large_and_half_full, next_segment_due, prepared_name, spare_name, Spare, SpareBudget,
};
use crate::log::storage::{Directory, Storage};

/// Small file holding (log start offset i64, recovery point i64).
pub const OFFSETS_CHECKPOINT: &str = "offsets-checkpoint";
/// Small file holding the leader epoch cache.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Marker written by a clean close (payload: log end offset i64).
pub const CLEAN_SHUTDOWN_MARKER: &str = "clean-shutdown";
/// Suffix of segment files being deleted.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Producer snapshots kept on disk.
const SNAPSHOTS_KEPT: usize = 3;

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended (or of the original batch for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The broker time stamped into the batches for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// True when the batches were already in the log (idempotent retry); nothing was written.
    pub duplicate: bool,
    /// True when the append rolled a new segment (a background sync should seal the old one).
    pub rolled: bool,
}

/// Files to make durable, planned under the log's lock and executed without it.
#[derive(Debug)]
pub struct SyncPlan {
    files: Vec<Arc<dyn Storage>>,
    /// The first `sealed` files belong to sealed segments: a reused file's old bytes are cut
    /// before their fsync, and their reserved space is released after it (and
    /// made durable by the next sync).
    sealed: usize,
    dir: Option<Arc<dyn Directory>>,
    /// Everything below this offset is durable once the plan has run.
    pub upto: i64,
    snapshot: Option<(String, Vec<u8>)>,
    checkpoint: bool,
    checkpoint_dir: Arc<dyn Directory>,
    offsets: Arc<OffsetsFile>,
    epochs: Arc<EpochsFile>,
}

/// The offsets checkpoint (log start offset, recovery point) with the values last written. Shared
/// by the log and its sync plans, so writes are serialised (they share a temp file) and a plan
/// running without the log's lock never writes back a log start that retention has moved since.
#[derive(Debug)]
pub(crate) struct OffsetsFile {
    dir: Arc<dyn Directory>,
    state: Mutex<(i64, i64)>,
}

impl OffsetsFile {
    pub(crate) fn new(
        dir: Arc<dyn Directory>,
        log_start: i64,
        recovery_point: i64,
    ) -> Arc<OffsetsFile> {
        Arc::new(OffsetsFile {
            dir,
            state: Mutex::new((log_start, recovery_point)),
        })
    }

    /// Writes the checkpoint with the given fields changed (`None` keeps the last written value).
    pub(crate) fn write(
        &self,
        log_start: Option<i64>,
        recovery_point: Option<i64>,
    ) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let new = (log_start.unwrap_or(st.0), recovery_point.unwrap_or(st.1));
        write_atomic_in(
            &*self.dir,
            OFFSETS_CHECKPOINT,
            &encode_offsets(new.0, new.1),
        )
        .map_err(|e| io::Error::other(e.to_string()))?;
        *st = new;
        Ok(())
    }
}

/// The leader-epoch checkpoint. An append that starts a new epoch only marks the cache to be
/// written ([`EpochsFile::mark`]): the next sync plan writes it, before the recovery point it may
/// advance. Recovery rebuilds the epochs of everything past the recovery point from the batches
/// themselves, so the file need only be durable for what lies below it. Writing it on the append
/// path cost a worker an fsync (tens to hundreds of milliseconds here) at every epoch change, as
/// Kafka's did (KAFKA-15046).
#[derive(Debug)]
pub(crate) struct EpochsFile {
    dir: Arc<dyn Directory>,
    /// The newest encoded cache not yet written; held only to swap it, never across I/O.
    pending: Mutex<Option<Vec<u8>>>,
    /// Serialises writes, so an older cache is never written over a newer one.
    writing: Mutex<()>,
}

impl EpochsFile {
    pub(crate) fn new(dir: Arc<dyn Directory>) -> Arc<EpochsFile> {
        Arc::new(EpochsFile {
            dir,
            pending: Mutex::new(None),
            writing: Mutex::new(()),
        })
    }

    /// Marks `cache` to be written by the next sync (no I/O).
    pub(crate) fn mark(&self, cache: &LeaderEpochCache) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(cache.encode());
    }

    /// Writes `cache` now (truncation, recovery), replacing what is pending.
    pub(crate) fn write_now(&self, cache: &LeaderEpochCache) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.write(&cache.encode())
    }

    /// Writes what is pending, if anything (sync plans); on failure it stays pending.
    pub(crate) fn write_pending(&self) -> io::Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bytes) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return Ok(());
        };
        let written = self.write(&bytes);
        if written.is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(bytes);
        }
        written
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        write_atomic_in(&*self.dir, LEADER_EPOCH_CHECKPOINT, bytes)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

impl SyncPlan {
    /// fsyncs the planned files (in order, sealed segments first), then the directory, then writes
    /// the pending leader-epoch checkpoint, the pending producer snapshot (pruning older ones) and
    /// the recovery-point checkpoint.
    ///
    /// Each sealed file is let go as soon as it is done: retention may remove its segment while
    /// the rest of the plan runs (seconds, behind the disk's writeback), and a roll reuses the
    /// removed file as a spare only once nothing else holds it.
    pub fn execute(&mut self) -> io::Result<()> {
        for (i, f) in std::mem::take(&mut self.files).into_iter().enumerate() {
            if i < self.sealed {
                // A reused file's old bytes go before the seal's fsync, as recovery trusts a
                // sealed segment's length (until then it reads a sealed segment only up to the
                // next one's base). Cutting them frees blocks, which on a `discard` mount waits
                // on the device: that wait stays off the append path that sealed the segment.
                f.cut_stale_tail()?;
            }
            f.sync()?;
            if i < self.sealed {
                // Its reserved tail can go now that its data is durable (the release is made
                // durable by the next sync).
                f.release_unused()?;
            }
        }
        if let Some(d) = &self.dir {
            d.sync()?;
        }
        // Before the recovery point moves past the first offset of a new epoch.
        self.epochs.write_pending()?;
        let cp = |e: checkpoint::CheckpointError| io::Error::other(e.to_string());
        if let Some((name, bytes)) = &self.snapshot {
            // Here, off the log's lock: pruning removes files, which frees blocks, and on a
            // `discard` mount that waits on the device (36 ms seen on a worker thread).
            write_snapshot(&*self.checkpoint_dir, name, bytes).map_err(cp)?;
        }
        if self.checkpoint {
            self.offsets.write(None, Some(self.upto))?;
        }
        Ok(())
    }
}

/// Writes the producer snapshot `name`, then removes all but the newest [`SNAPSHOTS_KEPT`]
/// snapshots in `dir` (only writing one can leave more of them).
fn write_snapshot(
    dir: &dyn Directory,
    name: &str,
    bytes: &[u8],
) -> Result<(), checkpoint::CheckpointError> {
    write_atomic_in(dir, name, bytes)?;
    let Ok(names) = dir.list() else {
        return Ok(());
    };
    let mut snaps: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(SNAPSHOT_SUFFIX))
        .collect();
    snaps.sort();
    if snaps.len() > SNAPSHOTS_KEPT {
        for n in &snaps[..snaps.len() - SNAPSHOTS_KEPT] {
            let _ = dir.remove(n);
        }
    }
    Ok(())
}

/// The synchronous core of a partition log (see the module doc).
#[derive(Debug)]
pub struct PartitionLog {
    pub(crate) dir: Arc<dyn Directory>,
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    pub(crate) leader_epochs: LeaderEpochCache,
    pub(crate) producers: ProducerState,
    pub(crate) active_created_ms: i64,
    /// Everything below is durable.
    pub(crate) synced_offset: i64,
    /// Recovery point last written to the offsets checkpoint.
    pub(crate) recovery_point: i64,
    pub(crate) last_checkpoint_ms: i64,
    /// Sealed segments' files not yet fsynced, each with its segment's base offset (so a segment
    /// removed before the sync takes its files along instead of keeping them open).
    pub(crate) pending_files: Vec<(i64, Arc<dyn Storage>)>,
    pub(crate) dir_dirty: bool,
    pub(crate) offsets: Arc<OffsetsFile>,
    pub(crate) epochs_file: Arc<EpochsFile>,
    pub(crate) pending_snapshot: Option<(String, Vec<u8>)>,
    pub(crate) unflushed_messages: u64,
    /// End of the range the last compaction pass covered (-1: none or partial).
    pub(crate) compacted_upto: i64,
    /// When a tombstone kept by the last pass becomes removable.
    pub(crate) compaction_recheck_ms: i64,
    pub(crate) first_unflushed_ms: Option<i64>,
    /// Segments removed from the log (retention, DeleteRecords, truncation) whose open files are
    /// still to be closed. Closing the last handle of an unlinked 1 GiB file drops its page cache
    /// and frees its blocks (about 200 ms here), so [`Partition`](crate::log::partition::Partition)
    /// takes them out and closes them off its lock, on the blocking pool.
    pub(crate) retired: Vec<RetiredSegment>,
    /// Segment files retention removed, kept to be reused as new segments (see
    /// [`crate::log::spare`]), oldest first.
    pub(crate) spares: VecDeque<Spare>,
    /// The broker-wide budget for spares; `None`: this log keeps none.
    pub(crate) spare_budget: Option<Arc<SpareBudget>>,
    /// A file for the next segment is being prepared in the background (see
    /// [`PartitionLog::plan_next_segment`]).
    pub(crate) preparing_next: bool,
    /// The active segment's index files, created ahead of its seal (see [`IndexFiles`]).
    pub(crate) index_files: Option<IndexFiles>,
    /// The active segment's index files are being created in the background.
    pub(crate) preparing_index_files: bool,
}

/// The files of a segment removed from the log (or of an expired spare): its log file, for the
/// page recycler, and those of its files that were still waiting for a sync (a removed segment
/// needs none); everything to close together, off the lock.
#[derive(Debug)]
pub(crate) struct RetiredSegment {
    log: Option<Arc<dyn Storage>>,
    _unsynced: Vec<Arc<dyn Storage>>,
}

impl RetiredSegment {
    /// The segment's log file (already unlinked, or about to be), for the page recycler.
    pub(crate) fn log_file(&self) -> Option<Arc<dyn Storage>> {
        self.log.clone()
    }
}

/// Offsets checkpoint payload.
pub(crate) fn encode_offsets(log_start: i64, recovery_point: i64) -> Vec<u8> {
    let mut v = log_start.to_be_bytes().to_vec();
    v.extend_from_slice(&recovery_point.to_be_bytes());
    v
}

fn corrupt(e: impl ToString) -> LogError {
    LogError::CorruptBatch(e.to_string())
}

/// Splits a produce request's records into batch headers with their byte ranges.
pub fn split_batches(records: &[u8], max_message_bytes: usize) -> LogResult<Vec<(usize, Header)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let h = Header::parse(&records[pos..]).map_err(corrupt)?;
        let total = h.total_bytes();
        if total > max_message_bytes {
            return Err(LogError::MessageTooLarge {
                size: total,
                max: max_message_bytes,
            });
        }
        if pos + total > records.len() {
            return Err(corrupt("trailing partial batch"));
        }
        out.push((pos, h));
        pos += total;
    }
    if out.is_empty() {
        return Err(corrupt("no batches"));
    }
    Ok(out)
}

impl PartitionLog {
    /// Log end offset: the offset the next record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    /// Everything below this offset has been fsynced.
    pub fn durable_offset(&self) -> i64 {
        self.synced_offset
    }
    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// The leader epoch cache.
    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.leader_epochs
    }
    /// Producer state.
    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }
    /// Segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.values()
    }
    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    /// The directory.
    pub fn dir(&self) -> &Arc<dyn Directory> {
        &self.dir
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Replaces the configuration (topic config change).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Appends batches from a producer (the leader path): checks sizes and idempotence, assigns
    /// offsets, stamps base offset and `leader_epoch` in place, writes them in one vectored write.
    pub fn append_leader(
        &mut self,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> LogResult<AppendInfo> {
        let batches = split_batches(records, self.config.max_message_bytes)?;
        let mut staged = Vec::new();
        let mut duplicates = Vec::new();
        let mut next = self.log_end_offset();
        let mut assigned = Vec::with_capacity(batches.len());
        for (_, h) in &batches {
            match self.producers.check(&staged, h)? {
                SequenceCheck::Duplicate(b) => duplicates.push(b),
                SequenceCheck::Append => {
                    self.producers.stage(&mut staged, h, next);
                    assigned.push(next);
                    next += h.offset_count();
                }
            }
        }
        if !duplicates.is_empty() {
            if duplicates.len() == batches.len() {
                return Ok(AppendInfo {
                    base_offset: duplicates[0].base_offset,
                    last_offset: duplicates[duplicates.len() - 1].last_offset,
                    log_append_time: -1,
                    log_start_offset: self.log_start_offset,
                    duplicate: true,
                    rolled: false,
                });
            }
            let h = &batches[0].1;
            return Err(LogError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected: duplicates[0].first_seq,
                received: h.base_sequence,
            });
        }
        let base = self.log_end_offset();
        let rolled = self.maybe_roll(
            records.len() as u64,
            next - 1,
            batches[0].1.max_timestamp,
            now_ms,
        )?;
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        // LogAppendTime changes the CRC'd part, so those topics pay one copy; CreateTime batches are
        // written from the caller's buffer with only their first 16 bytes replaced.
        let owned: Option<BytesMut> = log_append_time.then(|| {
            let mut m = BytesMut::from(&records[..]);
            for (pos, h) in &batches {
                batch::set_log_append_time(&mut m[*pos..*pos + h.total_bytes()], now_ms);
            }
            m
        });
        let src: &[u8] = owned.as_deref().unwrap_or(records);
        let mut heads = Vec::with_capacity(batches.len());
        for ((pos, _), base_offset) in batches.iter().zip(&assigned) {
            let mut head = [0u8; 16];
            head.copy_from_slice(&src[*pos..*pos + 16]);
            batch::stamp(&mut head, *base_offset, leader_epoch);
            heads.push(head);
        }
        let mut iov = Vec::with_capacity(batches.len() * 2);
        let mut appended = Vec::with_capacity(batches.len());
        let mut position = self.active().size();
        for (((pos, h), head), base_offset) in batches.iter().zip(&heads).zip(&assigned) {
            iov.push(IoSlice::new(head));
            iov.push(IoSlice::new(&src[pos + 16..pos + h.total_bytes()]));
            let max_timestamp = if log_append_time {
                now_ms
            } else {
                h.max_timestamp
            };
            appended.push(Appended {
                base_offset: *base_offset,
                last_offset: base_offset + i64::from(h.last_offset_delta),
                max_timestamp,
                position,
                size: h.total_bytes() as u64,
            });
            position += h.total_bytes() as u64;
        }
        self.active_mut().append(&iov, &appended)?;
        self.producers.commit(staged);
        self.after_append(leader_epoch, base, &batches, now_ms)?;
        Ok(AppendInfo {
            base_offset: base,
            last_offset: next - 1,
            log_append_time: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            duplicate: false,
            rolled,
        })
    }

    fn after_append(
        &mut self,
        leader_epoch: i32,
        base: i64,
        batches: &[(usize, Header)],
        now_ms: i64,
    ) -> LogResult<()> {
        if self.leader_epochs.assign(leader_epoch, base) {
            self.epochs_file.mark(&self.leader_epochs);
        }
        let n: i64 = batches
            .iter()
            .map(|(_, h)| i64::from(h.records_count.max(1)))
            .sum();
        self.unflushed_messages += n as u64;
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Appends batches replicated from the leader, keeping their offsets and epochs. Each batch's
    /// CRC is checked (the bytes crossed the network) and its base offset must not go backwards.
    pub fn append_follower(&mut self, records: &Bytes, now_ms: i64) -> LogResult<AppendInfo> {
        let batches = split_batches(records, usize::MAX)?;
        let mut expected = self.log_end_offset();
        for (pos, h) in &batches {
            batch::check_crc(&records[*pos..], h).map_err(corrupt)?;
            if h.base_offset < expected {
                return Err(LogError::NonContiguousAppend {
                    base_offset: h.base_offset,
                    log_end: expected,
                });
            }
            expected = h.last_offset() + 1;
        }
        let first = batches[0].1.base_offset;
        let last = expected - 1;
        let rolled = self.maybe_roll(
            records.len() as u64,
            last,
            batches[0].1.max_timestamp,
            now_ms,
        )?;
        // A gap (a compacted leader) stays inside the segment: offsets only need to increase, and
        // a hole between segments would look like lost data to recovery.
        let mut position = self.active().size();
        let appended: Vec<Appended> = batches
            .iter()
            .map(|(_, h)| {
                let a = Appended::of(h, position);
                position += a.size;
                a
            })
            .collect();
        self.active_mut()
            .append(&[IoSlice::new(records)], &appended)?;
        for (_, h) in &batches {
            self.producers.replay(h);
            if self.leader_epochs.assign(h.leader_epoch, h.base_offset) {
                self.epochs_file.mark(&self.leader_epochs);
            }
        }
        let n: i64 = batches
            .iter()
            .map(|(_, h)| i64::from(h.records_count.max(1)))
            .sum();
        self.unflushed_messages += n as u64;
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(AppendInfo {
            base_offset: first,
            last_offset: last,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            duplicate: false,
            rolled,
        })
    }

    fn maybe_roll(
        &mut self,
        bytes: u64,
        last_offset: i64,
        first_ts: i64,
        now_ms: i64,
    ) -> LogResult<bool> {
        let seg = self.active();
        if seg.size() == 0 {
            return Ok(false);
        }
        let limit = self.config.segment_limit();
        let full = seg.size() + bytes > limit;
        let aged = match seg.first_batch_timestamp() {
            Some(t) if t >= 0 && first_ts >= 0 => first_ts - t > self.config.segment_ms,
            _ => now_ms - self.active_created_ms > self.config.segment_ms,
        };
        let span = last_offset - seg.base_offset() > SEGMENT_OFFSET_SPAN_MAX;
        if full || aged || seg.index_full() || span {
            let next = self.log_end_offset();
            self.roll(next, now_ms)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Seals the active segment (writes its indexes, queues its files for fsync and a producer
    /// snapshot) and starts a new one at `base_offset`.
    pub fn roll(&mut self, base_offset: i64, now_ms: i64) -> LogResult<()> {
        let dir = self.dir.clone();
        let active = self.active_mut();
        if active.size() == 0 && active.base_offset() == base_offset {
            return Ok(());
        }
        let sealed = active.base_offset();
        let log = active.file().clone();
        let prepared = self.index_files.take();
        let active = self.active_mut();
        let index_files = active.write_indexes_into(&*dir, prepared)?;
        // A reused file's old bytes are cut by the sync plan, before the seal's fsync (see
        // `SyncPlan::execute`), not here on the append path.
        self.pending_files.push((sealed, log));
        self.pending_files
            .extend(index_files.into_iter().map(|f| (sealed, f)));
        let seg = self.create_segment(base_offset)?;
        self.segments.insert(base_offset, seg);
        self.dir_dirty = true;
        self.active_created_ms = now_ms;
        let end = self.log_end_offset();
        self.pending_snapshot = Some((file_name(end, SNAPSHOT_SUFFIX), self.producers.encode()));
        Ok(())
    }

    /// A new segment at `base_offset`, in a spare file when one is free of readers.
    fn create_segment(&mut self, base_offset: i64) -> LogResult<Segment> {
        let (entries_max, interval) = (
            self.config.index_entries_max(),
            self.config.index_interval_bytes,
        );
        // A spare longer than a segment may grow would leave a long old tail to cut at the seal,
        // on the append path (after `segment.bytes` was lowered): such a spare just expires.
        let fits = |s: &Spare| s.unshared() && s.file.len() <= self.config.segment_bytes;
        if let Some(i) = self.spares.iter().position(fits) {
            if let Some(spare) = self.spares.remove(i) {
                let name = spare.name.clone();
                drop(spare);
                match Segment::create_reusing(&*self.dir, &name, base_offset, entries_max, interval)
                {
                    Ok(seg) => return Ok(seg),
                    Err(e) => {
                        warn!(dir = %self.dir.path().display(), spare = %name, error = %e, "cannot reuse a spare segment file; creating a new one");
                        let _ = self.dir.remove(&name);
                    }
                }
            }
        }
        Ok(Segment::create(
            &*self.dir,
            base_offset,
            entries_max,
            interval,
        )?)
    }

    /// Keeps the file of `seg`, just removed from the log by retention, as a spare when the
    /// budget allows; false when it did not (no budget, or the file could not be renamed), and
    /// the segment is to be retired as usual.
    pub(crate) fn keep_as_spare(&mut self, seg: &Segment, now_ms: i64) -> bool {
        let Some(budget) = self.spare_budget.clone() else {
            return false;
        };
        // A removed segment's file beats a prepared one: its pages are cached and nothing is
        // allocated or freed to reuse it.
        if self.spares.len() >= SPARES_PER_PARTITION_MAX {
            match self.spares.iter().position(|s| s.prepared) {
                Some(i) => {
                    if let Some(spare) = self.spares.remove(i) {
                        self.discard_spare(spare);
                    }
                }
                None => return false,
            }
        }
        let base = seg.base_offset();
        let log_name = file_name(base, LOG_SUFFIX);
        let name = spare_name(&log_name);
        let Some(spare) = Spare::new(&budget, name.clone(), seg.file().clone(), now_ms) else {
            return false;
        };
        if let Err(e) = self.dir.rename(&log_name, &name) {
            warn!(dir = %self.dir.path().display(), file = %log_name, error = %e, "cannot keep a removed segment file as a spare");
            return false;
        }
        self.dir_dirty = true;
        // Its files still waiting for a sync need none now. The index files among them (removed
        // with the segment's other files) close off the lock; the log file is the spare's.
        let indexes: Vec<_> = self
            .take_unsynced_of(base)
            .into_iter()
            .filter(|f| !Arc::ptr_eq(f, &spare.file))
            .collect();
        if !indexes.is_empty() {
            self.retired.push(RetiredSegment {
                log: None,
                _unsynced: indexes,
            });
        }
        self.spares.push_back(spare);
        true
    }

    /// Removes spares unused for [`crate::log::limits::SPARE_HOLD_MS`]; their files retire (to
    /// the page recycler, then closed off the lock).
    pub(crate) fn expire_spares(&mut self, now_ms: i64) {
        while self.spares.front().is_some_and(|s| s.expired(now_ms)) {
            let Some(spare) = self.spares.pop_front() else {
                break;
            };
            self.discard_spare(spare);
        }
    }

    /// Removes a spare's file; the open file retires (to the page recycler, then closed off the
    /// lock).
    fn discard_spare(&mut self, spare: Spare) {
        if let Err(e) = self.dir.remove(&spare.name) {
            warn!(dir = %self.dir.path().display(), spare = %spare.name, error = %e, "cannot remove a spare segment file");
        }
        self.retired.push(RetiredSegment {
            log: Some(Arc::clone(&spare.file)),
            _unsynced: Vec::new(),
        });
    }

    /// The file to prepare in the background for the next segment, when it is due (see
    /// [`crate::log::spare`]): its name and the bytes of blocks to reserve in it. None while one
    /// is being prepared or a spare waits.
    pub(crate) fn plan_next_segment(&mut self, now_ms: i64) -> Option<(String, u64)> {
        let budget = self.spare_budget.as_ref()?;
        if self.preparing_next || !self.spares.is_empty() {
            return None;
        }
        let limit = self.config.segment_limit();
        let (size, base) = (self.active().size(), self.active().base_offset());
        let elapsed_ms = now_ms - self.active_created_ms;
        if !next_segment_due(size, limit, elapsed_ms) || !budget.has_room(limit) {
            return None;
        }
        self.preparing_next = true;
        let name = prepared_name(&file_name(base, LOG_SUFFIX));
        Some((name, limit))
    }

    /// Keeps the file prepared for the next segment (`None`: preparing it failed) as a spare, for
    /// the next roll to reuse; false when it was not kept (a spare came first, or no budget), and
    /// the caller removes it.
    pub(crate) fn add_prepared(
        &mut self,
        prepared: Option<(String, Arc<dyn Storage>, u64)>,
        now_ms: i64,
    ) -> bool {
        self.preparing_next = false;
        let (Some((name, file, reserved)), Some(budget)) = (prepared, self.spare_budget.clone())
        else {
            return false;
        };
        if self.spares.len() >= SPARES_PER_PARTITION_MAX {
            return false;
        }
        match Spare::prepared(&budget, name, file, reserved, now_ms) {
            Some(spare) => {
                self.spares.push_back(spare);
                true
            }
            None => false,
        }
    }

    /// The base offset of the active segment when its index files are due to be created ahead
    /// of its seal (see [`IndexFiles`]): once it is half full ([`large_and_half_full`]). None
    /// while they are being created, or exist.
    pub(crate) fn plan_index_files(&mut self) -> Option<i64> {
        let active = self.active();
        let base = active.base_offset();
        let due = large_and_half_full(active.size(), self.config.segment_limit())
            && !active.indexes_written();
        let have = self
            .index_files
            .as_ref()
            .is_some_and(|f| f.base_offset() == base);
        if self.preparing_index_files || !due || have {
            return None;
        }
        self.preparing_index_files = true;
        Some(base)
    }

    /// Keeps the index files created for the active segment (`None`: creating them failed) for
    /// its seal. Files for a segment no longer active are dropped: its seal wrote its own, after
    /// removing any file of the same name. Returns the files to remove: those created after
    /// their segment left the log (a creation that waited through a seal and a retention).
    pub(crate) fn add_index_files(&mut self, files: Option<IndexFiles>) -> Option<IndexFiles> {
        self.preparing_index_files = false;
        let files = files?;
        let base = files.base_offset();
        if base == self.active().base_offset() {
            self.index_files = Some(files);
            return None;
        }
        (!self.segments.contains_key(&base)).then_some(files)
    }

    /// Lets this log keep spare segment files under `budget` (see [`crate::log::spare`]).
    pub fn enable_spares(&mut self, budget: Arc<SpareBudget>) {
        self.spare_budget = Some(budget);
    }

    /// Writes the leader-epoch checkpoint now (see [`EpochsFile`]).
    pub(crate) fn write_leader_epochs(&self) -> LogResult<()> {
        self.epochs_file.write_now(&self.leader_epochs)?;
        Ok(())
    }

    pub(crate) fn write_offsets_checkpoint(&mut self, recovery_point: i64) -> LogResult<()> {
        self.offsets
            .write(Some(self.log_start_offset), Some(recovery_point))?;
        self.recovery_point = recovery_point;
        Ok(())
    }

    /// True when something written is not yet durable.
    pub fn needs_sync(&self) -> bool {
        self.synced_offset < self.log_end_offset()
            || !self.pending_files.is_empty()
            || self.dir_dirty
            || self.pending_snapshot.is_some()
    }

    /// True when `flush.messages` / `flush.ms` call for a sync now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        use crate::log::config::FlushPolicy;
        if !self.needs_sync() {
            return false;
        }
        match self.config.flush_policy() {
            FlushPolicy::Interval { messages, ms } => {
                messages.is_some_and(|m| self.unflushed_messages >= m)
                    || ms.is_some_and(|ms| {
                        self.first_unflushed_ms
                            .is_some_and(|t| now_ms - t >= ms as i64)
                    })
            }
            _ => !self.pending_files.is_empty() || self.pending_snapshot.is_some(),
        }
    }

    /// True when the recovery point lags and the checkpoint interval has passed.
    pub fn needs_checkpoint(&self, now_ms: i64) -> bool {
        self.log_end_offset() > self.recovery_point
            && now_ms - self.last_checkpoint_ms
                >= crate::log::limits::RECOVERY_POINT_CHECKPOINT_INTERVAL_MS
    }

    /// Plans a sync covering everything appended so far. The recovery-point checkpoint rides
    /// along when segments were sealed or when it is older than the checkpoint interval.
    pub fn begin_sync(&mut self, now_ms: i64) -> SyncPlan {
        let upto = self.log_end_offset();
        let sealed = !self.pending_files.is_empty();
        let mut files: Vec<Arc<dyn Storage>> = std::mem::take(&mut self.pending_files)
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        let sealed_files = files.len();
        files.push(self.active().file().clone());
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        let due = now_ms - self.last_checkpoint_ms
            >= crate::log::limits::RECOVERY_POINT_CHECKPOINT_INTERVAL_MS;
        let checkpoint = sealed || (due && upto > self.recovery_point);
        if checkpoint {
            self.last_checkpoint_ms = now_ms;
        }
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        SyncPlan {
            files,
            sealed: sealed_files,
            dir,
            upto,
            snapshot: self.pending_snapshot.take(),
            checkpoint,
            checkpoint_dir: self.dir.clone(),
            offsets: self.offsets.clone(),
            epochs: self.epochs_file.clone(),
        }
    }

    /// Records a successful sync.
    pub fn complete_sync(&mut self, plan: &SyncPlan) {
        // A truncation while the sync ran may have lowered the log end below `upto`.
        let upto = plan.upto.min(self.log_end_offset());
        self.synced_offset = self.synced_offset.max(upto);
        if plan.checkpoint {
            self.recovery_point = self.recovery_point.max(upto);
        }
    }

    /// Empties the log and restarts it at `offset` (replication, Kafka's
    /// `truncateFullyAndStartAt`): a follower whose log ends below the leader's log start, or
    /// whose empty log must start at the base of the leader's first batch, which holds the
    /// leader's log start. Allowed past the log end, or anywhere when the log holds no record.
    ///
    /// The offsets checkpoint with the new log start goes first: a crash before the segments are
    /// gone leaves them wholly below it (or empty), and recovery then restarts the log empty at
    /// the checkpointed start.
    pub fn reset_to(&mut self, offset: i64) -> LogResult<()> {
        let end = self.log_end_offset();
        if offset < 0 || (offset <= end && end > self.log_start_offset) {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end,
            });
        }
        self.log_start_offset = offset;
        self.write_offsets_checkpoint(offset)?;
        self.index_files = None;
        let dir = self.dir.clone();
        for base in self.segments.keys().copied().collect::<Vec<_>>() {
            if let Some(seg) = self.segments.remove(&base) {
                seg.rename_files(&*dir, DELETED_SUFFIX)?;
                remove_deleted(&*dir, base)?;
                self.retire(seg);
            }
        }
        // A new file, not a spare: a spare's old bytes stay until the segment's seal.
        let seg = Segment::create(
            &*dir,
            offset,
            self.config.index_entries_max(),
            self.config.index_interval_bytes,
        )?;
        seg.file().sync()?;
        self.segments.insert(offset, seg);
        self.synced_offset = offset;
        self.leader_epochs = LeaderEpochCache::new();
        self.write_leader_epochs()?;
        self.producers = ProducerState::new();
        self.pending_snapshot = None;
        for name in dir.list()? {
            if let Some((_, SNAPSHOT_SUFFIX)) = crate::log::segment::parse_file_name(&name) {
                dir.remove(&name)?;
            }
        }
        dir.sync()?;
        Ok(())
    }

    /// Removes every record at or after `offset` (replication: a follower cutting a divergent
    /// tail). Lowers the recovery point first, so recovery never mistakes new data for old.
    pub fn truncate_to(&mut self, offset: i64) -> LogResult<()> {
        let offset = offset.max(self.log_start_offset);
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        // The log will end at the start of the batch holding `offset`, which may be below it.
        let new_end = match self.segment_for(offset) {
            Some(seg) => seg
                .locate(offset)?
                .map_or(offset, |(_, h)| h.base_offset.min(offset)),
            None => offset,
        };
        if self.recovery_point > new_end {
            self.write_offsets_checkpoint(new_end)?;
        }
        self.synced_offset = self.synced_offset.min(new_end);
        // Index files created for the active segment may be removed with it below.
        self.index_files = None;
        let dir = self.dir.clone();
        let first = self.first_base();
        let doomed: Vec<i64> = self
            .segments
            .range(offset..)
            .map(|(b, _)| *b)
            .filter(|&b| b != first)
            .collect();
        for base in doomed {
            if let Some(seg) = self.segments.remove(&base) {
                seg.rename_files(&*dir, DELETED_SUFFIX)?;
                remove_deleted(&*dir, base)?;
                self.retire(seg);
            }
        }
        let active = self.active_mut();
        active.truncate_to(&*dir, offset)?;
        active.file().sync()?;
        let end = self.log_end_offset();
        if self.leader_epochs.truncate_from_end(end) {
            self.write_leader_epochs()?;
        }
        for name in dir.list()? {
            if let Some((snap, SNAPSHOT_SUFFIX)) = crate::log::segment::parse_file_name(&name) {
                if snap > end {
                    dir.remove(&name)?;
                }
            }
        }
        // Removed segments and snapshots must stay removed: new data will reuse their offsets.
        dir.sync()?;
        self.pending_snapshot = None;
        self.producers = crate::log::recovery::rebuild_producers(
            &*dir,
            &self.segments,
            self.log_start_offset,
            end,
        )?;
        Ok(())
    }

    /// Hands the files of a segment removed from the log to [`Self::retired`], with any of them
    /// still waiting for a sync. (The segment's in-memory indexes go at once.)
    pub(crate) fn retire(&mut self, seg: Segment) {
        let unsynced = self.take_unsynced_of(seg.base_offset());
        self.retired.push(RetiredSegment {
            log: Some(Arc::clone(seg.file())),
            _unsynced: unsynced,
        });
    }

    /// Takes the files of the segment based at `base` out of those waiting for a sync: a segment
    /// leaving the log needs none.
    fn take_unsynced_of(&mut self, base: i64) -> Vec<Arc<dyn Storage>> {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_files)
            .into_iter()
            .partition(|(b, _)| *b == base);
        self.pending_files = kept;
        gone.into_iter().map(|(_, f)| f).collect()
    }

    fn first_base(&self) -> i64 {
        self.segments.keys().next().copied().unwrap_or(0)
    }

    /// Closes cleanly: writes the active segment's indexes, fsyncs everything, writes a producer
    /// snapshot, the offsets checkpoint and the clean-shutdown marker.
    pub fn close(&mut self, now_ms: i64) -> LogResult<()> {
        let dir = self.dir.clone();
        let active = self.active_mut();
        let base = active.base_offset();
        // A reused file's old bytes go: after a clean shutdown recovery trusts every length.
        active.file().cut_stale_tail()?;
        let prepared = self.index_files.take();
        let files = self.active_mut().write_indexes_into(&*dir, prepared)?;
        self.pending_files
            .extend(files.into_iter().map(|f| (base, f)));
        self.dir_dirty = true;
        let mut plan = self.begin_sync(now_ms);
        plan.execute()?;
        self.complete_sync(&plan);
        let end = self.log_end_offset();
        let cp = |e: checkpoint::CheckpointError| LogError::from(io::Error::other(e.to_string()));
        write_snapshot(
            &*dir,
            &file_name(end, SNAPSHOT_SUFFIX),
            &self.producers.encode(),
        )
        .map_err(cp)?;
        self.write_offsets_checkpoint(end)?;
        write_atomic_in(&*dir, CLEAN_SHUTDOWN_MARKER, &end.to_be_bytes()).map_err(cp)?;
        Ok(())
    }

    /// The first record with timestamp >= `ts`, as (offset, timestamp): the time index and batch
    /// headers find the batch, then that one batch's records are walked (decompressed if needed).
    pub fn offset_for_timestamp(&self, ts: i64) -> LogResult<Option<(i64, i64)>> {
        for seg in self.segments.values() {
            let Some((pos, h)) = seg.locate_timestamp(ts)? else {
                continue;
            };
            let bytes = seg.read(pos, h.total_bytes())?;
            let start = self.log_start_offset;
            let exact = sluice_protocol::record::RecordBatch::parse(bytes)
                .ok()
                .and_then(|b| {
                    b.records()
                        .ok()?
                        .filter_map(Result::ok)
                        .find(|r| r.timestamp() >= ts && r.offset() >= start)
                        .map(|r| (r.offset(), r.timestamp()))
                });
            return Ok(Some(
                exact.unwrap_or((h.base_offset.max(start), h.max_timestamp)),
            ));
        }
        Ok(None)
    }

    /// Drops producer ids unused for longer than the expiration.
    pub fn expire_producers(&mut self, now_ms: i64) {
        self.producers.expire(now_ms);
    }

    /// The segment holding `offset`, or the first one after it (compacted gaps).
    pub(crate) fn segment_for(&self, offset: i64) -> Option<&Segment> {
        let at = self.segments.range(..=offset).next_back().map(|(_, s)| s);
        match at {
            Some(s) if offset < s.next_offset() => Some(s),
            _ => self
                .segments
                .range(offset + 1..)
                .map(|(_, s)| s)
                .find(|s| s.size() > 0),
        }
    }

    pub(crate) fn segment_path(&self, base: i64) -> std::path::PathBuf {
        self.dir.path().join(file_name(base, LOG_SUFFIX))
    }
}

/// Removes the `.deleted` files of segment `base`.
pub(crate) fn remove_deleted(dir: &dyn Directory, base: i64) -> io::Result<()> {
    for s in [
        LOG_SUFFIX,
        crate::log::segment::INDEX_SUFFIX,
        crate::log::segment::TIME_INDEX_SUFFIX,
    ] {
        dir.remove(&format!("{}{DELETED_SUFFIX}", file_name(base, s)))?;
    }
    Ok(())
}
