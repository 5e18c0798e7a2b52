//! Checking an acknowledging producer's record: `tests/python/acked_producer.py` (confluent-kafka,
//! acks=all, idempotent) writes one line per delivery report; [`read_acks`] parses them and
//! [`consume_all`] reads the topic back with kcat, so a test can check that every acknowledged
//! record is stored exactly once at its acknowledged offset.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::clients::{kcat, run};

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
