//! [`RecordBatch`], a validated view over one batch, and [`BatchIter`], which splits a concatenation
//! of batches (a produce request's or fetch response's `records`, a segment file) into them.

use bytes::Bytes;

use super::attributes::{Compression, TimestampType};
use super::compression;
use super::error::BatchError;
use super::header::{batch_total_bytes, verify_crc, BatchHeader, BATCH_HEADER_BYTES};
use super::limits::{DECOMPRESSED_BYTES_MAX, RECORD_BYTES_MIN};
use super::records::{RecordContext, RecordIter};

/// One whole RecordBatch v2 held as [`Bytes`], with its header decoded and (unless built with
/// [`RecordBatch::parse_without_crc`]) its CRC checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
    header: BatchHeader,
}

impl RecordBatch {
    /// Validates `bytes` as exactly one batch: length bounds and magic, total length equal to
    /// `12 + batchLength`, then the CRC-32C, then the header fields (so corruption of a covered field
    /// reports [`BatchError::CrcMismatch`]). Records are not walked (see [`Self::records`]).
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        Self::parse_inner(bytes, true)
    }

    /// Like [`Self::parse`] but without the CRC check, for bytes already verified (for example a
    /// batch the broker validated on produce and is reading back from its own log).
    pub fn parse_without_crc(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        Self::parse_inner(bytes, false)
    }

    fn parse_inner(bytes: Bytes, check_crc: bool) -> Result<RecordBatch, BatchError> {
        let total = batch_total_bytes(&bytes)?;
        if bytes.len() < total {
            return Err(BatchError::Incomplete {
                needed: total,
                available: bytes.len(),
            });
        }
        if bytes.len() > total {
            return Err(BatchError::InvalidLength {
                length: bytes.len() as i64,
                reason: "buffer holds bytes after the batch",
            });
        }
        if check_crc {
            verify_crc(&bytes)?;
        }
        let header = BatchHeader::parse(&bytes)?;
        Ok(RecordBatch { bytes, header })
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, exactly as received.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The batch's bytes, exactly as received.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Size of the whole batch in bytes.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// The codec of the records section.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        self.header.attributes.compression()
    }

    /// The records section as stored (compressed if the batch is).
    pub fn records_section(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_BYTES..)
    }

    /// Walks the records, inflating the section first if it is compressed (one allocation, bounded
    /// by [`DECOMPRESSED_BYTES_MAX`]). Uncompressed batches are walked in place.
    pub fn records(&self) -> Result<RecordIter, BatchError> {
        self.records_with_limit(DECOMPRESSED_BYTES_MAX)
    }

    /// Like [`Self::records`] with a caller-chosen cap on the inflated size (never above
    /// [`DECOMPRESSED_BYTES_MAX`]).
    pub fn records_with_limit(
        &self,
        decompressed_bytes_max: usize,
    ) -> Result<RecordIter, BatchError> {
        let limit = decompressed_bytes_max.min(DECOMPRESSED_BYTES_MAX);
        let codec = self.compression()?;
        let section = self.records_section();
        let data = match codec {
            Compression::None => section,
            codec => Bytes::from(compression::decompress(codec, &section, limit)?),
        };
        let count = self.header.records_count;
        // Each record takes at least RECORD_BYTES_MIN bytes: reject an impossible count up front.
        if count as usize > data.len() / RECORD_BYTES_MIN {
            return Err(BatchError::InvalidHeader {
                reason: "recordsCount larger than the records section can hold",
            });
        }
        let ctx = RecordContext {
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
            log_append_time: match self.header.attributes.timestamp_type() {
                TimestampType::LogAppendTime => Some(self.header.max_timestamp),
                TimestampType::CreateTime => None,
            },
            records_count: count,
        };
        Ok(RecordIter::new(data, ctx))
    }

    /// Walks every record to check it is well formed and that offset deltas run 0, 1, 2, ... up to
    /// lastOffsetDelta, as a producer writes them. For an uncompressed batch this allocates nothing;
    /// a compressed one is inflated once.
    pub fn validate_records(&self) -> Result<(), BatchError> {
        let mut expected = 0i32;
        for record in self.records()? {
            let record = record?;
            if record.offset_delta() != expected {
                return Err(BatchError::InvalidRecord {
                    index: expected,
                    reason: "offset delta out of sequence",
                });
            }
            expected += 1;
        }
        if expected != self.header.records_count {
            return Err(BatchError::InvalidHeader {
                reason: "recordsCount does not match the records",
            });
        }
        Ok(())
    }
}

