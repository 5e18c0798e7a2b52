//! Opening a partition directory: clean start, or recovery after a crash.
//!
//! Steps (the order matters):
//! 1. Read and remove the clean-shutdown marker (a later crash must not look clean).
//! 2. Clean half-finished work: `*.tmp` (atomic writes), `*.deleted` (segment deletion),
//!    `*.cleaned` (compaction output not yet swapped), `*.spare` (spare segment files, see
//!    [`crate::log::spare`]); finish a compaction swap (`*.log.swap`
//!    replaces the segment with the same base); drop index files without a `.log`.
//! 3. Read the offsets checkpoint (log start, recovery point). Segments wholly below the log start
//!    go. Segments wholly below the recovery point (and every segment after a clean shutdown) are
//!    trusted: indexes loaded if sane, else rebuilt from headers. The rest are validated batch by
//!    batch (bounds, magic, CRC-32C, increasing offsets) with indexes rebuilt.
//! 4. An invalid batch at an offset at or past the recovery point is a torn tail: the segment is
//!    cut there and every later segment deleted. Below the recovery point it is corruption of
//!    durable data: the partition goes offline with an error naming the file and position.
//! 5. Rebuild the leader epoch cache (checkpoint plus the epochs of scanned batches, cut to the log)
//!    and the producer state (newest snapshot at or below the end, then replay). What was scanned
//!    and rebuilt joins the next group commit (nothing is fsynced while opening); the recovery
//!    point advances when that sync has run.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Arc;

use tracing::{info, warn};

use crate::log::checkpoint::{read_checked_in, Reader, TMP_SUFFIX};
use crate::log::config::LogConfig;
use crate::log::error::{LogError, LogResult};
use crate::log::leader_epoch::LeaderEpochCache;
use crate::log::partition_log::{
    EpochsFile, OffsetsFile, PartitionLog, CLEAN_SHUTDOWN_MARKER, DELETED_SUFFIX,
    LEADER_EPOCH_CHECKPOINT, OFFSETS_CHECKPOINT,
};
use crate::log::producer_state::{ProducerState, SNAPSHOT_SUFFIX};
use crate::log::scan::{scan, ScanEnd, Visit};
use crate::log::segment::{
    file_name, header_at, parse_file_name, remove_segment_files, Segment, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};
use crate::log::spare::SPARE_SUFFIX;
use crate::log::storage::{Directory, Storage};

/// Suffix of compaction output not yet swapped in.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of compaction output being swapped in.
pub const SWAP_SUFFIX: &str = ".swap";

/// Opens (creating if empty) the partition log in `dir`, recovering if it was not closed cleanly.
pub fn open(dir: Arc<dyn Directory>, config: LogConfig, now_ms: i64) -> LogResult<PartitionLog> {
    let marker = read_checked_in(&*dir, CLEAN_SHUTDOWN_MARKER).ok().flatten();
    let clean_end = marker.as_deref().and_then(|m| Reader::new(m).i64());
    if dir.exists(CLEAN_SHUTDOWN_MARKER)? {
        dir.remove(CLEAN_SHUTDOWN_MARKER)?;
        dir.sync()?;
    }
    if let Some(end) = clean_end {
        match open_inner(dir.clone(), config.clone(), now_ms, true) {
            Ok(log) if log.log_end_offset() == end => return Ok(log),
            Ok(_) => {
                warn!(dir = %dir.path().display(), "clean-shutdown marker disagrees with the log; recovering")
            }
            Err(e @ LogError::Offline { .. }) => return Err(e),
            Err(e) => {
                warn!(dir = %dir.path().display(), error = %e, "clean open failed; recovering")
            }
        }
    }
    open_inner(dir, config, now_ms, false)
}

/// True when the bytes at `position` of a segment based at `base` start with the batch header of
/// an older segment: what a reused spare file ([`crate::log::spare`]) holds past its new data,
/// not damage.
fn reused_file_tail(file: &dyn Storage, position: u64, base: i64) -> bool {
    header_at(file, position).is_some_and(|h| h.base_offset < base)
}

