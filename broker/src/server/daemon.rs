//! [`Server`]: the broker's life cycle, shared by `sluiced` and in-process tests.
//!
//! Start-up order, each step refusing to go on when it fails (nothing is touched before the
//! config is valid and the data dir is ours):
//!
//! 1. validate the config;
//! 2. take the data-dir lock;
//! 3. bind the listener (a port in use fails here, before any data is read);
//! 4. load the topic registry, producer-id mark and cluster id;
//! 5. open the partition logs under `<data_dir>/logs` (recovering after an unclean shutdown);
//! 6. finish topic deletions a crash interrupted, create partition logs a crash left missing.
//!
//! [`Server::run`] serves until the shutdown token fires (SIGTERM/SIGINT in `sluiced`), then stops
//! accepting, lets open connections finish their in-flight requests (up to the grace period),
//! and shuts the logs down, which flushes them and writes the clean-shutdown marker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::broker::Broker;
use super::cluster;
use super::connection::ConnectionLimits;
use super::data_dir::{DataDirError, DataDirLock};
use super::dispatch::Handlers;
use super::handlers::delete_topic_files;
use super::limits::LOG_MAINTENANCE_INTERVAL_MS;
use super::listener::{self, ListenerSettings};
use crate::config::{BrokerConfig, ConfigError};
use crate::log::{Clock, LogConfig, LogError, LogManager, SystemClock};
use crate::metadata::store::{self, StoreError};
use crate::metadata::{MetadataError, ProducerIdAllocator, TopicRegistry};

/// Sub-directory of the data dir holding the partition logs.
pub const LOGS_DIR: &str = "logs";
/// File holding the cluster id.
pub const CLUSTER_FILE: &str = "cluster.json";

/// Why the broker cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data dir is locked or unusable.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The topic registry cannot be loaded.
    #[error("topic registry: {0}")]
    Metadata(MetadataError),
    /// A small metadata file cannot be loaded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker's topic defaults are not valid topic configs.
    #[error("invalid topic default: {0}")]
    TopicDefaults(String),
    /// The partition logs cannot be opened or shut down.
    #[error("partition logs: {0}")]
    Log(LogError),
    /// The listener cannot bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Start-up repair (finishing deletions, creating missing partitions) failed.
    #[error("start-up repair: {0}")]
    Repair(String),
    /// The cluster node (`--peers`) could not start.
    #[error("cluster: {0}")]
    Cluster(String),
}

// Written by hand rather than with `#[from]`, which would also make the inner error the `source`
// and print it twice in an error chain ("partition logs: X: X").
impl From<MetadataError> for ServerError {
    fn from(err: MetadataError) -> ServerError {
        ServerError::Metadata(err)
    }
}

