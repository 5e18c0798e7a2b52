//! `sluice bench`: load generation and measurement against any Kafka-compatible broker, in the
//! spirit of kafka-producer-perf-test and iggy-bench.
//!
//! [`run`] takes validated [`Settings`], makes sure the topic exists (creating it with
//! `--partitions` and `--topic-config`), connects every task with its own [`Client`] (so each
//! producer and consumer has its own TCP connection), then starts them together on one
//! [`Timeline`]: a warm-up that no figure counts, then the measured phase, ended by `--count` or
//! `--duration`. It returns a [`Report`] with records/s, MB/s, batch round-trip latency
//! percentiles (HdrHistogram), produce-to-consume latency for `e2e`, and every failure counted.
//!
//! Two client paths ([`Api`]): `raw` builds batches with `RecordBatchBuilder` and sends Produce /
//! Fetch requests through [`Client`]'s pipelined connection layer (measuring the broker, with a
//! client that costs one copy of each value and one CRC per batch); `library` drives
//! [`crate::Producer`] and [`crate::Consumer`] (measuring what an application gets).
//!
//! **Invariant**: nothing on the hot path allocates per record: values are windows into a
//! [`payload::Payload`] generated once per task, histograms record per batch (producers) or per
//! record into preallocated buckets (e2e consumers), and counters are plain integers merged at the
//! end (progress reads a few relaxed atomics bumped once per batch).

pub mod consume;
pub mod error;
pub mod limits;
pub mod pacer;
pub mod payload;
pub mod produce;
pub mod report;
pub mod settings;
pub mod stats;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::BenchError;
pub use report::{Report, Side};
pub use settings::{Api, Settings, Stop, Workload};
pub use stats::{LatencySummary, Live, TaskStats};

use crate::admin::{Admin, NewTopic};
use crate::cluster::Client;
use crate::config::ClientConfig;
use crate::error::{AdminError, ClientError};
use consume::{ConsumerTask, RawConsumer};
use produce::{ProducerTask, RawProducer};

/// When the phases of a run begin and end; shared by every task.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Traffic starts.
    pub start: Instant,
    /// Warm-up ends and measuring begins.
    pub measure_start: Instant,
    /// The same moment in microseconds since the Unix epoch (compared with record stamps).
    pub measure_start_us: u64,
    /// Producers send nothing new from here (`--duration`).
    pub send_until: Option<Instant>,
}

/// Earliest / latest offset in ListOffsets.
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

fn client_config(s: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new(&s.brokers);
    c.client_id = "sluice-bench".to_string();
    c.request_timeout = s.request_timeout;
    c.connect_timeout = s.request_timeout.min(Duration::from_secs(10));
    c
}

/// Makes sure the topic exists (creating it when this run produces) and returns its partition
/// count.
async fn ensure_topic(client: &Client, s: &Settings) -> Result<i32, BenchError> {
    match client.topic(&s.topic).await {
        Ok(t) => return Ok(t.partitions.len() as i32),
        Err(ClientError::UnknownTopic(_)) if s.workload.produces() => {}
        Err(ClientError::UnknownTopic(_)) => {
            return Err(BenchError::NothingToConsume(s.topic.clone()))
        }
        Err(e) => return Err(e.into()),
    }
    let mut topic = NewTopic::new(&s.topic, s.partitions);
    topic.configs = s.topic_configs.clone();
    let admin = Admin::with_client(client.clone());
    match admin.create_topic(&topic).await {
        Ok(()) => {}
        // Created meanwhile by someone else (TOPIC_ALREADY_EXISTS): use it.
        Err(AdminError::Client(ClientError::Broker { code, .. })) if code.0 == 36 => {}
        Err(e) => return Err(e.into()),
    }
    client.invalidate(&s.topic);
    Ok(client.topic(&s.topic).await?.partitions.len() as i32)
}

async fn offsets(
    client: &Client,
    topic: &str,
    partitions: i32,
    which: i64,
) -> Result<HashMap<i32, i64>, BenchError> {
    let mut out = HashMap::new();
    for p in 0..partitions {
        out.insert(p, client.offset_for_timestamp(topic, p, which).await?);
    }
    Ok(out)
}

/// `total` split into `parts` shares, the first ones one larger.
fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts.max(1) as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

async fn join_all(handles: Vec<JoinHandle<TaskStats>>) -> Result<TaskStats, BenchError> {
    let mut total = TaskStats::default();
    for h in handles {
        let stats = h.await.map_err(|e| BenchError::Task(e.to_string()))?;
        total.merge(&stats);
    }
    Ok(total)
}

