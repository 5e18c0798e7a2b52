//! Typed errors of the client, each saying what went wrong and what to do about it.
//!
//! [`ClientError`] covers talking to the cluster (connections, metadata, protocol, broker error
//! codes); [`ProduceError`], [`ConsumeError`] and [`AdminError`] are the narrower errors of each
//! public operation and wrap it.

use crate::config::ConfigError;
use crate::connection::ConnectionError;

/// A Kafka error code with its name and, when the client knows one, advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    /// Kafka's name for the code.
    pub fn name(self) -> &'static str {
        code_info(self.0).0
    }

    /// True for codes a retry (after a metadata refresh) can fix.
    pub fn is_retriable(self) -> bool {
        matches!(
            self.0,
            3 | 5 | 6 | 7 | 8 | 13 | 14 | 15 | 16 | 19 | 20 | 51 | 56 | 74 | 75 | 78 | 79
        )
    }

    /// True for codes that mean the metadata is stale (leader moved, topic changed).
    pub fn refreshes_metadata(self) -> bool {
        matches!(self.0, 3 | 5 | 6 | 13 | 74 | 75)
    }

    /// True for produce errors that mean the broker refused the batch before appending it
    /// (validation, authorization): its sequence numbers were never used. Any other failure may
    /// have come after the append (and the records may be replicated), so an idempotent producer
    /// must not hand its sequence numbers to later batches.
    pub fn refused_before_append(self) -> bool {
        // CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, INVALID_REQUIRED_ACKS,
        // TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED, INVALID_TIMESTAMP,
        // UNSUPPORTED_FOR_MESSAGE_FORMAT, POLICY_VIOLATION, INVALID_RECORD.
        matches!(self.0, 2 | 10 | 18 | 21 | 29 | 31 | 32 | 43 | 44 | 87)
    }
}

impl std::fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, advice) = code_info(self.0);
        write!(f, "{name} (error {})", self.0)?;
        if !advice.is_empty() {
            write!(f, ": {advice}")?;
        }
        Ok(())
    }
}

fn code_info(code: i16) -> (&'static str, &'static str) {
    match code {
        -1 => ("UNKNOWN_SERVER_ERROR", "see the broker's log"),
        0 => ("NONE", ""),
        1 => ("OFFSET_OUT_OF_RANGE", "seek to the beginning or the end"),
        2 => ("CORRUPT_MESSAGE", "the batch failed its CRC check"),
        3 => (
            "UNKNOWN_TOPIC_OR_PARTITION",
            "create the topic first (sluice topic create)",
        ),
        5 => ("LEADER_NOT_AVAILABLE", "retry once a leader is elected"),
        6 => (
            "NOT_LEADER_OR_FOLLOWER",
            "the leader moved; metadata is refreshed",
        ),
        7 => ("REQUEST_TIMED_OUT", "the broker timed out; retry"),
        10 => (
            "MESSAGE_TOO_LARGE",
            "raise the topic's max.message.bytes or send smaller batches",
        ),
        13 => ("NETWORK_EXCEPTION", "retry"),
        14 => ("COORDINATOR_LOAD_IN_PROGRESS", "retry"),
        15 => ("COORDINATOR_NOT_AVAILABLE", "retry"),
        16 => ("NOT_COORDINATOR", "retry"),
        17 => (
            "INVALID_TOPIC_EXCEPTION",
            "topic names use [a-zA-Z0-9._-], at most 249 characters",
        ),
        19 => (
            "NOT_ENOUGH_REPLICAS",
            "fewer in-sync replicas than min.insync.replicas",
        ),
        20 => ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", "retry"),
        21 => ("INVALID_REQUIRED_ACKS", "use acks all, 1 or 0"),
        35 => (
            "UNSUPPORTED_VERSION",
            "the broker does not support this request version",
        ),
        36 => (
            "TOPIC_ALREADY_EXISTS",
            "pick another name or delete the topic first",
        ),
        37 => (
            "INVALID_PARTITIONS",
            "the partition count must be at least 1",
        ),
        38 => (
            "INVALID_REPLICATION_FACTOR",
            "use at most as many replicas as brokers",
        ),
        40 => ("INVALID_CONFIG", "check the config name and value"),
        41 => ("NOT_CONTROLLER", "retry"),
        42 => (
            "INVALID_REQUEST",
            "the broker rejected the request as malformed",
        ),
        43 => ("UNSUPPORTED_FOR_MESSAGE_FORMAT", ""),
        45 => (
            "OUT_OF_ORDER_SEQUENCE_NUMBER",
            "the producer lost records; restart it",
        ),
        46 => ("DUPLICATE_SEQUENCE_NUMBER", ""),
        47 => (
            "INVALID_PRODUCER_EPOCH",
            "another producer with the same id took over",
        ),
        51 => ("CONCURRENT_TRANSACTIONS", "retry"),
        56 => (
            "KAFKA_STORAGE_ERROR",
            "the broker's disk failed for this partition; see its log",
        ),
        59 => (
            "UNKNOWN_PRODUCER_ID",
            "the producer's state expired; restart it",
        ),
        74 => ("FENCED_LEADER_EPOCH", "metadata is refreshed"),
        75 => ("UNKNOWN_LEADER_EPOCH", "metadata is refreshed"),
        78 => ("OFFSET_NOT_AVAILABLE", "retry"),
        79 => ("MEMBER_ID_REQUIRED", ""),
        87 => ("INVALID_RECORD", "the broker rejected a record"),
        _ => ("UNKNOWN_ERROR_CODE", ""),
    }
}