/// Splits a concatenation of batches into [`RecordBatch`]es, checking each one's CRC (unless made
/// with [`BatchIter::without_crc`]).
///
/// Yields `Err` at most once, then ends. A trailing partial batch (fetch responses may end with one)
/// yields [`BatchError::Incomplete`]; [`BatchIter::position`] then says where it starts, so recovery
/// can truncate there.
#[derive(Debug, Clone)]
pub struct BatchIter {
    bytes: Bytes,
    pos: usize,
    check_crc: bool,
    done: bool,
}

impl BatchIter {
    /// Iterates over `bytes`, checking every CRC.
    pub fn new(bytes: Bytes) -> BatchIter {
        BatchIter {
            bytes,
            pos: 0,
            check_crc: true,
            done: false,
        }
    }

    /// Iterates over `bytes` without checking CRCs (bytes already verified).
    pub fn without_crc(bytes: Bytes) -> BatchIter {
        BatchIter {
            bytes,
            pos: 0,
            check_crc: false,
            done: false,
        }
    }

    /// Byte position of the next batch to be read; after an error, the start of the bad batch.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining_bytes(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch, BatchError>;

    fn next(&mut self) -> Option<Result<RecordBatch, BatchError>> {
        if self.done || self.pos >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.pos..];
        let result = batch_total_bytes(rest).and_then(|total| {
            if rest.len() < total {
                return Err(BatchError::Incomplete {
                    needed: total,
                    available: rest.len(),
                });
            }
            let slice = self.bytes.slice(self.pos..self.pos + total);
            let batch = if self.check_crc {
                RecordBatch::parse(slice)
            } else {
                RecordBatch::parse_without_crc(slice)
            }?;
            Ok(batch)
        });
        match result {
            Ok(batch) => {
                self.pos += batch.total_bytes();
                Some(Ok(batch))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchOptions, RecordBatchBuilder};

    fn zeros_batch(compression: Compression, value_bytes: usize) -> RecordBatch {
        let mut b = RecordBatchBuilder::new(BatchOptions {
            compression,
            ..Default::default()
        });
        b.append(0, None, Some(&vec![0u8; value_bytes]), &[])
            .expect("append");
        RecordBatch::parse(b.finish().expect("finish")).expect("parse")
    }

    #[test]
    fn inflating_past_the_limit_is_refused() {
        for codec in [
            Compression::Gzip,
            Compression::Lz4,
            Compression::Snappy,
            Compression::Zstd,
        ] {
            // A megabyte of zeros compresses at least 16-fold (snappy: ~21x on zeros).
            let batch = zeros_batch(codec, 1 << 20);
            assert!(
                batch.total_bytes() < 64 * 1024,
                "{codec:?}: {}",
                batch.total_bytes()
            );
            assert_eq!(
                batch.records_with_limit(64 * 1024).map(|_| ()),
                Err(BatchError::DecompressedTooLarge { limit: 64 * 1024 }),
                "{codec:?}"
            );
            assert_eq!(
                batch.records().expect("within the default limit").count(),
                1
            );
        }
    }

    #[test]
    fn trailing_bytes_after_the_batch_are_rejected() {
        let batch = zeros_batch(Compression::None, 10);
        let mut bytes = batch.as_bytes().to_vec();
        bytes.push(0);
        assert!(matches!(
            RecordBatch::parse(Bytes::from(bytes)),
            Err(BatchError::InvalidLength { .. })
        ));
    }

    #[test]
    fn impossible_record_count_is_rejected_before_walking() {
        let batch = zeros_batch(Compression::None, 10);
        let mut bytes = batch.as_bytes().to_vec();
        bytes[crate::record::header::offset::RECORDS_COUNT..][..4]
            .copy_from_slice(&1000i32.to_be_bytes());
        crate::record::header::rewrite_crc(&mut bytes).expect("crc");
        let batch = RecordBatch::parse(Bytes::from(bytes)).expect("header is plausible");
        assert!(matches!(
            batch.records().map(|_| ()),
            Err(BatchError::InvalidHeader { .. })
        ));
    }
}
