//! Walking the records of a batch without copying them.
//!
//! Record layout (all lengths zig-zag varints, -1 = null):
//! `length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//!  keyLength varint | key | valueLength varint | value | headerCount varint |
//!  (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*`
//!
//! A records section is held as one [`Bytes`] (a slice of the batch, or the one buffer a compressed
//! section was inflated into): [`RecordSection`]. Two walks over it:
//! - [`RecordSection::iter`] lends [`RecordRef`]s whose fields are `&[u8]` borrowed from the
//!   section: no allocation and no reference counting at all (validation, compaction key scans);
//!   [`RecordRef::key_bytes`] / [`RecordRef::value_bytes`] slice out owned `Bytes` when wanted.
//! - [`RecordIter`] (from [`RecordSection::into_iter`] or [`super::RecordBatch::records`]) yields
//!   owned [`Record`]s whose key, value and headers are `Bytes` slices of the section: no copy, one
//!   refcount increment per present field.
//!
//! A record is fully validated (every length in bounds, its length prefix matching its content)
//! before it is yielded, so header iteration never fails. After the last of `recordsCount` records,
//! leftover bytes are an error, as are too few bytes for the announced count.

mod owned;
mod parse;

use bytes::Bytes;

pub use owned::{HeaderIter, Record, RecordHeader, RecordIter};

use super::error::BatchError;
use parse::{next_field, parse_record, RawRecord};

/// How record offsets and timestamps are derived from the batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordContext {
    pub base_offset: i64,
    pub base_timestamp: i64,
    /// `Some(max_timestamp)` under LogAppendTime.
    pub log_append_time: Option<i64>,
    pub records_count: i32,
}

impl RecordContext {
    fn offset(&self, raw: &RawRecord) -> i64 {
        self.base_offset.wrapping_add(i64::from(raw.offset_delta))
    }

    fn timestamp(&self, raw: &RawRecord) -> i64 {
        match self.log_append_time {
            Some(ts) => ts,
            None => self.base_timestamp.wrapping_add(raw.timestamp_delta),
        }
    }
}

/// The (decompressed) records section of one batch, ready to walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSection {
    data: Bytes,
    ctx: RecordContext,
}

impl RecordSection {
    pub(crate) fn new(data: Bytes, ctx: RecordContext) -> RecordSection {
        RecordSection { data, ctx }
    }

    /// The section's bytes (inflated if the batch was compressed).
    pub fn as_bytes(&self) -> &Bytes {
        &self.data
    }

    /// The batch's recordsCount.
    pub fn records_count(&self) -> usize {
        self.ctx.records_count.max(0) as usize
    }

    /// Walks the records as borrowed views: nothing allocated, nothing reference-counted.
    pub fn iter(&self) -> RecordRefIter<'_> {
        RecordRefIter {
            walk: Walk::new(self.ctx.records_count),
            records: self,
        }
    }
}

impl IntoIterator for RecordSection {
    type Item = Result<Record, BatchError>;
    type IntoIter = RecordIter;

    fn into_iter(self) -> RecordIter {
        RecordIter::new(self)
    }
}

impl<'a> IntoIterator for &'a RecordSection {
    type Item = Result<RecordRef<'a>, BatchError>;
    type IntoIter = RecordRefIter<'a>;

    fn into_iter(self) -> RecordRefIter<'a> {
        self.iter()
    }
}

/// Position and error state of a walk over a section (shared by both iterators).
#[derive(Debug, Clone)]
struct Walk {
    pos: usize,
    index: i32,
    count: i32,
    done: bool,
}

impl Walk {
    fn new(count: i32) -> Walk {
        Walk {
            pos: 0,
            index: 0,
            count,
            done: false,
        }
    }

    fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            (self.count - self.index).max(0) as usize
        }
    }

    /// The next raw record, the trailing-bytes error, or the end.
    fn step(&mut self, data: &[u8]) -> Option<Result<RawRecord, BatchError>> {
        if self.done {
            return None;
        }
        if self.index >= self.count {
            self.done = true;
            if self.pos != data.len() {
                return Some(Err(BatchError::InvalidRecord {
                    index: self.index,
                    reason: "bytes left after the last record",
                }));
            }
            return None;
        }
        match parse_record(data, self.pos) {
            Ok(raw) => {
                self.pos = raw.end;
                self.index += 1;
                Some(Ok(raw))
            }
            Err(reason) => {
                self.done = true;
                Some(Err(BatchError::InvalidRecord {
                    index: self.index,
                    reason,
                }))
            }
        }
    }
}

