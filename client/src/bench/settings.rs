//! [`Settings`]: what one bench run does, validated in one place ([`Settings::validate`]) before
//! anything connects.

use std::time::Duration;

use super::error::BenchError;
use super::limits::{
    BATCH_RECORDS_MAX, IN_FLIGHT_MAX, MESSAGE_BYTES_MAX, PARTITIONS_MAX, STAMP_BYTES, TASKS_MAX,
};
use crate::config::{Acks, CompressionType};
use crate::limits::{BATCH_BYTES_MAX, PARTITION_FETCH_BYTES_MAX};

/// Which traffic to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Producers only.
    Produce,
    /// Consumers only, reading what the topic already holds.
    Consume,
    /// Producers and consumers at once; also measures produce-to-consume latency.
    E2e,
}

impl Workload {
    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::Consume => "consume",
            Workload::E2e => "e2e",
        }
    }

    /// Whether producer tasks run.
    pub fn produces(self) -> bool {
        matches!(self, Workload::Produce | Workload::E2e)
    }

    /// Whether consumer tasks run.
    pub fn consumes(self) -> bool {
        matches!(self, Workload::Consume | Workload::E2e)
    }
}

/// Which client code the tasks drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Batches built with `RecordBatchBuilder` and sent as Produce / Fetch requests over the
    /// client's connection layer: measures the broker, with the client's per-record work removed.
    Raw,
    /// The library's [`crate::Producer`] (`send` per record) and [`crate::Consumer`] (`poll`):
    /// measures what an application gets.
    Library,
}

impl Api {
    /// The option's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Api::Raw => "raw",
            Api::Library => "library",
        }
    }
}

impl std::str::FromStr for Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Api::Raw),
            "library" | "lib" => Ok(Api::Library),
            _ => Err(format!("invalid api {s:?}: use raw or library")),
        }
    }
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many records in total (across tasks), not counting warm-up.
    Count(u64),
    /// After this long, not counting warm-up.
    Duration(Duration),
    /// (consume only) At the partitions' end offsets as they were when the run started.
    AtEnd,
}

/// Every setting of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The workload.
    pub workload: Workload,
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic (created if missing).
    pub topic: String,
    /// Partitions when creating the topic.
    pub partitions: i32,
    /// Topic configs when creating it (`flush.messages=1`, ...).
    pub topic_configs: Vec<(String, String)>,
    /// Producer tasks, each with its own connection.
    pub producers: usize,
    /// Consumer tasks, each with its own connection.
    pub consumers: usize,
    /// Bytes per record value.
    pub message_size: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// When to stop.
    pub stop: Stop,
    /// `acks` for produce requests.
    pub acks: Acks,
    /// Records per second across all producers, if limited.
    pub rate: Option<u64>,
    /// Batch compression.
    pub compression: CompressionType,
    /// Traffic run before measuring starts, excluded from every figure.
    pub warmup: Duration,
    /// Produce requests (raw) or batches per partition (library) in flight per producer task.
    pub in_flight: usize,
    /// Which client code is measured.
    pub api: Api,
    /// Library producer: idempotence (on by default, as in the library; never with acks=0).
    pub idempotence: bool,
    /// Most bytes per partition in one fetch.
    pub fetch_partition_bytes: i32,
    /// Request timeout.
    pub request_timeout: Duration,
}

