//! [`Report`]: the figures of one run, as a human table ([`Report::table`]) or JSON
//! ([`Report::to_json`], every setting and the machine's core count included). MB are 10^6 bytes.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::settings::{Settings, Stop};
use super::stats::{ErrorTally, LatencySummary, TaskStats};

/// One direction's figures (producers or consumers), measured phase only.
#[derive(Debug, Clone)]
pub struct Side {
    /// Records acknowledged (produce) or received (consume).
    pub records: u64,
    /// Their value bytes.
    pub bytes: u64,
    /// Batch bytes on the wire (0 when unknown: the library paths).
    pub wire_bytes: u64,
    /// Batches.
    pub batches: u64,
    /// Seconds from the end of warm-up to the last measured completion.
    pub secs: f64,
    /// Records that failed, were not acknowledged or never arrived.
    pub failed_records: u64,
    /// Requests that failed.
    pub failed_requests: u64,
    /// Why.
    pub errors: ErrorTally,
    /// Batch round-trip latency (producers).
    pub latency: Option<LatencySummary>,
    /// Records moved during warm-up, in no figure.
    pub warmup_records: u64,
    /// acks=0: records count as delivered when written to the socket.
    pub unacknowledged_by_design: bool,
}

impl Side {
    /// Builds a side from merged task stats; `measure_start` is the end of warm-up.
    pub fn new(stats: &TaskStats, measure_start: std::time::Instant) -> Side {
        let secs = stats.last.map_or(0.0, |l| {
            l.saturating_duration_since(measure_start).as_secs_f64()
        });
        Side {
            records: stats.records,
            bytes: stats.bytes,
            wire_bytes: stats.wire_bytes,
            batches: stats.batches,
            secs,
            failed_records: stats.failed_records,
            failed_requests: stats.failed_requests,
            errors: stats.errors.clone(),
            latency: stats.latency.summary(),
            warmup_records: stats.warmup_records,
            unacknowledged_by_design: stats.unacknowledged_by_design,
        }
    }