/// Cuts what follows a sealed segment's data at `end`: the old bytes of a reused segment file
/// (see [`crate::log::spare`]) whose cut at seal a crash undid. The scan stopped at the batch
/// reaching the next segment's base, so nothing after `end` can be this segment's data.
fn cut_old_bytes(seg: &Segment, path: &std::path::Path, end: u64) -> io::Result<()> {
    let file = seg.file();
    if end >= file.len() {
        return Ok(());
    }
    info!(file = %path.display(), position = end, "cutting the old bytes of a reused segment file");
    file.truncate(end)?;
    file.sync()
}

fn clean_leftovers(dir: &dyn Directory) -> io::Result<()> {
    let names = dir.list()?;
    for name in &names {
        if name.ends_with(TMP_SUFFIX)
            || name.ends_with(DELETED_SUFFIX)
            || name.ends_with(CLEANED_SUFFIX)
            || name.ends_with(SPARE_SUFFIX)
        {
            dir.remove(name)?;
        }
    }
    for name in &names {
        if let Some(log_name) = name.strip_suffix(SWAP_SUFFIX) {
            if let Some((base, LOG_SUFFIX)) = parse_file_name(log_name) {
                info!(dir = %dir.path().display(), base, "finishing an interrupted compaction swap");
                remove_segment_files(dir, base)?;
                dir.rename(name, log_name)?;
            } else {
                dir.remove(name)?;
            }
        }
    }
    let names = dir.list()?;
    for name in &names {
        if let Some((base, suffix)) = parse_file_name(name) {
            if (suffix == INDEX_SUFFIX || suffix == TIME_INDEX_SUFFIX)
                && !names.contains(&file_name(base, LOG_SUFFIX))
            {
                dir.remove(name)?;
            }
        }
    }
    dir.sync()
}

