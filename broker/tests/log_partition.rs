//! The partition handle over real files: appends, reads, durability, long-poll notification,
//! idempotent producers, follower appends and truncation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_broker::log::{Durability, LogConfig, LogError, LogManager, ManualClock, Partition};
use sluice_protocol::record::{BatchIter, BatchOptions, RecordBatchBuilder};

fn batch(n: usize, ts: i64, value_bytes: usize, producer: Option<(i64, i16, i32)>) -> Bytes {
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let mut b = RecordBatchBuilder::new(BatchOptions {
        producer_id,
        producer_epoch,
        base_sequence,
        ..BatchOptions::default()
    });
    let value = vec![b'v'; value_bytes];
    for i in 0..n {
        b.append(
            ts + i as i64,
            Some(format!("key-{i}").as_bytes()),
            Some(&value),
            &[("h", Some(b"1"))],
        )
        .unwrap();
    }
    b.finish().unwrap()
}

fn config(kv: &[(&str, &str)]) -> LogConfig {
    let p: BTreeMap<String, String> = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_props(&p).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    _manager: LogManager,
    p: Arc<Partition>,
}

fn fixture(kv: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(
        dir.path(),
        LogConfig::default(),
        Arc::new(ManualClock::new(1_000)),
    )
    .unwrap();
    let p = manager.create_partition("t", 0, config(kv)).unwrap();
    Fixture {
        _dir: dir,
        _manager: manager,
        p,
    }
}

fn batches_of(chunks: &[Bytes]) -> Vec<(i64, i64)> {
    let mut out = vec![];
    for c in chunks {
        for b in BatchIter::new(c.clone()) {
            let b = b.unwrap();
            out.push((b.base_offset(), b.last_offset()));
        }
    }
    out
}

#[tokio::test]
async fn append_then_read_whole_batches_within_bounds() {
    let f = fixture(&[("segment.bytes", "4096")]);
    let mut sent = vec![];
    for i in 0..30 {
        let b = batch(3, 1000 + i, 100, None);
        let info =
            f.p.append(b.clone(), 7, Durability::PageCache)
                .await
                .unwrap();
        assert_eq!(info.base_offset, i * 3);
        sent.push(b);
    }
    assert_eq!(f.p.log_end_offset().unwrap(), 90);
    let all = f.p.read(0, usize::MAX, i64::MAX).unwrap();
    let got = batches_of(&all.chunks);
    assert_eq!(got.len(), 30);
    // Stored bytes are the produced bytes with base offset and leader epoch stamped.
    let flat: Vec<u8> = all.chunks.iter().flat_map(|c| c.to_vec()).collect();
    let first_len = sent[0].len();
    assert_eq!(&flat[16..first_len], &sent[0][16..]);
    assert_eq!(&flat[12..16], &7i32.to_be_bytes());
    // Reading from the middle of a batch returns that whole batch.
    let r = f.p.read(4, 1, i64::MAX).unwrap();
    assert_eq!(batches_of(&r.chunks), vec![(3, 5)]);
    // The high watermark bounds the read: nothing containing offset >= 9.
    let r = f.p.read(0, usize::MAX, 9).unwrap();
    assert_eq!(batches_of(&r.chunks).last(), Some(&(6, 8)));
    assert_eq!(r.next_offset, 9);
    // A byte budget returns whole batches only.
    let r = f.p.read(0, first_len * 2 + 10, i64::MAX).unwrap();
    assert_eq!(batches_of(&r.chunks).len(), 2);
    assert!(matches!(
        f.p.read(91, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { requested: 91, .. })
    ));
    assert!(f.p.read(90, 100, i64::MAX).unwrap().chunks.is_empty());
    // By timestamp: first record with timestamp >= 1010 is the last record of batch 8 (ts 1008, 1009, 1010).
    assert_eq!(f.p.offset_for_timestamp(1010).unwrap(), Some((26, 1010)));
    assert_eq!(f.p.offset_for_timestamp(5000).unwrap(), None);
}

