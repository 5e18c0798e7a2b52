//! Compaction over real files through the manager's maintenance tick, with an injected clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_broker::log::{Durability, LogConfig, LogManager, ManualClock};
use sluice_protocol::record::{BatchIter, BatchOptions, RecordBatchBuilder};

fn put(key: &str, value: Option<&str>, ts: i64) -> bytes::Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions::default());
    b.append(ts, Some(key.as_bytes()), value.map(str::as_bytes), &[])
        .unwrap();
    b.finish().unwrap()
}

/// (offset, key, value) of every record served from the log start.
fn records(p: &sluice_broker::log::Partition) -> Vec<(i64, String, Option<String>)> {
    let r = p
        .read(p.log_start_offset().unwrap(), usize::MAX, i64::MAX)
        .unwrap();
    let mut out = vec![];
    for chunk in r.chunks {
        for batch in BatchIter::new(chunk) {
            for rec in batch.unwrap().records().unwrap() {
                let rec = rec.unwrap();
                let s =
                    |b: Option<&bytes::Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                out.push((rec.offset(), s(rec.key()).unwrap(), s(rec.value())));
            }
        }
    }
    out
}

#[tokio::test]
async fn tick_compacts_sealed_segments_keeping_offsets_and_the_latest_values() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let props: BTreeMap<String, String> = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "400"),
        ("delete.retention.ms", "60000"),
        ("min.compaction.lag.ms", "5000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = LogConfig::from_props(&props).unwrap();
    let m = LogManager::open(tmp.path(), LogConfig::default(), clock.clone()).unwrap();
    let p = m.create_partition("__offsets", 0, config.clone()).unwrap();
    for round in 0..10 {
        for key in ["group-a", "group-b", "group-c"] {
            let v = format!("{key}@{round}");
            p.append(put(key, Some(&v), 1_000), 0, Durability::Durable)
                .await
                .unwrap();
        }
    }
    p.append(put("group-b", None, 1_000), 0, Durability::Durable)
        .await
        .unwrap();
    for i in 0..6 {
        p.append(
            put("filler", Some(&format!("{i:0100}")), 1_000),
            0,
            Durability::Durable,
        )
        .await
        .unwrap();
    }
    let before = records(&p);
    // Too young for min.compaction.lag.ms: nothing changes.
    m.tick().await;
    assert_eq!(records(&p), before);
    clock.advance(10_000);
    m.tick().await;
    let after = records(&p);
    assert!(after.len() < before.len(), "compaction removed nothing");
    for rec in &after {
        assert!(before.contains(rec), "{rec:?} changed offset or value");
    }
    for key in ["group-a", "group-c"] {
        let last_before = before.iter().rev().find(|r| r.1 == key);
        assert_eq!(after.iter().rev().find(|r| r.1 == key), last_before);
        assert_eq!(after.iter().filter(|r| r.1 == key).count(), 1, "{key}");
    }
    // The tombstone for group-b survives delete.retention.ms, then goes with the rest of group-b.
    assert!(after.iter().any(|r| r.1 == "group-b" && r.2.is_none()));
    clock.advance(60_001);
    m.tick().await;
    assert!(!records(&p).iter().any(|r| r.1 == "group-b"));
    // The compacted log is what a restart sees.
    let compacted = records(&p);
    m.shutdown().unwrap();
    let m = LogManager::open(tmp.path(), LogConfig::default(), clock).unwrap();
    assert_eq!(records(&m.partition("__offsets", 0).unwrap()), compacted);
}

/// Compaction passes racing appenders and readers: reads stay valid and increasing, and every
/// key's latest value survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_races_appends_and_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let props: BTreeMap<String, String> = [("cleanup.policy", "compact"), ("segment.bytes", "600")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let m = Arc::new(LogManager::open(tmp.path(), LogConfig::default(), clock.clone()).unwrap());
    let p = m
        .create_partition("compacted", 0, LogConfig::from_props(&props).unwrap())
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = vec![];
    for w in 0..2 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..150 {
                let key = format!("key-{}", i % 7);
                // Rolls start background syncs that advance the recovery point; an occasional
                // durable append exercises group commit alongside compaction.
                let durability = if i % 10 == 0 {
                    Durability::Durable
                } else {
                    Durability::PageCache
                };
                p.append(put(&key, Some(&format!("{w}-{i}")), 1_000), 0, durability)
                    .await
                    .unwrap();
            }
        }));
    }
    let reader = {
        let (p, done) = (p.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let r = p
                    .read(p.log_start_offset().unwrap(), 8192, i64::MAX)
                    .unwrap();
                let mut prev = -1;
                for c in r.chunks {
                    for b in BatchIter::new(c) {
                        let b = b.expect("served batches are valid");
                        assert!(b.base_offset() > prev);
                        prev = b.last_offset();
                    }
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let compactor = {
        let (m, done, clock) = (m.clone(), done.clone(), clock.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                clock.advance(100);
                m.tick().await;
                tokio::task::yield_now().await;
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    reader.await.unwrap();
    compactor.await.unwrap();
    m.tick().await;
    let all = records(&p);
    assert!(all.len() < 300, "compaction never removed anything");
    for k in 0..7 {
        let key = format!("key-{k}");
        let last = all
            .iter()
            .rev()
            .find(|r| r.1 == key)
            .expect("every key keeps its last value");
        // The last value written for this key by either writer is the newest offset for it.
        assert!(all.iter().filter(|r| r.1 == key).all(|r| r.0 <= last.0));
    }
    assert_eq!(p.log_end_offset().unwrap(), 300);
}
