//! Retention: deleting whole sealed segments by time (`retention.ms`, against each segment's
//! largest timestamp) and size (`retention.bytes`), and advancing the log start offset
//! (also for DeleteRecords). The active segment is never deleted.
//!
//! Order on disk: the offsets checkpoint with the new log start is written first, then the
//! segments' files are removed. A crash in between leaves segments below the checkpointed log
//! start, which recovery removes.
//!
//! The log's state moves first, under its lock and without I/O (`PartitionLog::move_log_start`:
//! readers see the new log start at once); the file work (`LogStartFiles`: three fsyncs for the
//! checkpoint, a removal per file) runs after. The maintenance tick runs it off the lock, on the
//! blocking pool: under the lock it held appends to the partition for 10-100 ms while the disk was
//! busy.

use std::sync::Arc;

use crate::log::error::{LogError, LogResult};
use crate::log::partition_log::{OffsetsFile, PartitionLog};
use crate::log::segment::remove_segment_files;
use crate::log::storage::{reserve_blocks, Directory};

/// The file work of moving a log start (see the module doc), to run after the log's state moved.
#[derive(Debug)]
#[must_use = "the checkpoint and the removal of the files are still to be done"]
pub(crate) struct LogStartFiles {
    offset: i64,
    doomed: Vec<i64>,
    dir: Arc<dyn Directory>,
    offsets: Arc<OffsetsFile>,
    /// The file kept as a spare (its own descriptor: holding the spare's handle would count as a
    /// reader, and keep the next roll from reusing it), with the bytes of blocks it must hold to
    /// take a whole segment.
    spare: Option<(std::fs::File, u64)>,
}

impl LogStartFiles {
    /// Tops up the spare's blocks, writes the checkpoint, then removes the segments' files.
    ///
    /// A spare holds the blocks of its old segment's data (a seal gives back those reserved past
    /// it), and the new segment in it may grow a little longer: without the top-up its appends
    /// past the old length reserved blocks with `fallocate` on the append path, which waited up to
    /// 420 ms for the file system to read a block bitmap behind the disk's writeback (off-CPU
    /// stacks of the tokio workers at a steady state of retention, 2026-12-07). It goes first so
    /// that it is done before the next roll, which the checkpoint's fsyncs could outlast.
    pub(crate) fn execute(&self) -> LogResult<()> {
        if let Some((file, bytes)) = &self.spare {
            if let Err(e) = reserve_blocks(file, 0, *bytes) {
                // The new segment then reserves what it lacks as it grows, as before.
                tracing::debug!(dir = %self.dir.path().display(), error = %e, "cannot reserve a spare's blocks");
            }
        }
        self.offsets.write(Some(self.offset), None)?;
        for &base in &self.doomed {
            remove_segment_files(&*self.dir, base)?;
        }
        Ok(())
    }

    /// Runs the file work of `planned` in line; returns how many segments went.
    fn run_now(planned: Option<LogStartFiles>) -> LogResult<usize> {
        let Some(files) = planned else { return Ok(0) };
        files.execute()?;
        Ok(files.doomed.len())
    }
}

impl PartitionLog {
    /// Deletes the sealed segments retention allows; returns how many went.
    pub fn apply_retention(&mut self, now_ms: i64) -> LogResult<usize> {
        let planned = self.plan_retention(now_ms)?;
        LogStartFiles::run_now(planned)
    }

    /// Takes the segments retention allows out of the log; returns the file work still to do.
    pub(crate) fn plan_retention(&mut self, now_ms: i64) -> LogResult<Option<LogStartFiles>> {
        // Also when the topic no longer deletes: its spares must still go.
        self.expire_spares(now_ms);
        if !self.config.cleanup_policy.delete {
            return Ok(None);
        }
        let sealed: Vec<(i64, u64, i64)> = {
            let n = self.segments.len();
            self.segments
                .values()
                .take(n - 1)
                .map(|s| (s.base_offset(), s.size(), s.max_timestamp()))
                .collect()
        };
        let mut total = self.size_bytes();
        let mut delete_below = None;
        for (i, (_, size, max_ts)) in sealed.iter().enumerate() {
            let by_time = self
                .config
                .retention_ms
                .is_some_and(|r| *max_ts >= 0 && now_ms - max_ts > r);
            let by_size = self
                .config
                .retention_bytes
                .is_some_and(|r| total - size >= r);
            if !(by_time || by_size) {
                break;
            }
            total -= size;
            let next_base = sealed
                .get(i + 1)
                .map(|s| s.0)
                .unwrap_or_else(|| self.active().base_offset());
            delete_below = Some(next_base);
        }
        match delete_below {
            Some(offset) => self.move_log_start(offset, Some(now_ms)),
            None => Ok(None),
        }
    }

