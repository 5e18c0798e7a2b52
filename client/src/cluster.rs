//! [`Client`]: the cluster as the producer, consumer, admin client and group membership see it.
//!
//! It keeps one pipelined [`Connection`] per broker address, opened lazily, negotiated with
//! ApiVersions (the highest version both sides speak, [`versions`]) and reopened with a capped
//! exponential backoff after a failure; and a [`MetadataCache`] refreshed when entries age out
//! or are invalidated (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, a lost connection).
//! Every request has a timeout. [`Client::send_request`] is the general entry point (any
//! [`Request`] to a [`Target`]); the typed helpers below it (produce, fetch, list offsets,
//! InitProducerId) translate between the wire structs and the client's own small types.
//! `Client` is a cheap `Arc` handle: clone it to share connections.

pub mod versions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::wire::messages::api_versions::ApiVersionsRequest;
use sluice_protocol::wire::messages::fetch as wf;
use sluice_protocol::wire::messages::init_producer_id::InitProducerIdRequest;
use sluice_protocol::wire::messages::list_offsets as wl;
use sluice_protocol::wire::messages::metadata::{
    MetadataRequest, MetadataRequestTopic, MetadataResponse,
};
use sluice_protocol::wire::messages::produce as wp;
use sluice_protocol::wire::{
    decode_response, encode_request_frame, ApiKey, Request, RequestHeader, Response, ResponseFrame,
};

use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::{ClientError, KafkaCode};
use crate::limits::{METADATA_RETRIES_MAX, RECONNECT_BACKOFF_MS_MAX};
use crate::metadata::{BrokerInfo, MetadataCache, PartitionInfo, TopicInfo, TopicState};
use versions::Versions;

/// Where to send a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Any reachable broker (metadata, InitProducerId).
    Any,
    /// The broker with this node id.
    Node(i32),
    /// The controller (topic creation and deletion), or any broker if unknown.
    Controller,
    /// A broker by address (a group coordinator returned by FindCoordinator).
    Address(String),
}

/// How much longer than its `timeout_ms` to wait for a request the broker may hold that long
/// (an acks=all Produce, a DeleteRecords waiting for the replicas).
pub(crate) fn held_margin(timeout_ms: i32) -> Duration {
    Duration::from_millis(timeout_ms.max(0) as u64 / 10 + 1000)
}

/// One partition's batch(es) in a Produce request.
#[derive(Debug, Clone)]
pub struct ProducePartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Encoded record batches.
    pub records: Bytes,
}

/// One partition's answer to a Produce request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResult {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// 0 or a Kafka error code.
    pub error_code: i16,
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Append time under LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// The log start offset, -1 if not reported.
    pub log_start_offset: i64,
}

/// Request-wide settings of a Fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchParams {
    /// How long the broker may wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Bytes the broker waits for before answering.
    pub min_bytes: i32,
    /// Most bytes in the whole response.
    pub max_bytes: i32,
    /// 0 read uncommitted, 1 read committed.
    pub isolation_level: i8,
}

/// One partition to fetch.
#[derive(Debug, Clone)]
pub struct FetchPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// The follower's log start offset (-1 for consumers).
    pub log_start_offset: i64,
    /// Most bytes from this partition.
    pub partition_max_bytes: i32,
}

/// One partition's fetched data.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// 0 or a Kafka error code.
    pub error_code: i16,
    /// The high watermark.
    pub high_watermark: i64,
    /// The log start offset (-1 if not reported).
    pub log_start_offset: i64,
    /// Record batches, as slices of the response (may end with a partial batch).
    pub records: Vec<Bytes>,
}

/// One partition's answer to ListOffsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// 0 or a Kafka error code.
    pub error_code: i16,
    /// The offset found (-1 if none).
    pub offset: i64,
    /// Its timestamp (-1 if not applicable).
    pub timestamp: i64,
}

struct BrokerConnection {
    conn: Connection,
    versions: Versions,
}

/// The connection to one address, opened under its own async lock.
type ConnectionSlot = Arc<tokio::sync::Mutex<Option<Arc<BrokerConnection>>>>;

struct Inner {
    config: ClientConfig,
    metadata: Mutex<MetadataCache>,
    conns: Mutex<HashMap<String, ConnectionSlot>>,
    /// Per address: consecutive failures and when the next attempt may start.
    backoff: Mutex<HashMap<String, (u32, Instant)>>,
}