#[tokio::test]
async fn concurrent_durable_appends_share_group_commits() {
    let f = fixture(&[("segment.bytes", "65536")]);
    let mut tasks = vec![];
    for _ in 0..4 {
        let p = f.p.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for i in 0..25 {
                let info = p
                    .append(batch(2, i, 500, None), 0, Durability::Durable)
                    .await
                    .unwrap();
                assert!(p.durable_offset() > info.last_offset);
                last = info.last_offset;
            }
            last
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(f.p.log_end_offset().unwrap(), 200);
    assert_eq!(f.p.durable_offset(), 200);
}

#[tokio::test]
async fn subscribers_wake_on_append() {
    let f = fixture(&[]);
    let mut rx = f.p.subscribe();
    let p = f.p.clone();
    let waiter = tokio::spawn(async move {
        rx.changed().await.unwrap();
        *rx.borrow()
    });
    p.append(batch(5, 0, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, 5);
}

#[tokio::test]
async fn idempotent_producer_retries_gaps_and_fencing() {
    let f = fixture(&[]);
    let first = batch(3, 0, 10, Some((42, 0, 0)));
    let a =
        f.p.append(first.clone(), 0, Durability::Durable)
            .await
            .unwrap();
    f.p.append(batch(1, 0, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    let retry = f.p.append(first, 0, Durability::Durable).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (a.base_offset, a.last_offset)
    );
    assert_eq!(f.p.log_end_offset().unwrap(), 4);
    let gap =
        f.p.append(batch(1, 0, 10, Some((42, 0, 7))), 0, Durability::PageCache)
            .await;
    assert!(matches!(
        gap,
        Err(LogError::OutOfOrderSequence {
            expected: 3,
            received: 7,
            ..
        })
    ));
    f.p.append(batch(1, 0, 10, Some((42, 1, 0))), 0, Durability::PageCache)
        .await
        .unwrap();
    let stale =
        f.p.append(batch(1, 0, 10, Some((42, 0, 3))), 0, Durability::PageCache)
            .await;
    assert!(matches!(
        stale,
        Err(LogError::InvalidProducerEpoch {
            current: 1,
            received: 0,
            ..
        })
    ));
}

#[tokio::test]
async fn follower_appends_keep_offsets_and_truncate_with_epochs() {
    let leader = fixture(&[("segment.bytes", "2048")]);
    for epoch in [1, 1, 2, 2, 3] {
        leader
            .p
            .append(batch(4, 0, 200, None), epoch, Durability::PageCache)
            .await
            .unwrap();
    }
    let follower = fixture(&[("segment.bytes", "2048")]);
    let data = leader.p.read(0, usize::MAX, i64::MAX).unwrap();
    for c in data.chunks {
        follower.p.append_as_follower(c).await.unwrap();
    }
    assert_eq!(follower.p.log_end_offset().unwrap(), 20);
    assert_eq!(
        follower.p.leader_epoch_cache().unwrap().entries(),
        &[(1, 0), (2, 8), (3, 16)]
    );
    assert_eq!(follower.p.end_offset_for_epoch(2).unwrap(), Some((2, 16)));
    follower.p.truncate_to(12).await.unwrap();
    assert_eq!(follower.p.log_end_offset().unwrap(), 12);
    assert_eq!(
        follower.p.leader_epoch_cache().unwrap().entries(),
        &[(1, 0), (2, 8)]
    );
    let again = leader.p.read(12, usize::MAX, i64::MAX).unwrap();
    for c in again.chunks {
        follower.p.append_as_follower(c).await.unwrap();
    }
    assert_eq!(
        follower.p.read(0, usize::MAX, i64::MAX).unwrap().bytes,
        leader.p.read(0, usize::MAX, i64::MAX).unwrap().bytes
    );
    let backwards = follower
        .p
        .append_as_follower(leader.p.read(0, 1, i64::MAX).unwrap().chunks[0].clone())
        .await;
    assert!(matches!(
        backwards,
        Err(LogError::NonContiguousAppend { .. })
    ));
}

#[tokio::test]
async fn oversized_and_malformed_appends_are_typed_errors() {
    let f = fixture(&[("max.message.bytes", "1000")]);
    let big =
        f.p.append(batch(1, 0, 5000, None), 0, Durability::PageCache)
            .await;
    assert!(matches!(
        big,
        Err(LogError::MessageTooLarge { max: 1000, .. })
    ));
    let torn = batch(1, 0, 10, None).slice(..30);
    assert!(matches!(
        f.p.append(torn, 0, Durability::PageCache).await,
        Err(LogError::CorruptBatch(_))
    ));
    assert_eq!(f.p.log_end_offset().unwrap(), 0);
}

#[tokio::test]
async fn flush_settings_decide_who_waits_for_fsync() {
    // flush.messages=1: even a page-cache append is durable when it returns.
    let every = fixture(&[("flush.messages", "1")]);
    let info = every
        .p
        .append(batch(2, 0, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    assert!(every.p.durable_offset() > info.last_offset);

    // flush.ms set: nobody waits, not even acks=all; the maintenance tick syncs once it is due.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let manager = LogManager::open(dir.path(), LogConfig::default(), clock.clone()).unwrap();
    let relaxed = manager
        .create_partition("t", 0, config(&[("flush.ms", "10000")]))
        .unwrap();
    relaxed
        .append(batch(2, 0, 10, None), 0, Durability::Durable)
        .await
        .unwrap();
    assert_eq!(relaxed.durable_offset(), 0);
    manager.tick().await;
    assert_eq!(relaxed.durable_offset(), 0, "not due yet");
    clock.advance(10_000);
    manager.tick().await;
    let mut rx = relaxed.durable_watch();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| s.offset >= 2))
        .await
        .unwrap()
        .unwrap();

    // flush.messages=3: a background sync starts once three messages are unsynced.
    let counted = fixture(&[("flush.messages", "3")]);
    counted
        .p
        .append(batch(2, 0, 10, None), 0, Durability::Durable)
        .await
        .unwrap();
    assert_eq!(counted.p.durable_offset(), 0);
    counted
        .p
        .append(batch(1, 0, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    let mut rx = counted.p.durable_watch();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| s.offset >= 3))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_broker_clock() {
    let f = fixture(&[("message.timestamp.type", "LogAppendTime")]);
    let info =
        f.p.append(batch(3, 5, 10, None), 0, Durability::PageCache)
            .await
            .unwrap();
    assert_eq!(info.log_append_time, 1_000);
    let r = f.p.read(0, usize::MAX, i64::MAX).unwrap();
    let stored = sluice_protocol::record::RecordBatch::parse(r.chunks[0].clone()).unwrap();
    assert_eq!(stored.header().max_timestamp, 1_000);
    for rec in stored.records().unwrap() {
        assert_eq!(rec.unwrap().timestamp(), 1_000);
    }
}

#[tokio::test]
async fn segment_ms_rolls_by_batch_timestamps() {
    let f = fixture(&[("segment.ms", "1000")]);
    f.p.append(batch(1, 10_000, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    f.p.append(batch(1, 10_500, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    assert_eq!(f.p.with_log(|l| Ok(l.segments().count())).unwrap(), 1);
    f.p.append(batch(1, 11_001, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    assert_eq!(f.p.with_log(|l| Ok(l.segments().count())).unwrap(), 2);
    assert_eq!(f.p.read(0, usize::MAX, i64::MAX).unwrap().next_offset, 3);
}

#[tokio::test]
async fn a_durable_wait_for_truncated_offsets_fails_instead_of_spinning() {
    let f = fixture(&[]);
    f.p.append(batch(4, 0, 10, None), 0, Durability::Durable)
        .await
        .unwrap();
    f.p.append(batch(4, 0, 10, None), 0, Durability::PageCache)
        .await
        .unwrap();
    f.p.truncate_to(4).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(10), f.p.wait_durable(8))
        .await
        .unwrap();
    assert!(matches!(
        waited,
        Err(LogError::Truncated {
            target: 8,
            log_end: 4
        })
    ));
    f.p.wait_durable(4).await.unwrap();
}

/// Readers racing appenders, segment rolls and retention deletes: every read returns whole,
/// CRC-valid batches in increasing offsets, or a typed out-of-range error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_race_appends_rolls_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let manager = Arc::new(LogManager::open(dir.path(), LogConfig::default(), clock).unwrap());
    let p = manager
        .create_partition(
            "race",
            0,
            config(&[("segment.bytes", "3000"), ("retention.bytes", "20000")]),
        )
        .unwrap();
    let mut writers = vec![];
    for w in 0..3 {
        let p = p.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..150 {
                let durability = if (i + w) % 3 == 0 {
                    Durability::Durable
                } else {
                    Durability::PageCache
                };
                p.append(batch(1 + i % 4, i as i64, 100, None), 0, durability)
                    .await
                    .unwrap();
            }
        }));
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = vec![];
    for _ in 0..2 {
        let (p, done) = (p.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads < 10 {
                let start = p.log_start_offset().unwrap();
                match p.read(start, 4096, i64::MAX) {
                    Ok(r) => {
                        let mut prev = -1;
                        for c in &r.chunks {
                            for b in BatchIter::new(c.clone()) {
                                let b = b.expect("served batches are valid");
                                assert!(b.base_offset() > prev);
                                prev = b.last_offset();
                            }
                        }
                    }
                    Err(LogError::OffsetOutOfRange { .. }) => {}
                    Err(e) => panic!("unexpected read error {e}"),
                }
                reads += 1;
                tokio::task::yield_now().await;
            }
        }));
    }
    let maintenance = {
        let (m, done) = (manager.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                m.tick().await;
                tokio::task::yield_now().await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for r in readers {
        r.await.unwrap();
    }
    maintenance.await.unwrap();
    let end = p.log_end_offset().unwrap();
    assert_eq!(end, 3 * (0..150).map(|i| 1 + i % 4).sum::<i64>());
    assert!(p.log_start_offset().unwrap() > 0, "retention never ran");
    let tail = p
        .read(p.log_start_offset().unwrap(), usize::MAX, i64::MAX)
        .unwrap();
    assert_eq!(tail.next_offset, end);
}

#[tokio::test]
async fn follower_appends_across_compaction_gaps() {
    let f = fixture(&[]);
    let mut b = batch(2, 0, 10, None).to_vec();
    b[..8].copy_from_slice(&10i64.to_be_bytes());
    f.p.append_as_follower(Bytes::from(b)).await.unwrap();
    let mut c = batch(1, 0, 10, None).to_vec();
    c[..8].copy_from_slice(&40i64.to_be_bytes());
    f.p.append_as_follower(Bytes::from(c)).await.unwrap();
    assert_eq!(f.p.log_end_offset().unwrap(), 41);
    assert_eq!(
        batches_of(&f.p.read(0, usize::MAX, i64::MAX).unwrap().chunks),
        vec![(10, 11), (40, 40)]
    );
    assert_eq!(
        batches_of(&f.p.read(12, usize::MAX, i64::MAX).unwrap().chunks),
        vec![(40, 40)]
    );
    f.p.close().unwrap();
}
