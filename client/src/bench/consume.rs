//! Consumer tasks. [`RawConsumer`] keeps one round of Fetches (one per leader) in flight ahead
//! of the round it is checking, `--fetch-bytes` per partition, every batch's CRC checked and
//! every record walked (as a real consumer does), offsets advanced by the batches received; an
//! answer is applied only to the position it was asked for. [`run_library`] drives the
//! library's [`Consumer::poll`]. With `e2e`, each record's value carries its send time ([`read_stamp`]) and
//! the task records the produce-to-consume latency.
//!
//! A task stops when the run's deadline passes, when the shared `--count` is used up, or when it
//! has reached the target end offsets of its partitions (known from the start with `consume`, and
//! once the producers finish with `e2e`). Records still missing `DRAIN_TIMEOUT_MS` after the
//! targets are known are counted as failed, never silently dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::record::{BatchError, BatchIter, RecordBatch};
use sluice_protocol::wire::error_code::ErrorCode;
use tokio::sync::watch;

use super::error::BenchError;
use super::limits::{CONSECUTIVE_FAILURES_MAX, DRAIN_TIMEOUT_MS};
use super::payload::{now_us, read_stamp};
use super::settings::Settings;
use super::stats::{Live, TaskStats};
use super::Timeline;
use crate::cluster::{Client, FetchParams, FetchPartition, FetchedPartition};
use crate::config::ConsumerConfig;
use crate::consumer::decode::next_offset;
use crate::consumer::{Consumer, SeekTo};
use crate::error::{ClientError, KafkaCode};

/// End offsets per partition that consumers read up to, once known.
pub type Targets = watch::Receiver<Option<Arc<HashMap<i32, i64>>>>;

/// What a consumer task is asked to do.
#[derive(Debug, Clone)]
pub struct ConsumerTask {
    /// The run's settings.
    pub settings: Arc<Settings>,
    /// This task's number.
    pub index: usize,
    /// (partition, first offset to read).
    pub starts: Vec<(i32, i64)>,
    /// Where to stop reading.
    pub targets: Targets,
    /// Stop at this time (`--duration` with `consume`).
    pub deadline: Option<Instant>,
    /// Records the consumers still have to read (`--count` with `consume`), shared by all.
    pub remaining: Option<Arc<AtomicI64>>,
    /// Count records as missing when targets are not reached this long after they are known.
    pub drain: Option<Duration>,
    /// The run's phases.
    pub timeline: Timeline,
    /// Progress counters.
    pub live: Arc<Live>,
}

/// Tracks a task's positions against its stop conditions.
struct Progress {
    positions: Vec<(i32, i64)>,
    targets_seen: Option<(Arc<HashMap<i32, i64>>, Instant)>,
}

enum Verdict {
    Continue,
    Stop,
    /// Give up: these records never arrived.
    GiveUp(u64),
}

impl Progress {
    fn check(&mut self, task: &mut ConsumerTask, now: Instant) -> Verdict {
        if task.deadline.is_some_and(|d| now >= d)
            || task
                .remaining
                .as_ref()
                .is_some_and(|r| r.load(Ordering::Relaxed) <= 0)
        {
            return Verdict::Stop;
        }
        if self.targets_seen.is_none() {
            if let Some(t) = task.targets.borrow_and_update().clone() {
                self.targets_seen = Some((t, now));
            }
        }
        let Some((targets, seen)) = &self.targets_seen else {
            return Verdict::Continue;
        };
        let missing: u64 = self
            .positions
            .iter()
            .map(|(p, pos)| (targets.get(p).copied().unwrap_or(0) - pos).max(0) as u64)
            .sum();
        if missing == 0 {
            return Verdict::Stop;
        }
        match task.drain {
            Some(d) if now.duration_since(*seen) >= d => Verdict::GiveUp(missing),
            _ => Verdict::Continue,
        }
    }

    fn unfinished(&self) -> Vec<(i32, i64)> {
        self.positions
            .iter()
            .filter(|(p, pos)| self.short_of_target(*p, *pos))
            .copied()
            .collect()
    }

    fn short_of_target(&self, partition: i32, position: i64) -> bool {
        match &self.targets_seen {
            Some((t, _)) => t.get(&partition).is_some_and(|end| position < *end),
            None => true,
        }
    }
}

/// What one received batch held.
#[derive(Default)]
struct Tally {
    measured: u64,
    measured_bytes: u64,
    warmup: u64,
    warmup_bytes: u64,
}