/// A handle on the cluster: connections and metadata. Clone it freely.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap", &self.inner.config.bootstrap)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain map updates).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// Validates the config and contacts a bootstrap broker to learn the cluster.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let client = Client {
            inner: Arc::new(Inner {
                config,
                metadata: Mutex::new(MetadataCache::default()),
                conns: Mutex::new(HashMap::new()),
                backoff: Mutex::new(HashMap::new()),
            }),
        };
        client.refresh_metadata(Some(&[])).await?;
        Ok(client)
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Every broker of the cluster, as last seen.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        lock(&self.inner.metadata).brokers()
    }

    async fn connection(&self, addr: &str) -> Result<Arc<BrokerConnection>, ClientError> {
        // One slot per address, so connecting to a dead broker never delays the others.
        let slot = lock(&self.inner.conns)
            .entry(addr.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.conn.is_closed() {
                return Ok(c.clone());
            }
            *slot = None;
        }
        let wait = lock(&self.inner.backoff)
            .get(addr)
            .map(|&(_, at)| at.saturating_duration_since(Instant::now()));
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            tokio::time::sleep(wait).await;
        }
        match self.open(addr).await {
            Ok(c) => {
                lock(&self.inner.backoff).remove(addr);
                let c = Arc::new(c);
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let mut backoff = lock(&self.inner.backoff);
                let entry = backoff
                    .entry(addr.to_string())
                    .or_insert((0, Instant::now()));
                entry.0 += 1;
                let ms = (self.inner.config.retry_backoff.as_millis() as u64)
                    .saturating_mul(1 << entry.0.min(10))
                    .min(RECONNECT_BACKOFF_MS_MAX);
                entry.1 = Instant::now() + Duration::from_millis(ms);
                Err(e)
            }
        }
    }

    async fn open(&self, addr: &str) -> Result<BrokerConnection, ClientError> {
        let config = &self.inner.config;
        let conn = Connection::connect(addr, config.connect_timeout).await?;
        // ApiVersions v2 is the newest non-flexible version; a broker that wants older answers
        // UNSUPPORTED_VERSION in the v0 layout with its ranges, which decode_response handles.
        let mut versions = Versions::default();
        for version in [2i16, 0] {
            let body = Self::encode(
                config,
                ApiKey::ApiVersions,
                version,
                &Request::ApiVersions(ApiVersionsRequest {}),
            )?;
            let bytes = conn.send(config.request_timeout, body).await?;
            let response = decode_response(ApiKey::ApiVersions, version, bytes).map_err(|e| {
                ClientError::Protocol {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                }
            })?;
            if let Response::ApiVersions(r) = response {
                versions = Versions::negotiate(&r);
                if r.error_code == 0 {
                    break;
                }
            }
        }
        if versions.pick(ApiKey::Metadata).is_none() {
            let (min, max) = ApiKey::Metadata.versions();
            return Err(ClientError::UnsupportedApi {
                addr: addr.to_string(),
                api: "Metadata",
                min,
                max,
            });
        }
        Ok(BrokerConnection { conn, versions })
    }

    fn encode(
        config: &ClientConfig,
        api_key: ApiKey,
        api_version: i16,
        request: &Request,
    ) -> Result<Vec<Bytes>, ClientError> {
        let header = RequestHeader {
            api_key: api_key.as_i16(),
            api_version,
            correlation_id: 0,
            client_id: Some(config.client_id.clone()),
        };
        let mut frame = ResponseFrame::new();
        encode_request_frame(&header, request, &mut frame).map_err(|e| ClientError::Protocol {
            addr: "(encoding)".to_string(),
            reason: e.to_string(),
        })?;
        Ok(frame.take_parts())
    }

    fn addresses(&self, target: &Target) -> Vec<String> {
        let cache = lock(&self.inner.metadata);
        let node_addr = |id: i32| cache.broker(id).map(|b| b.addr.clone());
        let mut out = Vec::new();
        match target {
            Target::Node(id) => out.extend(node_addr(*id)),
            Target::Address(a) => out.push(a.clone()),
            Target::Controller => {
                out.extend(cache.controller().and_then(node_addr));
            }
            Target::Any => {}
        }
        if matches!(target, Target::Any | Target::Controller) {
            out.extend(cache.brokers().into_iter().map(|b| b.addr));
            out.extend(self.inner.config.bootstrap.iter().cloned());
        }
        out
    }

    /// Sends `request` to `target` at the highest version both sides speak and returns the
    /// response. `extra_timeout` is added to the request timeout (a fetch's long-poll wait).
    /// With [`Target::Any`] / [`Target::Controller`], unreachable brokers are skipped.
    pub async fn send_request(
        &self,
        target: Target,
        request: Request,
        extra_timeout: Duration,
    ) -> Result<Response, ClientError> {
        let addrs = self.addresses(&target);
        if addrs.is_empty() {
            if let Target::Node(id) = target {
                return Err(ClientError::Protocol {
                    addr: format!("node {id}"),
                    reason: "the node is not in the cluster metadata".to_string(),
                });
            }
        }
        let mut last = None;
        for addr in &addrs {
            match self.send_to(addr, &request, extra_timeout).await {
                Ok(r) => return Ok(r),
                Err(e @ ClientError::Connection(_)) if addrs.len() > 1 => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(match last {
            Some(e) => ClientError::NoBrokerReachable {
                brokers: addrs.join(","),
                last: Box::new(e),
            },
            None => ClientError::NoBrokerReachable {
                brokers: self.inner.config.bootstrap.join(","),
                last: Box::new(ClientError::Closed),
            },
        })
    }

    async fn send_to(
        &self,
        addr: &str,
        request: &Request,
        extra_timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.start_to(addr, request, extra_timeout)
            .await?
            .wait()
            .await
    }

    /// Encodes `request` and queues it on `addr`'s connection without waiting for the response.
    async fn start_to(
        &self,
        addr: &str,
        request: &Request,
        extra_timeout: Duration,
    ) -> Result<InFlight, ClientError> {
        let config = &self.inner.config;
        let broker = self.connection(addr).await?;
        let api_key = request.api_key();
        let Some(version) = broker.versions.pick(api_key) else {
            let (min, max) = api_key.versions();
            return Err(ClientError::UnsupportedApi {
                addr: addr.to_string(),
                api: api_key.name(),
                min,
                max,
            });
        };
        let parts = Self::encode(config, api_key, version, request)?;
        let pending = broker.conn.enqueue(parts).await?;
        Ok(InFlight {
            pending,
            api_key,
            version,
            addr: addr.to_string(),
            timeout: config.request_timeout + extra_timeout,
        })
    }

    /// Queues `request` on `node`'s connection and returns once it is queued, in order with the
    /// caller's earlier requests to that node; [`InFlight::wait`] then awaits the response.
    pub async fn start_request(
        &self,
        node: i32,
        request: Request,
        extra_timeout: Duration,
    ) -> Result<InFlight, ClientError> {
        let Some(addr) = self.addresses(&Target::Node(node)).into_iter().next() else {
            return Err(ClientError::Protocol {
                addr: format!("node {node}"),
                reason: "the node is not in the cluster metadata".to_string(),
            });
        };
        self.start_to(&addr, &request, extra_timeout).await
    }

    /// Sends a request that gets no response (produce with acks=0) to a node.
    pub async fn send_without_response(
        &self,
        node: i32,
        request: Request,
    ) -> Result<(), ClientError> {
        let Some(addr) = self.addresses(&Target::Node(node)).into_iter().next() else {
            return Err(ClientError::Protocol {
                addr: format!("node {node}"),
                reason: "the node is not in the cluster metadata".to_string(),
            });
        };
        let broker = self.connection(&addr).await?;
        let api_key = request.api_key();
        let Some(version) = broker.versions.pick(api_key) else {
            let (min, max) = api_key.versions();
            return Err(ClientError::UnsupportedApi {
                addr,
                api: api_key.name(),
                min,
                max,
            });
        };
        let parts = Self::encode(&self.inner.config, api_key, version, &request)?;
        broker.conn.send_no_response(parts).await?;
        Ok(())
    }

    /// Fetches metadata for `topics` (`None`: every topic; `Some(&[])`: brokers only) and
    /// updates the cache. Returns the raw response.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<MetadataResponse, ClientError> {
        let request = MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic {
                        name: t.to_string(),
                    })
                    .collect()
            }),
            allow_auto_topic_creation: self.inner.config.allow_auto_topic_creation,
            ..Default::default()
        };
        let response = self
            .send_request(Target::Any, Request::Metadata(request), Duration::ZERO)
            .await?;
        let Response::Metadata(m) = response else {
            return Err(ClientError::Protocol {
                addr: "metadata".to_string(),
                reason: "response of the wrong type".to_string(),
            });
        };
        let brokers = m
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id,
                addr: format!("{}:{}", b.host, b.port),
            })
            .collect();
        let topics = m
            .topics
            .iter()
            .map(|t| {
                let state = if t.error_code != 0 {
                    TopicState::Error(t.error_code)
                } else {
                    let mut partitions: Vec<PartitionInfo> = t
                        .partitions
                        .iter()
                        .map(|p| PartitionInfo {
                            partition: p.partition_index,
                            leader: p.leader_id,
                            leader_epoch: p.leader_epoch,
                            replicas: p.replica_nodes.clone(),
                            isr: p.isr_nodes.clone(),
                            error_code: p.error_code,
                        })
                        .collect();
                    partitions.sort_by_key(|p| p.partition);
                    TopicState::Known(Arc::new(TopicInfo {
                        name: t.name.clone(),
                        partitions,
                        internal: t.is_internal,
                    }))
                };
                (t.name.clone(), state)
            })
            .collect();
        let controller = (m.controller_id >= 0).then_some(m.controller_id);
        lock(&self.inner.metadata).update(brokers, controller, topics, Instant::now());
        Ok(m)
    }

    /// The topic's metadata, from the cache when fresh, else refreshed (retrying while the
    /// broker reports no leader yet, as right after creation).
    pub async fn topic(&self, name: &str) -> Result<Arc<TopicInfo>, ClientError> {
        let max_age = self.inner.config.metadata_max_age;
        if let Some(TopicState::Known(t)) =
            lock(&self.inner.metadata).topic(name, Instant::now(), max_age)
        {
            return Ok(t.clone());
        }
        let mut attempt = 0;
        loop {
            self.refresh_metadata(Some(&[name])).await?;
            let state = lock(&self.inner.metadata).topic_any_age(name).cloned();
            match state {
                Some(TopicState::Known(t)) => {
                    let leaderless = t.partitions.iter().any(|p| p.leader < 0);
                    if !leaderless || attempt >= METADATA_RETRIES_MAX {
                        return Ok(t);
                    }
                }
                Some(TopicState::Error(3)) | None => {
                    return Err(ClientError::UnknownTopic(name.to_string()))
                }
                Some(TopicState::Error(code)) => {
                    let code = KafkaCode(code);
                    if !code.is_retriable() || attempt >= METADATA_RETRIES_MAX {
                        return Err(ClientError::Broker {
                            code,
                            context: format!("metadata for topic {name}"),
                        });
                    }
                }
            }
            attempt += 1;
            lock(&self.inner.metadata).invalidate(name);
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.inner.config.retry_backoff;
        base.saturating_mul(1 << attempt.min(4))
            .min(Duration::from_millis(RECONNECT_BACKOFF_MS_MAX))
    }

    /// The leader of a partition from the cache, if known and fresh.
    pub fn cached_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let max_age = self.inner.config.metadata_max_age;
        match lock(&self.inner.metadata).topic(topic, Instant::now(), max_age) {
            Some(TopicState::Known(t)) => t
                .partitions
                .get(partition as usize)
                .map(|p| p.leader)
                .filter(|&l| l >= 0),
            _ => None,
        }
    }

    /// The leader of a partition, refreshing metadata (with retries) when unknown.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        for attempt in 0..=METADATA_RETRIES_MAX {
            let t = self.topic(topic).await?;
            let Some(p) = t.partitions.get(partition as usize) else {
                return Err(ClientError::UnknownPartition {
                    topic: topic.to_string(),
                    partition,
                    count: t.partitions.len(),
                });
            };
            if p.leader >= 0 {
                return Ok(p.leader);
            }
            self.invalidate(topic);
            tokio::time::sleep(self.backoff(attempt)).await;
        }
        Err(ClientError::NoLeader {
            topic: topic.to_string(),
            partition,
        })
    }

    /// Marks a topic's metadata stale (a broker said its leader moved or it changed).
    pub fn invalidate(&self, topic: &str) {
        lock(&self.inner.metadata).invalidate(topic);
    }

    /// Forgets a topic (deleted).
    pub fn forget_topic(&self, topic: &str) {
        lock(&self.inner.metadata).remove(topic);
    }

    /// A request to `node` failed at the connection level: refresh what it leads.
    pub fn node_failed(&self, node: i32) {
        lock(&self.inner.metadata).invalidate_node(node);
    }

    /// Gets a producer id and epoch for an idempotent producer (InitProducerId).
    pub async fn init_producer_id(&self) -> Result<(i64, i16), ClientError> {
        let mut attempt = 0;
        loop {
            let request = Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
            });
            let response = self
                .send_request(Target::Any, request, Duration::ZERO)
                .await?;
            let Response::InitProducerId(r) = response else {
                return Err(wrong_type("InitProducerId"));
            };
            if r.error_code == 0 {
                return Ok((r.producer_id, r.producer_epoch));
            }
            let code = KafkaCode(r.error_code);
            if !code.is_retriable() || attempt >= METADATA_RETRIES_MAX {
                return Err(ClientError::Broker {
                    code,
                    context: "get a producer id (InitProducerId)".to_string(),
                });
            }
            attempt += 1;
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    fn produce_request(acks: i16, timeout_ms: i32, partitions: Vec<ProducePartition>) -> Request {
        let mut topic_data: Vec<wp::TopicProduceData> = Vec::new();
        for p in partitions {
            let data = wp::PartitionProduceData {
                index: p.partition,
                records: Some(p.records),
            };
            match topic_data.iter_mut().find(|t| *t.name == *p.topic) {
                Some(t) => t.partition_data.push(data),
                None => topic_data.push(wp::TopicProduceData {
                    name: p.topic.to_string(),
                    partition_data: vec![data],
                }),
            }
        }
        Request::Produce(wp::ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms,
            topic_data,
        })
    }

    /// Sends batches to their leader `node` and returns each partition's result.
    pub async fn produce(
        &self,
        node: i32,
        acks: i16,
        timeout_ms: i32,
        partitions: Vec<ProducePartition>,
    ) -> Result<Vec<ProduceResult>, ClientError> {
        self.start_produce(node, acks, timeout_ms, partitions)
            .await?
            .wait()
            .await
    }

    /// Queues a Produce request on `node`'s connection, in order with the caller's earlier
    /// requests there, without waiting for the response: an idempotent producer sending
    /// from one task keeps its batches in sequence order on the wire while pipelining them.
    pub async fn start_produce(
        &self,
        node: i32,
        acks: i16,
        timeout_ms: i32,
        partitions: Vec<ProducePartition>,
    ) -> Result<ProduceInFlight, ClientError> {
        let request = Self::produce_request(acks, timeout_ms, partitions);
        Ok(ProduceInFlight(
            self.start_request(node, request, held_margin(timeout_ms))
                .await?,
        ))
    }

    /// Sends batches with acks=0: no response, no offsets.
    pub async fn produce_no_ack(
        &self,
        node: i32,
        partitions: Vec<ProducePartition>,
    ) -> Result<(), ClientError> {
        let timeout_ms = self.inner.config.request_timeout_ms();
        let request = Self::produce_request(0, timeout_ms, partitions);
        self.send_without_response(node, request).await
    }

    /// Fetches from the partitions `node` leads.
    pub async fn fetch(
        &self,
        node: i32,
        params: FetchParams,
        partitions: Vec<FetchPartition>,
    ) -> Result<Vec<FetchedPartition>, ClientError> {
        let mut topics: Vec<wf::FetchTopic> = Vec::new();
        for p in partitions {
            let fp = wf::FetchPartition {
                partition: p.partition,
                current_leader_epoch: -1,
                fetch_offset: p.fetch_offset,
                log_start_offset: p.log_start_offset,
                partition_max_bytes: p.partition_max_bytes,
            };
            match topics.iter_mut().find(|t| *t.topic == *p.topic) {
                Some(t) => t.partitions.push(fp),
                None => topics.push(wf::FetchTopic {
                    topic: p.topic.to_string(),
                    partitions: vec![fp],
                }),
            }
        }
        let request = Request::Fetch(wf::FetchRequest {
            replica_id: -1,
            max_wait_ms: params.max_wait_ms,
            min_bytes: params.min_bytes,
            max_bytes: params.max_bytes,
            isolation_level: params.isolation_level,
            topics,
            ..Default::default()
        });
        let wait = Duration::from_millis(params.max_wait_ms.max(0) as u64);
        let response = self.send_request(Target::Node(node), request, wait).await?;
        let Response::Fetch(r) = response else {
            return Err(wrong_type("Fetch"));
        };
        if r.error_code != 0 {
            return Err(ClientError::Broker {
                code: KafkaCode(r.error_code),
                context: "fetch".to_string(),
            });
        }
        let mut out = Vec::new();
        for t in r.responses {
            for p in t.partitions {
                out.push(FetchedPartition {
                    topic: t.topic.clone(),
                    partition: p.partition_index,
                    error_code: p.error_code,
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                    records: p.records.chunks().to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// ListOffsets on `node` for (topic, partition, timestamp) triples; timestamp -1 is the
    /// latest offset, -2 the earliest.
    pub async fn list_offsets(
        &self,
        node: i32,
        partitions: &[(&str, i32, i64)],
    ) -> Result<Vec<ListedOffset>, ClientError> {
        let mut topics: Vec<wl::ListOffsetsTopic> = Vec::new();
        for &(topic, partition, timestamp) in partitions {
            let lp = wl::ListOffsetsPartition {
                partition_index: partition,
                current_leader_epoch: -1,
                timestamp,
            };
            match topics.iter_mut().find(|t| t.name == topic) {
                Some(t) => t.partitions.push(lp),
                None => topics.push(wl::ListOffsetsTopic {
                    name: topic.to_string(),
                    partitions: vec![lp],
                }),
            }
        }
        let request = Request::ListOffsets(wl::ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics,
        });
        let response = self
            .send_request(Target::Node(node), request, Duration::ZERO)
            .await?;
        let Response::ListOffsets(r) = response else {
            return Err(wrong_type("ListOffsets"));
        };
        let mut out = Vec::new();
        for t in r.topics {
            for p in t.partitions {
                out.push(ListedOffset {
                    topic: t.name.clone(),
                    partition: p.partition_index,
                    error_code: p.error_code,
                    offset: p.offset,
                    timestamp: p.timestamp,
                });
            }
        }
        Ok(out)
    }

    /// The offset for `timestamp` in one partition (-1 latest, -2 earliest, else the first
    /// record at or after it; -1 if there is none), asking the leader, retrying on leader moves.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let mut attempt = 0;
        loop {
            let leader = self.leader(topic, partition).await?;
            let result = self
                .list_offsets(leader, &[(topic, partition, timestamp)])
                .await;
            let err = match result {
                Ok(r) => match r.into_iter().find(|o| o.partition == partition) {
                    Some(o) if o.error_code == 0 => return Ok(o.offset),
                    Some(o) => ClientError::Broker {
                        code: KafkaCode(o.error_code),
                        context: format!("list offsets of {topic}/{partition}"),
                    },
                    None => wrong_type("ListOffsets"),
                },
                Err(e) => {
                    if matches!(e, ClientError::Connection(_)) {
                        self.node_failed(leader);
                    }
                    e
                }
            };
            if !err.is_retriable() || attempt >= METADATA_RETRIES_MAX {
                return Err(err);
            }
            attempt += 1;
            self.invalidate(topic);
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }
}

fn wrong_type(api: &str) -> ClientError {
    ClientError::Protocol {
        addr: api.to_string(),
        reason: "response of the wrong type".to_string(),
    }
}

/// A request queued on a connection, its response not awaited yet.
#[derive(Debug)]
pub struct InFlight {
    pending: crate::connection::PendingResponse,
    api_key: ApiKey,
    version: i16,
    addr: String,
    timeout: Duration,
}

impl InFlight {
    /// Waits for the response (up to the request timeout) and decodes it.
    pub async fn wait(self) -> Result<Response, ClientError> {
        let body = self.pending.wait(self.timeout).await?;
        let (api_key, version) = (self.api_key, self.version);
        decode_response(api_key, version, body).map_err(|e| ClientError::Protocol {
            addr: self.addr,
            reason: format!("{} v{version}: {e}", api_key.name()),
        })
    }
}

/// A Produce request queued on a connection (see [`Client::start_produce`]).
#[derive(Debug)]
pub struct ProduceInFlight(InFlight);

impl ProduceInFlight {
    /// Waits for the Produce response and flattens it to one result per partition.
    pub async fn wait(self) -> Result<Vec<ProduceResult>, ClientError> {
        let Response::Produce(r) = self.0.wait().await? else {
            return Err(wrong_type("Produce"));
        };
        let mut out = Vec::new();
        for t in r.responses {
            for p in t.partition_responses {
                out.push(ProduceResult {
                    topic: t.name.clone(),
                    partition: p.index,
                    error_code: p.error_code,
                    base_offset: p.base_offset,
                    log_append_time_ms: p.log_append_time_ms,
                    log_start_offset: p.log_start_offset,
                });
            }
        }
        Ok(out)
    }
}