/// Borrowed walk over a [`RecordSection`] (see the module doc).
#[derive(Debug, Clone)]
pub struct RecordRefIter<'a> {
    records: &'a RecordSection,
    walk: Walk,
}

impl<'a> RecordRefIter<'a> {
    /// Records not yet yielded, per the batch's recordsCount.
    pub fn remaining(&self) -> usize {
        self.walk.remaining()
    }
}

impl<'a> Iterator for RecordRefIter<'a> {
    type Item = Result<RecordRef<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let records = self.records;
        Some(
            self.walk
                .step(&records.data)?
                .map(|raw| RecordRef { records, raw }),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // An error can end the walk early; one trailing-bytes error can follow the last record.
        (0, Some(self.walk.remaining() + 1))
    }
}

/// One record borrowed from its section.
#[derive(Debug, Clone)]
pub struct RecordRef<'a> {
    records: &'a RecordSection,
    raw: RawRecord,
}

impl<'a> RecordRef<'a> {
    /// Absolute offset: the batch's baseOffset + offsetDelta.
    pub fn offset(&self) -> i64 {
        self.records.ctx.offset(&self.raw)
    }

    /// Timestamp in ms: baseTimestamp + timestampDelta under CreateTime, the batch's maxTimestamp
    /// under LogAppendTime.
    pub fn timestamp(&self) -> i64 {
        self.records.ctx.timestamp(&self.raw)
    }

    /// The stored timestampDelta.
    pub fn timestamp_delta(&self) -> i64 {
        self.raw.timestamp_delta
    }

    /// The stored offsetDelta.
    pub fn offset_delta(&self) -> i32 {
        self.raw.offset_delta
    }

    /// The record attributes byte (unused by Kafka so far).
    pub fn attributes(&self) -> i8 {
        self.raw.attributes
    }

    /// The key, `None` if null.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.raw.key.clone().map(|r| &self.records.data[r])
    }

    /// The value, `None` if null (a tombstone on compacted topics).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.raw.value.clone().map(|r| &self.records.data[r])
    }

    /// The key as an owned slice of the section (no copy).
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.raw.key.clone().map(|r| self.records.data.slice(r))
    }

    /// The value as an owned slice of the section (no copy).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.raw.value.clone().map(|r| self.records.data.slice(r))
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.raw.header_count as usize
    }

    /// The headers as borrowed `(key, value)` pairs, in order.
    pub fn headers(&self) -> HeaderRefIter<'a> {
        HeaderRefIter {
            buf: &self.records.data[self.raw.headers.clone()],
            pos: 0,
            remaining: self.raw.header_count,
        }
    }

    /// An owned [`Record`] with the same fields (`Bytes` slices, no copy).
    pub fn to_record(&self) -> Record {
        Record::from_raw(
            &self.records.data,
            &self.raw,
            self.offset(),
            self.timestamp(),
        )
    }
}

/// A record header borrowed from its section: key (UTF-8 by convention) and nullable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeaderRef<'a> {
    /// Header key bytes.
    pub key: &'a [u8],
    /// Header value, `None` if null.
    pub value: Option<&'a [u8]>,
}

impl<'a> RecordHeaderRef<'a> {
    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.key).ok()
    }
}

/// Borrowed headers of one record (validated when the record was read).
#[derive(Debug, Clone)]
pub struct HeaderRefIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: u32,
}

impl<'a> Iterator for HeaderRefIter<'a> {
    type Item = RecordHeaderRef<'a>;

    fn next(&mut self) -> Option<RecordHeaderRef<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Validated when the record was read, so this cannot fail; stop quietly if it somehow does.
        let (key, value) = next_field(self.buf, &mut self.pos)?;
        let key = &self.buf[key?];
        let value = value.map(|r| &self.buf[r]);
        Some(RecordHeaderRef { key, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}
