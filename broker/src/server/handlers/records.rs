//! Validation of a produce request's records before they reach the log: every batch whole,
//! magic 2, CRC-32C intact, sizes within `max.message.bytes`, `lastOffsetDelta` consistent with the
//! record count, a known codec, not a control batch, and timestamps per `message.timestamp.type`
//! (CreateTime: within `message.timestamp.difference.max.ms` of the broker clock; LogAppendTime
//! topics are stamped by the log on append). Records are never re-encoded or copied here.

use bytes::Bytes;
use sluice_protocol::record::{BatchError, BatchIter};
use sluice_protocol::wire::ErrorCode;

use crate::log::config::TimestampType;
use crate::log::LogConfig;

/// Why a partition's records are refused: the error code and a message for the log.
pub(crate) type RecordsFailure = (ErrorCode, String);

/// Validates a partition's `records` field (see the module doc) under `config` at `now_ms`.
pub(crate) fn check_produce_records(
    records: Option<Bytes>,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Bytes, RecordsFailure> {
    let records = records.filter(|r| !r.is_empty()).ok_or_else(|| {
        (
            ErrorCode::CORRUPT_MESSAGE,
            "produce request without records".to_string(),
        )
    })?;
    let mut iter = BatchIter::new(records.clone());
    loop {
        let position = iter.position();
        let Some(batch) = iter.next() else { break };
        let batch = batch.map_err(|err| batch_failure(&err, position))?;
        let header = batch.header();
        if batch.total_bytes() > config.max_message_bytes {
            return Err((
                ErrorCode::MESSAGE_TOO_LARGE,
                format!(
                    "batch of {} bytes exceeds max.message.bytes = {}",
                    batch.total_bytes(),
                    config.max_message_bytes
                ),
            ));
        }
        header
            .validate_produce()
            .map_err(|err| batch_failure(&err, position))?;
        if header.attributes.is_transactional() {
            return Err((
                ErrorCode::INVALID_RECORD,
                "transactional batches are not supported".to_string(),
            ));
        }
        if config.message_timestamp_type == TimestampType::CreateTime {
            let drift = header.max_timestamp.saturating_sub(now_ms).saturating_abs();
            if drift > config.message_timestamp_difference_max_ms {
                return Err((
                    ErrorCode::INVALID_TIMESTAMP,
                    format!(
                        "batch max timestamp {} is {drift} ms from the broker clock \
                         (message.timestamp.difference.max.ms = {})",
                        header.max_timestamp, config.message_timestamp_difference_max_ms
                    ),
                ));
            }
        }
    }
    Ok(records)
}

fn batch_failure(err: &BatchError, position: usize) -> RecordsFailure {
    let code = match err {
        BatchError::UnsupportedCompression { .. } => ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
        BatchError::InvalidHeader { .. } | BatchError::InvalidRecord { .. } => {
            ErrorCode::INVALID_RECORD
        }
        _ => ErrorCode::CORRUPT_MESSAGE,
    };
    (code, format!("batch at byte {position}: {err}"))
}