/// Walks one batch's records from `position` on, counting them and their latencies.
fn walk(
    batch: &RecordBatch,
    position: i64,
    task: &ConsumerTask,
    now: Instant,
    now_us: u64,
    stats: &mut TaskStats,
) -> Result<Tally, BatchError> {
    let e2e = task.settings.workload == super::Workload::E2e;
    let received_measured = now >= task.timeline.measure_start;
    let mut t = Tally::default();
    // A borrowed walk: the fields are slices of the section, nothing reference-counted per record.
    let section = batch.decode()?;
    for record in &section {
        let record = record?;
        if record.offset() < position {
            continue;
        }
        let value = record.value().unwrap_or(&[]);
        let measured = if e2e {
            match read_stamp(value) {
                Some(sent) if sent >= task.timeline.measure_start_us => {
                    stats.e2e.record_us(now_us.saturating_sub(sent), 1);
                    true
                }
                _ => false,
            }
        } else {
            received_measured
        };
        if measured {
            t.measured += 1;
            t.measured_bytes += value.len() as u64;
        } else {
            t.warmup += 1;
            t.warmup_bytes += value.len() as u64;
        }
    }
    Ok(t)
}

fn settle(stats: &mut TaskStats, task: &ConsumerTask, t: &Tally, now: Instant, wire_bytes: u64) {
    task.live
        .consumed(t.measured + t.warmup, t.measured_bytes + t.warmup_bytes);
    stats.warmup_records += t.warmup;
    if t.measured > 0 {
        stats.records += t.measured;
        stats.bytes += t.measured_bytes;
        stats.wire_bytes += wire_bytes;
        stats.batches += 1;
        stats.last = stats.last.max(Some(now));
        if let Some(r) = &task.remaining {
            r.fetch_sub(t.measured as i64, Ordering::Relaxed);
        }
    }
}

/// A connected raw consumer: its own client and the leader of each partition.
#[derive(Debug)]
pub struct RawConsumer {
    client: Client,
    leaders: HashMap<i32, i32>,
}

