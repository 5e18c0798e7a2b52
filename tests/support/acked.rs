//! Checking an acknowledging producer's record: `tests/python/acked_producer.py` (confluent-kafka,
//! acks=all, idempotent) writes one line per delivery report; [`read_acks`] parses them and
//! [`consume_all`] reads the topic back with kcat, so a test can check that every acknowledged
//! record is stored exactly once at its acknowledged offset. [`AckedProducer`] runs the script.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::clients::{kcat, python, python_script, run, ChildGuard};
use crate::wait::wait_until;

/// The delivery reports so far.
#[derive(Debug, Default)]
pub struct Acks {
    /// Record index -> (partition, offset) it was acknowledged at.
    pub acked: BTreeMap<u64, (i32, i64)>,
    /// Records that failed for good, with the reason.
    pub errors: Vec<String>,
}

/// Parses the producer's acknowledgement file (lines `<i> <partition> <offset>` or
/// `<i> error <reason>`); a half-written last line is ignored.
pub fn read_acks(path: &Path) -> Acks {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut acks = Acks::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.splitn(3, ' ').collect();
        match fields.as_slice() {
            [i, "error", reason] => acks.errors.push(format!("record {i}: {reason}")),
            [i, p, o] => {
                if let (Ok(i), Ok(p), Ok(o)) = (i.parse(), p.parse(), o.parse()) {
                    acks.acked.insert(i, (p, o));
                }
            }
            _ => {}
        }
    }
    acks
}

/// Every record of `topic` as (partition, offset) -> value, read by kcat from `bootstrap` with
/// CRC checks on; panics if a (partition, offset) is served twice.
pub fn consume_all(bootstrap: &str, topic: &str) -> BTreeMap<(i32, i64), String> {
    let out = run(
        Command::new(kcat())
            .args(["-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e"])
            .args(["-X", "check.crcs=true", "-f", "%p %o %s\\n"]),
        b"",
        Duration::from_secs(120),
    );
    out.assert_success("kcat -C");
    let mut records = BTreeMap::new();
    for line in out.stdout_text().lines() {
        let mut fields = line.splitn(3, ' ');
        let (Some(p), Some(o), Some(v)) = (fields.next(), fields.next(), fields.next()) else {
            panic!("unexpected kcat line {line:?}");
        };
        let key = (p.parse().expect("partition"), o.parse().expect("offset"));
        assert!(
            records.insert(key, v.to_string()).is_none(),
            "{key:?} served twice"
        );
    }
    records
}

/// Asserts that every acknowledged record `r<i>` is in `records` at its acknowledged offset and
/// that no value appears twice.
pub fn assert_acked_present_once(acks: &Acks, records: &BTreeMap<(i32, i64), String>) {
    let mut by_value: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
    for (&(p, o), value) in records {
        assert!(
            by_value.insert(value.as_str(), (p, o)).is_none(),
            "record {value} appears more than once (again at {p}/{o})"
        );
    }
    for (i, &(p, o)) in &acks.acked {
        let value = format!("r{i}");
        assert_eq!(
            records.get(&(p, o)),
            Some(&value),
            "acknowledged record {value} is not at its acknowledged offset {p}/{o}"
        );
    }
}

/// A running `acked_producer.py` (acks=all, idempotent, confluent-kafka) producing to one topic,
/// with its acknowledgement file, stop file and stderr log in a temp dir of its own. Killed if
/// dropped before [`AckedProducer::finish`].
pub struct AckedProducer {
    child: ChildGuard,
    dir: tempfile::TempDir,
}

impl AckedProducer {
    /// Starts producing to `topic` at `bootstrap`.
    pub fn start(bootstrap: &str, topic: &str) -> AckedProducer {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(python())
            .arg(python_script("acked_producer.py"))
            .arg(bootstrap)
            .arg(topic)
            .arg(dir.path().join(ACK_FILE))
            .arg(dir.path().join(STOP_FILE))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(LOG_FILE)).expect("producer log"))
            .spawn()
            .expect("start the producer");
        AckedProducer {
            child: ChildGuard(child),
            dir,
        }
    }

    /// The acknowledgement file (one line per delivery report).
    pub fn ack_file(&self) -> PathBuf {
        self.dir.path().join(ACK_FILE)
    }

    /// The delivery reports so far.
    pub fn acks(&self) -> Acks {
        read_acks(&self.ack_file())
    }

    /// Waits until `more` records beyond `seen` are acknowledged; returns how many are now.
    pub fn wait_acked(&self, seen: usize, more: usize, deadline: Duration, what: &str) -> usize {
        wait_until(deadline, what, || self.acks().acked.len() >= seen + more);
        self.acks().acked.len()
    }

    /// Tells the producer to stop, waits until every record has its delivery report, and checks
    /// that the producer succeeded and no record failed for good; returns the reports.
    pub fn finish(mut self) -> Acks {
        std::fs::write(self.dir.path().join(STOP_FILE), b"").expect("stop file");
        wait_until(Duration::from_secs(150), "the producer to finish", || {
            self.child.has_exited()
        });
        let status = self.child.0.wait().expect("producer status");
        assert!(
            status.success(),
            "producer failed: {status}\n{}",
            std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default()
        );
        let acks = self.acks();
        assert!(
            acks.errors.is_empty(),
            "records failed despite retries: {:?}",
            &acks.errors[..acks.errors.len().min(5)]
        );
        acks
    }
}

const ACK_FILE: &str = "acks";
const STOP_FILE: &str = "stop";
const LOG_FILE: &str = "producer.log";
