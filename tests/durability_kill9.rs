//! Durability under `kill -9`: an `acks=all` idempotent producer (confluent-kafka) records every
//! acknowledgement while the broker is SIGKILLed mid-stream several times and restarted on the
//! same data dir. Afterwards every acknowledged record is in the log exactly once at its
//! acknowledged offset, offsets are dense, and garbage appended to the active segments (a torn
//! tail, as a crash mid-write leaves) is cut at recovery, never served.
//!
//! The second test does the same on a topic with tiny segments and a tiny retention, so that new
//! segments are written into spare files retention removed (old batches still in them past the
//! new data): after the kills, every record served is an acknowledged one at its acknowledged
//! offset, and every acknowledged record the retention keeps is there.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sluice_tests::{
    assert_acked_present_once, bin_path, consume_all, kcat, run, wait_until, AckedProducer, Acks,
    Broker,
};

const TOPIC: &str = "durable";
const PARTITIONS: i32 = 3;
const KILLS: usize = 3;
/// Acknowledgements to wait for between two kills, so each kill lands mid-stream.
const ACKS_BETWEEN_KILLS: usize = 1000;
const PROGRESS_DEADLINE: Duration = Duration::from_secs(90);

fn active_segments(data_dir: &Path) -> Vec<PathBuf> {
    (0..PARTITIONS)
        .filter_map(|p| {
            let dir = data_dir.join("logs").join(format!("{TOPIC}-{p}"));
            let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
                .collect();
            logs.sort();
            logs.pop()
        })
        .collect()
}

/// Kills the broker with SIGKILL [`KILLS`] times, each once [`ACKS_BETWEEN_KILLS`] more records
/// are acknowledged, restarting it on the same data dir; then lets the stream make progress once
/// more and finishes the producer (which checks that no record failed for good).
fn kill9_mid_stream(broker: &mut Broker, producer: AckedProducer) -> Acks {
    let mut seen = producer.acks().acked.len();
    for kill in 0..KILLS {
        producer.wait_acked(
            seen,
            ACKS_BETWEEN_KILLS,
            PROGRESS_DEADLINE,
            "acknowledgements before a kill",
        );
        broker.kill9();
        seen = producer.acks().acked.len();
        eprintln!("kill {kill}: {seen} records acknowledged so far");
        broker.restart();
    }
    producer.wait_acked(
        seen,
        ACKS_BETWEEN_KILLS,
        PROGRESS_DEADLINE,
        "acknowledgements after the last restart",
    );
    producer.finish()
}

#[test]
fn acknowledged_records_survive_repeated_kill9_and_a_torn_tail_is_cut() {
    let mut broker = Broker::builder()
        .arg("--auto-create-topics")
        .arg("--num-partitions")
        .arg(PARTITIONS.to_string())
        .start();
    let producer = AckedProducer::start(&broker.bootstrap(), TOPIC);
    let acks = kill9_mid_stream(&mut broker, producer);

    // A crash mid-write leaves garbage after the last whole batch: append some to every active
    // segment, as a torn batch would (a plausible length, then junk).
    broker.kill9();
    let segments = active_segments(broker.data_dir());
    assert_eq!(segments.len(), PARTITIONS as usize, "{segments:?}");
    for segment in &segments {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(segment)
            .expect("open segment");
        let mut torn = Vec::new();
        torn.extend_from_slice(&999_999i64.to_be_bytes()); // baseOffset
        torn.extend_from_slice(&500i32.to_be_bytes()); // batchLength, more than follows
        torn.extend_from_slice(&[0, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef]);
        torn.extend_from_slice(&[0x5a; 40]);
        file.write_all(&torn).expect("append torn tail");
    }
    broker.restart();

    let records = consume_all(&broker.bootstrap(), TOPIC);
    assert_acked_present_once(&acks, &records);
    // Offsets are dense from 0 in every partition: nothing torn was served or skipped over.
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = records.keys().filter(|k| k.0 == p).map(|k| k.1).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert!(offsets == expected, "partition {p} offsets are not dense");
    }

    // The log keeps working after the cut: new records continue right after the last good one.
    let before: BTreeMap<i32, usize> = (0..PARTITIONS)
        .map(|p| (p, records.keys().filter(|k| k.0 == p).count()))
        .collect();
    run(
        Command::new(kcat()).args(["-b", &broker.bootstrap(), "-P", "-t", TOPIC, "-p", "0"]),
        b"after-1\nafter-2\n",
        Duration::from_secs(60),
    )
    .assert_success("kcat -P after recovery");
    let records = consume_all(&broker.bootstrap(), TOPIC);
    let p0_end = before[&0] as i64;
    assert_eq!(
        records.get(&(0, p0_end)).map(String::as_str),
        Some("after-1")
    );
    assert_eq!(
        records.get(&(0, p0_end + 1)).map(String::as_str),
        Some("after-2")
    );
    eprintln!(
        "{} records acknowledged, {} in the log after {KILLS} kills",
        acks.acked.len(),
        records.len()
    );
}

