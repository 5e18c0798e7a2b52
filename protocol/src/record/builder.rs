//! [`RecordBatchBuilder`]: encodes records straight into one buffer and seals them into a batch.
//!
//! The buffer starts with 61 reserved header bytes; each `append` varint-encodes one record after
//! them (sizes computed first, so the length prefix is written once, no per-record buffer). `finish`
//! fills the header (count, offset and timestamp fields, producer fields), compresses the records
//! section if asked (into one new buffer) and writes the CRC-32C. The base offset is 0: the broker
//! assigns offsets by stamping baseOffset in place.

use bytes::{BufMut, Bytes, BytesMut};

use super::attributes::{Attributes, Compression, TimestampType};
use super::compression::{self, compressed_bytes_bound};
use super::error::BuildError;
use super::header::{offset, BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES, MAGIC_V2};
use super::limits::{BATCH_BYTES_MAX, HEADERS_PER_RECORD_MAX, RECORDS_PER_BATCH_MAX};
use super::records::Record;
use super::varint::{varint_len, varlong_len, write_varint, write_varlong};

/// Batch-wide settings of a [`RecordBatchBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Codec for the records section.
    pub compression: Compression,
    /// Producer id, -1 for a non-idempotent producer.
    pub producer_id: i64,
    /// Producer epoch, -1 for a non-idempotent producer.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 for a non-idempotent producer.
    pub base_sequence: i32,
    /// Timestamp type written in the attributes.
    pub timestamp_type: TimestampType,
    /// Whether the batch is part of a transaction.
    pub is_transactional: bool,
    /// Whether the batch holds control records (transaction markers).
    pub is_control: bool,
    /// partitionLeaderEpoch to write (-1: unknown, as producers send).
    pub partition_leader_epoch: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            timestamp_type: TimestampType::CreateTime,
            is_transactional: false,
            is_control: false,
            partition_leader_epoch: -1,
        }
    }
}

/// Builds one RecordBatch v2.
#[derive(Debug)]
pub struct RecordBatchBuilder {
    options: BatchOptions,
    buf: BytesMut,
    records_count: i32,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    last_offset_delta_at_least: i32,
    delete_horizon_ms: Option<i64>,
}

#[inline]
fn field_len(field: Option<&[u8]>) -> usize {
    match field {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline]
fn put_field(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => write_varint(buf, -1),
        Some(b) => {
            write_varint(buf, b.len() as i32);
            buf.put_slice(b);
        }
    }
}

impl RecordBatchBuilder {
    /// A builder with a small initial buffer.
    pub fn new(options: BatchOptions) -> RecordBatchBuilder {
        Self::with_capacity(options, 1024)
    }

    /// A builder whose buffer starts with room for `bytes` (header included).
    pub fn with_capacity(options: BatchOptions, bytes: usize) -> RecordBatchBuilder {
        let buf = BytesMut::with_capacity(bytes.clamp(BATCH_HEADER_BYTES, BATCH_BYTES_MAX));
        Self::in_buffer(options, buf)
    }

    /// A builder that encodes into `buf` (emptied first), typically one a
    /// [`BatchBufferPool`](super::BatchBufferPool) handed out, so that a producer writes each
    /// batch into memory it already has instead of a new allocation.
    pub fn in_buffer(options: BatchOptions, mut buf: BytesMut) -> RecordBatchBuilder {
        buf.clear();
        buf.put_bytes(0, BATCH_HEADER_BYTES);
        RecordBatchBuilder {
            options,
            buf,
            records_count: 0,
            last_offset_delta: -1,
            base_timestamp: 0,
            max_timestamp: -1,
            last_offset_delta_at_least: -1,
            delete_horizon_ms: None,
        }
    }

    /// The batch-wide settings.
    pub fn options(&self) -> &BatchOptions {
        &self.options
    }

    /// Records appended so far.
    pub fn records_count(&self) -> usize {
        self.records_count as usize
    }

    /// Whether no record was appended yet.
    pub fn is_empty(&self) -> bool {
        self.records_count == 0
    }

