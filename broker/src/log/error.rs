//! Typed errors of the partition log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::log::config::ConfigError;

/// Everything a log operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The requested offset is below the log start or past the log end.
    #[error("offset {requested} out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: i64,
        /// The log start offset.
        start: i64,
        /// The log end offset (next offset to be written).
        end: i64,
    },
    /// The partition is offline: its data is corrupt or its disk failed; nothing is served.
    #[error("partition offline: {path} at position {position}: {reason}")]
    Offline {
        /// The file holding the problem.
        path: PathBuf,
        /// Byte position inside that file.
        position: u64,
        /// What was found.
        reason: String,
    },
    /// A batch (or a produce request's records) is larger than `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge {
        /// Bytes of the offending batch.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A batch handed to the log does not parse (the caller should have validated it).
    #[error("corrupt batch: {0}")]
    CorruptBatch(String),
    /// An idempotent producer skipped sequence numbers.
    #[error("producer {producer_id}: out of order sequence {received}, expected {expected}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The next sequence the log expected.
        expected: i32,
        /// The base sequence received.
        received: i32,
    },
    /// An idempotent producer wrote with an epoch older than the current one (it was fenced).
    #[error("producer {producer_id}: epoch {received} is older than {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The epoch the log knows.
        current: i16,
        /// The epoch received.
        received: i16,
    },
    /// A follower append whose offsets do not continue the log.
    #[error("follower batch at offset {base_offset} does not follow log end {log_end}")]
    NonContiguousAppend {
        /// Base offset of the batch.
        base_offset: i64,
        /// The log end offset.
        log_end: i64,
    },
    /// The partition was closed or deleted.
    #[error("partition closed")]
    Closed,
    /// A topic configuration error.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A partition with that name already exists.
    #[error("partition {0} already exists")]
    PartitionExists(String),
    /// No partition with that name.
    #[error("unknown partition {0}")]
    UnknownPartition(String),
    /// An I/O error (shared so that one failed fsync can be reported to every waiter).
    #[error("i/o error: {0}")]
    Io(Arc<io::Error>),
}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(Arc::new(e))
    }
}

/// Shorthand for results of log operations.
pub type LogResult<T> = Result<T, LogError>;
