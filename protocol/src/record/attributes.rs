//! The batch `attributes` field (int16) and the enums it encodes.
//!
//! | bits | meaning |
//! |---|---|
//! | 0-2 | compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd (5-7 invalid) |
//! | 3 | timestamp type: 0 CreateTime, 1 LogAppendTime |
//! | 4 | transactional |
//! | 5 | control batch (transaction markers) |
//! | 6 | delete horizon set (KIP-534: baseTimestamp holds the compaction delete horizon) |
//! | 7-15 | unused, zero |

use super::error::BatchError;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Compression codec of a batch's records section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records are stored as they are.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Snappy: raw, or in snappy-java's "xerial" framing (Java clients, kafka-python).
    Snappy,
    /// LZ4 frame format (KIP-57: a correct frame-descriptor checksum, independent blocks).
    Lz4,
    /// Zstandard (KIP-110).
    Zstd,
}

impl Compression {
    /// The codec id stored in attribute bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with this id, if it exists.
    pub fn from_id(id: i16) -> Result<Compression, BatchError> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            codec => return Err(BatchError::UnsupportedCompression { codec }),
        })
    }

    /// Kafka's name for the codec (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses Kafka's `compression.type` name (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn from_name(name: &str) -> Option<Compression> {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// Meaning of the batch's timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer, per record.
    #[default]
    CreateTime,
    /// Set by the broker on append: every record's timestamp is the batch's maxTimestamp.
    LogAppendTime,
}

/// The batch attributes (int16), with typed accessors and setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    /// The raw field.
    pub fn bits(self) -> i16 {
        self.0
    }

    /// The compression codec; an error for ids 5-7.
    pub fn compression(self) -> Result<Compression, BatchError> {
        Compression::from_id(self.0 & COMPRESSION_MASK)
    }

    /// The raw codec id (bits 0-2).
    pub fn compression_id(self) -> i16 {
        self.0 & COMPRESSION_MASK
    }

    /// The timestamp type (bit 3).
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction (bit 4).
    pub fn is_transactional(self) -> bool {
        self.0 & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers, bit 5).
    pub fn is_control(self) -> bool {
        self.0 & CONTROL_BIT != 0
    }

    /// Whether baseTimestamp holds a compaction delete horizon (bit 6, KIP-534).
    pub fn has_delete_horizon(self) -> bool {
        self.0 & DELETE_HORIZON_BIT != 0
    }

    fn with_bit(self, bit: i16, on: bool) -> Attributes {
        Attributes(if on { self.0 | bit } else { self.0 & !bit })
    }

    /// These attributes with the codec replaced.
    pub fn with_compression(self, compression: Compression) -> Attributes {
        Attributes((self.0 & !COMPRESSION_MASK) | compression.id())
    }

    /// These attributes with the timestamp type replaced.
    pub fn with_timestamp_type(self, timestamp_type: TimestampType) -> Attributes {
        self.with_bit(
            TIMESTAMP_TYPE_BIT,
            timestamp_type == TimestampType::LogAppendTime,
        )
    }

    /// These attributes with the transactional bit set or cleared.
    pub fn with_transactional(self, on: bool) -> Attributes {
        self.with_bit(TRANSACTIONAL_BIT, on)
    }

    /// These attributes with the control bit set or cleared.
    pub fn with_control(self, on: bool) -> Attributes {
        self.with_bit(CONTROL_BIT, on)
    }

    /// These attributes with the delete-horizon bit set or cleared.
    pub fn with_delete_horizon(self, on: bool) -> Attributes {
        self.with_bit(DELETE_HORIZON_BIT, on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let a = Attributes::default()
            .with_compression(Compression::Lz4)
            .with_timestamp_type(TimestampType::LogAppendTime)
            .with_transactional(true)
            .with_control(true);
        assert_eq!(a.bits(), 0x3b);
        assert_eq!(a.compression(), Ok(Compression::Lz4));
        assert_eq!(a.timestamp_type(), TimestampType::LogAppendTime);
        assert!(a.is_transactional() && a.is_control() && !a.has_delete_horizon());
        let b = a
            .with_compression(Compression::None)
            .with_timestamp_type(TimestampType::CreateTime)
            .with_transactional(false)
            .with_control(false);
        assert_eq!(b, Attributes(0));
    }

    #[test]
    fn unknown_codec_is_typed_error() {
        for id in 5..=7 {
            assert_eq!(
                Attributes(id).compression(),
                Err(BatchError::UnsupportedCompression { codec: id })
            );
        }
    }

    #[test]
    fn names() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert_eq!(Compression::from_name(c.name()), Some(c));
            assert_eq!(Compression::from_id(c.id()), Ok(c));
        }
        assert_eq!(Compression::from_name("LZ4"), Some(Compression::Lz4));
        assert_eq!(Compression::from_name("brotli"), None);
    }
}
