//! Crash property tests of the whole partition log over the in-memory crash model: random
//! appends, syncs, rolls, truncations, retention, clean restarts, crashes and recoveries. After
//! every recovery the log must be a prefix of what was written, contain everything synced, and
//! serve only valid batches.
//!
//! Bugs this test found (their minimal cases are replayed first from
//! `broker/proptest-regressions/log/crash_tests.txt`):
//! - a hole between segments (an earlier segment lost its unsynced tail, a later file survived)
//!   was served as a gap in the offsets instead of being cut;
//! - `truncate_to` recorded the requested offset as the recovery point although the log ended
//!   earlier, at the start of the batch holding it, so a torn append there looked like corruption;
//! - an unsynced recovery cut let a later segment become durable while the cut one still ended in
//!   garbage that the recovery point then vouched for;
//! - a crash losing data below a checkpointed log start restarted the log at 0, hiding new records
//!   behind the old log start;
//! - a segment dropped by recovery came back after the next crash over reused offsets;
//! - a seal's new time index file, lost to a crash before its fsync while the segment was below
//!   the recovery point (after a clean restart), was trusted empty: the segment had no largest
//!   timestamp, so time retention would never have deleted it.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use crate::log::batch::{testing::batch, validate};
use crate::log::config::LogConfig;
use crate::log::error::LogError;
use crate::log::mem_storage::{MemDirectory, Rng};
use crate::log::partition_log::PartitionLog;
use crate::log::recovery::open;
use crate::log::segment::IndexFiles;
use crate::log::spare::{SpareBudget, SPARE_SUFFIX};
use crate::log::storage::Directory;

#[derive(Debug, Clone)]
enum Op {
    /// Batches of (records, value size) in one leader append, in a new leader epoch when set.
    Append {
        batches: Vec<(i32, usize)>,
        new_epoch: bool,
    },
    Sync,
    Crash(u64),
    CleanRestart,
    /// Replication cutting the tail: truncate to this fraction (per mille) of the log end.
    Truncate(u16),
    /// Retention / DeleteRecords: move the log start to the batch at this fraction of the log.
    Retain(u16),
    /// Retention keeping the oldest removed segment's file as a spare, which the next roll
    /// reuses (its old bytes stay past the new data): move the log start as `Retain`.
    RetainKeepingSpare(u16),
    /// The active segment's index files created ahead of its seal, as the broker does in the
    /// background once the segment is half full (here at any size).
    PrepareIndexFiles,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (proptest::collection::vec((1i32..5, 0usize..300), 1..4), proptest::bool::weighted(0.2))
            .prop_map(|(batches, new_epoch)| Op::Append { batches, new_epoch }),
        2 => Just(Op::Sync),
        1 => any::<u64>().prop_map(Op::Crash),
        1 => Just(Op::CleanRestart),
        1 => (0u16..1000).prop_map(Op::Truncate),
        1 => (0u16..1000).prop_map(Op::Retain),
        1 => (0u16..1000).prop_map(Op::RetainKeepingSpare),
        1 => Just(Op::PrepareIndexFiles),
    ]
}

/// Opens the log with spare segment files allowed (as a broker's partitions have).
fn open_with_spares(d: &Arc<dyn Directory>, budget: &Arc<SpareBudget>) -> PartitionLog {
    let mut log = open(d.clone(), small_config(), 0).unwrap();
    log.enable_spares(budget.clone());
    log
}

