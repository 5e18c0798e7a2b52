//! The producer: `send` records, get acknowledgements.
//!
//! ```text
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092")).await?;
//! let delivery = producer.send(ProducerRecord::new("orders", b"hello").with_key(b"k")).await?;
//! let metadata = delivery.await?;           // RecordMetadata { partition, offset, .. }
//! producer.close().await?;                  // delivers everything accepted
//! ```
//!
//! `send` waits only for room in `buffer.memory`, then copies the record straight into its
//! partition's open batch ([`accumulator`]) and returns a [`Delivery`] to await (or drop). A
//! background sender task closes batches when full or after `linger.ms`, groups them by leader
//! into one Produce request per broker, and pipelines them (at most `max.in.flight` batches per
//! partition). With idempotence (the default) the producer gets a producer id from the broker
//! (InitProducerId) and numbers every batch, so retries after a timeout or a leader change are
//! deduplicated by the broker and never reorder. Retriable errors (connection loss,
//! NOT_LEADER_OR_FOLLOWER, ...) refresh metadata and retry with backoff until
//! `delivery.timeout.ms`; other errors fail the batch's deliveries.

pub mod accumulator;
pub mod outcome;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::cluster::{Client, ProduceInFlight, ProducePartition, ProduceResult};
use crate::config::{Acks, CompressionType, ProducerConfig};
use crate::error::{ClientError, KafkaCode, ProduceError};
use crate::limits::BATCH_BYTES_MAX;
use crate::message::ProducerRecord;
use crate::partitioner::{partition_for_key, StickyPartitioner};
use accumulator::{Accumulator, AccumulatorConfig, LazyNow, ProducerIdentity, ReadyBatch};
pub use outcome::{BatchAck, Delivery};

struct State {
    acc: Accumulator,
    sticky: StickyPartitioner,
    /// Partition counts of the topics sent to, and when each was read from the client's metadata
    /// cache: `send` looks a topic up there at most every [`PARTITION_COUNT_MAX_AGE`].
    partition_counts: FxHashMap<String, (i32, Instant)>,
}

/// How long `send` trusts a topic's partition count before asking the client's metadata cache
/// again (which refreshes it from the brokers by `metadata.max.age` or after errors). The age is
/// checked when a record opens or closes a batch, or names a partition past the count: the clock
/// is not read for every record.
const PARTITION_COUNT_MAX_AGE: Duration = Duration::from_secs(1);

struct Inner {
    client: Client,
    config: ProducerConfig,
    state: Mutex<State>,
    memory: Semaphore,
    /// Wakes the sender: a batch was sealed or opened, a slot freed, a flush or close began.
    wake: Notify,
    closed: AtomicBool,
}

/// An asynchronous, batching, idempotent producer. Share it behind an `Arc` to send from many
/// tasks.
pub struct Producer {
    inner: Arc<Inner>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Connects to the cluster and, with idempotence, obtains a producer id.
    pub async fn new(config: ProducerConfig) -> Result<Producer, ProduceError> {
        config.validate().map_err(ClientError::from)?;
        let client = Client::connect(config.client.clone()).await?;
        Self::with_client(client, config).await
    }