    /// Moves the log start up to `offset` (at most the log end) and deletes the segments wholly
    /// below it; returns how many segments went.
    pub fn advance_log_start(&mut self, offset: i64) -> LogResult<usize> {
        let planned = self.move_log_start(offset, None)?;
        LogStartFiles::run_now(planned)
    }

    /// Moves the log start up to `offset` (at most the log end) in memory and takes the segments
    /// wholly below it out of the log; returns the file work still to do (none when the log start
    /// does not move). With `spare_at` (retention's clock time), the oldest removed segment's file
    /// may be kept as a spare ([`crate::log::spare`]): the oldest, so that a crash before the
    /// checkpoint leaves no hole between the segments still on disk.
    pub(crate) fn move_log_start(
        &mut self,
        offset: i64,
        spare_at: Option<i64>,
    ) -> LogResult<Option<LogStartFiles>> {
        let end = self.log_end_offset();
        if offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start: self.log_start_offset,
                end,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(None);
        }
        self.log_start_offset = offset;
        let doomed: Vec<i64> = {
            let bases: Vec<i64> = self.segments.keys().copied().collect();
            bases
                .windows(2)
                .filter(|w| w[1] <= offset)
                .map(|w| w[0])
                .collect()
        };
        let mut spare = None;
        for (i, base) in doomed.iter().enumerate() {
            let Some(seg) = self.segments.remove(base) else {
                continue;
            };
            let kept = spare_at.is_some_and(|now_ms| i == 0 && self.keep_as_spare(&seg, now_ms));
            if kept {
                let bytes = self.config.segment_limit();
                let own = seg.file().as_file().and_then(|f| f.try_clone().ok());
                spare = own.map(|file| (file, bytes));
            } else {
                self.retire(seg);
            }
        }
        if !doomed.is_empty() {
            self.dir_dirty = true;
        }
        // The epoch cache's checkpoint is not rewritten for this: recovery cuts the cache read
        // from disk to the checkpointed log start anyway, and the write (three fsyncs) held the
        // lock for 30-60 ms on every deletion.
        self.leader_epochs.truncate_from_start(offset);
        Ok(Some(LogStartFiles {
            offset,
            doomed,
            dir: self.dir.clone(),
            offsets: self.offsets.clone(),
            spare,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::Bytes;

    use crate::log::batch::testing::batch;
    use crate::log::config::LogConfig;
    use crate::log::error::LogError;
    use crate::log::mem_storage::MemDirectory;
    use crate::log::recovery::open;

    fn config(kv: &[(&str, &str)]) -> LogConfig {
        let mut p: BTreeMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.insert("segment.bytes".into(), "1000".into());
        LogConfig::from_props(&p).unwrap()
    }

    /// A log of 1000-byte segments keeping 2500 bytes by size, holding `batches` batches of 200
    /// bytes of `fill` (retention not yet applied).
    fn size_retained_log(
        d: Arc<MemDirectory>,
        batches: usize,
        fill: u8,
    ) -> crate::log::partition_log::PartitionLog {
        let cfg = config(&[("retention.bytes", "2500"), ("retention.ms", "-1")]);
        let mut log = open(d, cfg, 0).unwrap();
        for _ in 0..batches {
            log.append_leader(&Bytes::from(batch(0, 1, 5, None, &[fill; 200])), 0, 0)
                .unwrap();
        }
        log
    }

    #[test]
    fn time_retention_deletes_old_sealed_segments_only() {
        let d = Arc::new(MemDirectory::new());
        let mut log = open(d.clone(), config(&[("retention.ms", "1000")]), 0).unwrap();
        for i in 0..30 {
            log.append_leader(
                &Bytes::from(batch(0, 1, i * 100, None, &[0; 200])),
                0,
                i * 100,
            )
            .unwrap();
        }
        let before = log.segments().count();
        assert!(before > 3);
        // At t=2500 segments whose newest record is older than 1500 go.
        let n = log.apply_retention(2500).unwrap();
        assert!(n > 0);
        assert!(log
            .segments()
            .all(|s| s.max_timestamp() >= 1500 || s.base_offset() == log.active().base_offset()));
        assert_eq!(
            log.log_start_offset(),
            log.segments().next().unwrap().base_offset()
        );
        assert!(matches!(
            log.read(0, 100, i64::MAX),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // Far in the future everything sealed goes; the active segment stays.
        log.apply_retention(1_000_000).unwrap();
        assert_eq!(log.segments().count(), 1);
        assert_eq!(log.log_end_offset(), 30);
        let start = log.log_start_offset();
        assert_eq!(log.leader_epochs().entries(), &[(0, start)]);
        drop(log);
        let log = open(d, config(&[("retention.ms", "1000")]), 0).unwrap();
        assert_eq!(log.segments().count(), 1);
        assert_eq!(log.log_end_offset(), 30);
        // The epoch checkpoint was not rewritten at deletion; reopening cuts it to the log start.
        assert_eq!(log.leader_epochs().entries(), &[(0, start)]);
    }

    /// The next segment's file may be prepared while no spare waits, but a segment retention
    /// removes then takes the partition's one spare slot: its file needs no allocation and its
    /// pages are cached. The prepared file is removed; a late prepared file is not kept.
    #[test]
    fn a_segment_retention_removes_displaces_a_prepared_spare() {
        use crate::log::spare::{SpareBudget, SPARE_SUFFIX};
        use crate::log::storage::Directory;
        let d = Arc::new(MemDirectory::new());
        // Segments just past the size below which nothing is prepared; 1 MB batches.
        const SEGMENT_BYTES: u64 = crate::log::limits::PREALLOCATE_BYTES + 1_000_000;
        let retention_bytes = (2 * SEGMENT_BYTES).to_string();
        let mut cfg = config(&[
            ("retention.bytes", retention_bytes.as_str()),
            ("retention.ms", "-1"),
        ]);
        cfg.segment_bytes = SEGMENT_BYTES;
        let mut log = open(d.clone(), cfg, 0).unwrap();
        log.enable_spares(Arc::new(SpareBudget::default()));
        let payload = vec![1u8; 1_000_000];
        let append = |log: &mut crate::log::partition_log::PartitionLog| {
            log.append_leader(&Bytes::from(batch(0, 1, 5, None, &payload)), 0, 0)
                .unwrap();
        };
        append(&mut log);
        assert_eq!(log.plan_next_segment(0), None, "planned before half full");
        for _ in 0..4 {
            append(&mut log);
        }
        let (name, bytes) = log.plan_next_segment(0).expect("no next segment planned");
        assert_eq!(bytes, SEGMENT_BYTES);
        assert!(name.ends_with(SPARE_SUFFIX), "{name}");
        assert_eq!(log.plan_next_segment(0), None, "planned twice at once");
        for _ in 0..30 {
            append(&mut log);
        }
        // The preparation lands just before retention runs.
        let file = d.open(&name, true).unwrap();
        assert!(log.add_prepared(Some((name.clone(), file, bytes)), 0));
        assert_eq!(log.spares.len(), 1);
        assert!(log.spares[0].prepared);
        log.apply_retention(0).unwrap();
        assert_eq!(log.spares.len(), 1);
        assert!(!log.spares[0].prepared, "the prepared spare kept the slot");
        assert!(
            !d.exists(&name).unwrap(),
            "the prepared file was not removed"
        );
        // A preparation finishing now finds the slot taken, and is not kept.
        let late = d.open("late.next.spare", true).unwrap();
        assert!(!log.add_prepared(Some(("late.next.spare".into(), late, SEGMENT_BYTES)), 0));
        assert!(!log.preparing_next);
    }

    #[test]
    fn retention_keeps_one_spare_that_the_next_roll_reuses_unless_it_is_too_long() {
        use crate::log::spare::{SpareBudget, SPARE_SUFFIX};
        use crate::log::storage::Directory;
        let d = Arc::new(MemDirectory::new());
        let spares = |d: &MemDirectory| {
            let names = d.list().unwrap();
            names
                .into_iter()
                .filter(|n| n.ends_with(SPARE_SUFFIX))
                .count()
        };
        let cfg = config(&[("retention.bytes", "2500"), ("retention.ms", "-1")]);
        let mut log = open(d.clone(), cfg.clone(), 0).unwrap();
        log.enable_spares(Arc::new(SpareBudget::default()));
        let append = |log: &mut crate::log::partition_log::PartitionLog| {
            log.append_leader(&Bytes::from(batch(0, 1, 5, None, &[1; 200])), 0, 0)
                .unwrap();
        };
        for _ in 0..30 {
            append(&mut log);
        }
        log.apply_retention(0).unwrap();
        assert_eq!(spares(&d), 1, "retention kept no spare");
        // The next roll writes into the spare.
        let end = log.log_end_offset();
        log.roll(end, 0).unwrap();
        assert_eq!(spares(&d), 0);
        assert!(log.spares.is_empty());
        for _ in 0..30 {
            append(&mut log);
        }
        log.apply_retention(0).unwrap();
        assert_eq!(spares(&d), 1);
        // With segment.bytes lowered below the spare's length, the spare is left to expire.
        let mut small = cfg.clone();
        small.segment_bytes = 300;
        log.set_config(small);
        let end = log.log_end_offset();
        log.roll(end, 0).unwrap();
        assert_eq!(spares(&d), 1, "a spare longer than a segment was reused");
        // It expires even once the topic stopped deleting (cleanup.policy=compact).
        let mut compacted = log.config().clone();
        compacted.cleanup_policy.delete = false;
        compacted.cleanup_policy.compact = true;
        log.set_config(compacted);
        log.apply_retention(crate::log::limits::SPARE_HOLD_MS)
            .unwrap();
        assert_eq!(spares(&d), 0, "the unused spare did not expire");
        // Every batch still reads back.
        let r = log
            .read(log.log_start_offset(), usize::MAX, i64::MAX)
            .unwrap();
        assert_eq!(r.next_offset, 60);
    }

    #[test]
    fn a_spare_is_given_the_blocks_of_a_whole_segment() {
        use std::os::unix::fs::MetadataExt;

        use crate::log::spare::{SpareBudget, SPARE_SUFFIX};
        use crate::log::storage::{Directory, FileDirectory};
        const SEGMENT: u64 = 4 * 1024 * 1024;
        let tmp = tempfile::tempdir().unwrap();
        let d = Arc::new(FileDirectory::create(tmp.path()).unwrap());
        let mut props: BTreeMap<String, String> = BTreeMap::new();
        props.insert("segment.bytes".into(), SEGMENT.to_string());
        props.insert("retention.bytes".into(), SEGMENT.to_string());
        props.insert("retention.ms".into(), "-1".into());
        let mut log = open(d.clone(), LogConfig::from_props(&props).unwrap(), 0).unwrap();
        log.enable_spares(Arc::new(SpareBudget::default()));
        let value = vec![3u8; 100_000];
        while log.segments().count() < 4 {
            log.append_leader(&Bytes::from(batch(0, 1, 5, None, &value)), 0, 0)
                .unwrap();
        }
        // The seal's sync gives back the blocks reserved past each sealed segment's data.
        let mut plan = log.begin_sync(0);
        plan.execute().unwrap();
        log.complete_sync(&plan);
        drop(plan);
        let blocks = |name: &str| std::fs::metadata(tmp.path().join(name)).unwrap().blocks() * 512;
        let oldest = crate::log::segment::file_name(0, crate::log::segment::LOG_SUFFIX);
        let data = log.segments().next().unwrap().size();
        assert!(data < SEGMENT);
        let reserves = blocks(&oldest) < SEGMENT;
        let files = log.plan_retention(0).unwrap().expect("nothing to delete");
        // The top-up does not hold the spare as a reader would: a roll may reuse it meanwhile.
        assert!(log.spares.iter().all(|s| s.unshared()));
        files.execute().unwrap();
        let spare = d
            .list()
            .unwrap()
            .into_iter()
            .find(|n| n.ends_with(SPARE_SUFFIX))
            .expect("no spare kept");
        // Where the file system reserves blocks (fallocate), the spare holds a whole segment's.
        if reserves {
            assert!(blocks(&spare) >= SEGMENT, "{} bytes", blocks(&spare));
        }
        assert_eq!(
            std::fs::metadata(tmp.path().join(&spare)).unwrap().len(),
            data
        );
    }

    #[test]
    fn index_files_created_for_a_segment_retention_removed_are_handed_back_for_removal() {
        use crate::log::segment::{file_name, IndexFiles, INDEX_SUFFIX};
        use crate::log::storage::Directory;
        let d = Arc::new(MemDirectory::new());
        let mut log = size_retained_log(d.clone(), 30, 1);
        log.apply_retention(0).unwrap();
        let gone = 0;
        assert!(log.log_start_offset() > gone);
        assert!(!d.exists(&file_name(gone, INDEX_SUFFIX)).unwrap());
        // A creation that finished after its segment was sealed and removed.
        let late = IndexFiles::create(&*d, gone).unwrap();
        let orphans = log.add_index_files(Some(late)).expect("not handed back");
        orphans.remove(&*d);
        assert!(!d.exists(&file_name(gone, INDEX_SUFFIX)).unwrap());
        assert!(log.index_files.is_none());
        // The active segment's are kept for its seal.
        let base = log.active().base_offset();
        let ahead = IndexFiles::create(&*d, base).unwrap();
        assert!(log.add_index_files(Some(ahead)).is_none());
        assert_eq!(
            log.index_files.as_ref().map(|f| f.base_offset()),
            Some(base)
        );
    }

    #[test]
    fn size_retention_keeps_the_newest_bytes() {
        let mut log = size_retained_log(Arc::new(MemDirectory::new()), 40, 0);
        log.apply_retention(0).unwrap();
        assert!(log.size_bytes() <= 2500 + 1000);
        assert!(log.size_bytes() >= 2500 - 1000);
        let r = log
            .read(log.log_start_offset(), usize::MAX, i64::MAX)
            .unwrap();
        assert_eq!(r.next_offset, 40);
    }
}
