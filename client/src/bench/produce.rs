//! Producer tasks. [`RawProducer`] builds each batch with `RecordBatchBuilder` from the task's
//! [`Payload`], in a buffer its `BatchBufferPool` reuses once the batch before it in that buffer
//! was sent and answered, and pipelines Produce requests (one batch each, `--in-flight` at once)
//! through [`Client::produce`]; [`run_library`] drives the library's [`Producer::send`] record by record.
//! Both stop at the task's quota or at the end of the measured phase, then wait for every request
//! in flight, so no record is left unaccounted for.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sluice_protocol::record::{BatchBufferPool, BatchOptions, Compression, RecordBatchBuilder};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::error::BenchError;
use super::limits::CONSECUTIVE_FAILURES_MAX;
use super::pacer::Pacer;
use super::payload::{now_us, Payload};
use super::settings::Settings;
use super::stats::{Live, TaskStats};
use super::Timeline;
use crate::cluster::{Client, ProducePartition};
use crate::config::{Acks, CompressionType, ProducerConfig};
use crate::error::KafkaCode;
use crate::limits::{BATCH_BYTES_MAX, BUFFER_MEMORY_BYTES_MAX};
use crate::message::ProducerRecord;
use crate::producer::{Delivery, Producer};

/// What a producer task is asked to do.
#[derive(Debug, Clone)]
pub struct ProducerTask {
    /// The run's settings.
    pub settings: Arc<Settings>,
    /// This task's number (seeds its payload).
    pub index: usize,
    /// The partitions it writes, round-robin, one batch at a time.
    pub partitions: Vec<i32>,
    /// Measured records to send, with `--count`.
    pub quota: Option<u64>,
    /// This task's share of `--rate`.
    pub rate: Option<u64>,
    /// The run's phases.
    pub timeline: Timeline,
    /// Progress counters.
    pub live: Arc<Live>,
}

impl ProducerTask {
    /// Whether the task should stop before sending more, given the measured records sent so far.
    fn done(&self, now: Instant, measured_sent: u64) -> bool {
        self.timeline.send_until.is_some_and(|t| now >= t)
            || self.quota.is_some_and(|q| measured_sent >= q)
    }

    /// Records in the next batch.
    fn batch_records(&self, measured: bool, measured_sent: u64) -> u64 {
        let full = self.settings.batch_size as u64;
        match self.quota {
            Some(q) if measured => full.min(q.saturating_sub(measured_sent)),
            _ => full,
        }
    }

