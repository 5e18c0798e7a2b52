//! Recovery over real files: unclean shutdown with a torn or garbage tail, a flipped bit in a
//! sealed segment (only that partition goes offline), and half-finished files.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sluice_broker::log::{Durability, LogConfig, LogError, LogManager, SystemClock};
use sluice_protocol::record::{BatchIter, BatchOptions, RecordBatchBuilder};

fn batch(i: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions::default());
    b.append(
        1000 + i as i64,
        Some(format!("k{i}").as_bytes()),
        Some(&[b'x'; 300]),
        &[],
    )
    .unwrap();
    b.finish().unwrap()
}

fn config() -> LogConfig {
    let p: BTreeMap<String, String> = [("segment.bytes", "2000")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::from_props(&p).unwrap()
}

fn open(dir: &Path) -> LogManager {
    LogManager::open(dir, LogConfig::default(), Arc::new(SystemClock)).unwrap()
}

fn count(m: &LogManager, topic: &str) -> Result<usize, LogError> {
    let p = m.partition(topic, 0).unwrap();
    let r = p.read(p.log_start_offset()?, usize::MAX, i64::MAX)?;
    Ok(r.chunks
        .iter()
        .map(|c| {
            BatchIter::new(c.clone())
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .len()
        })
        .sum())
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn garbage_after_a_crash_is_cut_and_durable_data_kept() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let m = open(tmp.path());
        let p = m.create_partition("a", 0, config()).unwrap();
        for i in 0..20 {
            p.append(batch(i), 0, Durability::Durable).await.unwrap();
        }
        // No shutdown: like kill -9, no clean marker.
    }
    let active = segments(&tmp.path().join("a-0")).pop().unwrap();
    let mut f = OpenOptions::new().append(true).open(&active).unwrap();
    f.write_all(&batch(99)[..100]).unwrap();
    f.write_all(&[0xAB; 500]).unwrap();
    drop(f);
    let m = open(tmp.path());
    assert_eq!(count(&m, "a").unwrap(), 20);
    let p = m.partition("a", 0).unwrap();
    assert_eq!(p.log_end_offset().unwrap(), 20);
    p.append(batch(20), 0, Durability::Durable).await.unwrap();
    m.shutdown().unwrap();
    let m = open(tmp.path());
    assert_eq!(count(&m, "a").unwrap(), 21);
}

#[tokio::test]
async fn flipped_bit_in_a_sealed_segment_takes_only_that_partition_offline() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let m = open(tmp.path());
        for topic in ["bad", "good"] {
            let p = m.create_partition(topic, 0, config()).unwrap();
            for i in 0..20 {
                p.append(batch(i), 0, Durability::Durable).await.unwrap();
            }
        }
        m.shutdown().unwrap();
    }
    let first = segments(&tmp.path().join("bad-0")).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    bytes[500] ^= 0x04;
    fs::write(&first, &bytes).unwrap();
    let m = open(tmp.path());
    match count(&m, "bad") {
        Err(LogError::Offline {
            path,
            position,
            reason,
        }) => {
            assert_eq!(path, first);
            assert!(position <= 500, "{position}");
            assert!(reason.contains("crc"), "{reason}");
        }
        other => panic!("expected offline, got {other:?}"),
    }
    assert!(m.partition("bad", 0).unwrap().offline().is_some());
    assert_eq!(m.offline_partitions().len(), 1);
    assert_eq!(count(&m, "good").unwrap(), 20);
    m.partition("good", 0)
        .unwrap()
        .append(batch(1), 0, Durability::Durable)
        .await
        .unwrap();
}

#[tokio::test]
async fn corruption_below_the_recovery_point_found_by_recovery_is_offline_not_cut() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let m = open(tmp.path());
        let p = m.create_partition("c", 0, config()).unwrap();
        for i in 0..20 {
            p.append(batch(i), 0, Durability::Durable).await.unwrap();
        }
        m.shutdown().unwrap();
    }
    // Unclean from here on: no marker. The last segment is scanned by recovery, and the recovery
    // point (written by the clean close) covers all of it: a bad batch there is corruption of
    // durable data, not a torn tail.
    let dir = tmp.path().join("c-0");
    fs::remove_file(dir.join("clean-shutdown")).unwrap();
    let segs = segments(&dir);
    let victim = segs[segs.len() - 1].clone();
    let mut bytes = fs::read(&victim).unwrap();
    assert!(
        bytes.len() > 1000,
        "the active segment holds several batches"
    );
    bytes[700] ^= 0x01;
    fs::write(&victim, &bytes).unwrap();
    let m = open(tmp.path());
    let p = m.partition("c", 0).unwrap();
    match p.offline() {
        Some(LogError::Offline { path, .. }) => assert_eq!(path, victim),
        other => panic!("expected offline, got {other:?}"),
    }
}

