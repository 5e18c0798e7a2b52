//! `LogConfig`: the per-topic settings of a partition log, by Kafka's topic-config names.
//!
//! `LogConfig::from_props(&BTreeMap<String, String>)` starts from the defaults;
//! `config.with_overrides(&props)` layers topic overrides over broker defaults. Every value is
//! parsed and range-checked here, once; an unknown name or a bad value is a [`ConfigError`] naming
//! the key. `to_props()` gives every setting back by name (DescribeConfigs, persisting topics).

use std::collections::BTreeMap;

use crate::log::limits::{INDEX_BYTES_MAX, SEGMENT_BYTES_MAX, STORED_BATCH_BYTES_MAX};

/// A bad topic configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The name is not a topic config Sluice knows.
    #[error("unknown topic config {0}")]
    Unknown(String),
    /// The value does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// Config name.
        key: String,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
}

/// Which records a topic removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Delete whole segments by retention.ms / retention.bytes.
    pub delete: bool,
    /// Keep the last record per key.
    pub compact: bool,
}

/// Which timestamp a batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps, as sent.
    CreateTime,
    /// The broker stamps its clock on append.
    LogAppendTime,
}

/// Per-topic log settings (Kafka names in the field docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `retention.ms`: delete segments whose newest record is older; `None` = forever (-1).
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete oldest segments while the partition is larger; `None` = no limit.
    pub retention_bytes: Option<u64>,
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first append is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`: size of an offset index; roll when full.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: log bytes between two index entries.
    pub index_interval_bytes: u64,
    /// `cleanup.policy`: delete, compact, or both.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long compaction keeps tombstones.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: usize,
    /// `flush.messages`: fsync after this many messages; unset = fsync for durable (acks=all)
    /// appends through group commit.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync at least this often; unset = see `flush_messages`.
    pub flush_ms: Option<u64>,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.difference.max.ms`: producer timestamps further from the broker clock are
    /// rejected (enforced by the produce handler).
    pub message_timestamp_difference_max_ms: i64,
    /// `min.insync.replicas` (stored here, enforced by replication).
    pub min_insync_replicas: u32,
    /// Kafka topic configs Sluice accepts and reports back but does not act on (see
    /// [`STORED_ONLY_KEYS`]), so tools that set them keep working.
    pub stored_only: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            max_message_bytes: 1024 * 1024 + 12,
            flush_messages: None,
            flush_ms: None,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_difference_max_ms: i64::MAX,
            min_insync_replicas: 1,
            stored_only: BTreeMap::new(),
        }
    }
}

/// Kafka topic configs accepted, validated and reported back, with no effect on the log:
/// `compression.type` (only `producer`: batches are stored as produced, never recompressed),
/// `unclean.leader.election.enable`, `preallocate`, `message.downconversion.enable` (booleans),
/// `file.delete.delay.ms`, `segment.jitter.ms`, `max.compaction.lag.ms` (non-negative integers),
/// `min.cleanable.dirty.ratio` (0 to 1).
pub const STORED_ONLY_KEYS: &[&str] = &[
    "compression.type",
    "unclean.leader.election.enable",
    "preallocate",
    "message.downconversion.enable",
    "file.delete.delay.ms",
    "segment.jitter.ms",
    "max.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
];

/// Every topic config name `from_props` accepts (plus [`STORED_ONLY_KEYS`]).
pub const KNOWN_KEYS: &[&str] = &[
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "segment.index.bytes",
    "index.interval.bytes",
    "cleanup.policy",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "max.message.bytes",
    "flush.messages",
    "flush.ms",
    "message.timestamp.type",
    "message.timestamp.difference.max.ms",
    "min.insync.replicas",
];

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not an integer"))?;
    if v < min || v > max {
        return Err(invalid(key, value, format!("must be in [{min}, {max}]")));
    }
    Ok(v)
}