    /// A producer sharing an existing client's connections.
    pub async fn with_client(
        client: Client,
        config: ProducerConfig,
    ) -> Result<Producer, ProduceError> {
        config.validate().map_err(ClientError::from)?;
        let identity = if config.idempotence {
            let (producer_id, producer_epoch) = client.init_producer_id().await?;
            ProducerIdentity {
                producer_id,
                producer_epoch,
            }
        } else {
            ProducerIdentity::NONE
        };
        let compression = match config.compression {
            CompressionType::None => sluice_protocol::record::Compression::None,
            CompressionType::Gzip => sluice_protocol::record::Compression::Gzip,
            CompressionType::Lz4 => sluice_protocol::record::Compression::Lz4,
        };
        let acc = Accumulator::new(
            AccumulatorConfig {
                batch_size: config.batch_size,
                linger: config.linger,
                max_in_flight: config.max_in_flight,
                compression,
            },
            identity,
        );
        let seed = now_ms() as u64 ^ (std::process::id() as u64) << 32;
        let inner = Arc::new(Inner {
            client,
            memory: Semaphore::new(config.buffer_memory),
            config,
            state: Mutex::new(State {
                acc,
                sticky: StickyPartitioner::new(seed),
                partition_counts: FxHashMap::default(),
            }),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let sender = tokio::spawn(sender_loop(inner.clone()));
        Ok(Producer {
            inner,
            sender: Mutex::new(Some(sender)),
        })
    }

    /// The client this producer talks through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Accepts a record for sending: waits for room in `buffer.memory`, picks the partition
    /// (explicit, else murmur2 of the key, else sticky), appends it to the partition's batch and
    /// returns its [`Delivery`].
    pub async fn send(&self, record: ProducerRecord<'_>) -> Result<Delivery, ProduceError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ProduceError::Closed);
        }
        let size = record.estimated_bytes();
        if size > BATCH_BYTES_MAX.min(inner.config.buffer_memory) {
            return Err(ProduceError::RecordTooLarge {
                bytes: size,
                max: BATCH_BYTES_MAX.min(inner.config.buffer_memory),
            });
        }
        let permit = inner
            .memory
            .acquire_many(size as u32)
            .await
            .map_err(|_| ProduceError::Closed)?;
        permit.forget();
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        let mut now = LazyNow::unread();
        loop {
            match self.append(&record, size, timestamp_ms, &mut now) {
                Ok(Some(delivery)) => return Ok(delivery),
                Ok(None) => {}
                Err(e) => {
                    inner.memory.add_permits(size);
                    return Err(e);
                }
            }
            // The topic's partition count is unknown or stale: ask the client's metadata cache.
            let n = match inner.client.topic(record.topic).await {
                Ok(topic) => topic.partitions.len() as i32,
                Err(e) => {
                    inner.memory.add_permits(size);
                    return Err(e.into());
                }
            };
            let mut state = inner.state.lock().map_err(|_| ProduceError::Closed)?;
            state
                .partition_counts
                .insert(record.topic.to_string(), (n, now.get()));
        }
    }

    /// Under the state lock: picks the partition and appends the record to its batch; `None` if
    /// the topic's partition count must be (re)read first. On error the caller returns the
    /// record's `buffer.memory` charge.
    fn append(
        &self,
        record: &ProducerRecord<'_>,
        size: usize,
        timestamp_ms: i64,
        now: &mut LazyNow,
    ) -> Result<Option<Delivery>, ProduceError> {
        let inner = &self.inner;
        let mut state = inner.state.lock().map_err(|_| ProduceError::Closed)?;
        // The count's age is checked where the clock is read anyway (a record opening or closing
        // a batch), not for every record: a count goes stale at most a batch late.
        let Some(&(n_partitions, read)) = state.partition_counts.get(record.topic) else {
            return Ok(None);
        };
        let stale = |now: &mut LazyNow| {
            now.get().saturating_duration_since(read) >= PARTITION_COUNT_MAX_AGE
        };
        let partition = match (record.partition, record.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, n_partitions),
            (None, None) => state.sticky.partition(record.topic, n_partitions),
        };
        if partition < 0 || partition >= n_partitions {
            if stale(now) {
                // The partition may have been added since the count was read.
                state.partition_counts.remove(record.topic);
                return Ok(None);
            }
            return Err(ClientError::UnknownPartition {
                topic: record.topic.to_string(),
                partition,
                count: n_partitions as usize,
            }
            .into());
        }
        let appended = state.acc.append(
            record.topic,
            partition,
            timestamp_ms,
            record.key,
            record.value,
            record.headers,
            size,
            now,
        )?;
        if appended.closed_batch && record.key.is_none() && record.partition.is_none() {
            state
                .sticky
                .batch_closed(record.topic, partition, n_partitions);
        }
        // The record opened or closed a batch: the sender has work, and the clock was read (or
        // is worth reading) to age the count.
        let batch_edge = appended.closed_batch || appended.index == 0;
        if batch_edge && stale(now) {
            state.partition_counts.remove(record.topic);
        }
        drop(state);
        if batch_edge {
            inner.wake.notify_one();
        }
        Ok(Some(Delivery {
            outcome: appended.outcome,
            index: appended.index,
            timestamp_ms,
        }))
    }