#[tokio::test]
async fn half_finished_files_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let m = open(tmp.path());
        let p = m.create_partition("h", 0, config()).unwrap();
        for i in 0..10 {
            p.append(batch(i), 0, Durability::Durable).await.unwrap();
        }
    }
    let dir = tmp.path().join("h-0");
    for name in [
        "00000000000000000003.log.deleted",
        "offsets-checkpoint.tmp",
        "00000000000000000000.log.cleaned",
        "00000000000000099999.index",
        "00000000000000099999.timeindex",
    ] {
        fs::write(dir.join(name), b"junk").unwrap();
    }
    fs::create_dir(tmp.path().join("gone-0.123-delete")).unwrap();
    let m = open(tmp.path());
    assert_eq!(count(&m, "h").unwrap(), 10);
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".deleted")
            && !n.ends_with(".tmp")
            && !n.ends_with(".cleaned")
            && !n.starts_with("00000000000000099999")),
        "{names:?}"
    );
    assert!(!tmp.path().join("gone-0.123-delete").exists());
}

fn idempotent(seq: i32) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        producer_id: 7,
        producer_epoch: 2,
        base_sequence: seq,
        ..BatchOptions::default()
    });
    b.append(5, Some(b"k"), Some(&[b'y'; 300]), &[]).unwrap();
    b.append(6, Some(b"k"), Some(&[b'z'; 300]), &[]).unwrap();
    b.finish().unwrap()
}

#[tokio::test]
async fn producer_state_survives_clean_and_unclean_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut offsets = vec![];
    {
        let m = open(tmp.path());
        let p = m.create_partition("idem", 0, config()).unwrap();
        for i in 0..10 {
            offsets.push(
                p.append(idempotent(i * 2), 0, Durability::Durable)
                    .await
                    .unwrap()
                    .base_offset,
            );
        }
        m.shutdown().unwrap();
    }
    {
        // Clean restart (snapshot at the end): a retry of the last batch is recognised.
        let m = open(tmp.path());
        let p = m.partition("idem", 0).unwrap();
        let retry = p
            .append(idempotent(18), 0, Durability::Durable)
            .await
            .unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, offsets[9]);
        let next = p
            .append(idempotent(20), 0, Durability::Durable)
            .await
            .unwrap();
        assert_eq!(next.base_offset, 20);
        // No shutdown: the next open replays the log tail after the last snapshot.
    }
    let m = open(tmp.path());
    let p = m.partition("idem", 0).unwrap();
    let retry = p
        .append(idempotent(20), 0, Durability::Durable)
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, 20);
    let gap = p.append(idempotent(40), 0, Durability::Durable).await;
    assert!(matches!(
        gap,
        Err(LogError::OutOfOrderSequence {
            expected: 22,
            received: 40,
            ..
        })
    ));
}

#[tokio::test]
async fn producer_snapshots_stay_few_across_rolls_and_clean_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let snapshots = || {
        fs::read_dir(tmp.path().join("snaps-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".snapshot")
            })
            .count()
    };
    let mut seq = 0;
    for restart in 0..6 {
        let m = open(tmp.path());
        let p = match m.partition("snaps", 0) {
            Some(p) => p,
            None => m.create_partition("snaps", 0, config()).unwrap(),
        };
        // Every few batches roll a segment (2000-byte segments), each roll writes a snapshot.
        let batches = if restart % 2 == 0 { 12 } else { 1 };
        for _ in 0..batches {
            p.append(idempotent(seq), 0, Durability::Durable)
                .await
                .unwrap();
            seq += 2;
        }
        m.shutdown().unwrap();
        assert!(
            snapshots() <= 3,
            "{} snapshots after restart {restart}",
            snapshots()
        );
    }
    assert!(snapshots() >= 1);
}