impl LogConfig {
    /// Defaults overlaid with `props`.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<LogConfig, ConfigError> {
        LogConfig::default().with_overrides(props)
    }

    /// `self` overlaid with `props` (topic overrides over broker defaults), validated.
    pub fn with_overrides(
        &self,
        props: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut c = self.clone();
        for (key, value) in props {
            c.set(key, value)?;
        }
        Ok(c)
    }

    /// Sets one config by name.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let k = key;
        match key {
            "retention.ms" => {
                let v = int(k, value, -1, i64::MAX)?;
                self.retention_ms = (v >= 0).then_some(v);
            }
            "retention.bytes" => {
                let v = int(k, value, -1, i64::MAX)?;
                self.retention_bytes = (v >= 0).then_some(v as u64);
            }
            "segment.bytes" => {
                self.segment_bytes = int(k, value, 14, SEGMENT_BYTES_MAX as i64)? as u64
            }
            "segment.ms" => self.segment_ms = int(k, value, 1, i64::MAX)?,
            "segment.index.bytes" => {
                self.segment_index_bytes = int(k, value, 8, INDEX_BYTES_MAX as i64)? as u64
            }
            "index.interval.bytes" => {
                self.index_interval_bytes = int(k, value, 0, i32::MAX.into())? as u64
            }
            "cleanup.policy" => {
                let mut p = CleanupPolicy {
                    delete: false,
                    compact: false,
                };
                for part in value.split(',').map(str::trim) {
                    match part {
                        "delete" => p.delete = true,
                        "compact" => p.compact = true,
                        _ => return Err(invalid(k, value, "expected delete, compact or both")),
                    }
                }
                self.cleanup_policy = p;
            }
            "delete.retention.ms" => self.delete_retention_ms = int(k, value, 0, i64::MAX)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = int(k, value, 0, i64::MAX)?,
            "max.message.bytes" => {
                self.max_message_bytes = int(k, value, 0, STORED_BATCH_BYTES_MAX as i64)? as usize
            }
            // Kafka's default for both is Long.MAX_VALUE, meaning "not set".
            "flush.messages" => {
                let v = int(k, value, 1, i64::MAX)?;
                self.flush_messages = (v < i64::MAX).then_some(v as u64);
            }
            "flush.ms" => {
                let v = int(k, value, 0, i64::MAX)?;
                self.flush_ms = (v < i64::MAX).then_some(v as u64);
            }
            "message.timestamp.type" => {
                self.message_timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(k, value, "expected CreateTime or LogAppendTime")),
                }
            }
            "message.timestamp.difference.max.ms" => {
                self.message_timestamp_difference_max_ms = int(k, value, 0, i64::MAX)?
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = int(k, value, 1, i32::MAX.into())? as u32
            }
            "compression.type" if value == "producer" => {
                self.stored_only.insert(key.into(), value.into());
            }
            "compression.type" => {
                return Err(invalid(
                    k,
                    value,
                    "only producer is supported: batches are stored as produced",
                ))
            }
            "unclean.leader.election.enable" | "preallocate" | "message.downconversion.enable" => {
                if value != "true" && value != "false" {
                    return Err(invalid(k, value, "expected true or false"));
                }
                self.stored_only.insert(key.into(), value.into());
            }
            "file.delete.delay.ms" | "segment.jitter.ms" | "max.compaction.lag.ms" => {
                int(k, value, 0, i64::MAX)?;
                self.stored_only.insert(key.into(), value.trim().into());
            }
            "min.cleanable.dirty.ratio" => {
                let v: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(k, value, "not a number"))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(k, value, "must be in [0, 1]"));
                }
                self.stored_only.insert(key.into(), value.trim().into());
            }
            _ => return Err(ConfigError::Unknown(key.to_string())),
        }
        Ok(())
    }

    /// Every setting by Kafka name, as strings.
    pub fn to_props(&self) -> BTreeMap<String, String> {
        let opt = |v: Option<i64>| v.unwrap_or(-1).to_string();
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("retention.ms", opt(self.retention_ms));
        put(
            "retention.bytes",
            opt(self.retention_bytes.map(|v| v as i64)),
        );
        put("segment.bytes", self.segment_bytes.to_string());
        put("segment.ms", self.segment_ms.to_string());
        put("segment.index.bytes", self.segment_index_bytes.to_string());
        put(
            "index.interval.bytes",
            self.index_interval_bytes.to_string(),
        );
        let policy = match (self.cleanup_policy.delete, self.cleanup_policy.compact) {
            (true, true) => "compact,delete",
            (false, true) => "compact",
            _ => "delete",
        };
        put("cleanup.policy", policy.to_string());
        put("delete.retention.ms", self.delete_retention_ms.to_string());
        put(
            "min.compaction.lag.ms",
            self.min_compaction_lag_ms.to_string(),
        );
        put("max.message.bytes", self.max_message_bytes.to_string());
        put(
            "flush.messages",
            self.flush_messages
                .map_or(i64::MAX.to_string(), |v| v.to_string()),
        );
        put(
            "flush.ms",
            self.flush_ms
                .map_or(i64::MAX.to_string(), |v| v.to_string()),
        );
        let ts = match self.message_timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        };
        put("message.timestamp.type", ts.to_string());
        put(
            "message.timestamp.difference.max.ms",
            self.message_timestamp_difference_max_ms.to_string(),
        );
        put("min.insync.replicas", self.min_insync_replicas.to_string());
        for (k, v) in &self.stored_only {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    /// The most bytes a segment may hold: `segment.bytes`, at most [`SEGMENT_BYTES_MAX`].
    pub fn segment_limit(&self) -> u64 {
        self.segment_bytes.min(SEGMENT_BYTES_MAX)
    }

    /// Offset index entries per segment.
    pub fn index_entries_max(&self) -> usize {
        (self.segment_index_bytes / crate::log::offset_index::ENTRY_BYTES as u64).max(1) as usize
    }

    /// How appends become durable under this config.
    pub fn flush_policy(&self) -> FlushPolicy {
        match (self.flush_messages, self.flush_ms) {
            (None, None) => FlushPolicy::Durable,
            (Some(1), _) | (_, Some(0)) => FlushPolicy::EveryAppend,
            (messages, ms) => FlushPolicy::Interval { messages, ms },
        }
    }
}

