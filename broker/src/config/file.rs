//! The optional TOML config file (`--config FILE`). Unknown keys are an error, so a typo never
//! silently leaves a setting at its default. Keys are the flag names in snake_case; Kafka's broker
//! property names are accepted too where one exists (quoted: `"num.partitions" = 3`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::limits::CONFIG_FILE_BYTES_MAX;
use super::ConfigError;

/// The config file's contents; every key optional, names as the flags in snake_case.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--listen`.
    pub listen: Option<String>,
    /// See `--advertised-listener`.
    pub advertised_listener: Option<String>,
    /// See `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// See `--node-id`.
    #[serde(alias = "broker.id", alias = "node.id")]
    pub node_id: Option<i32>,
    /// See `--auto-create-topics` (Kafka's `auto.create.topics.enable`).
    #[serde(alias = "auto.create.topics.enable")]
    pub auto_create_topics: Option<bool>,
    /// See `--num-partitions`.
    #[serde(alias = "num.partitions")]
    pub num_partitions: Option<i32>,
    /// See `--max-connections`.
    #[serde(alias = "max.connections")]
    pub max_connections: Option<usize>,
    /// See `--connections-max-idle-ms`.
    #[serde(alias = "connections.max.idle.ms")]
    pub connections_max_idle_ms: Option<u64>,
    /// See `--socket-request-max-bytes`.
    #[serde(alias = "socket.request.max.bytes")]
    pub socket_request_max_bytes: Option<usize>,
    /// See `--max-in-flight-requests`.
    pub max_in_flight_requests: Option<usize>,
    /// See `--shutdown-grace-ms`.
    pub shutdown_grace_ms: Option<u64>,
    /// Default topic configs keyed by Kafka name (`"retention.ms" = "3600000"`).
    #[serde(default)]
    pub topic_defaults: BTreeMap<String, String>,
    /// See `--peer-listen`.
    pub peer_listen: Option<String>,
    /// See `--peers`.
    pub peers: Option<String>,
}

impl FileConfig {
    /// Reads and parses `path`; the error names the file and, for syntax errors, the position.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let io_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(io_err)?;
        if metadata.len() > CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                reason: format!(
                    "is {} bytes, over the {CONFIG_FILE_BYTES_MAX}-byte limit",
                    metadata.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io_err)?;
        FileConfig::parse(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses TOML text; the error is the TOML parser's message (with line and column).
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }
}
