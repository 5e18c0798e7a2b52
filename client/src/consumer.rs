//! The consumer: read assigned partitions, or a bounded offset range.
//!
//! ```text
//! let mut consumer = Consumer::new(ConsumerConfig::new("127.0.0.1:9092")).await?;
//! consumer.assign(&[("orders".to_string(), 0)]).await?;
//! consumer.seek("orders", 0, SeekTo::Beginning).await?;
//! loop {
//!     for record in consumer.poll(Duration::from_millis(500)).await? { /* ... */ }
//! }
//! // The stream engine reads exact ranges: records with offsets in [100, 200).
//! let records = consumer.read_range("orders", 0, 100, 200).await?;
//! ```
//!
//! `poll` keeps one Fetch request in flight per leader broker covering every assigned partition it
//! leads. When a response arrives its records are decoded without copying ([`decode`]), the
//! positions advance, and the next fetch is sent *before* the records are returned, so the broker
//! prepares the next batch while the caller processes this one (prefetch). A `seek` bumps the
//! partition's epoch so a fetch already in flight from the old position is discarded. Leader
//! changes (NOT_LEADER_OR_FOLLOWER, connection loss) refresh metadata and the next poll fetches
//! from the new leader. The high watermark and log start offset of every fetched partition are
//! kept, for [`Consumer::lag`] and [`Consumer::at_end`].

pub mod decode;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cluster::{Client, FetchParams, FetchPartition, FetchedPartition};
use crate::config::{ConsumerConfig, OffsetReset};
use crate::error::{ClientError, ConsumeError, KafkaCode};
use crate::message::ConsumerRecord;
use decode::{decode_records, next_offset};

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// The earliest stored offset.
    Beginning,
    /// The high watermark: only records written from now on.
    End,
    /// An absolute offset.
    Offset(i64),
    /// `n` records before the end (clamped to the beginning).
    BeforeEnd(i64),
    /// The first record whose timestamp is at or after this one (ms); the end if none is.
    Timestamp(i64),
}

impl From<OffsetReset> for SeekTo {
    fn from(reset: OffsetReset) -> SeekTo {
        match reset {
            OffsetReset::Earliest => SeekTo::Beginning,
            OffsetReset::Latest => SeekTo::End,
        }
    }
}

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

#[derive(Debug)]
struct PartitionState {
    topic: Arc<str>,
    partition: i32,
    position: Option<i64>,
    pending_seek: Option<SeekTo>,
    high_watermark: Option<i64>,
    log_start_offset: Option<i64>,
    epoch: u64,
    fetching: bool,
    /// Not fetched until the next seek: its last fetch failed for good (out of range without a
    /// reset policy, a corrupt batch, a broker error that retrying will not fix).
    halted: bool,
}

/// A partition's fetched chunks not decoded yet: (slot, fetch offset, chunks).
type Undecoded = (usize, i64, Vec<bytes::Bytes>);

struct FetchDone {
    node: i32,
    /// (key, fetch offset, epoch) of each partition in the request.
    sent: Vec<(usize, i64, u64)>,
    result: Result<Vec<FetchedPartition>, ClientError>,
}