/// Runs one benchmark; `live` receives progress as it goes.
pub async fn run(settings: Settings, live: Arc<Live>) -> Result<Report, BenchError> {
    settings.validate()?;
    let began = Instant::now();
    let s = Arc::new(settings);
    let config = client_config(&s);
    let control = Client::connect(config.clone()).await?;
    let partitions = ensure_topic(&control, &s).await?;

    // Where consumers start, and (for consume) where they stop.
    let (starts, initial_targets) = match s.workload {
        Workload::Produce => (HashMap::new(), None),
        Workload::E2e => (offsets(&control, &s.topic, partitions, LATEST).await?, None),
        Workload::Consume => {
            let starts = offsets(&control, &s.topic, partitions, EARLIEST).await?;
            let ends = offsets(&control, &s.topic, partitions, LATEST).await?;
            let available: i64 = ends
                .iter()
                .map(|(p, e)| e - starts.get(p).copied().unwrap_or(0))
                .sum();
            if available <= 0 {
                return Err(BenchError::NothingToConsume(s.topic.clone()));
            }
            if let Stop::Count(n) = s.stop {
                if n > available as u64 {
                    return Err(BenchError::Settings(format!(
                        "--count: topic {} holds only {available} records; lower --count or produce more",
                        s.topic
                    )));
                }
            }
            let targets = (!matches!(s.stop, Stop::Duration(_))).then(|| Arc::new(ends));
            (starts, targets)
        }
    };
    let (targets_tx, targets_rx) = watch::channel(initial_targets);

    // Connect every task before the clock starts.
    let mut raw_producers = Vec::new();
    let mut lib_producers = Vec::new();
    if s.workload.produces() {
        for i in 0..s.producers {
            let parts = s.partitions_of(i, s.producers, partitions);
            let client = Client::connect(config.clone()).await?;
            match s.api {
                Api::Raw => raw_producers.push((
                    i,
                    parts.clone(),
                    RawProducer::connect(client, &s.topic, &parts).await?,
                )),
                Api::Library => {
                    let c = produce::library_config(&s, config.clone());
                    lib_producers.push((i, parts, crate::Producer::with_client(client, c).await?));
                }
            }
        }
    }
    let mut raw_consumers = Vec::new();
    let mut lib_consumers = Vec::new();
    if s.workload.consumes() {
        for i in 0..s.consumers {
            let parts = s.partitions_of(i, s.consumers, partitions);
            let task_starts: Vec<(i32, i64)> = parts
                .iter()
                .map(|p| (*p, starts.get(p).copied().unwrap_or(0)))
                .collect();
            let client = Client::connect(config.clone()).await?;
            match s.api {
                Api::Raw => raw_consumers.push((
                    i,
                    task_starts,
                    RawConsumer::connect(client, &s.topic, &parts).await?,
                )),
                Api::Library => {
                    let c = consume::library_consumer(client, &s, &task_starts).await?;
                    lib_consumers.push((i, task_starts, c));
                }
            }
        }
    }

    let start = Instant::now() + Duration::from_millis(10);
    let measure_start = start + s.warmup;
    let timeline = Timeline {
        start,
        measure_start,
        measure_start_us: payload::now_us()
            + measure_start
                .saturating_duration_since(Instant::now())
                .as_micros() as u64,
        send_until: match s.stop {
            Stop::Duration(d) => Some(measure_start + d),
            _ => None,
        },
    };
    let remaining = match (s.workload, s.stop) {
        (Workload::Consume, Stop::Count(n)) => Some(Arc::new(AtomicI64::new(n as i64))),
        _ => None,
    };
    let consumer_task = |index: usize, starts: Vec<(i32, i64)>| ConsumerTask {
        settings: s.clone(),
        index,
        starts,
        targets: targets_rx.clone(),
        deadline: match (s.workload, s.stop) {
            (Workload::Consume, Stop::Duration(d)) => Some(measure_start + d),
            _ => None,
        },
        remaining: remaining.clone(),
        drain: (s.workload == Workload::E2e).then(consume::drain_timeout),
        timeline,
        live: live.clone(),
    };
    let mut consumers = Vec::new();
    for (i, st, c) in raw_consumers {
        consumers.push(tokio::spawn(c.run(consumer_task(i, st))));
    }
    for (i, st, c) in lib_consumers {
        consumers.push(tokio::spawn(consume::run_library(c, consumer_task(i, st))));
    }
    let producer_task = |index: usize, partitions: Vec<i32>| ProducerTask {
        settings: s.clone(),
        index,
        partitions,
        quota: match s.stop {
            Stop::Count(n) => Some(share(n, s.producers, index)),
            _ => None,
        },
        rate: s.rate.map(|r| share(r, s.producers, index).max(1)),
        timeline,
        live: live.clone(),
    };
    let mut producers = Vec::new();
    for (i, parts, p) in raw_producers {
        producers.push(tokio::spawn(p.run(producer_task(i, parts))));
    }
    for (i, parts, p) in lib_producers {
        producers.push(tokio::spawn(produce::run_library(
            p,
            producer_task(i, parts),
        )));
    }

    let produced = join_all(producers).await?;
    if s.workload == Workload::E2e {
        let ends = offsets(&control, &s.topic, partitions, LATEST).await?;
        let _ = targets_tx.send(Some(Arc::new(ends)));
    }
    let consumed = join_all(consumers).await?;
    let latency_e2e = consumed.e2e.summary();
    Ok(Report {
        partitions,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        produce: s
            .workload
            .produces()
            .then(|| Side::new(&produced, measure_start)),
        consume: s
            .workload
            .consumes()
            .then(|| Side::new(&consumed, measure_start)),
        e2e_latency: latency_e2e,
        elapsed: began.elapsed(),
        settings: Arc::unwrap_or_clone(s),
    })
}