impl Settings {
    /// Defaults for `workload` against `brokers`: topic `sluice-bench`, 1 partition, 1 producer and
    /// 1 consumer, 1000-byte records in batches of 1000, acks=1, 10 s after a 1 s warm-up.
    pub fn new(workload: Workload, brokers: &str) -> Settings {
        Settings {
            workload,
            brokers: brokers.to_string(),
            topic: "sluice-bench".to_string(),
            partitions: 1,
            topic_configs: Vec::new(),
            producers: 1,
            consumers: 1,
            message_size: 1000,
            batch_size: 1000,
            stop: Stop::Duration(Duration::from_secs(10)),
            acks: Acks::Leader,
            rate: None,
            compression: CompressionType::None,
            warmup: Duration::from_secs(1),
            in_flight: 5,
            api: Api::Raw,
            idempotence: true,
            fetch_partition_bytes: crate::config::MAX_PARTITION_FETCH_BYTES_DEFAULT,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Checks every setting against its limit; says which and why.
    pub fn validate(&self) -> Result<(), BenchError> {
        let bad = |what: &str, why: String| Err(BenchError::Settings(format!("{what}: {why}")));
        if self.topic.is_empty() {
            return bad("--topic", "must not be empty".into());
        }
        if !(1..=PARTITIONS_MAX).contains(&self.partitions) {
            return bad("--partitions", format!("must be 1 to {PARTITIONS_MAX}"));
        }
        if self.workload.produces() && !(1..=TASKS_MAX).contains(&self.producers) {
            return bad("--producers", format!("must be 1 to {TASKS_MAX}"));
        }
        if self.workload.consumes() && !(1..=TASKS_MAX).contains(&self.consumers) {
            return bad("--consumers", format!("must be 1 to {TASKS_MAX}"));
        }
        if self.message_size > MESSAGE_BYTES_MAX {
            return bad(
                "--message-size",
                format!("must be at most {MESSAGE_BYTES_MAX}"),
            );
        }
        if self.workload == Workload::E2e && self.message_size < STAMP_BYTES {
            return bad(
                "--message-size",
                format!("e2e needs at least {STAMP_BYTES} bytes to carry the send time"),
            );
        }
        if !(1..=BATCH_RECORDS_MAX).contains(&self.batch_size) {
            return bad(
                "--batch-size",
                format!("must be 1 to {BATCH_RECORDS_MAX} records"),
            );
        }
        if self.workload.produces() && self.batch_bytes_estimate() > BATCH_BYTES_MAX {
            return bad(
                "--batch-size",
                format!(
                    "{} records of {} bytes exceed the {BATCH_BYTES_MAX}-byte batch limit",
                    self.batch_size, self.message_size
                ),
            );
        }
        match self.stop {
            Stop::Count(0) => return bad("--count", "must be at least 1".into()),
            Stop::Duration(d) if d.is_zero() => {
                return bad("--duration", "must be longer than 0".into())
            }
            Stop::AtEnd if self.workload != Workload::Consume => {
                return bad("--count / --duration", "produce and e2e need one".into())
            }
            _ => {}
        }
        if self.rate == Some(0) {
            return bad("--rate", "must be at least 1 record/s".into());
        }
        if !(1..=IN_FLIGHT_MAX).contains(&self.in_flight) {
            return bad("--in-flight", format!("must be 1 to {IN_FLIGHT_MAX}"));
        }
        if self.api == Api::Library && self.in_flight > crate::limits::IN_FLIGHT_PER_PARTITION_MAX {
            return bad(
                "--in-flight",
                format!(
                    "the library producer allows at most {} per partition",
                    crate::limits::IN_FLIGHT_PER_PARTITION_MAX
                ),
            );
        }
        if !(1..=PARTITION_FETCH_BYTES_MAX).contains(&self.fetch_partition_bytes) {
            return bad(
                "--fetch-bytes",
                format!("must be 1 to {PARTITION_FETCH_BYTES_MAX}"),
            );
        }
        Ok(())
    }

    /// Bytes of one uncompressed batch of `batch_size` records: the 61-byte header plus, per
    /// record, the value and at most 21 bytes of varint framing (length, attributes, deltas, null
    /// key, header count).
    pub fn batch_bytes_estimate(&self) -> usize {
        61 + self.batch_size.saturating_mul(self.message_size + 21)
    }

    /// Partitions of task `index` among `tasks`: disjoint round-robin shares when there are at
    /// least as many partitions as tasks, else each task gets one partition, shared round-robin.
    pub fn partitions_of(&self, index: usize, tasks: usize, partitions: i32) -> Vec<i32> {
        let n = partitions.max(1) as usize;
        if tasks <= n {
            (0..n)
                .filter(|p| p % tasks == index)
                .map(|p| p as i32)
                .collect()
        } else {
            vec![(index % n) as i32]
        }
    }

    /// The acks level as written (`all`, `1`, `0`).
    pub fn acks_name(&self) -> &'static str {
        match self.acks {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }

    /// The compression codec as written.
    pub fn compression_name(&self) -> &'static str {
        match self.compression {
            CompressionType::None => "none",
            CompressionType::Gzip => "gzip",
            CompressionType::Lz4 => "lz4",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limits_are_enforced() {
        let s = Settings::new(Workload::Produce, "h:1");
        assert!(s.validate().is_ok());
        let check = |f: &dyn Fn(&mut Settings), needle: &str| {
            let mut s = Settings::new(Workload::E2e, "h:1");
            f(&mut s);
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        check(&|s| s.partitions = 0, "--partitions");
        check(&|s| s.producers = 0, "--producers");
        check(&|s| s.consumers = TASKS_MAX + 1, "--consumers");
        check(&|s| s.message_size = 4, "e2e needs");
        check(&|s| s.batch_size = 0, "--batch-size");
        check(&|s| s.batch_size = 100_000, "batch limit");
        check(&|s| s.stop = Stop::Count(0), "--count");
        check(&|s| s.stop = Stop::AtEnd, "need one");
        check(&|s| s.rate = Some(0), "--rate");
        check(&|s| s.in_flight = 0, "--in-flight");
        check(
            &|s| {
                s.api = Api::Library;
                s.in_flight = 6
            },
            "at most 5",
        );
        let mut s = Settings::new(Workload::Consume, "h:1");
        s.stop = Stop::AtEnd;
        s.message_size = 0;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn tasks_get_disjoint_partitions_or_share_them() {
        let s = Settings::new(Workload::Produce, "h:1");
        assert_eq!(s.partitions_of(0, 2, 2), vec![0]);
        assert_eq!(s.partitions_of(1, 2, 2), vec![1]);
        assert_eq!(s.partitions_of(0, 2, 5), vec![0, 2, 4]);
        assert_eq!(s.partitions_of(1, 2, 5), vec![1, 3]);
        assert_eq!(
            s.partitions_of(2, 3, 2),
            vec![0],
            "more tasks than partitions share"
        );
    }
}
