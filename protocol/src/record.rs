//! RecordBatch v2: the unit Sluice receives from producers, stores on disk byte for byte, replicates
//! and serves to consumers.
//!
//! # Byte layout
//! A batch is a 61-byte header followed by the records section. All integers are big-endian.
//!
//! | offset | size | field | CRC-covered | who may rewrite it |
//! |---:|---:|---|:---:|---|
//! | 0 | 8 | baseOffset (int64) | no | broker, on append ([`set_base_offset`]) |
//! | 8 | 4 | batchLength (int32): bytes after this field | no | nobody |
//! | 12 | 4 | partitionLeaderEpoch (int32) | no | broker, on append ([`set_partition_leader_epoch`]) |
//! | 16 | 1 | magic (int8) = 2 | no | nobody |
//! | 17 | 4 | crc (uint32): CRC-32C (Castagnoli) of bytes 21..end | - | whoever edits a covered field |
//! | 21 | 2 | attributes (int16): see [`Attributes`] | yes | broker, LogAppendTime ([`set_log_append_time`]) |
//! | 23 | 4 | lastOffsetDelta (int32) | yes | nobody |
//! | 27 | 8 | baseTimestamp (int64) | yes | nobody |
//! | 35 | 8 | maxTimestamp (int64) | yes | broker, LogAppendTime ([`set_log_append_time`]) |
//! | 43 | 8 | producerId (int64) | yes | nobody |
//! | 51 | 2 | producerEpoch (int16) | yes | nobody |
//! | 53 | 4 | baseSequence (int32) | yes | nobody |
//! | 57 | 4 | recordsCount (int32) | yes | nobody |
//! | 61 | .. | records (compressed as one block if attributes say so) | yes | nobody |
//!
//! So the broker stamps baseOffset and partitionLeaderEpoch **without recomputing the CRC**; the only
//! CRC-covered rewrite is LogAppendTime stamping (attributes bit 3 + maxTimestamp), which recomputes
//! it. Each record is `length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//! key | value | headerCount varint | headers`, lengths as zig-zag varints with -1 for null (see
//! [`records`]).
//!
//! # API
//! - [`BatchHeader::parse`] (first 61 bytes: magic, length bounds, record count),
//!   [`BatchHeader::validate_produce`] (what a broker requires of a produced batch: records > 0,
//!   `lastOffsetDelta == recordsCount - 1`, known codec, not control).
//! - [`RecordBatch::parse`]`(Bytes)`: one whole batch; length and magic, then CRC, then header
//!   fields (so a corrupted covered field is [`BatchError::CrcMismatch`]); [`RecordBatch::records`] walks
//!   records as [`Record`]s whose key/value/headers are `Bytes` slices (no per-record allocation for
//!   uncompressed batches; a compressed section is inflated once, bounded by
//!   [`limits::DECOMPRESSED_BYTES_MAX`]); [`RecordBatch::decode`] gives a [`RecordSection`], whose
//!   `iter()` lends [`RecordRef`]s with `&[u8]` fields (no reference counting either).
//! - [`BatchIter::new`]`(Bytes)`: splits concatenated batches; a trailing partial batch is
//!   [`BatchError::Incomplete`], [`BatchIter::position`] tells where it starts.
//! - [`set_base_offset`], [`set_partition_leader_epoch`], [`set_log_append_time`], [`verify_crc`]
//!   work in place on `&mut [u8]` / `&[u8]`.
//! - [`RecordBatchBuilder::new`]`(`[`BatchOptions`]`)`, `append(ts, key, value, headers)`,
//!   `finish() -> Result<Bytes, BuildError>` (base offset 0); a producer reuses its buffers with
//!   [`BatchBufferPool`], `RecordBatchBuilder::in_buffer` and `finish_reusable`. For rewriting batches (compaction):
//!   `append_record`, `append_with_offset_delta` (gaps allowed), `keep_last_offset_delta`,
//!   `set_delete_horizon`.
//! - Transaction markers: [`ControlRecordType::parse_key`], [`end_transaction_batch`].
//! - Codecs ([`Compression`]): none, gzip, snappy, lz4 and zstd, read and written (see
//!   [`compression`]); codec ids 5-7 are [`BatchError::UnsupportedCompression`].

pub mod attributes;
pub mod batch;
pub mod buffer_pool;
pub mod builder;
pub mod compression;
pub mod control;
pub mod error;
pub mod header;
pub mod limits;
pub mod records;
pub mod varint;

pub use attributes::{Attributes, Compression, TimestampType};
pub use batch::{BatchIter, RecordBatch};
pub use buffer_pool::BatchBufferPool;
pub use builder::{BatchOptions, RecordBatchBuilder};
pub use control::{end_transaction_batch, ControlRecordType};
pub use error::{BatchError, BuildError};
pub use header::{
    batch_total_bytes, compute_crc, set_base_offset, set_log_append_time,
    set_partition_leader_epoch, verify_crc, BatchHeader, BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES,
    MAGIC_V2,
};
pub use records::{
    HeaderIter, HeaderRefIter, Record, RecordHeader, RecordHeaderRef, RecordIter, RecordRef,
    RecordRefIter, RecordSection,
};
