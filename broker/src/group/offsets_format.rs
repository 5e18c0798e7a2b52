//! The record format of the internal topic `__consumer_offsets`.
//!
//! One record per (group, topic, partition), keyed so that log compaction keeps only the latest
//! commit of each; a record with a null value is a tombstone (the offset was deleted with its
//! group). The layout is Kafka's own (offset-commit key version 1, value version 3), so Kafka
//! tooling that decodes `__consumer_offsets` reads ours too. All integers big-endian; a string is
//! an int16 length then that many UTF-8 bytes.
//!
//! ```text
//! key   = version:int16 (=1) group:string topic:string partition:int32
//! value = version:int16 (=3) offset:int64 leader_epoch:int32 metadata:string
//!         commit_timestamp:int64
//! ```
//!
//! Key version 2 (Kafka's group-metadata records) and key version 0 are recognised and skipped, so
//! a log holding them still loads. Values of versions 1 and 2 (no leader epoch; version 1 also
//! carries an expire timestamp) are read too.

use super::types::{CommittedOffset, TopicPartition};

/// Key version of an offset-commit record.
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Key version of Kafka's group-metadata records (skipped when loading).
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version written.
pub const OFFSET_VALUE_VERSION: i16 = 3;

/// Why a record of `__consumer_offsets` could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// The bytes end inside a field.
    #[error("truncated {what}")]
    Truncated {
        /// The field.
        what: &'static str,
    },
    /// A string is not UTF-8 or has a negative length.
    #[error("invalid string in {what}")]
    InvalidString {
        /// The field.
        what: &'static str,
    },
    /// A version this broker does not know.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Key or value.
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// Bytes left after the last field of a key.
    #[error("{n} trailing bytes after the key")]
    TrailingBytes {
        /// How many.
        n: usize,
    },
    /// A string too long for an int16 length prefix.
    #[error("{what} is longer than 32767 bytes")]
    TooLong {
        /// The field.
        what: &'static str,
    },
}

/// What one record's key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset of a group.
    Offset {
        /// The group.
        group_id: String,
        /// The partition.
        partition: TopicPartition,
    },
    /// A record kind this broker does not use (group metadata); skipped when loading.
    Other,
}

/// Encodes the key of an offset-commit record.
pub fn encode_key(group_id: &str, partition: &TopicPartition) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(2 + 2 + group_id.len() + 2 + partition.topic.len() + 4);
    out.extend_from_slice(&OFFSET_KEY_VERSION.to_be_bytes());
    put_string(&mut out, group_id, "group id")?;
    put_string(&mut out, &partition.topic, "topic")?;
    out.extend_from_slice(&partition.partition.to_be_bytes());
    Ok(out)
}

/// Encodes the value of an offset-commit record.
pub fn encode_value(offset: &CommittedOffset) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(2 + 8 + 4 + 2 + offset.metadata.len() + 8);
    out.extend_from_slice(&OFFSET_VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&offset.offset.to_be_bytes());
    out.extend_from_slice(&offset.leader_epoch.to_be_bytes());
    put_string(&mut out, &offset.metadata, "metadata")?;
    out.extend_from_slice(&offset.commit_timestamp_ms.to_be_bytes());
    Ok(out)
}

/// Decodes a record key.
pub fn decode_key(bytes: &[u8]) -> Result<RecordKey, FormatError> {
    let mut r = Cursor { bytes, pos: 0 };
    let version = r.i16("key version")?;
    match version {
        0 | OFFSET_KEY_VERSION => {
            let group_id = r.string("group id")?;
            let topic = r.string("topic")?;
            let partition = r.i32("partition")?;
            r.finish()?;
            Ok(RecordKey::Offset {
                group_id,
                partition: TopicPartition { topic, partition },
            })
        }
        GROUP_METADATA_KEY_VERSION => Ok(RecordKey::Other),
        version => Err(FormatError::UnknownVersion {
            what: "key",
            version,
        }),
    }
}

