//! The broker configuration: one struct, validated in one place at start-up.
//!
//! Sources, strongest first: command-line flags ([`Flags`], parsed by clap), then the optional TOML
//! file named by `--config` ([`FileConfig`]), then the defaults. [`BrokerConfig::load`] merges them
//! and calls [`BrokerConfig::validate`], the only place that decides whether a configuration is
//! acceptable; `sluiced` refuses to start, before it touches any data, when it is not.
//!
//! The file uses the flag names in snake_case; topic defaults live in a `[topic_defaults]` table
//! keyed by Kafka's topic-config names, handed to `log::LogConfig::from_props` unchanged:
//!
//! ```toml
//! listen = "0.0.0.0:9092"
//! advertised_listener = "broker1.example:9092"
//! data_dir = "/var/lib/sluice"
//! node_id = 1
//! auto_create_topics = false
//! num_partitions = 1
//! max_connections = 1000
//! connections_max_idle_ms = 600000
//! socket_request_max_bytes = 104857600
//!
//! [topic_defaults]
//! "retention.ms" = "604800000"
//! "segment.bytes" = "1073741824"
//! ```

mod error;
mod file;
mod flags;
pub mod limits;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use error::ConfigError;
pub use file::FileConfig;
pub use flags::Flags;

/// Default client listener: loopback only, so a newcomer's first start exposes nothing.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:9092";
/// Default data directory, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "./sluice-data";

/// One peer of a cluster: `--peers 1@host:9093,2@host:9093`. Used by replication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's `--node-id`.
    pub node_id: i32,
    /// The peer's internal (peer-listen) address as written, `host:port`.
    pub addr: String,
}

/// The validated broker configuration. Build it with [`BrokerConfig::load`] (flags + file) or, in
/// tests, start from [`BrokerConfig::for_data_dir`] and call [`BrokerConfig::validate`].
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address the Kafka-protocol listener binds (port 0 picks a free port).
    pub listen: SocketAddr,
    /// `host:port` that Metadata responses tell clients to connect to; `None` = the bound address.
    pub advertised_listener: Option<String>,
    /// Where topics, producer state and the broker's own small files live.
    pub data_dir: PathBuf,
    /// This broker's id in Metadata responses and in a cluster.
    pub node_id: i32,
    /// Kafka's `auto.create.topics.enable`: create unknown topics named in Metadata requests.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    pub num_partitions: i32,
    /// Kafka's `max.connections`: accepted client connections at once.
    pub max_connections: usize,
    /// Kafka's `connections.max.idle.ms`: a connection with no complete request for this long, and
    /// none in flight, is closed (this also ends slow-loris connections that never finish a frame).
    pub connections_max_idle: Duration,
    /// Kafka's `socket.request.max.bytes`: the largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// Requests read ahead of their responses on one connection (pipelining bound).
    pub max_in_flight_requests: usize,
    /// How long a graceful shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
    /// Default topic configs by Kafka name, overridden per topic at creation.
    pub topic_defaults: BTreeMap<String, String>,
    /// Group coordinator settings (`--group-config`, the file's `[group]` table), validated.
    pub group: crate::group::config::GroupConfig,
    /// Replication: the internal listener (`--peer-listen`); `None` on a single node.
    pub peer_listen: Option<SocketAddr>,
    /// Replication: every node of the cluster, this one included; empty on a single node.
    pub peers: Vec<Peer>,
}