/// Whether any spare segment file (`*.log.spare`) exists under the broker's logs.
fn spare_exists(data_dir: &Path) -> bool {
    let Ok(topics) = std::fs::read_dir(data_dir.join("logs")) else {
        return false;
    };
    topics.flatten().any(|t| {
        std::fs::read_dir(t.path()).is_ok_and(|files| {
            files
                .flatten()
                .any(|f| f.file_name().to_string_lossy().ends_with(".log.spare"))
        })
    })
}

/// Retention of the spare-reuse test's topic: a few 64 KiB segments.
const RETENTION_BYTES: u64 = 262_144;

#[test]
fn kill9_while_retention_reuses_segment_files_serves_only_acknowledged_records() {
    const TOPIC: &str = "recycled";
    let mut broker = Broker::builder()
        .arg("--auto-create-topics")
        .arg("--num-partitions")
        .arg("2")
        .arg("--topic-default")
        .arg("segment.bytes=65536")
        .arg("--topic-default")
        .arg(format!("retention.bytes={RETENTION_BYTES}"))
        .start();
    let producer = AckedProducer::start(&broker.bootstrap(), TOPIC);
    // Retention runs every second; the spare it keeps lives until the partition's next roll.
    wait_until(
        PROGRESS_DEADLINE,
        "retention to keep a spare segment file",
        || spare_exists(broker.data_dir()),
    );
    let acks = kill9_mid_stream(&mut broker, producer);
    // Read back what retention kept. Retention must not move a log start while kcat reads from
    // the beginning, so it is switched off first (a file's length cannot tell when it is done:
    // a reused segment file is longer than its data until it is sealed). The kill ends any pass
    // still under way; the config is on disk, so the restarted broker deletes nothing more.
    let mut alter = Command::new(bin_path("sluice"));
    alter.args([
        "topic",
        "alter",
        TOPIC,
        "--brokers",
        &broker.bootstrap(),
        "--config",
        "retention.bytes=-1",
    ]);
    run(&mut alter, b"", Duration::from_secs(60)).assert_success("sluice topic alter");
    broker.kill9();
    broker.restart();
    let records = consume_all(&broker.bootstrap(), TOPIC);
    let at: BTreeMap<(i32, i64), u64> = acks.acked.iter().map(|(&i, &k)| (k, i)).collect();
    for (&(p, o), value) in &records {
        let i = at.get(&(p, o));
        assert_eq!(
            i.map(|i| format!("r{i}")).as_deref(),
            Some(value.as_str()),
            "{p}/{o} serves {value}, not the record acknowledged there"
        );
    }
    for p in 0..2 {
        let offsets: Vec<i64> = records.keys().filter(|k| k.0 == p).map(|k| k.1).collect();
        let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
            panic!("partition {p} is empty");
        };
        assert!(first > 0, "retention removed nothing from partition {p}");
        assert_eq!(
            offsets,
            (first..=last).collect::<Vec<_>>(),
            "partition {p} offsets are not dense"
        );
        // Every acknowledged record at or past the log start is there.
        let missing: Vec<_> = acks
            .acked
            .iter()
            .filter(|(_, &(ap, ao))| ap == p && ao >= first && !records.contains_key(&(ap, ao)))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "acknowledged records missing: {missing:?}"
        );
    }
    eprintln!(
        "{} records acknowledged, {} kept by retention after {KILLS} kills",
        acks.acked.len(),
        records.len()
    );
}
