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

#[cfg(test)]
mod tests {
    use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};

    use super::*;

    fn batch(options: BatchOptions, n: usize) -> Bytes {
        let mut builder = RecordBatchBuilder::new(options);
        for i in 0..n {
            builder
                .append(1_000, None, Some(format!("v{i}").as_bytes()), &[])
                .expect("append");
        }
        builder.finish().expect("finish")
    }

    fn check(records: Bytes, config: &LogConfig) -> Result<Bytes, ErrorCode> {
        check_produce_records(Some(records), config, 1_000).map_err(|(code, _)| code)
    }

    #[test]
    fn several_batches_pass_unchanged() {
        let mut both = batch(BatchOptions::default(), 3).to_vec();
        both.extend_from_slice(&batch(BatchOptions::default(), 2));
        let both = Bytes::from(both);
        assert_eq!(check(both.clone(), &LogConfig::default()), Ok(both));
    }

    #[test]
    fn refusals_carry_kafka_codes() {
        let config = LogConfig::default();
        let control = batch(
            BatchOptions {
                is_control: true,
                ..Default::default()
            },
            1,
        );
        assert_eq!(check(control, &config), Err(ErrorCode::INVALID_RECORD));
        let transactional = batch(
            BatchOptions {
                is_transactional: true,
                producer_id: 1,
                producer_epoch: 0,
                base_sequence: 0,
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            check(transactional, &config),
            Err(ErrorCode::INVALID_RECORD)
        );
        let mut bad_magic = batch(BatchOptions::default(), 1).to_vec();
        bad_magic[16] = 1;
        assert_eq!(
            check(Bytes::from(bad_magic), &config),
            Err(ErrorCode::CORRUPT_MESSAGE)
        );
        assert_eq!(
            check_produce_records(None, &config, 0).map_err(|(code, _)| code),
            Err(ErrorCode::CORRUPT_MESSAGE)
        );
        let small = LogConfig {
            max_message_bytes: 70,
            ..LogConfig::default()
        };
        assert_eq!(
            check(batch(BatchOptions::default(), 5), &small),
            Err(ErrorCode::MESSAGE_TOO_LARGE)
        );
    }
}