impl BrokerConfig {
    /// Defaults with the given data dir and an ephemeral loopback port; for tests and embedding.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> BrokerConfig {
        let mut config =
            BrokerConfig::merge(Flags::default(), FileConfig::default()).expect("defaults parse"); // Invariant: the built-in defaults are valid constants.
        config.data_dir = data_dir.into();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config
    }

    /// Merges flags over the file named by `--config` (if any) over defaults, then validates.
    pub fn load(flags: Flags) -> Result<BrokerConfig, ConfigError> {
        let file = match &flags.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let config = BrokerConfig::merge(flags, file)?;
        config.validate()?;
        Ok(config)
    }

    /// Merges without validating: flag over file over default, and parses the string forms.
    fn merge(flags: Flags, file: FileConfig) -> Result<BrokerConfig, ConfigError> {
        let listen_text = flags
            .listen
            .or(file.listen)
            .unwrap_or_else(|| LISTEN_DEFAULT.to_string());
        let listen = parse_socket_addr("listen", &listen_text)?;
        let peer_listen = match flags.peer_listen.or(file.peer_listen) {
            Some(text) => Some(parse_socket_addr("peer-listen", &text)?),
            None => None,
        };
        let peers = match flags.peers.or(file.peers) {
            Some(text) => parse_peers(&text)?,
            None => Vec::new(),
        };
        let idle_ms = flags
            .connections_max_idle_ms
            .or(file.connections_max_idle_ms)
            .unwrap_or(limits::CONNECTION_IDLE_MS_DEFAULT);
        let grace_ms = flags
            .shutdown_grace_ms
            .or(file.shutdown_grace_ms)
            .unwrap_or(limits::SHUTDOWN_GRACE_MS_DEFAULT);
        let mut topic_defaults = file.topic_defaults;
        for pair in flags.topic_default {
            let (key, value) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
                field: "topic-default",
                reason: format!("{pair:?} is not KEY=VALUE"),
            })?;
            topic_defaults.insert(key.trim().to_string(), value.trim().to_string());
        }
        let mut group_props = file.group;
        for pair in flags.group_config {
            let (key, value) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
                field: "group-config",
                reason: format!("{pair:?} is not KEY=VALUE"),
            })?;
            group_props.insert(key.trim().to_string(), value.trim().to_string());
        }
        let group = crate::group::config::GroupConfig::from_props(&group_props).map_err(|err| {
            ConfigError::Invalid {
                field: "group-config",
                reason: err.to_string(),
            }
        })?;
        Ok(BrokerConfig {
            group,
            listen,
            advertised_listener: flags.advertised_listener.or(file.advertised_listener),
            data_dir: flags
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            node_id: flags.node_id.or(file.node_id).unwrap_or(0),
            auto_create_topics: flags.auto_create_topics
                || file.auto_create_topics.unwrap_or(false),
            num_partitions: flags.num_partitions.or(file.num_partitions).unwrap_or(1),
            max_connections: flags
                .max_connections
                .or(file.max_connections)
                .unwrap_or(limits::CONNECTIONS_DEFAULT),
            connections_max_idle: Duration::from_millis(idle_ms),
            socket_request_max_bytes: flags
                .socket_request_max_bytes
                .or(file.socket_request_max_bytes)
                .unwrap_or(limits::REQUEST_BYTES_DEFAULT),
            max_in_flight_requests: flags
                .max_in_flight_requests
                .or(file.max_in_flight_requests)
                .unwrap_or(limits::IN_FLIGHT_REQUESTS_DEFAULT),
            shutdown_grace: Duration::from_millis(grace_ms),
            topic_defaults,
            peer_listen,
            peers,
        })
    }

    /// The one place that decides whether a configuration is acceptable; says what and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(field: &'static str, reason: String) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid { field, reason })
        }
        if self.node_id < 0 {
            return invalid("node-id", format!("{} is negative", self.node_id));
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data-dir", "is empty".to_string());
        }
        if let Some(advertised) = &self.advertised_listener {
            validate_host_port("advertised-listener", advertised)?;
        }
        if !(1..=limits::PARTITIONS_PER_TOPIC_MAX).contains(&self.num_partitions) {
            return invalid(
                "num-partitions",
                format!(
                    "{} is outside 1..={}",
                    self.num_partitions,
                    limits::PARTITIONS_PER_TOPIC_MAX
                ),
            );
        }
        if !(1..=limits::CONNECTIONS_MAX).contains(&self.max_connections) {
            return invalid(
                "max-connections",
                format!(
                    "{} is outside 1..={}",
                    self.max_connections,
                    limits::CONNECTIONS_MAX
                ),
            );
        }
        let request_range = limits::REQUEST_BYTES_MIN..=limits::REQUEST_BYTES_MAX;
        if !request_range.contains(&self.socket_request_max_bytes) {
            return invalid(
                "socket-request-max-bytes",
                format!(
                    "{} is outside {}..={} bytes",
                    self.socket_request_max_bytes,
                    limits::REQUEST_BYTES_MIN,
                    limits::REQUEST_BYTES_MAX
                ),
            );
        }
        if !(1..=limits::IN_FLIGHT_REQUESTS_MAX).contains(&self.max_in_flight_requests) {
            return invalid(
                "max-in-flight-requests",
                format!(
                    "{} is outside 1..={}",
                    self.max_in_flight_requests,
                    limits::IN_FLIGHT_REQUESTS_MAX
                ),
            );
        }
        if self.connections_max_idle < Duration::from_millis(limits::CONNECTION_IDLE_MS_MIN) {
            return invalid(
                "connections-max-idle-ms",
                format!(
                    "{} ms is below the minimum of {} ms",
                    self.connections_max_idle.as_millis(),
                    limits::CONNECTION_IDLE_MS_MIN
                ),
            );
        }
        if let Err(err) = crate::log::LogConfig::from_props(&self.topic_defaults) {
            return invalid(
                "topic-default",
                format!("is not a valid topic config: {err}"),
            );
        }
        self.validate_cluster()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        if self.peers.is_empty() {
            if self.peer_listen.is_some() {
                return Err(ConfigError::Invalid {
                    field: "peer-listen",
                    reason:
                        "needs --peers (the cluster's nodes); without both this is a single node"
                            .to_string(),
                });
            }
            return Ok(());
        }
        let invalid = |reason: String| {
            Err(ConfigError::Invalid {
                field: "peers",
                reason,
            })
        };
        if self.peer_listen.is_none() {
            return Err(ConfigError::Invalid {
                field: "peer-listen",
                reason: "is required when --peers is set".to_string(),
            });
        }
        if let Some(peer) = self
            .peers
            .iter()
            .find(|peer| peer.node_id > crate::replication::limits::NODE_ID_MAX)
        {
            return invalid(format!(
                "node id {} is above the maximum of {}",
                peer.node_id,
                crate::replication::limits::NODE_ID_MAX
            ));
        }
        let mut ids: Vec<i32> = self.peers.iter().map(|peer| peer.node_id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("node id {} appears twice", pair[0]));
        }
        if !ids.contains(&self.node_id) {
            return invalid(format!(
                "does not name this node (--node-id {}); list every node, this one included",
                self.node_id
            ));
        }
        if self.peer_listen.is_some_and(|addr| addr.port() == 0) {
            return Err(ConfigError::Invalid {
                field: "peer-listen",
                reason: "has port 0; the other nodes must know the port (it is in --peers)"
                    .to_string(),
            });
        }
        Ok(())
    }

    /// The `host:port` clients are told to connect to, given the address actually bound.
    pub fn advertised(&self, bound: SocketAddr) -> (String, i32) {
        if let Some(text) = &self.advertised_listener {
            if let Some((host, port)) = text.rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    return (host.trim_matches(['[', ']']).to_string(), i32::from(port));
                }
            }
        }
        let host = if bound.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            bound.ip().to_string()
        };
        (host, i32::from(bound.port()))
    }
}

