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
