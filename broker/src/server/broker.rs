//! [`Broker`]: the context every handler works in: config, topic registry, partition logs,
//! producer-id allocator, group service, shutdown signal.
//!
//! Replication slots in here: on a single node [`Broker::leader_epoch`] is 0 and
//! [`Broker::high_watermark`] the log end offset; in a cluster ([`Broker::cluster`], set when
//! `--peers` is given) topics come from the replicated metadata, clients are served only by the
//! partition's leader ([`Broker::serving`]), and the high watermark is the leader's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio_util::sync::CancellationToken;

use sluice_protocol::wire::ErrorCode;
use tokio::sync::watch;

use super::group_service::{GroupService, Unavailable};
use crate::config::BrokerConfig;
use crate::log::{LogConfig, LogError, LogManager, Partition};
use crate::metadata::{ProducerIdAllocator, TopicInfo, TopicRegistry, TopicState};
use crate::replication::cluster::ClusterNode;
use crate::replication::message::TopicPartition;

/// The shared state of a running broker (see the module doc).
pub struct Broker {
    config: BrokerConfig,
    advertised: OnceLock<(String, i32)>,
    cluster_id: String,
    topics: Arc<TopicRegistry>,
    logs: Arc<LogManager>,
    producer_ids: Arc<ProducerIdAllocator>,
    groups: RwLock<Arc<dyn GroupService>>,
    shutdown: CancellationToken,
    /// Serialises topic creation and deletion (registry and partition files change together).
    pub(crate) admin: tokio::sync::Mutex<()>,
    /// Request frames received since start (a counter for operators and tests).
    requests_received: AtomicU64,
    /// The cluster node, in cluster mode (`--peers`).
    cluster: OnceLock<Arc<ClusterNode>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.config.node_id)
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Assembles a broker from its opened parts (see `server::daemon` for the start-up order).
    pub fn new(
        config: BrokerConfig,
        cluster_id: String,
        topics: Arc<TopicRegistry>,
        logs: Arc<LogManager>,
        producer_ids: Arc<ProducerIdAllocator>,
        shutdown: CancellationToken,
    ) -> Broker {
        Broker {
            config,
            advertised: OnceLock::new(),
            cluster_id,
            topics,
            logs,
            producer_ids,
            groups: RwLock::new(Arc::new(Unavailable)),
            shutdown,
            admin: tokio::sync::Mutex::new(()),
            requests_received: AtomicU64::new(0),
            cluster: OnceLock::new(),
        }
    }

    /// Switches to cluster mode (once, at start-up, before serving).
    pub fn set_cluster(&self, node: Arc<ClusterNode>) {
        let _ = self.cluster.set(node);
    }

    /// The cluster node, in cluster mode.
    pub fn cluster(&self) -> Option<&Arc<ClusterNode>> {
        self.cluster.get()
    }

    /// Counts one received request frame.
    pub(crate) fn count_request(&self) {
        self.requests_received.fetch_add(1, Ordering::Relaxed);
    }

    /// Request frames received since start, well-formed or not.
    pub fn requests_received(&self) -> u64 {
        self.requests_received.load(Ordering::Relaxed)
    }

    /// The validated configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The cluster id reported in Metadata (persisted in the data dir).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Records the bound address; Metadata advertises `--advertised-listener` or this.
    pub fn set_bound_addr(&self, bound: SocketAddr) {
        let _ = self.advertised.set(self.config.advertised(bound));
    }

    /// `(host, port)` clients are told to connect to.
    pub fn advertised(&self) -> (String, i32) {
        self.advertised
            .get()
            .cloned()
            .unwrap_or_else(|| self.config.advertised(self.config.listen))
    }

    /// The topic registry.
    pub fn topics(&self) -> &Arc<TopicRegistry> {
        &self.topics
    }

    /// The partition logs.
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    /// The producer-id allocator.
    pub fn producer_ids(&self) -> &Arc<ProducerIdAllocator> {
        &self.producer_ids
    }

    /// Fires when the broker shuts down; long-polls end early on it.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Installs the group coordinator (see `server::group_service`).
    pub fn set_group_service(&self, service: Arc<dyn GroupService>) {
        *self.groups.write().unwrap_or_else(|e| e.into_inner()) = service;
    }

    /// The installed group service.
    pub fn group_service(&self) -> Arc<dyn GroupService> {
        Arc::clone(&self.groups.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The live topic `name` (in a cluster: from the replicated metadata).
    pub fn topic(&self, name: &str) -> Option<Arc<TopicInfo>> {
        if let Some(cluster) = self.cluster() {
            let state = cluster.state();
            let state = state.borrow();
            let t = state.topics.get(name)?;
            return Some(Arc::new(TopicInfo {
                name: name.to_string(),
                partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
                configs: t.configs.clone(),
                state: TopicState::Live,
            }));
        }
        self.topics.get(name)
    }

    /// The local log of a live topic's partition (in a cluster: the local replica, led or not).
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let info = self.topic(topic)?;
        if !(0..info.partitions).contains(&partition) {
            return None;
        }
        self.logs.partition(topic, partition)
    }

    /// The log a client may produce to or fetch from: on a single node any live partition; in a
    /// cluster only one this broker leads (else NOT_LEADER_OR_FOLLOWER, so the client refreshes
    /// its metadata and goes to the leader).
    pub fn serving(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ErrorCode> {
        let Some(cluster) = self.cluster() else {
            return self
                .partition(topic, partition)
                .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        };
        let tp = TopicPartition::new(topic, partition);
        if let Some(leader) = cluster.leader(&tp) {
            return Ok(Arc::clone(leader.partition()));
        }
        let state = cluster.state();
        let state = state.borrow();
        match state.partition(&tp) {
            None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            Some(p) if p.leader < 0 => Err(ErrorCode::LEADER_NOT_AVAILABLE),
            Some(_) => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        }
    }

    /// Wakes when records may have become readable by consumers: on a single node every append,
    /// in a cluster every move of the leader's high watermark.
    pub fn subscribe(&self, topic: &str, partition: i32) -> Option<watch::Receiver<i64>> {
        match self.cluster() {
            Some(cluster) => cluster
                .leader(&TopicPartition::new(topic, partition))
                .map(|l| l.subscribe_high_watermark()),
            None => self.partition(topic, partition).map(|log| log.subscribe()),
        }
    }

    /// The leader epoch stamped into batches appended to this partition (single node: 0; in a
    /// cluster the controller's current epoch, -1 when unknown).
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        let Some(cluster) = self.cluster() else {
            return 0;
        };
        let tp = TopicPartition::new(topic, partition);
        if let Some(leader) = cluster.leader(&tp) {
            return leader.leader_epoch();
        }
        let state = cluster.state();
        let epoch = state.borrow().partition(&tp).map_or(-1, |p| p.leader_epoch);
        epoch
    }

    /// The offset below which records are visible to consumers: on a single node the log end;
    /// in a cluster the leader's high watermark (records on enough replicas' disks).
    pub fn high_watermark(&self, partition: &Partition) -> Result<i64, LogError> {
        let Some(cluster) = self.cluster() else {
            return partition.log_end_offset();
        };
        let tp = TopicPartition::new(partition.topic(), partition.partition());
        match cluster.leaders().get(&tp) {
            Some(leader) => Ok(leader.high_watermark()),
            // Leadership lost between the lookup and now (rare): the caller retries.
            None => Err(LogError::UnknownPartition(format!("{tp} is not led here"))),
        }
    }

    /// A fetch above this offset is OFFSET_OUT_OF_RANGE: the high watermark on a single node
    /// (where it is the log end), the log end in a cluster, where the high watermark can trail
    /// the end for a moment (a new leader waits for its followers) without the offsets between
    /// being invalid.
    pub fn fetchable_end(&self, partition: &Partition, high_watermark: i64) -> i64 {
        match self.cluster() {
            Some(_) => partition
                .log_end_offset()
                .map_or(high_watermark, |end| end.max(high_watermark)),
            None => high_watermark,
        }
    }

    /// The effective log config of a topic: broker defaults, then the topic's overrides.
    pub fn topic_log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, crate::log::ConfigError> {
        LogConfig::from_props(&self.config.topic_defaults)?.with_overrides(overrides)
    }
}

/// A handler's shared handle on the broker.
pub type SharedBroker = Arc<Broker>;
