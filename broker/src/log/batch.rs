//! Header-level view of a stored RecordBatch v2: the only part of a batch the log looks at.
//!
//! The log never walks records on append or read; it needs the 61-byte header (offsets, length,
//! timestamps, producer fields) and the CRC-32C check. These accessors read fixed big-endian
//! positions (layout in `sluice_protocol::record` and ARCHITECTURE.md) and stamp the fields the
//! broker owns (base offset, partition leader epoch) in place, which the CRC does not cover.

use crate::log::limits::{BATCH_LENGTH_MIN, STORED_BATCH_BYTES_MAX};

/// Bytes of the v2 batch header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before the part counted by `batchLength` (baseOffset + batchLength).
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Position of the CRC'd region (attributes onwards).
const CRC_START: usize = 21;
const ATTRIBUTES_TIMESTAMP_TYPE: i16 = 0x08;
const ATTRIBUTES_TRANSACTIONAL: i16 = 0x10;
const ATTRIBUTES_CONTROL: i16 = 0x20;

/// Why a batch header or body is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than the header or than `batchLength` says.
    #[error("short batch: {needed} bytes needed, {available} available")]
    Short {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// `batchLength` outside [49, limit].
    #[error("invalid batch length {0}")]
    Length(i32),
    /// Magic byte is not 2.
    #[error("invalid magic {0}")]
    Magic(i8),
    /// CRC-32C mismatch.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// CRC in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// Negative `lastOffsetDelta` or record count, or an offset overflow.
    #[error("invalid offsets: {0}")]
    Offsets(&'static str),
}

/// The header fields of one batch, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Bytes after the length field.
    pub batch_length: i32,
    /// Leader epoch stamped by the leader that appended it.
    pub leader_epoch: i32,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attribute bits.
    pub attributes: i16,
    /// `lastOffset - baseOffset`.
    pub last_offset_delta: i32,
    /// First record's timestamp.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the log append time).
    pub max_timestamp: i64,
    /// Producer id, -1 when not idempotent.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// First record's sequence.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl Header {
    /// Parses and bounds-checks the header at the start of `bytes` (needs 61 bytes; does not need
    /// the whole batch and does not check the CRC).
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        if bytes.len() < HEADER_BYTES {
            return Err(HeaderError::Short {
                needed: HEADER_BYTES,
                available: bytes.len(),
            });
        }
        let batch_length = i32_at(bytes, 8);
        if batch_length < BATCH_LENGTH_MIN as i32
            || batch_length as usize > STORED_BATCH_BYTES_MAX - LOG_OVERHEAD_BYTES
        {
            return Err(HeaderError::Length(batch_length));
        }
        let magic = bytes[16] as i8;
        if magic != 2 {
            return Err(HeaderError::Magic(magic));
        }
        let h = Header {
            base_offset: i64_at(bytes, 0),
            batch_length,
            leader_epoch: i32_at(bytes, 12),
            crc: u32::from_be_bytes([bytes[17], bytes[18], bytes[19], bytes[20]]),
            attributes: i16_at(bytes, 21),
            last_offset_delta: i32_at(bytes, 23),
            base_timestamp: i64_at(bytes, 27),
            max_timestamp: i64_at(bytes, 35),
            producer_id: i64_at(bytes, 43),
            producer_epoch: i16_at(bytes, 51),
            base_sequence: i32_at(bytes, 53),
            records_count: i32_at(bytes, 57),
        };
        if h.last_offset_delta < 0 || h.records_count < 0 {
            return Err(HeaderError::Offsets(
                "negative lastOffsetDelta or recordsCount",
            ));
        }
        if h.base_offset < 0
            || h.base_offset
                .checked_add(i64::from(h.last_offset_delta))
                .is_none()
        {
            return Err(HeaderError::Offsets("base offset out of range"));
        }
        Ok(h)
    }

    /// Whole batch size including the 12-byte log overhead.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Number of offsets the batch spans.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// Sequence of the last record (wrapping as Kafka does).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }

    /// True when the producer is idempotent (has a producer id).
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }

    /// True for transactional batches.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTES_TRANSACTIONAL != 0
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTES_CONTROL != 0
    }
}