/// A consumer of manually assigned partitions.
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    partitions: Vec<PartitionState>,
    index: HashMap<(Arc<str>, i32), usize>,
    done_tx: mpsc::UnboundedSender<FetchDone>,
    done_rx: mpsc::UnboundedReceiver<FetchDone>,
    in_flight_nodes: Vec<i32>,
    /// A partition's failure found while other partitions' records were taken: returned by the
    /// next `poll`, after those records, so none are lost.
    deferred_error: Option<ConsumeError>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Connects to the cluster.
    pub async fn new(config: ConsumerConfig) -> Result<Consumer, ConsumeError> {
        config.validate().map_err(ClientError::from)?;
        let client = Client::connect(config.client.clone()).await?;
        Self::with_client(client, config)
    }

    /// A consumer sharing an existing client's connections.
    pub fn with_client(client: Client, config: ConsumerConfig) -> Result<Consumer, ConsumeError> {
        config.validate().map_err(ClientError::from)?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Ok(Consumer {
            client,
            config,
            partitions: Vec::new(),
            index: HashMap::new(),
            done_tx,
            done_rx,
            in_flight_nodes: Vec::new(),
            deferred_error: None,
        })
    }

    /// The client this consumer talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The partition numbers of `topic`.
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<i32>, ConsumeError> {
        let t = self.client.topic(topic).await?;
        Ok(t.partitions.iter().map(|p| p.partition).collect())
    }

    /// Replaces the assignment with these (topic, partition) pairs. New partitions start at the
    /// beginning until [`Consumer::seek`] moves them; partitions kept keep their position.
    pub async fn assign(&mut self, partitions: &[(String, i32)]) -> Result<(), ConsumeError> {
        let mut next = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let info = self.client.topic(topic).await?;
            if *partition < 0 || *partition as usize >= info.partitions.len() {
                return Err(ClientError::UnknownPartition {
                    topic: topic.clone(),
                    partition: *partition,
                    count: info.partitions.len(),
                }
                .into());
            }
            let existing = self
                .index
                .get(&(Arc::from(topic.as_str()), *partition))
                .map(|&i| &self.partitions[i]);
            next.push(match existing {
                Some(p) => PartitionState {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    position: p.position,
                    pending_seek: p.pending_seek,
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                    epoch: p.epoch + 1,
                    fetching: false,
                    halted: p.halted,
                },
                None => PartitionState {
                    topic: Arc::from(topic.as_str()),
                    partition: *partition,
                    position: None,
                    pending_seek: Some(SeekTo::Beginning),
                    high_watermark: None,
                    log_start_offset: None,
                    epoch: 0,
                    fetching: false,
                    halted: false,
                },
            });
        }
        self.index = next
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.topic.clone(), p.partition), i))
            .collect();
        self.partitions = next;
        // Fetches in flight refer to the old assignment: forget them.
        self.in_flight_nodes.clear();
        let (tx, rx) = mpsc::unbounded_channel();
        self.done_tx = tx;
        self.done_rx = rx;
        Ok(())
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.partitions
            .iter()
            .map(|p| (p.topic.to_string(), p.partition))
            .collect()
    }

    fn slot(&self, topic: &str, partition: i32) -> Result<usize, ConsumeError> {
        self.index
            .get(&(Arc::from(topic), partition))
            .copied()
            .ok_or_else(|| ConsumeError::NotAssigned {
                topic: topic.to_string(),
                partition,
            })
    }

    /// Moves an assigned partition's position; resolved against the broker right away.
    pub async fn seek(
        &mut self,
        topic: &str,
        partition: i32,
        to: SeekTo,
    ) -> Result<(), ConsumeError> {
        let i = self.slot(topic, partition)?;
        let p = &mut self.partitions[i];
        p.epoch += 1;
        p.fetching = false;
        p.halted = false;
        p.pending_seek = Some(to);
        p.position = None;
        self.resolve_seeks().await
    }

    /// The next offset `poll` returns for a partition, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        let i = self.slot(topic, partition).ok()?;
        self.partitions[i].position
    }

    /// The high watermark last seen for a partition (from fetch responses or a seek).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let i = self.slot(topic, partition).ok()?;
        self.partitions[i].high_watermark
    }

    /// The log start offset last seen for a partition.
    pub fn log_start_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let i = self.slot(topic, partition).ok()?;
        self.partitions[i].log_start_offset
    }

    /// Records between the position and the high watermark, once both are known.
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        let i = self.slot(topic, partition).ok()?;
        let p = &self.partitions[i];
        Some((p.high_watermark? - p.position?).max(0))
    }

    /// True when every assigned partition's position has reached its high watermark.
    pub fn at_end(&self) -> bool {
        self.partitions
            .iter()
            .all(|p| match (p.position, p.high_watermark) {
                (Some(pos), Some(hw)) => pos >= hw,
                _ => false,
            })
    }

    async fn resolve_seeks(&mut self) -> Result<(), ConsumeError> {
        for i in 0..self.partitions.len() {
            let Some(to) = self.partitions[i].pending_seek else {
                continue;
            };
            let topic = self.partitions[i].topic.clone();
            let partition = self.partitions[i].partition;
            let offsets = |ts| self.client.offset_for_timestamp(&topic, partition, ts);
            let (position, hw) = match to {
                SeekTo::Offset(o) => (o, None),
                SeekTo::Beginning => (offsets(EARLIEST).await?, None),
                SeekTo::End => {
                    let end = offsets(LATEST).await?;
                    (end, Some(end))
                }
                SeekTo::BeforeEnd(n) => {
                    let end = offsets(LATEST).await?;
                    let start = offsets(EARLIEST).await?;
                    (end.saturating_sub(n.max(0)).max(start), Some(end))
                }
                SeekTo::Timestamp(ts) => {
                    let o = offsets(ts.max(0)).await?;
                    if o < 0 {
                        let end = offsets(LATEST).await?;
                        (end, Some(end))
                    } else {
                        (o, None)
                    }
                }
            };
            let p = &mut self.partitions[i];
            p.position = Some(position);
            p.pending_seek = None;
            if hw.is_some() {
                p.high_watermark = hw;
            }
        }
        Ok(())
    }

    /// Returns the next records of the assigned partitions, waiting up to `timeout` for some.
    /// An empty vector means none arrived in time.
    ///
    /// A position out of the partition's range (retention removed it, or a seek went past the end)
    /// moves to the beginning or the end when [`ConsumerConfig::auto_offset_reset`] says so, and is
    /// returned as [`ConsumeError::OffsetOutOfRange`] otherwise. A partition that fails stops being
    /// fetched until it is sought; the others go on, and records already fetched from them are
    /// returned before the error.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.deferred_error.take() {
                return Err(e);
            }
            self.resolve_seeks().await?;
            self.launch_fetches().await?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let done = match tokio::time::timeout(deadline - now, self.done_rx.recv()).await {
                Ok(Some(done)) => done,
                Ok(None) | Err(_) => return Ok(Vec::new()),
            };
            let undecoded = self.complete_fetch(done);
            // Prefetch: the next fetch goes out before these records are decoded and processed.
            self.launch_fetches().await?;
            let mut out = Vec::new();
            self.decode(undecoded, &mut out);
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Sends a fetch to every leader with no fetch in flight. Fails only when a partition can no
    /// longer be read at all (its topic or partition is gone); a missing leader is retried.
    async fn launch_fetches(&mut self) -> Result<(), ConsumeError> {
        let mut by_node: HashMap<i32, Vec<usize>> = HashMap::new();
        for (i, p) in self.partitions.iter().enumerate() {
            if p.fetching || p.halted || p.position.is_none() {
                continue;
            }
            let leader = match self.client.cached_leader(&p.topic, p.partition) {
                Some(l) => l,
                None => match self.client.leader(&p.topic, p.partition).await {
                    Ok(l) => l,
                    Err(
                        e @ (ClientError::UnknownTopic(_) | ClientError::UnknownPartition { .. }),
                    ) => return Err(e.into()),
                    Err(e) => {
                        tracing::debug!(topic = %p.topic, partition = p.partition, error = %e, "no leader yet");
                        continue;
                    }
                },
            };
            if self.in_flight_nodes.contains(&leader) {
                continue;
            }
            by_node.entry(leader).or_default().push(i);
        }
        for (node, slots) in by_node {
            let params = FetchParams {
                max_wait_ms: self.config.fetch_max_wait.as_millis() as i32,
                min_bytes: self.config.fetch_min_bytes,
                max_bytes: self.config.fetch_max_bytes,
                isolation_level: i8::from(self.config.read_committed),
            };
            let mut partitions = Vec::with_capacity(slots.len());
            let mut sent = Vec::with_capacity(slots.len());
            for i in slots {
                let p = &mut self.partitions[i];
                let offset = p.position.unwrap_or(0);
                p.fetching = true;
                partitions.push(FetchPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    fetch_offset: offset,
                    log_start_offset: -1,
                    partition_max_bytes: self.config.max_partition_fetch_bytes,
                });
                sent.push((i, offset, p.epoch));
            }
            self.in_flight_nodes.push(node);
            let client = self.client.clone();
            let tx = self.done_tx.clone();
            tokio::spawn(async move {
                let result = client.fetch(node, params, partitions).await;
                let _ = tx.send(FetchDone { node, sent, result });
            });
        }
        Ok(())
    }

    /// Applies a fetch response: errors, high watermarks, new positions. Returns what to decode:
    /// (slot, fetch offset, chunks) per partition with data. A partition's failure halts that
    /// partition and is kept for the next `poll` ([`Self::defer`]).
    fn complete_fetch(&mut self, done: FetchDone) -> Vec<Undecoded> {
        let mut to_decode = Vec::new();
        self.in_flight_nodes.retain(|&n| n != done.node);
        let responses = match done.result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(node = done.node, error = %e, "fetch failed; refreshing metadata");
                self.client.node_failed(done.node);
                let retriable = e.is_retriable();
                for (i, _, epoch) in done.sent {
                    if let Some(p) = self.partitions.get_mut(i) {
                        if p.epoch == epoch {
                            p.fetching = false;
                            p.halted = !retriable;
                        }
                    }
                }
                if !retriable {
                    self.defer(e.into());
                }
                return to_decode;
            }
        };
        let reset_to = self.config.auto_offset_reset.map(SeekTo::from);
        let mut failed = Vec::new();
        for (i, fetch_offset, epoch) in done.sent {
            let Some(p) = self.partitions.get_mut(i) else {
                continue;
            };
            if p.epoch != epoch || p.position != Some(fetch_offset) {
                continue; // a seek happened since: this data is stale
            }
            p.fetching = false;
            let Some(r) = responses
                .iter()
                .find(|r| r.partition == p.partition && *r.topic == *p.topic)
            else {
                continue;
            };
            match r.error_code {
                0 => {}
                1 => match reset_to {
                    Some(to) => {
                        tracing::info!(
                            topic = %p.topic,
                            partition = p.partition,
                            offset = fetch_offset,
                            log_start = r.log_start_offset,
                            high_watermark = r.high_watermark,
                            ?to,
                            "offset out of range; resetting"
                        );
                        p.epoch += 1;
                        p.position = None;
                        p.pending_seek = Some(to);
                        continue;
                    }
                    None => {
                        p.halted = true;
                        failed.push(ConsumeError::OffsetOutOfRange {
                            topic: p.topic.to_string(),
                            partition: p.partition,
                            offset: fetch_offset,
                            start: r.log_start_offset,
                            end: r.high_watermark,
                        });
                        continue;
                    }
                },
                code => {
                    let code = KafkaCode(code);
                    if code.refreshes_metadata() || code.is_retriable() {
                        self.client.invalidate(&p.topic);
                        continue;
                    }
                    p.halted = true;
                    failed.push(
                        ClientError::Broker {
                            code,
                            context: format!("fetch {}/{}", p.topic, p.partition),
                        }
                        .into(),
                    );
                    continue;
                }
            }
            if r.high_watermark >= 0 {
                p.high_watermark = Some(r.high_watermark);
            }
            if r.log_start_offset >= 0 {
                p.log_start_offset = Some(r.log_start_offset);
            }
            // Advance past the whole batches now (headers only), so the next fetch can go out
            // before these records are decoded.
            p.position = Some(next_offset(&r.records, fetch_offset));
            to_decode.push((i, fetch_offset, r.records.clone()));
        }
        for e in failed {
            self.defer(e);
        }
        to_decode
    }

    /// Keeps a partition's failure for the next `poll` (the first one, when several fail).
    fn defer(&mut self, e: ConsumeError) {
        match &self.deferred_error {
            None => self.deferred_error = Some(e),
            Some(_) => tracing::warn!(error = %e, "partition fetch failed"),
        }
    }

    /// Decodes fetched chunks into `out`. On a corrupt batch, the partition's position goes back
    /// to it (discarding the prefetch already sent past it), the partition halts, and the error
    /// waits for the next `poll` while the other partitions' records are returned.
    fn decode(&mut self, undecoded: Vec<Undecoded>, out: &mut Vec<ConsumerRecord>) {
        let check_crcs = self.config.check_crcs;
        let mut failed = Vec::new();
        for (i, fetch_offset, chunks) in undecoded {
            let Some(p) = self.partitions.get_mut(i) else {
                continue;
            };
            if let Err(e) = decode_records(
                &p.topic,
                p.partition,
                &chunks,
                fetch_offset,
                i64::MAX,
                check_crcs,
                out,
            ) {
                p.position = Some(e.offset);
                p.epoch += 1;
                p.fetching = false;
                p.halted = true;
                failed.push(ConsumeError::CorruptBatch {
                    topic: p.topic.to_string(),
                    partition: p.partition,
                    offset: e.offset,
                    reason: e.reason,
                });
            }
        }
        for e in failed {
            self.defer(e);
        }
    }

    /// Reads the records of `topic`/`partition` with offsets in `[from, until)`, independently of
    /// the assignment. Waits (long-polling) for offsets not yet written, up to the request timeout
    /// without progress. Gaps (compacted or aborted records) are skipped.
    pub async fn read_range(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> Result<Vec<ConsumerRecord>, ConsumeError> {
        read_range(&self.client, &self.config, topic, partition, from, until).await
    }
}

