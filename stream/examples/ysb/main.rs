//! The Yahoo Streaming Benchmark on Sluice.
//!
//! ```text
//! ysb generate --brokers 127.0.0.1:9092 --topic ad-events --events 1000000 --rate 100000
//! ysb run      --brokers 127.0.0.1:9092 --input ad-events --output campaign-counts --batch-ms 1000 --stop-when-idle 5000
//! ysb check    --brokers 127.0.0.1:9092 --input ad-events --output campaign-counts
//! ```
//!
//! `run` filters views, joins ad to campaign with the static table, counts views per campaign per
//! 10-second event-time window and writes one record per (campaign, window) once the watermark
//! closes the window, exactly once across crashes. `check` recomputes the counts from the input
//! with a batch job and compares; it exits non-zero on any difference.

mod events;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use events::{
    ad_table, campaign_id, event_json, parse, window_start, ADS_PER_CAMPAIGN, CAMPAIGNS,
    EVENT_TYPES, WINDOW_MS,
};
use sluice_stream::batch_job::{BatchContext, Bound};
use sluice_stream::event_time::EventTimeSpec;
use sluice_stream::log::{Log, OutRecord};
use sluice_stream::streaming::{StreamConfig, StreamingContext};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(about = "The Yahoo Streaming Benchmark on Sluice")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write JSON ad events.
    Generate {
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, default_value = "ad-events")]
        topic: String,
        /// How many events.
        #[arg(long)]
        events: u64,
        /// Events per second (0: as fast as possible, event times spaced as at 1M/s).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Event-time spacing between consecutive events in microseconds (default: 1e6 / rate, or 1
        /// when the rate is unlimited); lets a test cover many windows without waiting.
        #[arg(long)]
        event_spacing_us: Option<f64>,
        /// Partitions of the topic if it has to be created.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
    /// Run the streaming job.
    Run {
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, default_value = "ad-events")]
        input: String,
        #[arg(long, default_value = "campaign-counts")]
        output: String,
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        /// Stop gracefully after this long without input, closing every open window.
        #[arg(long)]
        stop_when_idle: Option<u64>,
        /// Allowed event-time lateness before a window closes.
        #[arg(long, default_value_t = 5000)]
        watermark_ms: i64,
        /// Job id (names the progress topics; the same id resumes).
        #[arg(long, default_value = "ysb")]
        job_id: String,
        /// Most records per partition per batch.
        #[arg(long)]
        max_records_per_partition: Option<u64>,
    },
    /// Recompute the expected counts with a batch job and compare with the output.
    Check {
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long, default_value = "ad-events")]
        input: String,
        #[arg(long, default_value = "campaign-counts")]
        output: String,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().cmd {
        Cmd::Generate {
            brokers,
            topic,
            events,
            rate,
            event_spacing_us,
            partitions,
        } => generate(&brokers, &topic, events, rate, event_spacing_us, partitions),
        Cmd::Run {
            brokers,
            input,
            output,
            batch_ms,
            stop_when_idle,
            watermark_ms,
            job_id,
            max_records_per_partition,
        } => run(
            &brokers,
            &input,
            &output,
            batch_ms,
            stop_when_idle,
            watermark_ms,
            &job_id,
            max_records_per_partition,
        ),
        Cmd::Check {
            brokers,
            input,
            output,
        } => check(&brokers, &input, &output),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn generate(
    brokers: &str,
    topic: &str,
    n: u64,
    rate: u64,
    event_spacing_us: Option<f64>,
    partitions: i32,
) -> Result<()> {
    let log = sluice_stream::client_log::ClientLog::connect(brokers)?;
    log.ensure_topic(topic, partitions, &[])?;
    let parts = log.partitions(topic)?;
    let spacing_us = if rate == 0 {
        1.0
    } else {
        1_000_000.0 / rate as f64
    };
    let start_ms = now_ms();
    let started = Instant::now();
    // Unlimited: large writes; rate-limited: 10 ms worth per write, so the input is steady.
    let chunk = if rate == 0 {
        40_000u64
    } else {
        (rate / 100).max(100)
    };
    let mut seq = 0u64;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while seq < n {
        let end = (seq + chunk).min(n);
        let mut per_part: Vec<Vec<OutRecord>> = (0..parts).map(|_| Vec::new()).collect();
        for i in seq..end {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ad = (x % (CAMPAIGNS * ADS_PER_CAMPAIGN) as u64) as usize;
            let ty = EVENT_TYPES[((x >> 32) % 3) as usize];
            let t = start_ms + (i as f64 * event_spacing_us.unwrap_or(spacing_us) / 1000.0) as i64;
            let rec = OutRecord {
                timestamp_ms: Some(t),
                ..OutRecord::value(Bytes::from(event_json(i, ad, ty, t)))
            };
            per_part[(i % parts as u64) as usize].push(rec);
        }
        for (p, recs) in per_part.into_iter().enumerate() {
            if !recs.is_empty() {
                log.write(topic, p as i32, recs)?;
            }
        }
        seq = end;
        if rate > 0 {
            let due = Duration::from_micros((seq as f64 * spacing_us) as u64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "generated {n} events into {topic} in {secs:.1} s ({:.0} events/s)",
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run(
    brokers: &str,
    input: &str,
    output: &str,
    batch_ms: u64,
    stop_when_idle: Option<u64>,
    watermark_ms: i64,
    job_id: &str,
    max_records_per_partition: Option<u64>,
) -> Result<()> {
    let mut config = StreamConfig::new(brokers, job_id);
    config.stop_when_idle = stop_when_idle.map(Duration::from_millis);
    config.max_records_per_partition = max_records_per_partition;
    let ssc = StreamingContext::new(config, Duration::from_millis(batch_ms))?;
    ssc.log()
        .ensure_topic(output, ssc.log().partitions(input)?, &[])?;
    let table = Arc::new(ad_table());
    let views = ssc.topic_stream(&[input])?.map_partitions(move |records| {
        let table = table.clone();
        records.filter_map(move |r| {
            let e = parse(r.value.as_deref()?)?;
            if e.event_type != "view" {
                return None;
            }
            // The join with the static ad -> campaign table (a map-side hash join).
            let campaign = *table.get(e.ad_id)?;
            Some((campaign, (e.event_time, 1u64)))
        })
    });
    let counts = views.reduce_by_key_and_event_window(
        |_, (t, _)| *t,
        EventTimeSpec::tumbling(WINDOW_MS, watermark_ms),
        |a, b| (a.0.max(b.0), a.1 + b.1),
    )?;
    counts.to_topic(output, |(w, campaign, (_, n))| {
        let campaign = campaign_id(usize::from(campaign));
        let value = format!(
            r#"{{"campaign_id":"{campaign}","window_start":{},"window_end":{},"count":{n}}}"#,
            w.start_ms, w.end_ms
        );
        OutRecord::new(format!("{campaign}@{}", w.start_ms), value)
    })?;
    ssc.start()?;
    let summary = ssc.await_termination()?;
    eprintln!("ysb run: {summary}");
    Ok(())
}

fn check(brokers: &str, input: &str, output: &str) -> Result<()> {
    let bc = BatchContext::new(brokers, None)?;
    let table = Arc::new(ad_table());
    let expected: BTreeMap<(String, i64), u64> = bc
        .read_topic(input, Bound::Earliest, Bound::Latest)?
        .flat_map(move |r| {
            let e = r
                .value
                .as_deref()
                .and_then(parse)
                .filter(|e| e.event_type == "view");
            e.and_then(|e| {
                Some((
                    (
                        campaign_id(usize::from(*table.get(e.ad_id)?)),
                        window_start(e.event_time),
                    ),
                    1u64,
                ))
            })
        })
        .reduce_by_key(|a, b| a + b)
        .collect()?
        .into_iter()
        .collect();
    let rows = bc
        .read_topic(output, Bound::Earliest, Bound::Latest)?
        .collect()?;
    let mut got: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in rows {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_deref().unwrap_or_default())
            .with_context(|| {
            format!(
                "output record at {}-{} offset {} is not JSON",
                r.topic, r.partition, r.offset
            )
        })?;
        let key = (
            v["campaign_id"].as_str().unwrap_or_default().to_string(),
            v["window_start"].as_i64().unwrap_or(-1),
        );
        let n = v["count"].as_u64().unwrap_or(0);
        if let Some(prev) = got.insert(key.clone(), n) {
            problems.push(format!(
                "duplicate result for {} window {}: {prev} and {n}",
                key.0, key.1
            ));
        }
    }
    for (k, n) in &expected {
        match got.get(k) {
            None => problems.push(format!(
                "missing result for {} window {} (expected {n})",
                k.0, k.1
            )),
            Some(g) if g != n => problems.push(format!(
                "wrong count for {} window {}: got {g}, expected {n}",
                k.0, k.1
            )),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!("unexpected result for {} window {}", k.0, k.1));
    }
    let total: u64 = expected.values().sum();
    if problems.is_empty() {
        println!(
            "ysb check: OK: {} (campaign, window) results, {total} views",
            expected.len()
        );
        Ok(())
    } else {
        for p in problems.iter().take(20) {
            eprintln!("ysb check: {p}");
        }
        bail!(
            "ysb check failed: {} problems over {} expected results",
            problems.len(),
            expected.len()
        )
    }
}
