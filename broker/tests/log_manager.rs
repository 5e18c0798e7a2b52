//! The log manager over a real data directory: create, configure, reopen, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sluice_broker::log::{Durability, LogConfig, LogError, LogManager, ManualClock};
use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};

fn batch(ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions::default());
    b.append(ts, None, Some(&[7u8; 400]), &[]).unwrap();
    b.finish().unwrap()
}

#[tokio::test]
async fn create_reopen_configure_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let props: BTreeMap<String, String> = [("segment.bytes", "1000"), ("retention.ms", "5000")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = LogConfig::from_props(&props).unwrap();
    {
        let m = LogManager::open(tmp.path(), LogConfig::default(), clock.clone()).unwrap();
        let p = m.create_partition("orders", 2, config.clone()).unwrap();
        assert!(matches!(
            m.create_partition("orders", 2, config.clone()),
            Err(LogError::PartitionExists(_))
        ));
        for ts in 0..10 {
            p.append(batch(ts * 1000), 0, Durability::PageCache)
                .await
                .unwrap();
        }
        m.shutdown().unwrap();
    }
    let m = Arc::new(LogManager::open(tmp.path(), LogConfig::default(), clock.clone()).unwrap());
    let p = m.partition("orders", 2).unwrap();
    assert_eq!(p.config().unwrap(), config);
    assert_eq!(p.log_end_offset().unwrap(), 10);
    // Retention driven by the injected clock: at t=12s, segments whose newest record is older
    // than 7s are gone, the active one stays.
    clock.set(12_000);
    m.tick().await;
    let start = p.log_start_offset().unwrap();
    assert!(start > 0, "retention deleted nothing");
    assert!(matches!(
        p.read(0, 100, i64::MAX),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    m.delete_partition("orders", 2).unwrap();
    assert!(m.partition("orders", 2).is_none());
    assert!(!tmp.path().join("orders-2").exists());
    assert!(matches!(
        m.delete_partition("orders", 2),
        Err(LogError::UnknownPartition(_))
    ));
}

#[test]
fn topic_names_that_could_escape_the_data_dir_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let m = LogManager::open(
        tmp.path(),
        LogConfig::default(),
        Arc::new(ManualClock::new(0)),
    )
    .unwrap();
    for bad in ["../escape", "a/b", "", ".."] {
        assert!(
            matches!(
                m.create_partition(bad, 0, LogConfig::default()),
                Err(LogError::InvalidTopic(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        m.create_partition("ok", -1, LogConfig::default()),
        Err(LogError::InvalidTopic(_))
    ));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