    /// Sends every record accepted so far now (without waiting for `linger.ms`) and waits until
    /// each is acknowledged or failed. Records sent concurrently after the call began are not
    /// waited for.
    pub async fn flush(&self) {
        let outcomes = match self.inner.state.lock() {
            Ok(mut s) => s.acc.seal_all(),
            Err(_) => return,
        };
        self.inner.wake.notify_one();
        for outcome in outcomes {
            outcome.wait().await;
        }
    }

    /// Refuses new records, delivers everything accepted, and stops the sender task.
    pub async fn close(&self) -> Result<(), ProduceError> {
        self.flush().await;
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        let handle = self.sender.lock().ok().and_then(|mut s| s.take());
        if let Some(h) = handle {
            let _ = h.await;
        }
        Ok(())
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // The sender finishes delivering what was accepted, then exits.
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

/// Per broker, the queue of produce requests its [`node_sender`] writes in order.
type NodeQueues = HashMap<i32, mpsc::UnboundedSender<Vec<ReadyBatch>>>;

async fn sender_loop(inner: Arc<Inner>) {
    let mut nodes = NodeQueues::new();
    loop {
        let closing = inner.closed.load(Ordering::Acquire);
        let flush = closing;
        let drained = match inner.state.lock() {
            Ok(mut s) => s
                .acc
                .drain_ready(Instant::now(), flush)
                .map(|(b, due)| (b, due, s.acc.is_empty())),
            Err(_) => return,
        };
        let (batches, next_due, empty) = match drained {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot seal a batch");
                (Vec::new(), None, false)
            }
        };
        if !batches.is_empty() {
            dispatch(&inner, batches, &mut nodes);
        }
        if closing && empty {
            return;
        }
        let wake = inner.wake.notified();
        match next_due {
            Some(due) if !flush => {
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {}
                }
            }
            _ => wake.await,
        }
    }
}

/// Groups batches by leader and queues one request per broker on that broker's
/// [`node_sender`]. Batches are drained in sequence order per partition, and each broker's
/// requests are written in queue order, so an idempotent producer's pipelined batches reach the
/// broker in sequence order (spawning a task per request would let them overtake each other and
/// be refused as OUT_OF_ORDER_SEQUENCE_NUMBER).
fn dispatch(inner: &Arc<Inner>, batches: Vec<ReadyBatch>, nodes: &mut NodeQueues) {
    // Per node, a list of requests; the n-th batch of a partition goes into the node's n-th
    // request, so each request holds at most one batch per partition (the response has one
    // base offset per partition) and a partition's batches go out in order.
    let mut by_node: Vec<(i32, Vec<Vec<ReadyBatch>>)> = Vec::new();
    // Batches of a partition whose leader is unknown wait together, in order: once one waits,
    // every later batch of its partition waits too, even if a metadata refresh lands meanwhile
    // (a later batch reaching the leader first would be refused as out of order, and the
    // earlier one after it too).
    let mut leaderless: Vec<ReadyBatch> = Vec::new();
    for batch in batches {
        let waiting = leaderless
            .iter()
            .any(|b| b.partition == batch.partition && *b.topic == *batch.topic);
        let leader = if waiting {
            None
        } else {
            inner.client.cached_leader(&batch.topic, batch.partition)
        };
        match leader {
            Some(node) => {
                let requests = match by_node.iter_mut().position(|(n, _)| *n == node) {
                    Some(i) => &mut by_node[i].1,
                    None => {
                        by_node.push((node, Vec::new()));
                        let last = by_node.len() - 1;
                        &mut by_node[last].1
                    }
                };
                let same_partition =
                    |b: &ReadyBatch| b.partition == batch.partition && *b.topic == *batch.topic;
                let slot = requests
                    .iter()
                    .position(|r| !r.iter().any(same_partition))
                    .unwrap_or(requests.len());
                if slot == requests.len() {
                    requests.push(Vec::new());
                }
                requests[slot].push(batch);
            }
            None => leaderless.push(batch),
        }
    }
    if !leaderless.is_empty() {
        wait_for_leaders(inner, leaderless);
    }
    for (node, requests) in by_node {
        for batches in requests {
            let queue = nodes.entry(node).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(node_sender(inner.clone(), node, rx));
                tx
            });
            if let Err(mpsc::error::SendError(batches)) = queue.send(batches) {
                // The node's sender is gone (it cannot be, while this loop holds its queue):
                // start a fresh one rather than lose the batches.
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(node_sender(inner.clone(), node, rx));
                let _ = tx.send(batches);
                nodes.insert(node, tx);
            }
        }
    }
}

