//! Typed errors of the RecordBatch codec.
//!
//! [`BatchError`] is what reading a batch can produce: "not all bytes are here yet"
//! ([`BatchError::Incomplete`]) is kept apart from "these bytes are wrong" (every other variant), so a
//! caller splitting a fetch response can drop a trailing partial batch, while recovery can tell a torn
//! tail from corruption. [`BuildError`] is what writing a batch can produce.

use super::attributes::Compression;

/// An error reading a RecordBatch v2 (header, CRC, records or compressed payload).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The buffer ends before the batch does: `needed` bytes make the whole batch (or, before the
    /// length is known, its fixed header), only `available` are present.
    #[error("incomplete record batch: {needed} bytes needed, {available} available")]
    Incomplete {
        /// Total bytes the batch (or the part of it being read) needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The magic byte is not 2 (only RecordBatch v2 is supported).
    #[error("unsupported record batch magic {magic} (only v2 is supported)")]
    InvalidMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The CRC-32C stored in the header does not match the bytes.
    #[error(
        "record batch CRC-32C mismatch: header says {expected:#010x}, bytes give {actual:#010x}"
    )]
    CrcMismatch {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over attributes..end.
        actual: u32,
    },
    /// `batchLength` is out of bounds, or the buffer holds more bytes than the batch.
    #[error("invalid record batch length {length}: {reason}")]
    InvalidLength {
        /// The offending length (batchLength, or the buffer's length).
        length: i64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// batchLength claims a batch larger than [`super::limits::BATCH_BYTES_MAX`] (Kafka's
    /// MESSAGE_TOO_LARGE).
    #[error("record batch of {bytes} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Total size the batch claims (12 + batchLength).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A header field is inconsistent (negative record count, offset delta mismatch, ...).
    #[error("invalid record batch header: {reason}")]
    InvalidHeader {
        /// Why the header is invalid.
        reason: &'static str,
    },
    /// A record inside the batch is malformed.
    #[error("invalid record #{index} in batch: {reason}")]
    InvalidRecord {
        /// Position of the record in the batch (0-based).
        index: i32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The attributes name a compression codec that does not exist (5..=7) or that Sluice was built
    /// without.
    #[error("unsupported compression codec {codec}")]
    UnsupportedCompression {
        /// The codec id from the attributes (bits 0-2).
        codec: i16,
    },
    /// The compressed records section could not be decompressed.
    #[error("cannot decompress {codec:?} records: {reason}")]
    Decompression {
        /// The codec used.
        codec: Compression,
        /// The decoder's message.
        reason: String,
    },
    /// Decompressing would exceed [`super::limits::DECOMPRESSED_BYTES_MAX`].
    #[error("decompressed records exceed {limit} bytes")]
    DecompressedTooLarge {
        /// The limit that was hit.
        limit: usize,
    },
}

/// An error building a RecordBatch v2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `finish` was called before any record was appended (a batch holds at least one record).
    #[error("a record batch needs at least one record")]
    Empty,
    /// Appending would exceed [`super::limits::RECORDS_PER_BATCH_MAX`].
    #[error("record batch is full: at most {limit} records")]
    TooManyRecords {
        /// The limit that was hit.
        limit: usize,
    },
    /// Appending would make the batch larger than [`super::limits::BATCH_BYTES_MAX`].
    #[error("record batch would be {bytes} bytes, more than the {limit} allowed")]
    TooLarge {
        /// Size the batch would reach.
        bytes: usize,
        /// The limit that was hit.
        limit: usize,
    },
    /// The record's timestamp is so far from the batch's base timestamp that the delta overflows.
    #[error(
        "timestamp {timestamp_ms} is too far from the batch base timestamp {base_timestamp_ms}"
    )]
    TimestampOverflow {
        /// The record's timestamp.
        timestamp_ms: i64,
        /// The batch's base timestamp (first record's).
        base_timestamp_ms: i64,
    },
    /// Offset deltas must increase strictly within a batch.
    #[error("offset delta {offset_delta} does not follow the previous one ({previous})")]
    OffsetDeltaOrder {
        /// The delta asked for.
        offset_delta: i32,
        /// The previous record's delta.
        previous: i32,
    },
    /// The codec cannot be written by this build of Sluice.
    #[error("cannot write {0:?}-compressed batches")]
    UnsupportedCompression(Compression),
    /// The compressor failed.
    #[error("cannot compress records with {codec:?}: {reason}")]
    Compression {
        /// The codec used.
        codec: Compression,
        /// The compressor's message.
        reason: String,
    },
}
