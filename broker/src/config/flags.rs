//! Command-line flags of `sluiced` (clap). Every field is optional so that a flag given overrides
//! the config file and a flag left out does not.

use std::path::PathBuf;

/// `sluiced` command-line flags. Unset flags fall back to the `--config` file, then to defaults.
#[derive(Debug, Default, Clone, clap::Parser)]
#[command(
    name = "sluiced",
    version,
    about = "Sluice broker: a Kafka-protocol event log",
    after_help = "Log level: RUST_LOG (e.g. RUST_LOG=debug or RUST_LOG=sluice_broker=trace)."
)]
pub struct Flags {
    /// TOML config file; flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Client listener HOST:PORT [default: 127.0.0.1:9092]; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// HOST:PORT that Metadata tells clients to connect to [default: the bound address].
    #[arg(long, value_name = "HOST:PORT")]
    pub advertised_listener: Option<String>,
    /// Data directory [default: ./sluice-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// This broker's node id [default: 0].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<i32>,
    /// Create unknown topics named in Metadata requests (Kafka's auto.create.topics.enable).
    #[arg(long)]
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic [default: 1].
    #[arg(long, value_name = "N")]
    pub num_partitions: Option<i32>,
    /// Client connections accepted at once (Kafka's max.connections) [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Close a connection idle this long (Kafka's connections.max.idle.ms) [default: 600000].
    #[arg(long, value_name = "MS")]
    pub connections_max_idle_ms: Option<u64>,
    /// Largest request frame accepted (Kafka's socket.request.max.bytes) [default: 104857600].
    #[arg(long, value_name = "BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// Requests read ahead of their responses on one connection [default: 64].
    #[arg(long, value_name = "N")]
    pub max_in_flight_requests: Option<usize>,
    /// How long SIGTERM waits for in-flight requests to finish [default: 10000].
    #[arg(long, value_name = "MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// A default topic config by Kafka name, e.g. --topic-default retention.ms=3600000; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub topic_default: Vec<String>,
    /// Replication: the internal listener HOST:PORT other brokers connect to.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_listen: Option<String>,
    /// Replication: every node's internal address, ID@HOST:PORT,... (this node included).
    #[arg(long, value_name = "LIST")]
    pub peers: Option<String>,
}