/// Decodes an offset-commit value.
pub fn decode_value(bytes: &[u8]) -> Result<CommittedOffset, FormatError> {
    let mut r = Cursor { bytes, pos: 0 };
    let version = r.i16("value version")?;
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader epoch")?
    } else {
        -1
    };
    let metadata = r.string("metadata")?;
    let commit_timestamp_ms = r.i64("commit timestamp")?;
    match version {
        0 | 2 | 3 => {}
        1 => {
            r.i64("expire timestamp")?;
        }
        version => {
            return Err(FormatError::UnknownVersion {
                what: "value",
                version,
            })
        }
    }
    // Newer value versions may append fields: ignore what follows, as Kafka does.
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

fn put_string(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<(), FormatError> {
    let len = i16::try_from(s.len()).map_err(|_| FormatError::TooLong { what })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(FormatError::Truncated { what })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, FormatError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, FormatError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, FormatError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(i64::from_be_bytes(a))
    }

    fn string(&mut self, what: &'static str) -> Result<String, FormatError> {
        let len = self.i16(what)?;
        // The length is at most 32767 and `take` checks it against the bytes present before
        // anything is allocated.
        let len = usize::try_from(len).map_err(|_| FormatError::InvalidString { what })?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FormatError::InvalidString { what })
    }

    fn finish(&self) -> Result<(), FormatError> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            n => Err(FormatError::TrailingBytes { n }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "orders".into(),
            partition: 3,
        }
    }

    #[test]
    fn round_trip() {
        let key = encode_key("billing", &tp()).unwrap();
        assert_eq!(
            decode_key(&key).unwrap(),
            RecordKey::Offset {
                group_id: "billing".into(),
                partition: tp()
            }
        );
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: 7,
            metadata: "m€".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(decode_value(&encode_value(&value).unwrap()).unwrap(), value);
    }

    #[test]
    fn known_bytes_match_kafkas_layout() {
        let key = encode_key(
            "g",
            &TopicPartition {
                topic: "t".into(),
                partition: 1,
            },
        )
        .unwrap();
        assert_eq!(key, [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
        let value = encode_value(&CommittedOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 2,
        })
        .unwrap();
        assert_eq!(
            value,
            [0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        );
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let key = encode_key("group", &tp()).unwrap();
        for n in 0..key.len() {
            assert!(decode_key(&key[..n]).is_err(), "key cut at {n}");
        }
        let value = encode_value(&CommittedOffset {
            offset: 1,
            leader_epoch: 0,
            metadata: "abc".into(),
            commit_timestamp_ms: 0,
        })
        .unwrap();
        for n in 0..value.len() {
            assert!(decode_value(&value[..n]).is_err(), "value cut at {n}");
        }
    }

    #[test]
    fn bad_input_table() {
        let cases: &[(&[u8], FormatError)] = &[
            (
                &[0, 9],
                FormatError::UnknownVersion {
                    what: "key",
                    version: 9,
                },
            ),
            (
                &[0, 1, 255, 255],
                FormatError::InvalidString { what: "group id" },
            ),
            (
                &[0, 1, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 0],
                FormatError::InvalidString { what: "group id" },
            ),
            (
                &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                FormatError::TrailingBytes { n: 1 },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode_key(bytes).unwrap_err(), *expected, "{bytes:?}");
        }
        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']).unwrap(), RecordKey::Other);
        assert!(encode_key(&"x".repeat(40_000), &tp()).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic the decoders; they decode or give a typed error.
        #[test]
        fn arbitrary_bytes_are_decoded_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_key(&bytes);
            let _ = decode_value(&bytes);
        }

        /// Encoding then decoding is the identity.
        #[test]
        fn round_trip_any(group in ".{0,40}", topic in "[a-z._-]{1,40}", partition in any::<i32>(),
                          offset in any::<i64>(), epoch in any::<i32>(), metadata in ".{0,40}", ts in any::<i64>()) {
            let tp = TopicPartition { topic, partition };
            let key = encode_key(&group, &tp).unwrap();
            prop_assert_eq!(decode_key(&key).unwrap(), RecordKey::Offset { group_id: group, partition: tp });
            let value = CommittedOffset { offset, leader_epoch: epoch, metadata, commit_timestamp_ms: ts };
            prop_assert_eq!(decode_value(&encode_value(&value).unwrap()).unwrap(), value);
        }
    }
}