/// Checks the CRC-32C of a whole batch (`batch.len()` must equal the header's total bytes).
pub fn check_crc(batch: &[u8], header: &Header) -> Result<(), HeaderError> {
    let total = header.total_bytes();
    if batch.len() < total {
        return Err(HeaderError::Short {
            needed: total,
            available: batch.len(),
        });
    }
    let computed = crc32c::crc32c(&batch[CRC_START..total]);
    if computed != header.crc {
        return Err(HeaderError::Crc {
            stored: header.crc,
            computed,
        });
    }
    Ok(())
}

/// Parses the header and checks the CRC of the batch at the start of `bytes`.
pub fn validate(bytes: &[u8]) -> Result<Header, HeaderError> {
    let h = Header::parse(bytes)?;
    check_crc(bytes, &h)?;
    Ok(h)
}

/// Stamps the base offset and partition leader epoch in the first 16 bytes of a batch (neither is
/// covered by the CRC).
pub fn stamp(head16: &mut [u8; 16], base_offset: i64, leader_epoch: i32) {
    head16[0..8].copy_from_slice(&base_offset.to_be_bytes());
    head16[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a whole batch as LogAppendTime with `now_ms` as its max timestamp and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = i16_at(batch, 21) | ATTRIBUTES_TIMESTAMP_TYPE;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod testing {
    //! Test batches built with `sluice_protocol::record::RecordBatchBuilder`.
    use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};

    use super::*;

    /// A valid batch of `n` records (each with `payload` as its value and key `k<i>`), stamped with
    /// base offset `base`, timestamps `ts`, and the given (producer id, epoch, base sequence).
    pub fn batch(
        base: i64,
        n: i32,
        ts: i64,
        producer: Option<(i64, i16, i32)>,
        payload: &[u8],
    ) -> Vec<u8> {
        let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
        let mut b = RecordBatchBuilder::new(BatchOptions {
            producer_id,
            producer_epoch,
            base_sequence,
            ..BatchOptions::default()
        });
        for i in 0..n {
            let key = format!("k{i}");
            b.append(ts, Some(key.as_bytes()), Some(payload), &[])
                .expect("test record fits");
        }
        let mut v = b.finish().expect("test batch builds").to_vec();
        let mut head = [0u8; 16];
        head.copy_from_slice(&v[..16]);
        stamp(&mut head, base, 0);
        v[..16].copy_from_slice(&head);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::testing::batch;
    use super::*;

    #[test]
    fn parse_and_validate() {
        let b = batch(5, 3, 100, Some((7, 1, 10)), b"hello");
        let h = validate(&b).unwrap();
        assert_eq!(h.base_offset, 5);
        assert_eq!(h.last_offset(), 7);
        assert_eq!(h.total_bytes(), b.len());
        assert_eq!(h.last_sequence(), 12);
        assert_eq!(h.producer_epoch, 1);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let b = batch(0, 2, 1, None, b"some record bytes");
        for len in 0..b.len() {
            assert!(validate(&b[..len]).is_err(), "truncated to {len}");
        }
        for bit in (16 * 8)..(b.len() * 8) {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(validate(&c).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn stamping_keeps_crc_and_log_append_time_recomputes_it() {
        let mut b = batch(0, 1, 1, None, b"x");
        let mut head = [0u8; 16];
        head.copy_from_slice(&b[..16]);
        stamp(&mut head, 42, 9);
        b[..16].copy_from_slice(&head);
        let h = validate(&b).unwrap();
        assert_eq!((h.base_offset, h.leader_epoch), (42, 9));
        set_log_append_time(&mut b, 777);
        let h = validate(&b).unwrap();
        assert_eq!(h.max_timestamp, 777);
        assert_ne!(h.attributes & ATTRIBUTES_TIMESTAMP_TYPE, 0);
    }
}