/// Retries batches whose partition has no known leader (see [`retry_or_fail`]) and refreshes
/// the metadata of their topics meanwhile.
fn wait_for_leaders(inner: &Arc<Inner>, batches: Vec<ReadyBatch>) {
    let mut topics: Vec<Arc<str>> = Vec::new();
    let retries = batches
        .into_iter()
        .map(|batch| {
            if !topics.contains(&batch.topic) {
                topics.push(batch.topic.clone());
            }
            let reason = ClientError::NoLeader {
                topic: batch.topic.to_string(),
                partition: batch.partition,
            }
            .to_string();
            (batch, reason)
        })
        .collect();
    retry_or_fail(inner, retries);
    let inner = inner.clone();
    tokio::spawn(async move {
        for topic in topics {
            inner.client.invalidate(&topic);
            let _ = inner.client.topic(&topic).await;
        }
        inner.wake.notify_one();
    });
}

/// Writes one broker's produce requests in the order they were queued, without waiting for
/// responses in between (responses are awaited by a task per request). Ends when the sender
/// loop drops the queue.
async fn node_sender(
    inner: Arc<Inner>,
    node: i32,
    mut queue: mpsc::UnboundedReceiver<Vec<ReadyBatch>>,
) {
    while let Some(batches) = queue.recv().await {
        send_to_node(&inner, node, batches).await;
    }
}

async fn send_to_node(inner: &Arc<Inner>, node: i32, batches: Vec<ReadyBatch>) {
    let acks = inner.config.acks;
    let partitions: Vec<ProducePartition> = batches
        .iter()
        .map(|b| ProducePartition {
            topic: b.topic.clone(),
            partition: b.partition,
            records: b.data.clone(),
        })
        .collect();
    let timeout_ms = inner.config.client.request_timeout_ms();
    if acks == Acks::None {
        // Returns once written: in order with this node's other requests.
        let result = inner.client.produce_no_ack(node, partitions).await;
        for batch in batches {
            match &result {
                Ok(()) => finish(
                    inner,
                    batch,
                    Ok(BatchAck {
                        base_offset: -1,
                        log_append_time_ms: -1,
                    }),
                ),
                Err(e) => finish(inner, batch, Err(ProduceError::Client(e.clone()))),
            }
        }
        return;
    }
    let started = inner
        .client
        .start_produce(node, acks.as_i16(), timeout_ms, partitions)
        .await;
    let inner = inner.clone();
    tokio::spawn(async move {
        let result = match started {
            Ok(in_flight) => ProduceInFlight::wait(in_flight).await,
            Err(e) => Err(e),
        };
        on_produce_response(&inner, node, batches, result).await;
    });
}