fn parse_socket_addr(field: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Host names ("localhost:9092") resolve once at start-up.
    let mut addrs = text.to_socket_addrs().map_err(|err| ConfigError::Invalid {
        field,
        reason: format!("{text:?} is not HOST:PORT ({err})"),
    })?;
    addrs.next().ok_or_else(|| ConfigError::Invalid {
        field,
        reason: format!("{text:?} resolves to no address"),
    })
}

fn validate_host_port(field: &'static str, text: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        field,
        reason: format!("{text:?} {reason}"),
    };
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| invalid("is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(invalid("has an empty host"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(invalid("has port 0; advertise the real port")),
        Ok(_) => Ok(()),
        Err(_) => Err(invalid("has no valid port (1-65535)")),
    }
}

fn parse_peers(text: &str) -> Result<Vec<Peer>, ConfigError> {
    let mut peers = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let invalid = |reason: &str| ConfigError::Invalid {
            field: "peers",
            reason: format!("{item:?} {reason}; expected ID@HOST:PORT"),
        };
        let (id, addr) = item.split_once('@').ok_or_else(|| invalid("has no '@'"))?;
        let node_id = id
            .parse::<i32>()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| invalid("has no valid node id"))?;
        validate_host_port("peers", addr)?;
        peers.push(Peer {
            node_id,
            addr: addr.to_string(),
        });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests;
