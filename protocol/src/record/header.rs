//! The 61-byte batch header: field offsets, parsing, produce-time validation and in-place stamping.
//!
//! Parsing reads only the header; it checks the magic, the length bounds and the record count, not the
//! CRC (that needs the whole batch: see [`super::RecordBatch::parse`] and [`verify_crc`]).

use super::attributes::{Attributes, TimestampType};
use super::error::BatchError;
use super::limits::{BATCH_BYTES_MAX, RECORDS_PER_BATCH_MAX};

/// Byte offsets of the header fields (all big-endian).
pub mod offset {
    /// baseOffset: int64.
    pub const BASE_OFFSET: usize = 0;
    /// batchLength: int32, bytes after this field.
    pub const BATCH_LENGTH: usize = 8;
    /// partitionLeaderEpoch: int32.
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    /// magic: int8 = 2.
    pub const MAGIC: usize = 16;
    /// crc: uint32, CRC-32C of `ATTRIBUTES..end`.
    pub const CRC: usize = 17;
    /// attributes: int16.
    pub const ATTRIBUTES: usize = 21;
    /// lastOffsetDelta: int32.
    pub const LAST_OFFSET_DELTA: usize = 23;
    /// baseTimestamp: int64.
    pub const BASE_TIMESTAMP: usize = 27;
    /// maxTimestamp: int64.
    pub const MAX_TIMESTAMP: usize = 35;
    /// producerId: int64.
    pub const PRODUCER_ID: usize = 43;
    /// producerEpoch: int16.
    pub const PRODUCER_EPOCH: usize = 51;
    /// baseSequence: int32.
    pub const BASE_SEQUENCE: usize = 53;
    /// recordsCount: int32.
    pub const RECORDS_COUNT: usize = 57;
    /// First byte of the records section.
    pub const RECORDS: usize = 61;
}

/// Size of the fixed batch header.
pub const BATCH_HEADER_BYTES: usize = 61;

/// Bytes before the part counted by batchLength (baseOffset + batchLength).
pub const BATCH_OVERHEAD_BYTES: usize = 12;

/// The only magic (format version) Sluice reads or writes.
pub const MAGIC_V2: i8 = 2;

/// Bytes needed to learn a batch's total size and magic.
const PREFIX_BYTES: usize = offset::MAGIC + 1;

const _: () = assert!(offset::RECORDS == BATCH_HEADER_BYTES);
const _: () = assert!(offset::BATCH_LENGTH + 4 == BATCH_OVERHEAD_BYTES);

#[inline]
fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the total size (12 + batchLength) of the batch starting at `buf[0]`, checking the length
/// bounds and the magic byte. Needs only the first 17 bytes; with fewer, returns
/// [`BatchError::Incomplete`].
pub fn batch_total_bytes(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < BATCH_OVERHEAD_BYTES {
        return Err(BatchError::Incomplete {
            needed: BATCH_HEADER_BYTES,
            available: buf.len(),
        });
    }
    let batch_length = i32_at(buf, offset::BATCH_LENGTH);
    let length = i64::from(batch_length);
    if length < (BATCH_HEADER_BYTES - BATCH_OVERHEAD_BYTES) as i64 {
        return Err(BatchError::InvalidLength {
            length,
            reason: "shorter than the batch header",
        });
    }
    let total = BATCH_OVERHEAD_BYTES + batch_length as usize;
    if total > BATCH_BYTES_MAX {
        return Err(BatchError::TooLarge {
            bytes: total,
            limit: BATCH_BYTES_MAX,
        });
    }
    if buf.len() < PREFIX_BYTES {
        return Err(BatchError::Incomplete {
            needed: total,
            available: buf.len(),
        });
    }
    let magic = buf[offset::MAGIC] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchError::InvalidMagic { magic });
    }
    Ok(total)
}