/// Settles a Produce request's batches: acknowledged, retried, or failed for good.
async fn on_produce_response(
    inner: &Arc<Inner>,
    node: i32,
    batches: Vec<ReadyBatch>,
    result: Result<Vec<ProduceResult>, ClientError>,
) {
    match result {
        Err(e) => {
            inner.client.node_failed(node);
            if e.is_retriable() {
                let reason = e.to_string();
                let retries = batches.into_iter().map(|b| (b, reason.clone())).collect();
                retry_or_fail(inner, retries);
            } else {
                for batch in batches {
                    finish(inner, batch, Err(ProduceError::Client(e.clone())));
                }
            }
        }
        Ok(results) => {
            let mut retries = Vec::new();
            for batch in batches {
                let r = results
                    .iter()
                    .find(|r| r.partition == batch.partition && *r.topic == *batch.topic);
                let Some(r) = r else {
                    let reason = "the broker's response left the partition out".to_string();
                    retries.push((batch, reason));
                    continue;
                };
                let code = KafkaCode(r.error_code);
                // DUPLICATE_SEQUENCE_NUMBER: the broker already has this batch.
                if r.error_code == 0 || r.error_code == 46 {
                    let ack = BatchAck {
                        base_offset: r.base_offset,
                        log_append_time_ms: r.log_append_time_ms,
                    };
                    finish(inner, batch, Ok(ack));
                } else if code.is_retriable() || r.error_code == 45 {
                    if code.refreshes_metadata() {
                        inner.client.invalidate(&batch.topic);
                    }
                    let reason = format!("{}/{}: {code}", batch.topic, batch.partition);
                    retries.push((batch, reason));
                } else {
                    let context = format!("produce to {}/{}", batch.topic, batch.partition);
                    let e = ClientError::Broker { code, context };
                    if code.refused_before_append() {
                        if let Ok(mut s) = inner.state.lock() {
                            s.acc.rejected(&batch);
                        }
                    }
                    finish(inner, batch, Err(e.into()));
                }
            }
            if !retries.is_empty() {
                retry_or_fail(inner, retries);
            }
        }
    }
}

/// Fails batches whose `delivery.timeout.ms` has passed and puts the others back in their
/// partitions' queues, in sequence order, due again after the backoff. They go back at once, not
/// after the backoff: a partition whose first batch is not due yet sends nothing (the accumulator
/// drains in order), so no later batch can reach a new leader before a retried one and push it
/// out of the broker's duplicate window.
fn retry_or_fail(inner: &Arc<Inner>, batches: Vec<(ReadyBatch, String)>) {
    let timeout = inner.config.delivery_timeout;
    let mut retry = Vec::new();
    let mut attempts = 0;
    for (batch, reason) in batches {
        if batch.created.elapsed() >= timeout {
            let e = ProduceError::DeliveryTimeout {
                timeout_ms: timeout.as_millis() as u64,
                last: reason,
            };
            finish(inner, batch, Err(e));
        } else {
            tracing::debug!(topic = %batch.topic, partition = batch.partition,
                attempt = batch.attempts, %reason, "retrying batch");
            attempts = attempts.max(batch.attempts);
            retry.push(batch);
        }
    }
    if retry.is_empty() {
        return;
    }
    let backoff = inner
        .config
        .client
        .retry_backoff
        .saturating_mul(1 << attempts.min(4))
        .min(Duration::from_secs(1));
    let due = Instant::now() + backoff;
    match inner.state.lock() {
        Ok(mut s) => {
            for mut batch in retry {
                batch.retry_at = Some(due);
                s.acc.requeue(batch);
            }
        }
        Err(_) => {
            for batch in retry {
                finish(inner, batch, Err(ProduceError::Closed));
            }
        }
    }
    inner.wake.notify_one();
}

fn finish(inner: &Arc<Inner>, batch: ReadyBatch, result: Result<BatchAck, ProduceError>) {
    match result {
        Ok(ack) => batch.outcome.succeed(ack),
        Err(e) => batch.outcome.fail(e),
    }
    inner.memory.add_permits(batch.reserved_bytes);
    if let Ok(mut s) = inner.state.lock() {
        s.acc.complete(&batch.topic, batch.partition);
    }
    inner.wake.notify_one();
}
