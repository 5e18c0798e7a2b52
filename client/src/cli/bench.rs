//! `sluice bench produce|consume|e2e`: the command line of [`crate::bench`]. Parses the options
//! into [`Settings`], draws live progress on stderr when it is a terminal, prints the human table
//! (or `--json`), and exits non-zero when any record or request failed.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::args::{AcksArg, KeyValue};
use super::Global;
use crate::bench::{self, Api, Live, Settings, Stop, Workload};
use crate::config::CompressionType;

const HELP: &str = "Examples:
  sluice bench produce --topic perf --partitions 2 --producers 2 --count 10000000 --acks 1
  sluice bench consume --topic perf --consumers 2
  sluice bench e2e --topic perf-e2e --rate 100000 --duration 30s --json
  sluice bench produce --api library --duration 10s      # through the library's Producer";

/// `sluice bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub workload: BenchCommand,
}

/// The bench workloads.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce as fast as possible (or at --rate) and measure throughput and batch latency
    #[command(
        after_help = "Example:\n  sluice bench produce --topic perf --partitions 2 --producers 2 --message-size 1000 --batch-size 1000 --count 10000000"
    )]
    Produce(BenchOptions),
    /// Read what a topic holds (by default up to its end at start) and measure throughput
    #[command(after_help = "Example:\n  sluice bench consume --topic perf --consumers 2")]
    Consume(BenchOptions),
    /// Produce and consume at once; also measure produce-to-consume latency
    #[command(
        after_help = "Example:\n  sluice bench e2e --topic perf-e2e --rate 50000 --duration 30s"
    )]
    E2e(BenchOptions),
}

/// Options of every workload.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Topic to use; created if missing (produce, e2e)
    #[arg(long, short = 't', default_value = "sluice-bench")]
    pub topic: String,
    /// Partitions when creating the topic [default: the number of producers]
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Topic config when creating it, KEY=VALUE (repeatable), e.g. flush.messages=1
    #[arg(long = "topic-config", value_name = "KEY=VALUE")]
    pub topic_config: Vec<KeyValue>,
    /// Producer tasks, each with its own connection and its own partitions
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer tasks, each with its own connection and its own partitions
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Bytes per record value
    #[arg(long, default_value_t = 1000)]
    pub message_size: usize,
    /// Records per batch
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Records to measure, in total (after warm-up)
    #[arg(long, short = 'n', conflicts_with = "duration")]
    pub count: Option<u64>,
    /// How long to measure after warm-up: 30s, 500ms, 2m [default: 10s; consume: to the end]
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// acks for produce requests: all, 1 or 0
    #[arg(long, default_value = "1")]
    pub acks: AcksArg,
    /// Records per second across all producers (unlimited when absent)
    #[arg(long)]
    pub rate: Option<u64>,
    /// Batch compression: none, lz4 or gzip
    #[arg(long, default_value = "none")]
    pub compression: CompressionType,
    /// Traffic before measuring, excluded from every figure [default: 1s; consume: 0s]
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Produce requests in flight per producer
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// Client path: raw (batches built by the bench, sent over the client's connection layer) or
    /// library (the Producer and Consumer APIs)
    #[arg(long, default_value = "raw")]
    pub api: Api,
    /// With --api library: turn the producer's idempotence off (it is on by default)
    #[arg(long)]
    pub no_idempotence: bool,
    /// Most bytes per partition in one fetch (Kafka's max.partition.fetch.bytes, 1 MiB by
    /// default as in Kafka)
    #[arg(long, default_value_t = crate::config::MAX_PARTITION_FETCH_BYTES_DEFAULT)]
    pub fetch_bytes: i32,
    /// Print the result as JSON (every setting, the core count, every figure) instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Parses `30s`, `500ms`, `2m`, `1h` or plain seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: use e.g. 30s, 500ms, 2m or 1.5");
    let (number, unit_secs) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 || value * unit_secs > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(value * unit_secs))
}

impl BenchOptions {
    /// The run these options describe.
    pub fn settings(&self, workload: Workload, global: &Global) -> Settings {
        let mut s = Settings::new(workload, &global.brokers);
        s.topic = self.topic.clone();
        s.partitions = self.partitions.unwrap_or(match workload {
            Workload::Consume => self.consumers as i32,
            _ => self.producers as i32,
        });
        s.topic_configs = self
            .topic_config
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        s.producers = self.producers;
        s.consumers = self.consumers;
        s.message_size = self.message_size;
        s.batch_size = self.batch_size;
        s.stop = match (self.count, self.duration, workload) {
            (Some(n), _, _) => Stop::Count(n),
            (None, Some(d), _) => Stop::Duration(d),
            (None, None, Workload::Consume) => Stop::AtEnd,
            (None, None, _) => Stop::Duration(Duration::from_secs(10)),
        };
        s.acks = self.acks.0;
        s.rate = self.rate;
        s.compression = self.compression;
        s.warmup = self.warmup.unwrap_or(match workload {
            Workload::Consume => Duration::ZERO,
            _ => Duration::from_secs(1),
        });
        s.in_flight = self.in_flight;
        s.api = self.api;
        s.idempotence = !self.no_idempotence;
        s.fetch_partition_bytes = self.fetch_bytes;
        s.request_timeout = Duration::from_millis(global.timeout_ms.max(1));
        s
    }
}