impl RawConsumer {
    /// Looks up the leaders of `partitions`.
    pub async fn connect(
        client: Client,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Self, BenchError> {
        let mut leaders = HashMap::new();
        for &p in partitions {
            leaders.insert(p, client.leader(topic, p).await?);
        }
        Ok(RawConsumer { client, leaders })
    }

    /// Fetches until the task is done; returns what it measured.
    pub async fn run(self, mut task: ConsumerTask) -> TaskStats {
        let s = task.settings.clone();
        let mut stats = TaskStats::default();
        let mut progress = Progress {
            positions: task.starts.clone(),
            targets_seen: None,
        };
        let topic: Arc<str> = Arc::from(s.topic.as_str());
        let n_parts = progress.positions.len().max(1) as i64;
        let params = FetchParams {
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: (i64::from(s.fetch_partition_bytes) * n_parts).min(64 << 20) as i32,
            isolation_level: 0,
        };
        let mut failures_in_row = 0u32;
        let mut prefetched: Option<Round> = None;
        tokio::time::sleep_until(task.timeline.start.into()).await;
        loop {
            match progress.check(&mut task, Instant::now()) {
                Verdict::Continue => {}
                Verdict::Stop => break,
                Verdict::GiveUp(missing) => {
                    stats.fail("records acknowledged to producers but not consumed within the drain timeout", missing);
                    task.live.failed(missing);
                    break;
                }
            }
            if failures_in_row >= CONSECUTIVE_FAILURES_MAX {
                break;
            }
            let round = match prefetched.take() {
                Some(round) => round,
                None => self.start_round(&topic, &progress.unfinished(), params, &s),
            };
            let asked = round.positions;
            let mut responses = Vec::with_capacity(round.handles.len());
            for handle in round.handles {
                responses.push(match handle.await {
                    Ok(response) => response.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("fetch task ended: {e}")),
                });
            }
            // Ask for what follows before checking and walking these batches, as real consumers
            // do: the broker sends the next response while this one is verified.
            let mut next = positions_after(&progress.unfinished(), &responses);
            next.retain(|&(p, pos)| progress.short_of_target(p, pos));
            if !next.is_empty() {
                prefetched = Some(self.start_round(&topic, &next, params, &s));
            }
            for response in responses {
                let (now, now_us) = (Instant::now(), now_us());
                let fetched = match response {
                    Ok(f) => f,
                    Err(e) => {
                        stats.fail(&format!("fetch: {e}"), 0);
                        failures_in_row += 1;
                        continue;
                    }
                };
                failures_in_row = 0;
                for fp in fetched {
                    let Some(slot) = progress
                        .positions
                        .iter_mut()
                        .find(|(p, _)| *p == fp.partition)
                    else {
                        continue;
                    };
                    if !asked.contains(&(fp.partition, slot.1)) {
                        // A prefetched round asked for a position this task has since left (an
                        // out-of-range reset below): its answer is stale.
                        continue;
                    }
                    if fp.error_code == ErrorCode::OFFSET_OUT_OF_RANGE.0
                        && fp.log_start_offset > slot.1
                    {
                        // Retention removed records before they were read: go on from the
                        // oldest left, as a consumer with auto.offset.reset=earliest does.
                        slot.1 = fp.log_start_offset;
                        continue;
                    }
                    if fp.error_code != 0 {
                        stats.fail(
                            &format!(
                                "fetch partition {}: {}",
                                fp.partition,
                                KafkaCode(fp.error_code)
                            ),
                            0,
                        );
                        failures_in_row += 1;
                        continue;
                    }
                    'chunks: for chunk in fp.records {
                        for batch in BatchIter::new(chunk) {
                            let batch = match batch {
                                Ok(b) => b,
                                Err(BatchError::Incomplete { .. }) => break 'chunks,
                                Err(e) => {
                                    stats.fail(
                                        &format!(
                                            "corrupt batch in partition {} at offset {}: {e}",
                                            fp.partition, slot.1
                                        ),
                                        0,
                                    );
                                    failures_in_row = CONSECUTIVE_FAILURES_MAX;
                                    break 'chunks;
                                }
                            };
                            if batch.last_offset() < slot.1 {
                                continue;
                            }
                            match walk(&batch, slot.1, &task, now, now_us, &mut stats) {
                                Ok(t) => {
                                    settle(&mut stats, &task, &t, now, batch.total_bytes() as u64)
                                }
                                Err(e) => {
                                    stats.fail(
                                        &format!(
                                            "corrupt record in partition {}: {e}",
                                            fp.partition
                                        ),
                                        0,
                                    );
                                    failures_in_row = CONSECUTIVE_FAILURES_MAX;
                                    break 'chunks;
                                }
                            }
                            slot.1 = batch.last_offset() + 1;
                        }
                    }
                }
            }
        }
        for handle in prefetched.into_iter().flat_map(|r| r.handles) {
            handle.abort();
        }
        stats
    }

    /// Sends one Fetch to each leader of `positions`' partitions; the responses come back through
    /// the returned handles, one per leader.
    fn start_round(
        &self,
        topic: &Arc<str>,
        positions: &[(i32, i64)],
        params: FetchParams,
        s: &Settings,
    ) -> Round {
        let mut by_node: Vec<(i32, Vec<FetchPartition>)> = Vec::new();
        for &(p, pos) in positions {
            let node = self.leaders.get(&p).copied().unwrap_or(-1);
            let fp = FetchPartition {
                topic: topic.clone(),
                partition: p,
                fetch_offset: pos,
                log_start_offset: -1,
                partition_max_bytes: s.fetch_partition_bytes,
            };
            match by_node.iter_mut().find(|(n, _)| *n == node) {
                Some((_, v)) => v.push(fp),
                None => by_node.push((node, vec![fp])),
            }
        }
        let handles = by_node
            .into_iter()
            .map(|(node, parts)| {
                let client = self.client.clone();
                tokio::spawn(async move { client.fetch(node, params, parts).await })
            })
            .collect();
        Round {
            positions: positions.to_vec(),
            handles,
        }
    }
}

/// The Fetch requests of one round, one per leader, in flight, and the positions they ask for.
struct Round {
    positions: Vec<(i32, i64)>,
    handles: Vec<tokio::task::JoinHandle<Result<Vec<FetchedPartition>, ClientError>>>,
}

/// Where each partition of `positions` stands once the complete batches in `responses` are
/// consumed: a header-only walk (the CRC check and the record walk come after), stopping where
/// the full walk stops, at an error code, a partial or a malformed batch.
fn positions_after(
    positions: &[(i32, i64)],
    responses: &[Result<Vec<FetchedPartition>, String>],
) -> Vec<(i32, i64)> {
    let mut next = positions.to_vec();
    for fp in responses.iter().flatten().flatten() {
        if fp.error_code != 0 {
            continue;
        }
        if let Some(slot) = next.iter_mut().find(|(p, _)| *p == fp.partition) {
            slot.1 = next_offset(&fp.records, slot.1);
        }
    }
    next
}

/// The library consumer's settings for a task.
pub fn library_config(s: &Settings, client: crate::config::ClientConfig) -> ConsumerConfig {
    let mut c = ConsumerConfig::new("");
    c.client = client;
    c.max_partition_fetch_bytes = s.fetch_partition_bytes;
    c.fetch_max_bytes = c.fetch_max_bytes.max(s.fetch_partition_bytes);
    c.fetch_max_wait = Duration::from_millis(100);
    // Retention may remove the oldest records while the run reads them: go on from the oldest
    // left, like the raw consumer.
    c.auto_offset_reset = Some(crate::config::OffsetReset::Earliest);
    c
}