pub(crate) fn small_config() -> LogConfig {
    let props: BTreeMap<String, String> = [
        ("segment.bytes", "1500"),
        ("index.interval.bytes", "200"),
        ("segment.index.bytes", "80"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    LogConfig::from_props(&props).unwrap()
}

pub(crate) fn all_batches(log: &PartitionLog) -> Vec<Bytes> {
    let r = log
        .read(log.log_start_offset(), usize::MAX, i64::MAX)
        .unwrap();
    let mut out = vec![];
    for chunk in r.chunks {
        let mut at = 0;
        while at < chunk.len() {
            let h = validate(&chunk[at..]).unwrap();
            out.push(chunk.slice(at..at + h.total_bytes()));
            at += h.total_bytes();
        }
    }
    out
}

/// The leader epoch cache a log holding `written` (offset, records, body, epoch) must have: each
/// epoch from its first batch.
fn expected_epochs(written: &[(i64, i64, Vec<u8>, i32)]) -> Vec<(i32, i64)> {
    let mut out: Vec<(i32, i64)> = vec![];
    for (offset, _, _, epoch) in written {
        if out.last().is_none_or(|(e, _)| e != epoch) {
            out.push((*epoch, *offset));
        }
    }
    out
}

/// Every non-empty segment has the max timestamp of its batches (all written at 1000 or later):
/// an index file left empty would lose it, and time retention would then never delete it.
fn every_segment_knows_its_max_timestamp(log: &PartitionLog) -> bool {
    log.segments()
        .all(|s| s.size() == 0 || s.max_timestamp() >= 1000)
}

fn sync(log: &mut PartitionLog) {
    let mut plan = log.begin_sync(0);
    plan.execute().unwrap();
    log.complete_sync(&plan);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]
    #[test]
    fn recovery_keeps_a_synced_prefix(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = MemDirectory::new();
        let d: Arc<dyn Directory> = Arc::new(dir.clone());
        let budget = Arc::new(SpareBudget::default());
        let mut log = open_with_spares(&d, &budget);
        // (offset, records, payload, leader epoch) of every batch written, in order.
        let mut written: Vec<(i64, i64, Vec<u8>, i32)> = vec![];
        let mut epoch = 3;
        let mut synced = 0usize;
        let mut counter = 0u8;
        for op in ops {
            match op {
                Op::Append { batches, new_epoch } => {
                    epoch += i32::from(new_epoch);
                    let mut records = vec![];
                    for (n, size) in &batches {
                        counter = counter.wrapping_add(1);
                        records.extend(batch(0, *n, 1000, None, &vec![counter; *size]));
                    }
                    let info = log.append_leader(&Bytes::from(records.clone()), epoch, 0).unwrap();
                    let mut off = info.base_offset;
                    let mut at = 0;
                    for (n, _) in &batches {
                        let h = validate(&records[at..]).unwrap();
                        written.push((off, i64::from(*n), records[at + 16..at + h.total_bytes()].to_vec(), epoch));
                        off += i64::from(*n);
                        at += h.total_bytes();
                    }
                }
                Op::Sync => {
                    sync(&mut log);
                    synced = written.len();
                }
                Op::Crash(seed) => {
                    drop(log);
                    dir.crash(&mut Rng::new(seed));
                    log = open_with_spares(&d, &budget);
                    prop_assert!(!dir.list().unwrap().iter().any(|n| n.ends_with(SPARE_SUFFIX)));
                    let got = all_batches(&log);
                    prop_assert!(got.len() >= synced, "lost synced data: {} < {}", got.len(), synced);
                    prop_assert!(got.len() <= written.len());
                    for (b, (off, _, body, _)) in got.iter().zip(&written) {
                        let h = validate(b).unwrap();
                        prop_assert_eq!(h.base_offset, *off);
                        prop_assert_eq!(&b[16..], &body[..]);
                    }
                    written.truncate(got.len());
                    synced = written.len();
                    prop_assert!(every_segment_knows_its_max_timestamp(&log));
                    if let Some((o, n, _, _)) = written.last() {
                        prop_assert_eq!(log.log_end_offset(), o + n);
                        // Epochs past the recovery point come back from the batches; those
                        // below it from the checkpoint, which the sync wrote before moving it.
                        prop_assert_eq!(log.leader_epochs().entries(), &expected_epochs(&written)[..]);
                    }
                }
                Op::Retain(per_mille) | Op::RetainKeepingSpare(per_mille) => {
                    let k = written.len() * usize::from(per_mille) / 1000;
                    if let Some(&(to, _, _, _)) = written.get(k) {
                        if matches!(op, Op::RetainKeepingSpare(_)) {
                            if let Some(files) = log.move_log_start(to, Some(0)).unwrap() {
                                files.execute().unwrap();
                            }
                        } else {
                            log.advance_log_start(to).unwrap();
                        }
                        written.drain(..k);
                        synced = synced.saturating_sub(k);
                        prop_assert_eq!(log.log_start_offset(), to);
                        prop_assert_eq!(all_batches(&log).len(), written.len());
                    }
                }
                Op::Truncate(per_mille) => {
                    let end = log.log_end_offset();
                    let to = (end * i64::from(per_mille) / 1000).max(log.log_start_offset());
                    log.truncate_to(to).unwrap();
                    written.retain(|(o, n, _, _)| o + n <= to);
                    synced = synced.min(written.len());
                    let expected_end = written.last().map_or(log.log_start_offset(), |(o, n, _, _)| o + n);
                    prop_assert_eq!(log.log_end_offset(), expected_end);
                    prop_assert_eq!(all_batches(&log).len(), written.len());
                }
                Op::PrepareIndexFiles => {
                    let base = log.active().base_offset();
                    prop_assert!(log.add_index_files(IndexFiles::create(&*d, base).ok()).is_none());
                }
                Op::CleanRestart => {
                    log.close(0).unwrap();
                    drop(log);
                    log = open_with_spares(&d, &budget);
                    prop_assert_eq!(all_batches(&log).len(), written.len());
                    prop_assert!(every_segment_knows_its_max_timestamp(&log));
                    if !written.is_empty() {
                        prop_assert_eq!(log.leader_epochs().entries(), &expected_epochs(&written)[..]);
                    }
                    synced = written.len();
                }
            }
        }
    }

    #[test]
    fn recovery_survives_garbage(seed in any::<u64>(), garbage in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..4000) {
        let dir = MemDirectory::new();
        let d: Arc<dyn Directory> = Arc::new(dir.clone());
        let mut log = open(d.clone(), small_config(), 0).unwrap();
        for i in 0..20u8 {
            log.append_leader(&Bytes::from(batch(0, 2, 5, None, &[i; 90])), 0, 0).unwrap();
        }
        drop(log);
        // Overwrite the tail of the active segment with garbage at a random cut.
        let names = dir.list().unwrap();
        let last = names.iter().filter(|n| n.ends_with(".log")).max().unwrap().clone();
        let file = d.open(&last, false).unwrap();
        let cut = (cut as u64).min(file.len());
        file.truncate(cut).unwrap();
        file.append(&[std::io::IoSlice::new(&garbage)]).unwrap();
        dir.crash(&mut Rng::new(seed));
        match open(d.clone(), small_config(), 0) {
            Ok(log) => {
                let got = all_batches(&log);
                for b in &got {
                    prop_assert!(validate(b).is_ok());
                }
            }
            Err(LogError::Offline { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn flipped_bit_in_a_sealed_segment_takes_the_partition_offline() {
    let dir = MemDirectory::new();
    let d: Arc<dyn Directory> = Arc::new(dir.clone());
    let mut log = open(d.clone(), small_config(), 0).unwrap();
    for i in 0..40u8 {
        log.append_leader(&Bytes::from(batch(0, 1, 5, None, &[i; 100])), 0, 0)
            .unwrap();
    }
    sync(&mut log);
    // Wait for a checkpoint to cover the sealed segments: a roll's sync writes it.
    let first = log.segments().next().unwrap().base_offset();
    assert!(log.segments().count() > 2);
    log.close(0).unwrap();
    drop(log);
    let name = crate::log::segment::file_name(first, ".log");
    dir.corrupt(&name, 300, 0x10);
    // Clean restart: the bad batch is caught when read, never served.
    let log = open(d.clone(), small_config(), 0).unwrap();
    match log.read(0, usize::MAX, i64::MAX) {
        Err(LogError::Offline { path, position, .. }) => {
            assert!(path.ends_with(&name));
            assert!(position <= 300);
        }
        other => panic!("expected offline, got {other:?}"),
    }
    drop(log);
    // Unclean restart (marker gone): recovery of segments past the recovery point would catch it;
    // this one is below it, so it stays readable-but-checked: reads still refuse it.
    dir.remove("clean-shutdown").unwrap();
    let log = open(d.clone(), small_config(), 0).unwrap();
    assert!(matches!(
        log.read(0, usize::MAX, i64::MAX),
        Err(LogError::Offline { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Fuzz of recovery: arbitrary bytes as segment, index and checkpoint files never panic or
    /// over-allocate; open either succeeds (serving only valid batches) or reports the partition
    /// offline.
    #[test]
    fn recovery_of_arbitrary_files_never_panics(
        log_bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        index_bytes in proptest::collection::vec(any::<u8>(), 0..64),
        checkpoint in proptest::collection::vec(any::<u8>(), 0..40),
        prefix_valid in any::<bool>(),
        clean in any::<bool>(),
    ) {
        let dir = MemDirectory::new();
        let d: Arc<dyn Directory> = Arc::new(dir.clone());
        let put = |name: &str, bytes: &[u8]| {
            let f = d.open(name, true).unwrap();
            f.append(&[std::io::IoSlice::new(bytes)]).unwrap();
        };
        let mut data = vec![];
        if prefix_valid {
            data.extend(batch(0, 2, 5, None, b"valid"));
        }
        data.extend(&log_bytes);
        put("00000000000000000000.log", &data);
        put("00000000000000000000.index", &index_bytes);
        put("00000000000000000000.timeindex", &index_bytes);
        put("offsets-checkpoint", &checkpoint);
        put("leader-epoch-checkpoint", &checkpoint);
        put("00000000000000000001.snapshot", &checkpoint);
        if clean {
            crate::log::checkpoint::write_atomic_in(&*d, "clean-shutdown", &2i64.to_be_bytes()).unwrap();
        }
        match open(d.clone(), small_config(), 0) {
            Ok(log) => {
                if let Ok(r) = log.read(log.log_start_offset(), usize::MAX, i64::MAX) {
                    for c in r.chunks {
                        let mut at = 0;
                        while at < c.len() {
                            let h = validate(&c[at..]);
                            prop_assert!(h.is_ok());
                            at += h.unwrap().total_bytes();
                        }
                    }
                }
            }
            Err(LogError::Offline { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[derive(Debug, Clone)]
enum CompactOp {
    /// Keys (0..6) to write, one record each, in one batch.
    Put(Vec<u8>),
    Sync,
    Compact,
    Crash(u64),
}

fn compact_op() -> impl Strategy<Value = CompactOp> {
    prop_oneof![
        6 => proptest::collection::vec(0u8..6, 1..5).prop_map(CompactOp::Put),
        2 => Just(CompactOp::Sync),
        2 => Just(CompactOp::Compact),
        1 => any::<u64>().prop_map(CompactOp::Crash),
    ]
}

fn compact_config() -> LogConfig {
    let props: BTreeMap<String, String> = [("segment.bytes", "300"), ("cleanup.policy", "compact")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_props(&props).unwrap()
}

/// (offset, key, value) of every record the log serves.
fn served_records(log: &PartitionLog) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
    let mut out = vec![];
    for b in all_batches(log) {
        let batch = sluice_protocol::record::RecordBatch::parse(b).unwrap();
        for r in batch.records().unwrap() {
            let r = r.unwrap();
            out.push((
                r.offset(),
                r.key().unwrap().to_vec(),
                r.value().unwrap().to_vec(),
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// Compaction interleaved with crashes: every record served is one that was written, at its
    /// offset; and for every key, the newest synced record (or a newer one) is still there.
    #[test]
    fn compaction_survives_crashes(ops in proptest::collection::vec(compact_op(), 1..50)) {
        use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};
        let dir = MemDirectory::new();
        let d: Arc<dyn Directory> = Arc::new(dir.clone());
        let mut log = open(d.clone(), compact_config(), 0).unwrap();
        let mut written: BTreeMap<i64, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
        let mut synced_end = 0i64;
        let mut counter = 0u32;
        for op in ops {
            match op {
                CompactOp::Put(keys) => {
                    let mut b = RecordBatchBuilder::new(BatchOptions::default());
                    let mut vals = vec![];
                    for k in &keys {
                        counter += 1;
                        let v = format!("v{counter}").into_bytes();
                        b.append(10, Some(&[*k]), Some(&v), &[]).unwrap();
                        vals.push((vec![*k], v));
                    }
                    let info = log.append_leader(&b.finish().unwrap(), 0, 10).unwrap();
                    for (i, kv) in vals.into_iter().enumerate() {
                        written.insert(info.base_offset + i as i64, kv);
                    }
                }
                CompactOp::Sync => {
                    sync(&mut log);
                    synced_end = log.log_end_offset();
                }
                CompactOp::Compact => {
                    if let Some(plan) = log.plan_compaction(1_000) {
                        let cleaned = plan.run().unwrap();
                        log.finish_compaction(cleaned).unwrap();
                    }
                }
                CompactOp::Crash(seed) => {
                    drop(log);
                    dir.crash(&mut Rng::new(seed));
                    log = open(d.clone(), compact_config(), 0).unwrap();
                    let end = log.log_end_offset();
                    prop_assert!(end >= synced_end, "lost synced offsets: end {end} < {synced_end}");
                    written.retain(|o, _| *o < end);
                    synced_end = end;
                }
            }
            let served = served_records(&log);
            for (o, k, v) in &served {
                prop_assert_eq!(written.get(o), Some(&(k.clone(), v.clone())), "offset {}", o);
            }
            let mut latest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
            for (o, (k, _)) in written.range(..synced_end) {
                latest.insert(k.clone(), *o);
            }
            for (k, o) in latest {
                prop_assert!(served.iter().any(|(so, sk, _)| *sk == k && *so >= o), "key {:?} lost its latest record {}", k, o);
            }
        }
    }
}

/// An append starting a new leader epoch writes nothing (no fsync on the append path); the next
/// sync writes the checkpoint. A crash before that sync loses nothing: recovery takes the epoch
/// from the batches past the recovery point.
#[test]
fn a_new_epoch_is_checkpointed_by_the_sync_not_the_append() {
    use crate::log::checkpoint::read_checked_in;
    use crate::log::leader_epoch::LeaderEpochCache;
    use crate::log::partition_log::LEADER_EPOCH_CHECKPOINT;

    let dir = MemDirectory::new();
    let d: Arc<dyn Directory> = Arc::new(dir.clone());
    let on_disk = || {
        read_checked_in(&*d, LEADER_EPOCH_CHECKPOINT)
            .unwrap()
            .map(|b| LeaderEpochCache::decode(&b).unwrap().entries().to_vec())
            .unwrap_or_default()
    };
    let mut log = open(d.clone(), small_config(), 0).unwrap();
    log.append_leader(&Bytes::from(batch(0, 2, 5, None, &[1; 50])), 4, 0)
        .unwrap();
    sync(&mut log);
    assert_eq!(on_disk(), [(4, 0)]);
    log.append_leader(&Bytes::from(batch(0, 2, 5, None, &[2; 50])), 7, 0)
        .unwrap();
    assert_eq!(on_disk(), [(4, 0)], "the append wrote the checkpoint");
    assert_eq!(log.leader_epochs().entries(), [(4, 0), (7, 2)]);

    // A crash now: the new epoch comes back from the batch (if the crash kept it).
    drop(log);
    dir.crash(&mut Rng::new(9));
    let mut log = open(d.clone(), small_config(), 0).unwrap();
    let kept = log.log_end_offset();
    let expected: &[(i32, i64)] = if kept == 4 {
        &[(4, 0), (7, 2)]
    } else {
        &[(4, 0)]
    };
    assert_eq!(log.leader_epochs().entries(), expected);

    log.append_leader(&Bytes::from(batch(0, 2, 5, None, &[3; 50])), 9, 0)
        .unwrap();
    sync(&mut log);
    assert_eq!(on_disk(), log.leader_epochs().entries());
    assert_eq!(log.leader_epochs().entries().last(), Some(&(9, kept)));
}

/// Every roll queues a producer snapshot; the sync that writes one prunes the directory to the
/// newest three, the newest at the log end of the last roll.
#[test]
fn syncs_keep_the_three_newest_producer_snapshots() {
    let dir = MemDirectory::new();
    let d: Arc<dyn Directory> = Arc::new(dir.clone());
    let mut log = open(d.clone(), small_config(), 0).unwrap();
    let snapshots = || {
        let mut names: Vec<String> = dir
            .list()
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".snapshot"))
            .collect();
        names.sort();
        names
    };
    for i in 0..60u8 {
        log.append_leader(&Bytes::from(batch(0, 1, 5, None, &[i; 100])), 0, 0)
            .unwrap();
        sync(&mut log);
        assert!(snapshots().len() <= 3, "{:?}", snapshots());
    }
    assert!(log.segments().count() > 4, "the test needs several rolls");
    let newest = log.segments().last().unwrap().base_offset();
    assert_eq!(snapshots().len(), 3);
    assert_eq!(
        snapshots().last().unwrap(),
        &format!("{newest:020}.snapshot")
    );
}