/// The decoded 61-byte header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (assigned by the broker; 0 from producers).
    pub base_offset: i64,
    /// Bytes after the batchLength field (the batch is `12 + batch_length` bytes).
    pub batch_length: i32,
    /// Leader epoch of the broker that appended the batch (-1 from producers).
    pub partition_leader_epoch: i32,
    /// Format version: always 2 once parsed.
    pub magic: i8,
    /// CRC-32C of attributes..end, as stored.
    pub crc: u32,
    /// Codec, timestamp type, transactional and control bits.
    pub attributes: Attributes,
    /// Offset of the last record minus base_offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see [`Attributes::has_delete_horizon`]).
    pub base_timestamp: i64,
    /// Largest record timestamp (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (at least 61 bytes; the rest of the batch need not be
    /// present). Checks magic, batchLength bounds and that recordsCount is in `0..=RECORDS_PER_BATCH_MAX`.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let total = batch_total_bytes(buf)?;
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Incomplete {
                needed: total,
                available: buf.len(),
            });
        }
        let header = BatchHeader {
            base_offset: i64_at(buf, offset::BASE_OFFSET),
            batch_length: i32_at(buf, offset::BATCH_LENGTH),
            partition_leader_epoch: i32_at(buf, offset::PARTITION_LEADER_EPOCH),
            magic: buf[offset::MAGIC] as i8,
            crc: i32_at(buf, offset::CRC) as u32,
            attributes: Attributes(i16_at(buf, offset::ATTRIBUTES)),
            last_offset_delta: i32_at(buf, offset::LAST_OFFSET_DELTA),
            base_timestamp: i64_at(buf, offset::BASE_TIMESTAMP),
            max_timestamp: i64_at(buf, offset::MAX_TIMESTAMP),
            producer_id: i64_at(buf, offset::PRODUCER_ID),
            producer_epoch: i16_at(buf, offset::PRODUCER_EPOCH),
            base_sequence: i32_at(buf, offset::BASE_SEQUENCE),
            records_count: i32_at(buf, offset::RECORDS_COUNT),
        };
        if header.records_count < 0 {
            return Err(BatchError::InvalidHeader {
                reason: "negative recordsCount",
            });
        }
        if header.records_count as usize > RECORDS_PER_BATCH_MAX {
            return Err(BatchError::InvalidHeader {
                reason: "recordsCount above RECORDS_PER_BATCH_MAX",
            });
        }
        Ok(header)
    }

    /// Size of the whole batch: 12 + batchLength.
    pub fn total_bytes(&self) -> usize {
        BATCH_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }

    /// Offset of the last record: base_offset + last_offset_delta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch: last_offset + 1.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Sequence number of the last record (wrapping at i32::MAX as Kafka does), or -1 without one.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }

    /// Whether the batch carries an idempotent/transactional producer id.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Checks what a broker requires of a batch a producer sends (on top of [`Self::parse`] and the
    /// CRC): at least one record, `lastOffsetDelta == recordsCount - 1`, a known codec, and not a
    /// control batch (only the transaction coordinator writes those). Zstd and snappy are accepted:
    /// the broker stores compressed batches without decompressing them.
    pub fn validate_produce(&self) -> Result<(), BatchError> {
        if self.records_count == 0 {
            return Err(BatchError::InvalidHeader {
                reason: "a produced batch has no records",
            });
        }
        if i64::from(self.last_offset_delta) != i64::from(self.records_count) - 1 {
            return Err(BatchError::InvalidHeader {
                reason: "lastOffsetDelta is not recordsCount - 1",
            });
        }
        self.attributes.compression()?;
        if self.attributes.is_control() {
            return Err(BatchError::InvalidHeader {
                reason: "clients may not produce control batches",
            });
        }
        Ok(())
    }
}

fn check_header_present(batch: &[u8]) -> Result<(), BatchError> {
    if batch.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Incomplete {
            needed: BATCH_HEADER_BYTES,
            available: batch.len(),
        });
    }
    Ok(())
}

/// Writes baseOffset in place. Not covered by the CRC: the CRC stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), BatchError> {
    check_header_present(batch)?;
    batch[offset::BASE_OFFSET..offset::BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Writes partitionLeaderEpoch in place. Not covered by the CRC: the CRC stays valid.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    check_header_present(batch)?;
    batch[offset::PARTITION_LEADER_EPOCH..offset::PARTITION_LEADER_EPOCH + 4]
        .copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Computes the CRC-32C of a whole batch (attributes..end), whatever its header says.
pub fn compute_crc(batch: &[u8]) -> Result<u32, BatchError> {
    let total = batch_total_bytes(batch)?;
    if batch.len() < total {
        return Err(BatchError::Incomplete {
            needed: total,
            available: batch.len(),
        });
    }
    Ok(crc32c::crc32c(&batch[offset::ATTRIBUTES..total]))
}

/// Checks the stored CRC-32C of the batch at the start of `batch` against its bytes.
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let actual = compute_crc(batch)?;
    let expected = i32_at(batch, offset::CRC) as u32;
    if expected != actual {
        return Err(BatchError::CrcMismatch { expected, actual });
    }
    Ok(())
}