/// Polls a library [`Consumer`] (already assigned and positioned) until the task is done.
pub async fn run_library(mut consumer: Consumer, mut task: ConsumerTask) -> TaskStats {
    let s = task.settings.clone();
    let e2e = s.workload == super::Workload::E2e;
    let mut stats = TaskStats::default();
    let mut progress = Progress {
        positions: task.starts.clone(),
        targets_seen: None,
    };
    let mut failures_in_row = 0u32;
    tokio::time::sleep_until(task.timeline.start.into()).await;
    loop {
        for (p, pos) in progress.positions.iter_mut() {
            if let Some(now_at) = consumer.position(&s.topic, *p) {
                *pos = now_at;
            }
        }
        match progress.check(&mut task, Instant::now()) {
            Verdict::Continue => {}
            Verdict::Stop => break,
            Verdict::GiveUp(missing) => {
                stats.fail(
                    "records acknowledged to producers but not consumed within the drain timeout",
                    missing,
                );
                task.live.failed(missing);
                break;
            }
        }
        if failures_in_row >= CONSECUTIVE_FAILURES_MAX {
            break;
        }
        let records = match consumer.poll(Duration::from_millis(100)).await {
            Ok(r) => {
                failures_in_row = 0;
                r
            }
            Err(e) => {
                stats.fail(&format!("poll: {e}"), 0);
                failures_in_row += 1;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        let (now, now_us) = (Instant::now(), now_us());
        let received_measured = now >= task.timeline.measure_start;
        let mut t = Tally::default();
        for r in &records {
            let value = r.value.as_deref().unwrap_or(&[]);
            let measured = if e2e {
                match read_stamp(value) {
                    Some(sent) if sent >= task.timeline.measure_start_us => {
                        stats.e2e.record_us(now_us.saturating_sub(sent), 1);
                        true
                    }
                    _ => false,
                }
            } else {
                received_measured
            };
            if measured {
                t.measured += 1;
                t.measured_bytes += value.len() as u64;
            } else {
                t.warmup += 1;
                t.warmup_bytes += value.len() as u64;
            }
        }
        settle(&mut stats, &task, &t, now, 0);
    }
    stats
}

/// Assigns a library consumer to the task's partitions at their start offsets.
pub async fn library_consumer(
    client: Client,
    s: &Settings,
    starts: &[(i32, i64)],
) -> Result<Consumer, BenchError> {
    let config = library_config(s, client.config().clone());
    let mut consumer = Consumer::with_client(client, config)?;
    let parts: Vec<(String, i32)> = starts.iter().map(|(p, _)| (s.topic.clone(), *p)).collect();
    consumer.assign(&parts).await?;
    for &(p, offset) in starts {
        consumer.seek(&s.topic, p, SeekTo::Offset(offset)).await?;
    }
    Ok(consumer)
}

/// How long e2e consumers wait for the last records once the producers are done.
pub fn drain_timeout() -> Duration {
    Duration::from_millis(DRAIN_TIMEOUT_MS)
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use sluice_protocol::record::{set_base_offset, BatchOptions, RecordBatchBuilder};

    use super::*;

    fn batch(base: i64, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        for i in 0..n {
            b.append(i as i64, None, Some(b"value"), &[]).unwrap();
        }
        let mut bytes = BytesMut::from(&b.finish().unwrap()[..]);
        set_base_offset(&mut bytes, base).unwrap();
        bytes.freeze()
    }

    fn fetched(partition: i32, error_code: i16, records: Vec<Bytes>) -> FetchedPartition {
        FetchedPartition {
            topic: "t".into(),
            partition,
            error_code,
            high_watermark: 100,
            log_start_offset: 0,
            records,
        }
    }

    #[test]
    fn the_next_fetch_starts_where_the_full_walk_will_stop() {
        let mut chunk = BytesMut::new();
        chunk.extend_from_slice(&batch(0, 3));
        chunk.extend_from_slice(&batch(3, 2));
        let tail = batch(5, 4);
        chunk.extend_from_slice(&tail[..tail.len() - 7]);
        let responses = vec![
            Ok(vec![
                // Batches before the position are skipped; a partial tail is fetched again.
                fetched(0, 0, vec![chunk.freeze()]),
                // An error leaves the partition where it was.
                fetched(1, 6, vec![batch(10, 2)]),
            ]),
            Err("fetch: connection reset".to_string()),
        ];
        let next = positions_after(&[(0, 1), (1, 10), (2, 7)], &responses);
        assert_eq!(next, vec![(0, 5), (1, 10), (2, 7)]);
    }
}