impl From<LogError> for ServerError {
    fn from(err: LogError) -> ServerError {
        ServerError::Log(err)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ClusterFile {
    cluster_id: String,
}

/// An opened broker, bound but not yet serving (see the module doc).
#[derive(Debug)]
pub struct Server {
    handlers: Handlers,
    listener: TcpListener,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    _lock: DataDirLock,
}

impl Server {
    /// Runs start-up steps 1-6 (see the module doc); connections wait in the listen backlog until
    /// [`Server::run`].
    pub async fn open(config: BrokerConfig) -> Result<Server, ServerError> {
        config.validate()?;
        let lock = DataDirLock::acquire(&config.data_dir)?;
        // Bind before the (possibly long) log recovery, so a port in use fails at once; nothing
        // is accepted until `run`.
        let listen = config.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: listen,
            source,
        })?;
        let peer_listener = match (config.peer_listen, config.peers.is_empty()) {
            (Some(addr), false) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServerError::Bind { addr, source })?,
            ),
            _ => None,
        };
        let data_dir = config.data_dir.clone();
        let topics = Arc::new(TopicRegistry::open(&data_dir)?);
        let producer_ids = Arc::new(ProducerIdAllocator::open(&data_dir)?);
        let cluster_id = if config.peers.is_empty() {
            load_cluster_id(&data_dir)?
        } else {
            cluster::cluster_id(&config.peers)
        };
        let defaults = LogConfig::from_props(&config.topic_defaults)
            .map_err(|err| ServerError::TopicDefaults(err.to_string()))?;
        let logs_dir = data_dir.join(LOGS_DIR);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let logs =
            tokio::task::spawn_blocking(move || LogManager::open(&logs_dir, defaults, clock))
                .await
                .map_err(|err| ServerError::Repair(err.to_string()))??;
        let shutdown = CancellationToken::new();
        let broker = Arc::new(Broker::new(
            config,
            cluster_id,
            topics,
            Arc::new(logs),
            producer_ids,
            shutdown.clone(),
        ));
        let repair_broker = Arc::clone(&broker);
        tokio::task::spawn_blocking(move || repair(&repair_broker))
            .await
            .map_err(|err| ServerError::Repair(err.to_string()))??;
        let offline = broker.logs().offline_partitions();
        for (topic, partition, err) in &offline {
            tracing::error!(topic, partition, "partition offline: {err}");
        }
        tracing::info!(
            data_dir = %broker.config().data_dir.display(),
            topics = broker.topics().live_topics().len(),
            partitions = broker.logs().partitions().len(),
            offline = offline.len(),
            "data dir opened"
        );
        broker.set_bound_addr(local_addr);
        if let Some(peer_listener) = peer_listener {
            cluster::start(&broker, peer_listener).await?;
        }
        match broker.cluster() {
            // In a cluster the coordinator follows the replicated offsets partition's leader.
            Some(node) => {
                crate::group::cluster_service::spawn(&broker, node, broker.config().group.clone());
            }
            None => {
                crate::group::service::install(&broker, broker.config().group.clone())
                    .await
                    .map_err(|err| ServerError::Repair(err.to_string()))?;
            }
        }
        Ok(Server {
            handlers: Handlers::new(broker),
            listener,
            local_addr,
            shutdown,
            _lock: lock,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The running broker's context (install a group service here before [`Server::run`]).
    pub fn broker(&self) -> &Arc<Broker> {
        self.handlers.broker()
    }

    /// Cancel this token to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until shutdown, drains connections, then flushes and closes the logs.
    pub async fn run(self) -> Result<(), ServerError> {
        let config = self.handlers.broker().config();
        let settings = ListenerSettings {
            connection: ConnectionLimits {
                frame_bytes_max: config.socket_request_max_bytes,
                in_flight_max: config.max_in_flight_requests,
                idle: config.connections_max_idle,
            },
            connections_max: config.max_connections,
            shutdown_grace: config.shutdown_grace,
        };
        tracing::info!(addr = %self.local_addr, node_id = config.node_id, "serving");
        let broker = Arc::clone(self.handlers.broker());
        let maintenance = broker
            .logs()
            .spawn_maintenance(Duration::from_millis(LOG_MAINTENANCE_INTERVAL_MS));
        // In a cluster, leaderships move away before the listener closes (controlled shutdown).
        let serving = cluster::serving_token(&broker, &self.shutdown);
        listener::serve(self.listener, Arc::new(self.handlers), settings, serving).await;
        if let Some(cluster) = broker.cluster() {
            cluster.stop().await;
        }
        maintenance.abort();
        let logs = Arc::clone(broker.logs());
        tokio::task::spawn_blocking(move || logs.shutdown())
            .await
            .map_err(|err| ServerError::Repair(err.to_string()))??;
        tracing::info!("logs flushed; clean shutdown");
        Ok(())
    }
}

/// Finishes interrupted deletions and creates partition logs missing for registered topics.
fn repair(broker: &Broker) -> Result<(), ServerError> {
    for topic in broker.topics().deleting_topics() {
        tracing::info!(
            topic = topic.name,
            "finishing an interrupted topic deletion"
        );
        delete_topic_files(broker, &topic.name).map_err(ServerError::Repair)?;
    }
    for topic in broker.topics().live_topics() {
        let config = broker
            .topic_log_config(&topic.configs)
            .map_err(|err| ServerError::TopicDefaults(format!("topic {}: {err}", topic.name)))?;
        for partition in 0..topic.partitions {
            if let Some(log) = broker.logs().partition(&topic.name, partition) {
                // Broker defaults may have changed since the partition recorded its config.
                let stale = log.config().is_ok_and(|current| current != config);
                if stale {
                    if let Err(err) =
                        broker
                            .logs()
                            .set_config(&topic.name, partition, config.clone())
                    {
                        tracing::warn!(topic = topic.name, partition, "config not applied: {err}");
                    }
                }
            } else {
                tracing::warn!(
                    topic = topic.name,
                    partition,
                    "partition log missing (interrupted creation); creating it"
                );
                broker
                    .logs()
                    .create_partition(&topic.name, partition, config.clone())?;
            }
        }
    }
    Ok(())
}

fn load_cluster_id(data_dir: &Path) -> Result<String, StoreError> {
    let path = data_dir.join(CLUSTER_FILE);
    if let Some(file) = store::read_json::<ClusterFile>(&path)? {
        return Ok(file.cluster_id);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = nanos ^ (u128::from(std::process::id()) << 64);
    let cluster_id = format!("sluice-{:016x}", (seed as u64) ^ ((seed >> 64) as u64));
    store::write_json(
        &path,
        &ClusterFile {
            cluster_id: cluster_id.clone(),
        },
    )?;
    Ok(cluster_id)
}