/// Talking to the cluster failed.
#[derive(Debug, thiserror::Error, Clone)]
pub enum ClientError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigErrorArc),
    /// A connection failed or a request timed out.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// None of the bootstrap brokers answered.
    #[error("no broker reachable among {brokers}: {last} (check --brokers / SLUICE_BROKERS)")]
    NoBrokerReachable {
        /// The bootstrap list.
        brokers: String,
        /// The last failure.
        last: Box<ClientError>,
    },
    /// The broker answered something the client cannot decode.
    #[error("malformed response from {addr}: {reason}")]
    Protocol {
        /// The broker's address.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// The broker does not support a request the client needs.
    #[error(
        "broker {addr} does not support {api} at any version this client speaks ({min}-{max})"
    )]
    UnsupportedApi {
        /// The broker's address.
        addr: String,
        /// The API's name.
        api: &'static str,
        /// Lowest version the client speaks.
        min: i16,
        /// Highest version the client speaks.
        max: i16,
    },
    /// The topic does not exist.
    #[error("unknown topic {0} (create it with `sluice topic create`)")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("topic {topic} has no partition {partition} (it has {count})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many it has.
        count: usize,
    },
    /// No leader is known for a partition after retrying.
    #[error("no leader for {topic}/{partition}; is a broker down?")]
    NoLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The broker answered with an error code.
    #[error("{context}: {code}")]
    Broker {
        /// The code.
        code: KafkaCode,
        /// What was being done.
        context: String,
    },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

/// [`ConfigError`] made cloneable (errors are shared by every record of a failed batch).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConfigErrorArc(pub std::sync::Arc<ConfigError>);

impl From<ConfigError> for ClientError {
    fn from(e: ConfigError) -> Self {
        ClientError::Config(ConfigErrorArc(std::sync::Arc::new(e)))
    }
}

impl ClientError {
    /// True if retrying (after refreshing metadata) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Connection(_) | ClientError::NoLeader { .. } => true,
            ClientError::Broker { code, .. } => code.is_retriable(),
            _ => false,
        }
    }
}

/// Sending a record failed.
#[derive(Debug, thiserror::Error, Clone)]
pub enum ProduceError {
    /// Talking to the cluster failed (after retries, where retrying made sense).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The record alone is larger than a batch may be.
    #[error("record of {bytes} bytes exceeds batch.size ({max}); raise batch.size")]
    RecordTooLarge {
        /// The record's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The record was not acknowledged within `delivery.timeout.ms`.
    #[error("record not acknowledged within delivery.timeout.ms ({timeout_ms} ms): {last}")]
    DeliveryTimeout {
        /// The timeout.
        timeout_ms: u64,
        /// The last failure seen while retrying.
        last: String,
    },
    /// The record could not be encoded.
    #[error("cannot encode the record: {0}")]
    Encode(String),
    /// The producer was closed before the record was sent.
    #[error("the producer is closed")]
    Closed,
}

/// Consuming failed.
#[derive(Debug, thiserror::Error, Clone)]
pub enum ConsumeError {
    /// Talking to the cluster failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The position is outside the stored range.
    #[error("offset {offset} is out of range for {topic}/{partition} (stored: {start}..{end}); seek to the beginning or the end")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        offset: i64,
        /// The log start offset, if known (-1 if not).
        start: i64,
        /// The high watermark, if known (-1 if not).
        end: i64,
    },
    /// A fetched batch is corrupt.
    #[error("corrupt batch in {topic}/{partition} at offset {offset}: {reason}")]
    CorruptBatch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Where the batch starts.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
    /// The partition was not assigned to this consumer.
    #[error("{topic}/{partition} is not assigned to this consumer; call assign first")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
}

/// An administrative operation failed.
#[derive(Debug, thiserror::Error, Clone)]
pub enum AdminError {
    /// Talking to the cluster failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_say_what_to_do() {
        let e = ClientError::Broker {
            code: KafkaCode(36),
            context: "create topic t".into(),
        };
        assert_eq!(
            e.to_string(),
            "create topic t: TOPIC_ALREADY_EXISTS (error 36): pick another name or delete the topic first"
        );
        assert!(KafkaCode(6).refreshes_metadata());
        assert!(KafkaCode(6).is_retriable());
        assert!(!KafkaCode(36).is_retriable());
        assert_eq!(KafkaCode(999).name(), "UNKNOWN_ERROR_CODE");
    }

    #[test]
    fn only_validation_refusals_free_a_batchs_sequence_numbers() {
        assert!(KafkaCode(10).refused_before_append()); // MESSAGE_TOO_LARGE
        assert!(KafkaCode(87).refused_before_append()); // INVALID_RECORD
        assert!(!KafkaCode(-1).refused_before_append()); // UNKNOWN_SERVER_ERROR: may be appended
        assert!(!KafkaCode(19).refused_before_append()); // NOT_ENOUGH_REPLICAS_AFTER_APPEND
    }
}