    /// When the next batch of `n` records is due (now, unless paced).
    async fn wait_turn(&self, pacer: &mut Option<Pacer>, n: u64) -> Instant {
        match pacer {
            Some(p) => {
                let due = p.schedule(n);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        }
    }
}

fn codec(c: CompressionType) -> Compression {
    match c {
        CompressionType::None => Compression::None,
        CompressionType::Gzip => Compression::Gzip,
        CompressionType::Lz4 => Compression::Lz4,
    }
}

fn timeout_ms(settings: &Settings) -> i32 {
    settings.request_timeout.as_millis().min(i32::MAX as u128) as i32
}

/// A connected raw producer: its own client (connection) and the leader of each partition.
#[derive(Debug)]
pub struct RawProducer {
    client: Client,
    topic: Arc<str>,
    leaders: Vec<(i32, i32)>,
}

/// One finished produce request.
struct Sent {
    started: Instant,
    finished: Instant,
    measured: bool,
    records: u64,
    bytes: u64,
    wire_bytes: u64,
    result: Result<(), String>,
}

impl RawProducer {
    /// Connects and looks up the leaders of `partitions`.
    pub async fn connect(
        client: Client,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Self, BenchError> {
        let mut leaders = Vec::with_capacity(partitions.len());
        for &p in partitions {
            leaders.push((p, client.leader(topic, p).await?));
        }
        Ok(RawProducer {
            client,
            topic: Arc::from(topic),
            leaders,
        })
    }

    /// Sends batches until the task is done; returns what it measured.
    pub async fn run(self, task: ProducerTask) -> TaskStats {
        let s = task.settings.clone();
        let mut stats = TaskStats {
            unacknowledged_by_design: s.acks == Acks::None,
            ..TaskStats::default()
        };
        let mut payload = Payload::new(s.message_size, 0x5EED + task.index as u64);
        let options = BatchOptions {
            compression: codec(s.compression),
            ..BatchOptions::default()
        };
        let capacity = s.batch_bytes_estimate().min(BATCH_BYTES_MAX);
        let mut pacer = task.rate.map(|r| Pacer::new(r, task.timeline.start));
        let mut in_flight: JoinSet<Sent> = JoinSet::new();
        // Room for every batch in flight, the one being built and one the socket still holds.
        let mut buffers = BatchBufferPool::new(s.in_flight + 2);
        let (mut measured_sent, mut failures_in_row, mut next) = (0u64, 0u32, 0usize);
        tokio::time::sleep_until(task.timeline.start.into()).await;
        loop {
            if task.done(Instant::now(), measured_sent)
                || failures_in_row >= CONSECUTIVE_FAILURES_MAX
            {
                break;
            }
            let due = task.wait_turn(&mut pacer, s.batch_size as u64).await;
            let measured = due >= task.timeline.measure_start;
            let n = task.batch_records(measured, measured_sent);
            if measured {
                measured_sent += n;
            }
            let stamp = now_us();
            let mut builder = RecordBatchBuilder::in_buffer(options, buffers.take(capacity));
            let mut built = Ok(());
            for _ in 0..n {
                built = builder.append(
                    (stamp / 1000) as i64,
                    None,
                    Some(payload.next_value(stamp)),
                    &[],
                );
                if built.is_err() {
                    break;
                }
            }
            let batch = match built.and_then(|()| builder.finish_reusable()) {
                Ok((b, home)) => {
                    buffers.put_back(home);
                    b
                }
                Err(e) => {
                    stats.fail(&format!("cannot build a batch: {e}"), n);
                    task.live.failed(n);
                    break;
                }
            };
            let (partition, node) = self.leaders[next % self.leaders.len()];
            next += 1;
            while in_flight.len() >= s.in_flight {
                if let Some(done) = in_flight.join_next().await {
                    failures_in_row = account(&mut stats, &task, done, failures_in_row);
                }
            }
            let paced = pacer.is_some();
            let request = self.request(
                &s,
                node,
                partition,
                batch,
                n,
                measured,
                paced.then_some(due),
            );
            in_flight.spawn(request);
            while let Some(done) = in_flight.try_join_next() {
                failures_in_row = account(&mut stats, &task, done, failures_in_row);
            }
        }
        while let Some(done) = in_flight.join_next().await {
            failures_in_row = account(&mut stats, &task, done, failures_in_row);
        }
        if failures_in_row >= CONSECUTIVE_FAILURES_MAX {
            tracing::warn!(
                task = task.index,
                "producer stopped after {failures_in_row} failed requests in a row"
            );
        }
        stats
    }

    /// The future of one produce request; `due` is its scheduled time when paced.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        s: &Settings,
        node: i32,
        partition: i32,
        batch: Bytes,
        records: u64,
        measured: bool,
        due: Option<Instant>,
    ) -> impl std::future::Future<Output = Sent> + Send + 'static {
        let client = self.client.clone();
        let wire_bytes = batch.len() as u64;
        let bytes = records * s.message_size as u64;
        let part = ProducePartition {
            topic: self.topic.clone(),
            partition,
            records: batch,
        };
        let (acks, timeout) = (s.acks, timeout_ms(s));
        async move {
            let started = due.unwrap_or_else(Instant::now);
            let result = if acks == Acks::None {
                client
                    .produce_no_ack(node, vec![part])
                    .await
                    .map_err(|e| e.to_string())
            } else {
                match client
                    .produce(node, acks.as_i16(), timeout, vec![part])
                    .await
                {
                    Ok(r) => match r.iter().find(|r| r.partition == partition) {
                        Some(r) if r.error_code == 0 => Ok(()),
                        Some(r) => Err(format!(
                            "produce to partition {partition}: {}",
                            KafkaCode(r.error_code)
                        )),
                        None => Err(format!("the response left partition {partition} out")),
                    },
                    Err(e) => Err(e.to_string()),
                }
            };
            Sent {
                started,
                finished: Instant::now(),
                measured,
                records,
                bytes,
                wire_bytes,
                result,
            }
        }
    }
}

/// Counts one finished request; returns the updated run of consecutive failures.
fn account(
    stats: &mut TaskStats,
    task: &ProducerTask,
    done: Result<Sent, tokio::task::JoinError>,
    failures_in_row: u32,
) -> u32 {
    let sent = match done {
        Ok(s) => s,
        Err(e) => {
            // The request future panicked or was cancelled: its records are unaccounted for.
            stats.fail(
                &format!("request task failed: {e}"),
                task.settings.batch_size as u64,
            );
            return failures_in_row + 1;
        }
    };
    match sent.result {
        Ok(()) => {
            task.live.produced(sent.records, sent.bytes);
            if sent.measured {
                stats.records += sent.records;
                stats.bytes += sent.bytes;
                stats.wire_bytes += sent.wire_bytes;
                stats.batches += 1;
                stats.last = stats.last.max(Some(sent.finished));
                if !stats.unacknowledged_by_design {
                    stats.latency.record(sent.finished - sent.started);
                }
            } else {
                stats.warmup_records += sent.records;
            }
            0
        }
        Err(e) => {
            task.live.failed(sent.records);
            stats.fail(&e, sent.records);
            failures_in_row + 1
        }
    }
}