/// [`Consumer::read_range`] on a bare client, for callers (the stream engine's tasks) that hold
/// no consumer.
pub async fn read_range(
    client: &Client,
    config: &ConsumerConfig,
    topic: &str,
    partition: i32,
    from: i64,
    until: i64,
) -> Result<Vec<ConsumerRecord>, ConsumeError> {
    let topic_name: Arc<str> = Arc::from(topic);
    let mut out = Vec::new();
    let mut position = from;
    let mut last_progress = Instant::now();
    let patience = config.client.request_timeout;
    let mut failures = 0u32;
    while position < until {
        let leader = client.leader(topic, partition).await?;
        let params = FetchParams {
            max_wait_ms: config.fetch_max_wait.as_millis() as i32,
            min_bytes: 1,
            max_bytes: config.fetch_max_bytes,
            isolation_level: i8::from(config.read_committed),
        };
        let request = vec![FetchPartition {
            topic: topic_name.clone(),
            partition,
            fetch_offset: position,
            log_start_offset: -1,
            partition_max_bytes: config.max_partition_fetch_bytes,
        }];
        let responses = match client.fetch(leader, params, request).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() && failures < crate::limits::METADATA_RETRIES_MAX => {
                failures += 1;
                client.node_failed(leader);
                tokio::time::sleep(config.client.retry_backoff).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(r) = responses.into_iter().find(|r| r.partition == partition) else {
            return Err(ClientError::Protocol {
                addr: format!("node {leader}"),
                reason: format!("fetch response without {topic}/{partition}"),
            }
            .into());
        };
        match r.error_code {
            0 => {}
            1 => {
                return Err(ConsumeError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition,
                    offset: position,
                    start: r.log_start_offset,
                    end: r.high_watermark,
                })
            }
            code if KafkaCode(code).is_retriable()
                && failures < crate::limits::METADATA_RETRIES_MAX =>
            {
                failures += 1;
                client.invalidate(topic);
                tokio::time::sleep(config.client.retry_backoff).await;
                continue;
            }
            code => {
                return Err(ClientError::Broker {
                    code: KafkaCode(code),
                    context: format!("fetch {topic}/{partition}"),
                }
                .into())
            }
        }
        let decoded = decode_records(
            &topic_name,
            partition,
            &r.records,
            position,
            until,
            config.check_crcs,
            &mut out,
        )
        .map_err(|e| ConsumeError::CorruptBatch {
            topic: topic.to_string(),
            partition,
            offset: e.offset,
            reason: e.reason,
        })?;
        if decoded.next_offset > position {
            position = decoded.next_offset;
            last_progress = Instant::now();
        } else if r.high_watermark >= 0 && position >= r.high_watermark && r.high_watermark < until
        {
            // Waiting for records not written yet: the fetch long-polls; give up after patience.
            if last_progress.elapsed() > patience {
                return Err(ConsumeError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition,
                    offset: until,
                    start: r.log_start_offset,
                    end: r.high_watermark,
                });
            }
        } else if last_progress.elapsed() > patience {
            return Err(ClientError::Protocol {
                addr: format!("node {leader}"),
                reason: format!("no progress reading {topic}/{partition} at offset {position}"),
            }
            .into());
        }
    }
    Ok(out)
}