/// When the log fsyncs, derived from `flush.messages` / `flush.ms` (see ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Neither set (the default): an append asking for durability (acks=all) waits for the group
    /// commit fsync covering it; other appends are left to the page cache.
    Durable,
    /// `flush.messages=1` or `flush.ms=0`: every append waits for its fsync.
    EveryAppend,
    /// Either set otherwise: nobody waits for fsync; the log is synced in the background after
    /// `messages` unsynced messages or `ms` since the last sync, whichever comes first.
    Interval {
        /// Unsynced messages that trigger a sync.
        messages: Option<u64>,
        /// Age of the oldest unsynced append that triggers a sync.
        ms: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_kafka_names_and_roundtrips() {
        let c = LogConfig::from_props(&props(&[
            ("retention.ms", "-1"),
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "1024"),
            ("message.timestamp.type", "LogAppendTime"),
            ("flush.ms", "1000"),
            ("compression.type", "producer"),
            ("min.cleanable.dirty.ratio", "0.5"),
        ]))
        .unwrap();
        assert_eq!(c.retention_ms, None);
        assert!(c.cleanup_policy.compact && c.cleanup_policy.delete);
        assert_eq!(c.segment_bytes, 1024);
        assert_eq!(
            c.flush_policy(),
            FlushPolicy::Interval {
                messages: None,
                ms: Some(1000)
            }
        );
        assert_eq!(LogConfig::from_props(&c.to_props()).unwrap(), c);
        assert_eq!(LogConfig::default().flush_policy(), FlushPolicy::Durable);
    }

    #[test]
    fn rejects_unknown_and_bad_values() {
        assert_eq!(
            LogConfig::from_props(&props(&[("retention.mss", "1")])),
            Err(ConfigError::Unknown("retention.mss".into()))
        );
        for (k, v) in [
            ("segment.bytes", "abc"),
            ("segment.bytes", "5"),
            ("cleanup.policy", "keep"),
            ("retention.ms", "-2"),
            ("message.timestamp.type", "Now"),
            ("flush.messages", "0"),
            ("compression.type", "gzip"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "2"),
        ] {
            assert!(
                matches!(
                    LogConfig::from_props(&props(&[(k, v)])),
                    Err(ConfigError::Invalid { .. })
                ),
                "{k}={v}"
            );
        }
    }
}
