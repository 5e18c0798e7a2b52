//! [`Broker`]: the context every handler works in: config, topic registry, partition logs,
//! producer-id allocator, group service, shutdown signal.
//!
//! Replication slots in here: [`Broker::leader_epoch`] and [`Broker::high_watermark`] are the
//! single-node answers (epoch 0; high watermark = log end offset) that a replicated partition
//! replaces with its own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use tokio_util::sync::CancellationToken;

use super::group_service::{GroupService, Unavailable};
use crate::config::BrokerConfig;
use crate::log::{LogConfig, LogError, LogManager, Partition};
use crate::metadata::{ProducerIdAllocator, TopicInfo, TopicRegistry};

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
        }
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

    /// The live topic `name`.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicInfo>> {
        self.topics.get(name)
    }

    /// The log of a live topic's partition.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let info = self.topics.get(topic)?;
        if !(0..info.partitions).contains(&partition) {
            return None;
        }
        self.logs.partition(topic, partition)
    }

    /// The leader epoch stamped into batches appended to this partition (single node: 0).
    pub fn leader_epoch(&self, _topic: &str, _partition: i32) -> i32 {
        0
    }

    /// The offset below which records are visible to consumers (single node: the log end).
    pub fn high_watermark(&self, partition: &Partition) -> Result<i64, LogError> {
        partition.log_end_offset()
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