    fn per_sec(&self, n: u64) -> f64 {
        if self.secs > 0.0 {
            n as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Records per second.
    pub fn records_per_sec(&self) -> f64 {
        self.per_sec(self.records)
    }

    /// Value megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.per_sec(self.bytes) / 1e6
    }

    /// Wire megabytes per second, if known.
    pub fn wire_mb_per_sec(&self) -> Option<f64> {
        (self.wire_bytes > 0).then(|| self.per_sec(self.wire_bytes) / 1e6)
    }

    fn to_json(&self) -> Value {
        json!({
            "records": self.records,
            "bytes": self.bytes,
            "wire_bytes": self.wire_bytes,
            "batches": self.batches,
            "seconds": self.secs,
            "records_per_sec": self.records_per_sec(),
            "mb_per_sec": self.mb_per_sec(),
            "wire_mb_per_sec": self.wire_mb_per_sec(),
            "failed_records": self.failed_records,
            "failed_requests": self.failed_requests,
            "errors": self.errors.kinds.iter().map(|(m, n)| json!({"error": m, "records": n})).collect::<Vec<_>>(),
            "other_error_records": self.errors.other,
            "latency": self.latency,
            "warmup_records": self.warmup_records,
            "unacknowledged_by_design": self.unacknowledged_by_design,
        })
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was asked.
    pub settings: Settings,
    /// Partitions the topic actually has.
    pub partitions: i32,
    /// Cores of this machine.
    pub cores: usize,
    /// Producers' figures.
    pub produce: Option<Side>,
    /// Consumers' figures.
    pub consume: Option<Side>,
    /// Produce-to-consume latency (e2e).
    pub e2e_latency: Option<LatencySummary>,
    /// Wall-clock length of the whole run, warm-up included.
    pub elapsed: Duration,
}

fn duration_json(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

impl Report {
    /// Records that failed, went unacknowledged or never arrived, on either side.
    pub fn failed_records(&self) -> u64 {
        self.sides().map(|s| s.failed_records).sum()
    }

    /// Requests that failed, on either side (a failed fetch loses no record but is a failure).
    pub fn failed_requests(&self) -> u64 {
        self.sides().map(|s| s.failed_requests).sum()
    }

    /// Whether anything failed.
    pub fn has_failures(&self) -> bool {
        self.failed_records() > 0 || self.failed_requests() > 0
    }

    fn sides(&self) -> impl Iterator<Item = &Side> {
        self.produce.iter().chain(self.consume.iter())
    }

    /// Every setting, the machine and every figure.
    pub fn to_json(&self) -> Value {
        let s = &self.settings;
        let (count, duration) = match s.stop {
            Stop::Count(n) => (json!(n), Value::Null),
            Stop::Duration(d) => (Value::Null, duration_json(d)),
            Stop::AtEnd => (Value::Null, Value::Null),
        };
        json!({
            "workload": s.workload.name(),
            "settings": {
                "brokers": s.brokers,
                "topic": s.topic,
                "partitions": self.partitions,
                "topic_configs": s.topic_configs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                "producers": s.workload.produces().then_some(s.producers),
                "consumers": s.workload.consumes().then_some(s.consumers),
                "message_size": s.message_size,
                "batch_size": s.batch_size,
                "count": count,
                "duration_secs": duration,
                "acks": s.acks_name(),
                "rate": s.rate,
                "compression": s.compression_name(),
                "warmup_secs": duration_json(s.warmup),
                "in_flight": s.in_flight,
                "api": s.api.name(),
                "idempotence": s.api == super::Api::Library && s.idempotence && s.acks != crate::config::Acks::None,
                "fetch_partition_bytes": s.fetch_partition_bytes,
                "request_timeout_ms": s.request_timeout.as_millis() as u64,
            },
            "machine": {
                "cores": self.cores,
                "os": std::env::consts::OS,
                "arch": std::env::consts::ARCH,
            },
            "produce": self.produce.as_ref().map(Side::to_json),
            "consume": self.consume.as_ref().map(Side::to_json),
            "e2e_latency": self.e2e_latency,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "failed_records": self.failed_records(),
            "failed_requests": self.failed_requests(),
        })
    }

    /// The human summary.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let tasks = match s.workload {
            super::Workload::Produce => format!("{} producer(s)", s.producers),
            super::Workload::Consume => format!("{} consumer(s)", s.consumers),
            super::Workload::E2e => {
                format!("{} producer(s), {} consumer(s)", s.producers, s.consumers)
            }
        };
        let _ = writeln!(
            out,
            "sluice bench {}: topic {} ({} partitions), {tasks}, {} B records, {} per batch, acks={}, compression {}, api {}, {} core(s)",
            s.workload.name(), s.topic, self.partitions, s.message_size, s.batch_size,
            s.acks_name(), s.compression_name(), s.api.name(), self.cores
        );
        let _ = writeln!(
            out,
            "{:<9} {:>13} {:>9} {:>14} {:>10} {:>10} {:>10}",
            "", "records", "seconds", "records/s", "MB/s", "wire MB/s", "failed"
        );
        for (name, side) in [("produced", &self.produce), ("consumed", &self.consume)] {
            let Some(side) = side else { continue };
            let wire = side
                .wire_mb_per_sec()
                .map_or("-".to_string(), |w| format!("{w:.1}"));
            let _ = writeln!(
                out,
                "{name:<9} {:>13} {:>9.2} {:>14.0} {:>10.1} {:>10} {:>10}",
                side.records,
                side.secs,
                side.records_per_sec(),
                side.mb_per_sec(),
                wire,
                side.failed_records
            );
        }
        if self.produce.is_some() || self.e2e_latency.is_some() {
            let _ = writeln!(
                out,
                "{:<26} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "samples"
            );
        }
        let row = |name: &str, l: &Option<LatencySummary>| match l {
            Some(l) => format!(
                "{name:<26} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}\n",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
            ),
            None => String::new(),
        };
        if let Some(p) = &self.produce {
            if p.unacknowledged_by_design {
                let _ = writeln!(
                    out,
                    "{:<26} n/a with acks=0 (records count when written to the socket)",
                    "batch round trip"
                );
            } else {
                out += &row("batch round trip", &p.latency);
            }
        }
        out += &row("produce to consume", &self.e2e_latency);
        for (name, side) in [("produce", &self.produce), ("consume", &self.consume)] {
            let Some(side) = side else { continue };
            for (m, n) in &side.errors.kinds {
                let _ = writeln!(out, "{name} error ({n} record(s)): {m}");
            }
            if side.errors.other > 0 {
                let _ = writeln!(
                    out,
                    "{name}: {} record(s) failed with further errors",
                    side.errors.other
                );
            }
            if side.records == 0 && side.failed_records == 0 {
                let _ = writeln!(out, "{name}: nothing measured (warm-up {} record(s)); lengthen the run or shorten --warmup", side.warmup_records);
            }
        }
        let _ = writeln!(
            out,
            "{} record(s) and {} request(s) failed; {:.1} s in total, warm-up {:.1} s excluded",
            self.failed_records(),
            self.failed_requests(),
            self.elapsed.as_secs_f64(),
            s.warmup.as_secs_f64()
        );
        out
    }
}
