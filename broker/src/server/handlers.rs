//! The request handlers, one module per API family, each an `impl Handlers` block. Handlers take
//! decoded requests and return typed responses; per-partition problems become per-partition error
//! codes, never a failed connection.

mod configs;
mod fetch;
mod list_offsets;
mod metadata;
mod produce;
mod producer_id;
mod records;
mod replicated;
mod topics;

pub(crate) use replicated::find_group_coordinator;
pub(crate) use topics::delete_topic_files;

use sluice_protocol::wire::ErrorCode;

use crate::log::LogError;

/// The Kafka error code for a partition-log error.
pub(crate) fn log_error_code(err: &LogError) -> ErrorCode {
    match err {
        LogError::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
        LogError::MessageTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        LogError::CorruptBatch { .. } => ErrorCode::CORRUPT_MESSAGE,
        LogError::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        LogError::InvalidProducerEpoch { .. } => ErrorCode::INVALID_PRODUCER_EPOCH,
        LogError::Offline { .. } | LogError::Io { .. } => ErrorCode::KAFKA_STORAGE_ERROR,
        // The partition stopped being served here (closed at shutdown, deleted) or a leadership
        // change truncated the records away: the client retries where the metadata now points.
        LogError::Closed | LogError::Truncated { .. } => ErrorCode::NOT_LEADER_OR_FOLLOWER,
        _ => ErrorCode::UNKNOWN_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_no_longer_served_here_sends_the_client_elsewhere() {
        for err in [
            LogError::Closed,
            LogError::Truncated {
                target: 10,
                log_end: 5,
            },
        ] {
            assert_eq!(log_error_code(&err), ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        assert_eq!(
            log_error_code(&LogError::CorruptBatch("x".into())),
            ErrorCode::CORRUPT_MESSAGE
        );
    }
}