/// The library producer configured for a task: batches sized to `--batch-size` records.
pub fn library_config(s: &Settings, client: crate::config::ClientConfig) -> ProducerConfig {
    let mut c = ProducerConfig::new("");
    c.client = client;
    c.acks = s.acks;
    c.idempotence = s.idempotence && s.acks != Acks::None;
    c.batch_size = s.batch_bytes_estimate().clamp(1, BATCH_BYTES_MAX);
    c.max_in_flight = s.in_flight;
    c.compression = s.compression;
    c.buffer_memory = c
        .buffer_memory
        .max(c.batch_size.saturating_mul(s.in_flight + 2))
        .min(BUFFER_MEMORY_BYTES_MAX);
    c
}

/// A group of `--batch-size` records sent through the library, for the acknowledger.
struct Group {
    started: Instant,
    measured: bool,
    deliveries: Vec<Delivery>,
}

/// Sends records one by one with [`Producer::send`] (groups of `--batch-size` records go to one
/// partition; the group's latency runs from its first `send` to its last acknowledgement).
pub async fn run_library(producer: Producer, task: ProducerTask) -> TaskStats {
    let s = task.settings.clone();
    let (tx, rx) = mpsc::channel::<Group>(1024);
    let acker = tokio::spawn(acknowledge(rx, task.clone()));
    let mut stats = TaskStats {
        unacknowledged_by_design: s.acks == Acks::None,
        ..TaskStats::default()
    };
    let mut payload = Payload::new(s.message_size, 0x5EED + task.index as u64);
    let mut pacer = task.rate.map(|r| Pacer::new(r, task.timeline.start));
    let (mut measured_sent, mut next) = (0u64, 0usize);
    tokio::time::sleep_until(task.timeline.start.into()).await;
    'groups: loop {
        if task.done(Instant::now(), measured_sent) {
            break;
        }
        let due = task.wait_turn(&mut pacer, s.batch_size as u64).await;
        let measured = due >= task.timeline.measure_start;
        let n = task.batch_records(measured, measured_sent);
        if measured {
            measured_sent += n;
        }
        let partition = task.partitions[next % task.partitions.len()];
        next += 1;
        let stamp = now_us();
        let mut group = Group {
            started: if pacer.is_some() { due } else { Instant::now() },
            measured,
            deliveries: Vec::with_capacity(n as usize),
        };
        for _ in 0..n {
            let record = ProducerRecord::new(&s.topic, payload.next_value(stamp))
                .with_partition(partition)
                .with_timestamp((stamp / 1000) as i64);
            match producer.send(record).await {
                Ok(d) => {
                    group.deliveries.push(d);
                }
                Err(e) => {
                    task.live.failed(1);
                    stats.fail(&e.to_string(), 1);
                    if matches!(e, crate::ProduceError::Closed) {
                        let _ = tx.send(group).await;
                        break 'groups;
                    }
                }
            }
        }
        if tx.send(group).await.is_err() {
            break;
        }
    }
    drop(tx);
    if let Err(e) = producer.close().await {
        stats.errors.add(&format!("closing the producer: {e}"), 0);
    }
    match acker.await {
        Ok(acked) => stats.merge(&acked),
        Err(e) => stats.fail(&format!("acknowledger failed: {e}"), 0),
    }
    stats
}

async fn acknowledge(mut rx: mpsc::Receiver<Group>, task: ProducerTask) -> TaskStats {
    let mut stats = TaskStats::default();
    while let Some(group) = rx.recv().await {
        let (mut ok, mut failed) = (0u64, 0u64);
        for d in group.deliveries {
            match d.wait().await {
                Ok(_) => ok += 1,
                Err(e) => {
                    failed += 1;
                    stats.errors.add(&e.to_string(), 1);
                }
            }
        }
        let finished = Instant::now();
        let per_record = task.settings.message_size as u64;
        task.live.produced(ok, ok * per_record);
        if failed > 0 {
            task.live.failed(failed);
            stats.failed_records += failed;
            stats.failed_requests += 1;
        }
        if group.measured {
            stats.records += ok;
            stats.bytes += ok * per_record;
            stats.batches += 1;
            stats.last = stats.last.max(Some(finished));
            if task.settings.acks != Acks::None {
                stats.latency.record(finished - group.started);
            }
        } else {
            stats.warmup_records += ok;
        }
    }
    stats
}