fn open_inner(
    dir: Arc<dyn Directory>,
    config: LogConfig,
    now_ms: i64,
    clean: bool,
) -> LogResult<PartitionLog> {
    clean_leftovers(&*dir)?;
    let (mut log_start, recovery_point) = match read_checked_in(&*dir, OFFSETS_CHECKPOINT) {
        Ok(Some(p)) => {
            let mut r = Reader::new(&p);
            match (r.i64(), r.i64()) {
                (Some(a), Some(b)) if a >= 0 && b >= 0 => (a, b),
                _ => (0, 0),
            }
        }
        Ok(None) => (0, 0),
        Err(e) => {
            warn!(dir = %dir.path().display(), error = %e, "offsets checkpoint unreadable; recovering from the start");
            (0, 0)
        }
    };
    let mut bases: Vec<i64> = dir
        .list()?
        .iter()
        .filter_map(|n| parse_file_name(n))
        .filter(|(_, s)| *s == LOG_SUFFIX)
        .map(|(b, _)| b)
        .collect();
    bases.sort_unstable();
    // Segments wholly below the log start (retention ran, the files were not yet deleted).
    while bases.len() > 1 && bases[1] <= log_start {
        remove_segment_files(&*dir, bases.remove(0))?;
    }
    let mut epochs = match read_checked_in(&*dir, LEADER_EPOCH_CHECKPOINT) {
        Ok(Some(p)) => LeaderEpochCache::decode(&p).unwrap_or_default(),
        _ => LeaderEpochCache::new(),
    };
    let epochs_on_disk = epochs.clone();
    let entries_max = config.index_entries_max();
    let interval = config.index_interval_bytes;
    let mut segments = BTreeMap::new();
    let mut to_sync = Vec::new();
    let mut prev_end: Option<i64> = None;
    let mut i = 0;
    while i < bases.len() {
        let base = bases[i];
        let next_base = bases.get(i + 1).copied();
        let path = dir.path().join(file_name(base, LOG_SUFFIX));
        if prev_end.is_some_and(|p| base < p) {
            // Overlapping segments can only come from a bug or tampering; treat like corruption.
            return Err(LogError::Offline {
                path,
                position: 0,
                reason: format!("segment base {base} overlaps the previous segment"),
            });
        }
        let trusted = clean || next_base.is_some_and(|n| n <= recovery_point);
        if trusted {
            let (seg, end) = Segment::open_trusted(&*dir, base, entries_max, interval, next_base)?;
            match end {
                ScanEnd::Invalid { position, reason } => {
                    return Err(LogError::Offline {
                        path,
                        position,
                        reason,
                    })
                }
                ScanEnd::Clean { end } => cut_old_bytes(&seg, &path, end)?,
            }
            prev_end = Some(seg.next_offset());
            segments.insert(base, seg);
            i += 1;
            continue;
        }
        if prev_end.is_some_and(|p| base > p) && base > recovery_point {
            // A hole between segments past the recovery point: the previous segment lost its
            // unsynced tail while a later file survived. Everything from here was never durable.
            warn!(file = %path.display(), "dropping segments after a lost tail");
            for &later in &bases[i..] {
                for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    dir.remove(&file_name(later, s))?;
                }
            }
            break;
        }
        let (seg, end) = Segment::open_validated(
            &*dir,
            base,
            entries_max,
            interval,
            prev_end.map(|p| p - 1),
            next_base,
            |h| {
                epochs.assign(h.leader_epoch, h.base_offset);
            },
        )?;
        to_sync.push((seg.base_offset(), seg.file().clone()));
        if let ScanEnd::Invalid { position, reason } = end {
            let at_offset = seg.next_offset();
            if at_offset < recovery_point {
                return Err(LogError::Offline {
                    path,
                    position,
                    reason,
                });
            }
            if reused_file_tail(&**seg.file(), position, base) {
                info!(file = %path.display(), position, "cutting the old bytes of a reused segment file");
            } else {
                warn!(file = %path.display(), position, reason, "truncating a torn log tail");
            }
            seg.file().truncate(position)?;
            // The cut must be durable before anything can be appended after it: otherwise a later
            // segment could become durable while this one still ends in garbage on disk, and the
            // recovery point would then vouch for the garbage.
            seg.file().sync()?;
            segments.insert(base, seg);
            for &later in &bases[i + 1..] {
                for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    dir.remove(&file_name(later, s))?;
                }
            }
            dir.sync()?;
            break;
        }
        if let ScanEnd::Clean { end } = end {
            cut_old_bytes(&seg, &path, end)?;
        }
        prev_end = Some(seg.next_offset());
        segments.insert(base, seg);
        i += 1;
    }
    // Drop empty segments at the end that follow a non-empty one whose end they do not match.
    while segments.len() > 1 {
        let (&last_base, last) = segments.iter().next_back().expect("len > 1");
        let prev_end = segments
            .range(..last_base)
            .next_back()
            .map(|(_, s)| s.next_offset())
            .unwrap_or(0);
        if last.size() == 0 && last_base != prev_end {
            segments.remove(&last_base);
            dir.remove(&file_name(last_base, LOG_SUFFIX))?;
        } else {
            break;
        }
    }
    // A crash can lose unsynced data below a log start that was already checkpointed (retention or
    // DeleteRecords ran on it). Offsets below the log start are never handed out again: the log
    // restarts empty at the log start.
    let end_now = segments
        .values()
        .next_back()
        .map_or(log_start, |s| s.next_offset());
    if segments.is_empty() || end_now < log_start {
        for base in std::mem::take(&mut segments).into_keys() {
            for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                dir.remove(&file_name(base, s))?;
            }
        }
        let seg = Segment::create(&*dir, log_start, entries_max, interval)?;
        to_sync.push((seg.base_offset(), seg.file().clone()));
        segments.insert(log_start, seg);
    }
    let first_base = *segments.keys().next().expect("non-empty");
    log_start = log_start.max(first_base);
    let end = segments
        .values()
        .next_back()
        .map_or(log_start, |s| s.next_offset());
    epochs.truncate_from_end(end);
    epochs.truncate_from_start(log_start);
    // The active segment's index lives in memory: index files left on disk by an earlier life of
    // the segment (before a crash cut or a truncation changed it) would be stale, so they go. The
    // removal is made durable by the first group commit, before the recovery point can pass them.
    if !clean {
        if let Some(&last) = segments.keys().next_back() {
            dir.remove(&file_name(last, INDEX_SUFFIX))?;
            dir.remove(&file_name(last, TIME_INDEX_SUFFIX))?;
        }
    }
    // Sealed segments need index files on disk.
    let last_base = *segments.keys().next_back().expect("non-empty");
    for (&base, seg) in segments.iter_mut() {
        if base != last_base && !seg.indexes_written() {
            to_sync.extend(seg.write_indexes(&*dir)?.into_iter().map(|f| (base, f)));
        }
    }
    let producers = rebuild_producers(&*dir, &segments, log_start, end)?;
    // Make the removals above durable now: a segment dropped here (after a hole, empty, or below
    // the log start) must not come back after the next crash, once new segments may have been
    // created over the same offsets.
    dir.sync()?;
    // After an unclean shutdown the scanned files may exist only in the page cache (the process
    // died, the kernel did not): they join the next group commit instead of being fsynced here, so
    // opening never waits on the disk, and the recovery point stays where it was until that sync.
    // Files of segments dropped above need no sync.
    to_sync.retain(|(base, _)| segments.contains_key(base));
    let (synced_offset, pending_files) = if clean {
        (end, Vec::new())
    } else {
        (recovery_point.min(end), to_sync)
    };
    let mut log = PartitionLog {
        dir: dir.clone(),
        config,
        segments,
        log_start_offset: log_start,
        leader_epochs: epochs,
        producers,
        active_created_ms: now_ms,
        synced_offset,
        recovery_point,
        last_checkpoint_ms: now_ms,
        pending_files,
        dir_dirty: !clean,
        offsets: OffsetsFile::new(dir.clone(), log_start, recovery_point),
        epochs_file: EpochsFile::new(dir.clone()),
        pending_snapshot: None,
        unflushed_messages: 0,
        compacted_upto: -1,
        compaction_recheck_ms: i64::MAX,
        first_unflushed_ms: None,
        retired: Vec::new(),
        spares: VecDeque::new(),
        spare_budget: None,
        preparing_next: false,
        index_files: None,
        preparing_index_files: false,
    };
    if log.leader_epochs != epochs_on_disk || !dir.exists(LEADER_EPOCH_CHECKPOINT)? {
        log.write_leader_epochs()?;
    }
    if recovery_point > end || (clean && recovery_point != end) {
        let rp = if clean { end } else { recovery_point.min(end) };
        log.write_offsets_checkpoint(rp)?;
    }
    info!(dir = %dir.path().display(), log_start, end, clean, "partition log opened");
    Ok(log)
}

