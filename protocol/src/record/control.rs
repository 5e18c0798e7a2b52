//! Control records: the transaction markers a transaction coordinator writes (KIP-98).
//!
//! A control batch has the control and transactional attribute bits set and holds one record whose
//! key is `version int16 (0) | type int16` (0 = abort, 1 = commit; KRaft adds others) and whose value,
//! for commit/abort markers, is `version int16 (0) | coordinatorEpoch int32`. Consumers skip control
//! records; `read_committed` consumers use them to drop aborted data.

use bytes::Bytes;

use super::attributes::{Compression, TimestampType};
use super::builder::{BatchOptions, RecordBatchBuilder};
use super::error::{BatchError, BuildError};

/// Kind of a control record, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The producer's transaction was aborted.
    Abort,
    /// The producer's transaction was committed.
    Commit,
    /// Another control type (KRaft leader change, snapshot header/footer, ...), by id.
    Other(i16),
}

const KEY_BYTES: usize = 4;
const MARKER_VALUE_BYTES: usize = 6;

fn invalid(reason: &'static str) -> BatchError {
    BatchError::InvalidRecord { index: 0, reason }
}

impl ControlRecordType {
    /// The type id stored in the key.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }

    /// Reads a control record's key. Versions above 0 are read the same way, as Kafka does
    /// (later versions may only append fields).
    pub fn parse_key(key: &[u8]) -> Result<ControlRecordType, BatchError> {
        if key.len() < KEY_BYTES {
            return Err(invalid("control record key shorter than 4 bytes"));
        }
        let version = i16::from_be_bytes([key[0], key[1]]);
        if version < 0 {
            return Err(invalid("negative control record key version"));
        }
        Ok(match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            id => ControlRecordType::Other(id),
        })
    }

    /// The key bytes for this type (version 0).
    pub fn key(self) -> [u8; KEY_BYTES] {
        let id = self.id().to_be_bytes();
        [0, 0, id[0], id[1]]
    }
}

/// Reads the coordinator epoch from a commit/abort marker's value.
pub fn parse_marker_coordinator_epoch(value: &[u8]) -> Result<i32, BatchError> {
    if value.len() < MARKER_VALUE_BYTES {
        return Err(invalid("transaction marker value shorter than 6 bytes"));
    }
    if i16::from_be_bytes([value[0], value[1]]) < 0 {
        return Err(invalid("negative transaction marker version"));
    }
    Ok(i32::from_be_bytes([value[2], value[3], value[4], value[5]]))
}

/// Builds the one-record control batch ending a transaction (commit or abort), as the transaction
/// coordinator asks partition leaders to append. Base offset 0, to be stamped on append.
pub fn end_transaction_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Result<Bytes, BuildError> {
    let kind = if commit {
        ControlRecordType::Commit
    } else {
        ControlRecordType::Abort
    };
    let mut value = [0u8; MARKER_VALUE_BYTES];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    let mut b = RecordBatchBuilder::new(BatchOptions {
        compression: Compression::None,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        timestamp_type: TimestampType::CreateTime,
        is_transactional: true,
        is_control: true,
        partition_leader_epoch: -1,
    });
    b.append(timestamp_ms, Some(&kind.key()), Some(&value), &[])?;
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordBatch;

    #[test]
    fn commit_marker_round_trips() {
        let bytes = end_transaction_batch(77, 4, true, 12, 5_000).expect("build");
        let batch = RecordBatch::parse(bytes).expect("parse");
        let h = batch.header();
        assert!(h.attributes.is_control() && h.attributes.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (77, 4, -1)
        );
        let record = batch
            .records()
            .expect("records")
            .next()
            .expect("one")
            .expect("valid");
        let key = record.key().expect("key");
        assert_eq!(
            ControlRecordType::parse_key(key),
            Ok(ControlRecordType::Commit)
        );
        let value = record.value().expect("value");
        assert_eq!(parse_marker_coordinator_epoch(value), Ok(12));
    }

    #[test]
    fn abort_and_unknown_types() {
        assert_eq!(
            ControlRecordType::parse_key(&[0, 0, 0, 0]),
            Ok(ControlRecordType::Abort)
        );
        assert_eq!(
            ControlRecordType::parse_key(&[0, 1, 0, 3, 9]),
            Ok(ControlRecordType::Other(3))
        );
        assert_eq!(ControlRecordType::Other(3).key(), [0, 0, 0, 3]);
    }

    #[test]
    fn short_or_negative_is_an_error() {
        assert!(ControlRecordType::parse_key(&[0, 0, 1]).is_err());
        assert!(ControlRecordType::parse_key(&[0xff, 0xff, 0, 1]).is_err());
        assert!(parse_marker_coordinator_epoch(&[0, 0, 0, 0, 1]).is_err());
        assert!(parse_marker_coordinator_epoch(&[0x80, 0, 0, 0, 0, 1]).is_err());
    }
}