/// Runs `sluice bench ...`.
pub async fn run(global: &Global, args: BenchArgs) -> anyhow::Result<()> {
    let (workload, options) = match args.workload {
        BenchCommand::Produce(o) => (Workload::Produce, o),
        BenchCommand::Consume(o) => (Workload::Consume, o),
        BenchCommand::E2e(o) => (Workload::E2e, o),
    };
    let settings = options.settings(workload, global);
    let live = Arc::new(Live::default());
    let ticker = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(live.clone())));
    let result = bench::run(settings, live).await;
    if let Some(t) = ticker {
        t.abort();
        let _ = t.await;
    }
    let report = result.with_context(|| format!("bench {}", workload.name()))?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.table());
    }
    if report.has_failures() {
        anyhow::bail!(
            "bench {}: {} record(s) and {} request(s) failed",
            workload.name(),
            report.failed_records(),
            report.failed_requests()
        );
    }
    Ok(())
}

/// Draws records/s and MB/s for each side four times a second until aborted.
async fn show_progress(live: Arc<Live>) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        bar.set_style(style);
    }
    /// Clears the bar however the task ends (abort included).
    struct Clear(ProgressBar);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.finish_and_clear();
        }
    }
    let bar = Clear(bar);
    let read = |l: &Live| {
        [
            l.produced.load(Ordering::Relaxed),
            l.produced_bytes.load(Ordering::Relaxed),
            l.consumed.load(Ordering::Relaxed),
            l.consumed_bytes.load(Ordering::Relaxed),
        ]
    };
    let (mut last, mut at) = (read(&live), Instant::now());
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let (now, t) = (read(&live), Instant::now());
        let secs = t.duration_since(at).as_secs_f64().max(1e-3);
        let rate = |i: usize| (now[i] - last[i]) as f64 / secs;
        let mut msg = String::new();
        if now[0] > 0 {
            msg += &format!(
                "produced {} ({:.0} rec/s, {:.1} MB/s)  ",
                now[0],
                rate(0),
                rate(1) / 1e6
            );
        }
        if now[2] > 0 {
            msg += &format!(
                "consumed {} ({:.0} rec/s, {:.1} MB/s)  ",
                now[2],
                rate(2),
                rate(3) / 1e6
            );
        }
        msg += &format!("failed {}", live.failed.load(Ordering::Relaxed));
        bar.0.set_message(msg);
        bar.0.tick();
        (last, at) = (now, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn parse(args: &[&str]) -> (Workload, Settings, bool) {
        let cli = Cli::try_parse_from(args).unwrap();
        let crate::cli::Command::Bench(b) = cli.command else {
            panic!("not bench")
        };
        let (w, o) = match b.workload {
            BenchCommand::Produce(o) => (Workload::Produce, o),
            BenchCommand::Consume(o) => (Workload::Consume, o),
            BenchCommand::E2e(o) => (Workload::E2e, o),
        };
        (w, o.settings(w, &cli.global), o.json)
    }

    #[test]
    fn options_become_settings() {
        let (w, s, json) = parse(&[
            "sluice",
            "bench",
            "produce",
            "--brokers",
            "h:1",
            "--producers",
            "2",
            "--count",
            "500",
            "--acks",
            "all",
            "--rate",
            "1000",
            "--compression",
            "lz4",
            "--topic-config",
            "flush.messages=1",
            "--api",
            "library",
            "--json",
        ]);
        assert_eq!(w, Workload::Produce);
        assert!(json);
        assert_eq!(s.brokers, "h:1");
        assert_eq!(
            (s.producers, s.partitions),
            (2, 2),
            "partitions default to the producers"
        );
        assert_eq!(s.stop, Stop::Count(500));
        assert_eq!(s.acks, crate::config::Acks::All);
        assert_eq!(s.rate, Some(1000));
        assert_eq!(s.compression, CompressionType::Lz4);
        assert_eq!(s.api, Api::Library);
        assert_eq!(
            s.topic_configs,
            vec![("flush.messages".to_string(), "1".to_string())]
        );
        assert_eq!(s.warmup, Duration::from_secs(1));
        assert!(s.validate().is_ok());

        let (_, s, _) = parse(&["sluice", "bench", "consume", "--consumers", "3"]);
        assert_eq!(
            (s.stop, s.warmup, s.partitions),
            (Stop::AtEnd, Duration::ZERO, 3)
        );
        let (_, s, _) = parse(&["sluice", "bench", "e2e", "-d", "1.5s", "--warmup", "200ms"]);
        assert_eq!(s.stop, Stop::Duration(Duration::from_millis(1500)));
        assert_eq!(s.warmup, Duration::from_millis(200));
        assert!(Cli::try_parse_from([
            "sluice",
            "bench",
            "produce",
            "--count",
            "1",
            "--duration",
            "1s"
        ])
        .is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "x", "-1s", "1d", "nan", "1e300"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