/// Producer state at `end`: the newest snapshot at or below `end` (newer ones are deleted, they
/// describe data a crash or a truncation removed), then a header-only replay up to `end`.
pub(crate) fn rebuild_producers(
    dir: &dyn Directory,
    segments: &BTreeMap<i64, Segment>,
    log_start: i64,
    end: i64,
) -> LogResult<ProducerState> {
    let mut snaps: Vec<i64> = Vec::new();
    for name in dir.list()? {
        if let Some((off, SNAPSHOT_SUFFIX)) = parse_file_name(&name) {
            if off > end {
                dir.remove(&name)?;
            } else {
                snaps.push(off);
            }
        }
    }
    snaps.sort_unstable();
    let mut state = ProducerState::new();
    let mut from = log_start;
    while let Some(off) = snaps.pop() {
        let name = file_name(off, SNAPSHOT_SUFFIX);
        match read_checked_in(dir, &name).map(|p| p.map(|p| ProducerState::decode(&p))) {
            Ok(Some(Ok(s))) => {
                state = s;
                from = off.max(log_start);
                break;
            }
            _ => {
                // A snapshot is a cache of the log: a bad one is dropped and replay goes further back.
                warn!(dir = %dir.path().display(), off, "removing an unreadable producer snapshot");
                dir.remove(&name)?;
            }
        }
    }
    for seg in segments.values() {
        if seg.next_offset() <= from {
            continue;
        }
        let start = match seg.locate(from)? {
            Some((pos, _)) => pos,
            None => continue,
        };
        scan(&**seg.file(), start, seg.size(), false, None, |_, h, _| {
            if h.base_offset >= from && h.base_offset < end {
                state.replay(h);
            }
            Visit::Continue
        })?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::mem_storage::MemDirectory;

    #[test]
    fn an_older_whole_batch_past_the_data_is_a_reused_files_tail_garbage_is_not() {
        let dir = MemDirectory::new();
        let file = dir.open("x.log", true).unwrap();
        let old = batch(5, 2, 0, None, b"old");
        file.append(&[IoSlice::new(&old), IoSlice::new(&[0xAB; 80])])
            .unwrap();
        // A segment based at 10 finding a batch of offsets 5-6: old bytes of a reused file.
        assert!(reused_file_tail(&*file, 0, 10));
        // The same batch in a segment based at or below it is not (it would be a bad batch).
        assert!(!reused_file_tail(&*file, 0, 5));
        // Garbage, or a short read past the end, is a torn tail.
        assert!(!reused_file_tail(&*file, old.len() as u64, 10));
        assert!(!reused_file_tail(&*file, file.len(), 10));
    }

    /// A reused segment file sealed after the recovery point passed it, whose cut at seal a crash
    /// undid, holds its whole data and then old bytes: recovery cuts them (the partition stays
    /// online) and serves exactly the data, whether the old bytes start at a batch boundary or not.
    #[test]
    fn old_bytes_after_a_whole_sealed_segment_are_cut_not_taken_for_corruption() {
        use bytes::Bytes;

        use crate::log::crash_tests::{all_batches, small_config};

        let aligned_old_batch = batch(0, 2, 0, None, &[0x01; 150]);
        let misaligned = [0x5a; 300].to_vec();
        for (clean, old) in [
            (true, &aligned_old_batch),
            (true, &misaligned),
            (false, &aligned_old_batch),
            (false, &misaligned),
        ] {
            let dir = MemDirectory::new();
            let d: Arc<dyn Directory> = Arc::new(dir.clone());
            let mut log = open(d.clone(), small_config(), 0).unwrap();
            while log.segments.len() < 3 {
                let b = Bytes::from(batch(0, 3, 1000, None, &[7; 200]));
                log.append_leader(&b, 3, 0).unwrap();
            }
            let second = *log.segments.keys().nth(1).unwrap();
            let name = file_name(second, LOG_SUFFIX);
            let data_len = dir.contents(&name).unwrap().len();
            let expected = all_batches(&log);
            if clean {
                log.close(0).unwrap();
            } else {
                // Synced, so the recovery point covers the sealed segments.
                let mut plan = log.begin_sync(0);
                plan.execute().unwrap();
                log.complete_sync(&plan);
            }
            drop(log);
            let file = dir.open(&name, false).unwrap();
            file.append(&[IoSlice::new(old)]).unwrap();
            file.sync().unwrap();

            let log = open(d.clone(), small_config(), 0).unwrap();
            let served = all_batches(&log);
            assert!(
                served == expected,
                "clean {clean}: {} batches served, {} written",
                served.len(),
                expected.len()
            );
            assert_eq!(
                dir.contents(&name).unwrap().len(),
                data_len,
                "clean {clean}"
            );
        }
    }
}