    /// Size of the batch so far, uncompressed (an upper estimate of the compressed size).
    pub fn estimated_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes a record with these fields would add (its length prefix included), to decide whether it
    /// still fits before appending it.
    pub fn record_bytes(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let body = Self::body_len(
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers.iter().map(|(k, v)| (k.as_bytes(), *v)),
        );
        varint_len(body.min(i32::MAX as usize) as i32) + body
    }

    fn body_len<'a>(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> usize {
        let mut len = 1
            + varlong_len(timestamp_delta)
            + varint_len(offset_delta)
            + field_len(key)
            + field_len(value)
            + varint_len(headers.len().min(i32::MAX as usize) as i32);
        for (k, v) in headers {
            len = len
                .saturating_add(field_len(Some(k)))
                .saturating_add(field_len(v));
        }
        len
    }

    /// Appends a record with the next offset delta. Timestamps in ms; the first record's becomes the
    /// batch's baseTimestamp.
    pub fn append(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<(), BuildError> {
        let offset_delta = self.last_offset_delta.wrapping_add(1);
        self.append_raw(
            offset_delta,
            timestamp_ms,
            key,
            value,
            headers.iter().map(|(k, v)| (k.as_bytes(), *v)),
        )
    }

    /// Appends a record with an explicit offset delta, larger than the previous one (gaps allowed,
    /// as in a compacted batch).
    pub fn append_with_offset_delta(
        &mut self,
        offset_delta: i32,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<(), BuildError> {
        self.append_raw(
            offset_delta,
            timestamp_ms,
            key,
            value,
            headers.iter().map(|(k, v)| (k.as_bytes(), *v)),
        )
    }

    /// Makes the finished batch's lastOffsetDelta at least `delta`, even if no record with that
    /// delta is appended (call before or after the appends). Compaction keeps a rewritten batch's original last offset this way (as
    /// Kafka's cleaner does), so producer sequence state and the next batch's offsets stay consistent.
    pub fn keep_last_offset_delta(&mut self, delta: i32) {
        self.last_offset_delta_at_least = self.last_offset_delta_at_least.max(delta);
    }

    /// Marks the batch with a compaction delete horizon (KIP-534): attributes bit 6 set and
    /// baseTimestamp = `horizon_ms`, record timestamps stored relative to it (so they read back
    /// unchanged). Tombstones in the batch may be dropped by a cleaning pass after the horizon.
    /// Only before the first append; returns `false` (and changes nothing) after it.
    pub fn set_delete_horizon(&mut self, horizon_ms: i64) -> bool {
        if self.records_count > 0 {
            return false;
        }
        self.delete_horizon_ms = Some(horizon_ms);
        true
    }

    /// Re-appends a record read from another batch, keeping its offset delta and timestamp (for
    /// rewriting batches, as compaction does).
    pub fn append_record(&mut self, record: &Record) -> Result<(), BuildError> {
        let headers: Vec<_> = record.headers().collect();
        self.append_raw(
            record.offset_delta(),
            record.timestamp(),
            record.key().map(|b| &b[..]),
            record.value().map(|b| &b[..]),
            headers.iter().map(|h| (&h.key[..], h.value.as_deref())),
        )
    }

    fn append_raw<'a>(
        &mut self,
        offset_delta: i32,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
    ) -> Result<(), BuildError> {
        if self.records_count as usize >= RECORDS_PER_BATCH_MAX {
            return Err(BuildError::TooManyRecords {
                limit: RECORDS_PER_BATCH_MAX,
            });
        }
        if self.records_count > 0 && offset_delta <= self.last_offset_delta {
            return Err(BuildError::OffsetDeltaOrder {
                offset_delta,
                previous: self.last_offset_delta,
            });
        }
        if offset_delta < 0 {
            return Err(BuildError::OffsetDeltaOrder {
                offset_delta,
                previous: self.last_offset_delta,
            });
        }
        let base_timestamp = if self.records_count == 0 {
            self.delete_horizon_ms.unwrap_or(timestamp_ms)
        } else {
            self.base_timestamp
        };
        let timestamp_delta =
            timestamp_ms
                .checked_sub(base_timestamp)
                .ok_or(BuildError::TimestampOverflow {
                    timestamp_ms,
                    base_timestamp_ms: base_timestamp,
                })?;
        let n_headers = headers.len();
        if n_headers > HEADERS_PER_RECORD_MAX {
            return Err(BuildError::TooManyHeaders {
                limit: HEADERS_PER_RECORD_MAX,
            });
        }
        let body = Self::body_len(timestamp_delta, offset_delta, key, value, headers.clone());
        let record_len = varint_len(body.min(i32::MAX as usize) as i32).saturating_add(body);
        let total = self.buf.len().saturating_add(record_len);
        let bound = if self.options.compression == Compression::None {
            total
        } else {
            BATCH_HEADER_BYTES + compressed_bytes_bound(total - BATCH_HEADER_BYTES)
        };
        if bound > BATCH_BYTES_MAX {
            return Err(BuildError::TooLarge {
                bytes: bound,
                limit: BATCH_BYTES_MAX,
            });
        }
        // Every length below is bounded by BATCH_BYTES_MAX <= i32::MAX, checked just above.
        let buf = &mut self.buf;
        buf.reserve(record_len);
        write_varint(buf, body as i32);
        buf.put_i8(0); // record attributes: unused
        write_varlong(buf, timestamp_delta);
        write_varint(buf, offset_delta);
        put_field(buf, key);
        put_field(buf, value);
        write_varint(buf, n_headers as i32);
        for (k, v) in headers {
            put_field(buf, Some(k));
            put_field(buf, v);
        }
        self.base_timestamp = base_timestamp;
        self.max_timestamp = if self.records_count == 0 {
            timestamp_ms
        } else {
            self.max_timestamp.max(timestamp_ms)
        };
        self.records_count += 1;
        self.last_offset_delta = offset_delta;
        Ok(())
    }

    /// Seals the batch: header fields, optional compression, CRC-32C. Base offset 0.
    pub fn finish(self) -> Result<Bytes, BuildError> {
        self.finish_reusable().map(|(batch, _)| batch)
    }

    /// Like [`finish`](Self::finish), and also returns what is left of the buffer: an empty
    /// `BytesMut` sharing the batch's allocation (or, for a compressed batch, the records buffer
    /// itself), which a [`BatchBufferPool`](super::BatchBufferPool) reclaims whole once the
    /// batch is dropped.
    pub fn finish_reusable(self) -> Result<(Bytes, BytesMut), BuildError> {
        if self.records_count == 0 {
            return Err(BuildError::Empty);
        }
        let codec = self.options.compression;
        let last_offset_delta = self.last_offset_delta.max(self.last_offset_delta_at_least);
        if codec == Compression::None {
            let mut buf = self.buf;
            Self::seal(
                &self.options,
                self.records_count,
                last_offset_delta,
                self.base_timestamp,
                self.max_timestamp,
                self.delete_horizon_ms.is_some(),
                &mut buf,
            )?;
            let batch = buf.split().freeze();
            return Ok((batch, buf));
        }
        let records = &self.buf[BATCH_HEADER_BYTES..];
        let mut out =
            Vec::with_capacity(BATCH_HEADER_BYTES + compressed_bytes_bound(records.len()));
        out.extend_from_slice(&self.buf[..BATCH_HEADER_BYTES]);
        compression::compress(codec, records, &mut out)?;
        Self::seal(
            &self.options,
            self.records_count,
            last_offset_delta,
            self.base_timestamp,
            self.max_timestamp,
            self.delete_horizon_ms.is_some(),
            &mut out,
        )?;
        let mut records = self.buf;
        records.clear();
        Ok((Bytes::from(out), records))
    }

    /// Fills the header of a complete batch in `batch` and writes its CRC.
    fn seal(
        o: &BatchOptions,
        records_count: i32,
        last_offset_delta: i32,
        base_timestamp: i64,
        max_timestamp: i64,
        delete_horizon: bool,
        batch: &mut [u8],
    ) -> Result<(), BuildError> {
        if batch.len() > BATCH_BYTES_MAX {
            return Err(BuildError::TooLarge {
                bytes: batch.len(),
                limit: BATCH_BYTES_MAX,
            });
        }
        let attributes = Attributes::default()
            .with_compression(o.compression)
            .with_timestamp_type(o.timestamp_type)
            .with_transactional(o.is_transactional)
            .with_control(o.is_control)
            .with_delete_horizon(delete_horizon);
        let batch_length = (batch.len() - BATCH_OVERHEAD_BYTES) as i32;
        let h = &mut batch[..BATCH_HEADER_BYTES];
        h[offset::BASE_OFFSET..][..8].copy_from_slice(&0i64.to_be_bytes());
        h[offset::BATCH_LENGTH..][..4].copy_from_slice(&batch_length.to_be_bytes());
        h[offset::PARTITION_LEADER_EPOCH..][..4]
            .copy_from_slice(&o.partition_leader_epoch.to_be_bytes());
        h[offset::MAGIC] = MAGIC_V2 as u8;
        h[offset::ATTRIBUTES..][..2].copy_from_slice(&attributes.bits().to_be_bytes());
        h[offset::LAST_OFFSET_DELTA..][..4].copy_from_slice(&last_offset_delta.to_be_bytes());
        h[offset::BASE_TIMESTAMP..][..8].copy_from_slice(&base_timestamp.to_be_bytes());
        h[offset::MAX_TIMESTAMP..][..8].copy_from_slice(&max_timestamp.to_be_bytes());
        h[offset::PRODUCER_ID..][..8].copy_from_slice(&o.producer_id.to_be_bytes());
        h[offset::PRODUCER_EPOCH..][..2].copy_from_slice(&o.producer_epoch.to_be_bytes());
        h[offset::BASE_SEQUENCE..][..4].copy_from_slice(&o.base_sequence.to_be_bytes());
        h[offset::RECORDS_COUNT..][..4].copy_from_slice(&records_count.to_be_bytes());
        let crc = crc32c::crc32c(&batch[offset::ATTRIBUTES..]);
        batch[offset::CRC..][..4].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        set_base_offset, set_log_append_time, set_partition_leader_epoch, verify_crc, BatchError,
        BatchIter, RecordBatch,
    };

    fn three_records(options: BatchOptions) -> Bytes {
        let mut b = RecordBatchBuilder::new(options);
        b.append(1_000, Some(b"k1"), Some(b"v1"), &[])
            .expect("append");
        b.append(900, None, Some(b"v2"), &[("h", Some(b"x")), ("n", None)])
            .expect("append");
        b.append(1_500, Some(b"k3"), None, &[]).expect("append");
        assert_eq!(b.records_count(), 3);
        b.finish().expect("finish")
    }

    #[test]
    fn header_fields_are_filled() {
        let opts = BatchOptions {
            producer_id: 7,
            producer_epoch: 2,
            base_sequence: 10,
            ..Default::default()
        };
        let bytes = three_records(opts);
        let batch = RecordBatch::parse(bytes.clone()).expect("parse");
        let h = batch.header();
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.total_bytes(), bytes.len());
        assert_eq!(h.partition_leader_epoch, -1);
        assert_eq!(h.magic, 2);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_500);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 2, 10)
        );
        assert_eq!(h.last_sequence(), 12);
        h.validate_produce().expect("valid produce batch");
        batch.validate_records().expect("records valid");

        let records: Vec<_> = batch
            .records()
            .expect("records")
            .collect::<Result<_, _>>()
            .expect("walk");
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key().map(|k| &k[..]), Some(&b"k1"[..]));
        assert_eq!(records[1].key(), None);
        assert_eq!(records[1].timestamp(), 900);
        assert_eq!(records[1].timestamp_delta(), -100);
        let headers: Vec<_> = records[1].headers().collect();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[0].key_str(), Some("h"));
        assert_eq!(headers[0].value.as_deref(), Some(&b"x"[..]));
        assert_eq!(headers[1].value, None);
        assert_eq!(records[2].value(), None);
        assert_eq!(records[2].offset(), 2);
    }

    #[test]
    fn stamping_offset_and_epoch_keeps_crc() {
        let mut bytes = three_records(BatchOptions::default()).to_vec();
        set_base_offset(&mut bytes, 1_000_000).expect("stamp");
        set_partition_leader_epoch(&mut bytes, 5).expect("stamp");
        verify_crc(&bytes).expect("crc unchanged");
        let batch = RecordBatch::parse(Bytes::from(bytes)).expect("parse");
        assert_eq!(batch.base_offset(), 1_000_000);
        assert_eq!(batch.last_offset(), 1_000_002);
        assert_eq!(batch.header().partition_leader_epoch, 5);
        let offsets: Vec<i64> = batch
            .records()
            .expect("records")
            .map(|r| r.expect("record").offset())
            .collect();
        assert_eq!(offsets, vec![1_000_000, 1_000_001, 1_000_002]);
    }

    #[test]
    fn log_append_time_recomputes_crc_and_rewrites_timestamps() {
        for compression in [Compression::None, Compression::Lz4] {
            let mut bytes = three_records(BatchOptions {
                compression,
                ..Default::default()
            })
            .to_vec();
            set_log_append_time(&mut bytes, 99_999).expect("stamp");
            let batch = RecordBatch::parse(Bytes::from(bytes)).expect("CRC recomputed");
            assert_eq!(
                batch.header().attributes.timestamp_type(),
                TimestampType::LogAppendTime
            );
            assert_eq!(batch.compression(), Ok(compression));
            assert_eq!(batch.header().max_timestamp, 99_999);
            for r in batch.records().expect("records") {
                assert_eq!(r.expect("record").timestamp(), 99_999);
            }
        }
    }

    #[test]
    fn stamping_a_short_buffer_is_an_error() {
        let mut short = [0u8; 20];
        assert!(matches!(
            set_base_offset(&mut short, 1),
            Err(BatchError::Incomplete { .. })
        ));
        assert!(matches!(
            set_partition_leader_epoch(&mut short, 1),
            Err(BatchError::Incomplete { .. })
        ));
        assert!(set_log_append_time(&mut short, 1).is_err());
    }

    #[test]
    fn flags_reach_the_attributes() {
        let opts = BatchOptions {
            compression: Compression::Gzip,
            is_transactional: true,
            is_control: true,
            ..Default::default()
        };
        let batch = RecordBatch::parse(three_records(opts)).expect("parse");
        let a = batch.header().attributes;
        assert!(a.is_transactional() && a.is_control());
        assert_eq!(a.compression(), Ok(Compression::Gzip));
        assert!(matches!(
            batch.header().validate_produce(),
            Err(BatchError::InvalidHeader { .. })
        ));
        assert_eq!(batch.records().expect("records").count(), 3);
    }

    #[test]
    fn empty_builder_and_offset_order_are_errors() {
        assert_eq!(
            RecordBatchBuilder::new(BatchOptions::default()).finish(),
            Err(BuildError::Empty)
        );
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.append_with_offset_delta(3, 0, None, None, &[])
            .expect("gap allowed");
        assert_eq!(
            b.append_with_offset_delta(3, 0, None, None, &[]),
            Err(BuildError::OffsetDeltaOrder {
                offset_delta: 3,
                previous: 3
            })
        );
        b.append_with_offset_delta(9, 0, None, None, &[])
            .expect("gap allowed");
        let batch = RecordBatch::parse(b.finish().expect("finish")).expect("parse");
        assert_eq!(batch.header().last_offset_delta, 9);
        assert_eq!(batch.header().records_count, 2);
        // A compacted-style batch is readable but is not what a producer may send.
        assert!(batch.header().validate_produce().is_err());
        assert!(batch.validate_records().is_err());
        let deltas: Vec<i32> = batch
            .records()
            .expect("records")
            .map(|r| r.expect("r").offset_delta())
            .collect();
        assert_eq!(deltas, vec![3, 9]);
    }

    #[test]
    fn compaction_keeps_the_original_last_offset() {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.keep_last_offset_delta(7);
        b.append_with_offset_delta(2, 0, Some(b"k"), Some(b"v"), &[])
            .expect("append");
        let batch = RecordBatch::parse(b.finish().expect("finish")).expect("parse");
        assert_eq!(batch.header().last_offset_delta, 7);
        assert_eq!(batch.header().records_count, 1);
        let r = batch
            .records()
            .expect("records")
            .next()
            .expect("one")
            .expect("ok");
        assert_eq!(r.offset_delta(), 2);
    }

    #[test]
    fn delete_horizon_moves_the_base_timestamp_only() {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        assert!(b.set_delete_horizon(50_000));
        b.append(1_000, Some(b"k"), None, &[]).expect("append");
        b.append(2_000, Some(b"j"), Some(b"v"), &[])
            .expect("append");
        assert!(!b.set_delete_horizon(1), "too late once records are in");
        let batch = RecordBatch::parse(b.finish().expect("finish")).expect("parse");
        let h = batch.header();
        assert!(h.attributes.has_delete_horizon());
        assert_eq!((h.base_timestamp, h.max_timestamp), (50_000, 2_000));
        let ts: Vec<i64> = batch
            .records()
            .expect("records")
            .map(|r| r.expect("ok").timestamp())
            .collect();
        assert_eq!(ts, vec![1_000, 2_000]);
    }

    #[test]
    fn too_many_headers_is_an_error() {
        let headers = vec![("h", None); HEADERS_PER_RECORD_MAX + 1];
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        assert_eq!(
            b.append(0, None, None, &headers),
            Err(BuildError::TooManyHeaders {
                limit: HEADERS_PER_RECORD_MAX
            })
        );
        b.append(0, None, None, &headers[1..])
            .expect("at the limit");
        let batch = RecordBatch::parse(b.finish().expect("finish")).expect("parse");
        let r = batch
            .records()
            .expect("records")
            .next()
            .expect("one")
            .expect("ok");
        assert_eq!(r.header_count(), HEADERS_PER_RECORD_MAX);
    }

    #[test]
    fn timestamp_overflow_is_an_error() {
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        b.append(i64::MIN, None, None, &[]).expect("first");
        assert!(matches!(
            b.append(i64::MAX, None, None, &[]),
            Err(BuildError::TimestampOverflow { .. })
        ));
    }

    #[test]
    fn append_record_copies_a_batch() {
        let src = RecordBatch::parse(three_records(BatchOptions::default())).expect("parse");
        let mut b = RecordBatchBuilder::new(BatchOptions::default());
        for r in src.records().expect("records") {
            b.append_record(&r.expect("record")).expect("append");
        }
        assert_eq!(b.finish().expect("finish"), *src.as_bytes());
    }

    #[test]
    fn batch_iter_splits_and_reports_a_partial_tail() {
        let one = three_records(BatchOptions::default());
        let two = three_records(BatchOptions {
            compression: Compression::Lz4,
            ..Default::default()
        });
        let mut all = one.to_vec();
        all.extend_from_slice(&two);
        all.extend_from_slice(&one[..30]);
        let mut it = BatchIter::new(Bytes::from(all));
        assert_eq!(it.next().expect("first").expect("ok").as_bytes(), &one);
        assert_eq!(it.next().expect("second").expect("ok").as_bytes(), &two);
        let pos = it.position();
        assert_eq!(pos, one.len() + two.len());
        assert_eq!(
            it.next().expect("tail"),
            Err(BatchError::Incomplete {
                needed: one.len(),
                available: 30
            })
        );
        assert_eq!(it.position(), pos);
        assert!(it.next().is_none());
    }
}