/// Marks the batch LogAppendTime with `timestamp_ms` as its maxTimestamp (which then is every
/// record's timestamp) and recomputes the CRC, as a broker with `message.timestamp.type=LogAppendTime`
/// does on append. `batch` must hold the whole batch.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) -> Result<(), BatchError> {
    let total = batch_total_bytes(batch)?;
    if batch.len() < total {
        return Err(BatchError::Incomplete {
            needed: total,
            available: batch.len(),
        });
    }
    let attributes = Attributes(i16_at(batch, offset::ATTRIBUTES))
        .with_timestamp_type(TimestampType::LogAppendTime);
    batch[offset::ATTRIBUTES..offset::ATTRIBUTES + 2].copy_from_slice(&attributes.0.to_be_bytes());
    batch[offset::MAX_TIMESTAMP..offset::MAX_TIMESTAMP + 8]
        .copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[offset::ATTRIBUTES..total]);
    batch[offset::CRC..offset::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Overwrites the stored CRC with the one computed from the bytes (for code that edits CRC-covered
/// fields, such as a builder or a test forging a batch).
pub fn rewrite_crc(batch: &mut [u8]) -> Result<(), BatchError> {
    let crc = compute_crc(batch)?;
    batch[offset::CRC..offset::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(batch_length: i32, magic: i8) -> Vec<u8> {
        let mut b = vec![0u8; BATCH_HEADER_BYTES];
        b[offset::BATCH_LENGTH..][..4].copy_from_slice(&batch_length.to_be_bytes());
        b[offset::MAGIC] = magic as u8;
        b
    }

    #[test]
    fn length_bounds_and_magic() {
        assert!(matches!(
            batch_total_bytes(&prefix(48, 2)),
            Err(BatchError::InvalidLength { length: 48, .. })
        ));
        assert!(matches!(
            batch_total_bytes(&prefix(-1, 2)),
            Err(BatchError::InvalidLength { length: -1, .. })
        ));
        assert_eq!(
            batch_total_bytes(&prefix(i32::MAX, 2)),
            Err(BatchError::TooLarge {
                bytes: 12 + i32::MAX as usize,
                limit: BATCH_BYTES_MAX
            })
        );
        assert_eq!(
            batch_total_bytes(&prefix(49, 1)),
            Err(BatchError::InvalidMagic { magic: 1 })
        );
        assert_eq!(batch_total_bytes(&prefix(49, 2)), Ok(61));
        // Too short to know the length, or the magic.
        assert_eq!(
            batch_total_bytes(&prefix(49, 2)[..11]),
            Err(BatchError::Incomplete {
                needed: 61,
                available: 11
            })
        );
        assert_eq!(
            batch_total_bytes(&prefix(100, 2)[..16]),
            Err(BatchError::Incomplete {
                needed: 112,
                available: 16
            })
        );
    }

    #[test]
    fn record_count_bounds() {
        let mut b = prefix(49, 2);
        b[offset::RECORDS_COUNT..][..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&b),
            Err(BatchError::InvalidHeader { .. })
        ));
        b[offset::RECORDS_COUNT..][..4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            BatchHeader::parse(&b),
            Err(BatchError::InvalidHeader { .. })
        ));
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let mut b = prefix(49, 2);
        b[offset::LAST_OFFSET_DELTA..][..4].copy_from_slice(&4i32.to_be_bytes());
        b[offset::BASE_SEQUENCE..][..4].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        let h = BatchHeader::parse(&b).expect("parse");
        // MAX-1, MAX, 0, 1, 2.
        assert_eq!(h.last_sequence(), 2);
        b[offset::BASE_SEQUENCE..][..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(BatchHeader::parse(&b).expect("parse").last_sequence(), -1);
    }

    #[test]
    fn produce_validation() {
        let mut b = prefix(49, 2);
        b[offset::RECORDS_COUNT..][..4].copy_from_slice(&3i32.to_be_bytes());
        b[offset::LAST_OFFSET_DELTA..][..4].copy_from_slice(&2i32.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&b).expect("parse").validate_produce(),
            Ok(())
        );
        b[offset::LAST_OFFSET_DELTA..][..4].copy_from_slice(&3i32.to_be_bytes());
        assert!(BatchHeader::parse(&b)
            .expect("parse")
            .validate_produce()
            .is_err());
        b[offset::RECORDS_COUNT..][..4].copy_from_slice(&0i32.to_be_bytes());
        b[offset::LAST_OFFSET_DELTA..][..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(BatchHeader::parse(&b)
            .expect("parse")
            .validate_produce()
            .is_err());
        b[offset::RECORDS_COUNT..][..4].copy_from_slice(&1i32.to_be_bytes());
        b[offset::LAST_OFFSET_DELTA..][..4].copy_from_slice(&0i32.to_be_bytes());
        b[offset::ATTRIBUTES..][..2].copy_from_slice(&6i16.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&b).expect("parse").validate_produce(),
            Err(BatchError::UnsupportedCompression { codec: 6 })
        );
    }
}
