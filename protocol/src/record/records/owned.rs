//! Owned records: fields are `Bytes` slices of the section, so they outlive the walk.

use bytes::Bytes;

use super::super::error::BatchError;
use super::parse::{next_field, RawRecord};
use super::{RecordSection, Walk};

/// One record of a batch, its fields `Bytes` slices of the batch's (inflated) section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    offset: i64,
    timestamp: i64,
    timestamp_delta: i64,
    offset_delta: i32,
    attributes: i8,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Bytes,
    header_count: u32,
}

impl Record {
    pub(super) fn from_raw(data: &Bytes, raw: &RawRecord, offset: i64, timestamp: i64) -> Record {
        Record {
            offset,
            timestamp,
            timestamp_delta: raw.timestamp_delta,
            offset_delta: raw.offset_delta,
            attributes: raw.attributes,
            key: raw.key.clone().map(|r| data.slice(r)),
            value: raw.value.clone().map(|r| data.slice(r)),
            headers: if raw.header_count == 0 {
                Bytes::new()
            } else {
                data.slice(raw.headers.clone())
            },
            header_count: raw.header_count,
        }
    }

    /// Absolute offset: the batch's baseOffset + offsetDelta.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Timestamp in ms: baseTimestamp + timestampDelta under CreateTime, the batch's maxTimestamp
    /// under LogAppendTime.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The stored timestampDelta.
    pub fn timestamp_delta(&self) -> i64 {
        self.timestamp_delta
    }

    /// The stored offsetDelta.
    pub fn offset_delta(&self) -> i32 {
        self.offset_delta
    }

    /// The record attributes byte (unused by Kafka so far).
    pub fn attributes(&self) -> i8 {
        self.attributes
    }

    /// The key, `None` if null.
    pub fn key(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }

    /// The value, `None` if null (a tombstone on compacted topics).
    pub fn value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    /// Takes the key out (no copy).
    pub fn take_key(&mut self) -> Option<Bytes> {
        self.key.take()
    }

    /// Takes the value out (no copy).
    pub fn take_value(&mut self) -> Option<Bytes> {
        self.value.take()
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The headers, in order.
    pub fn headers(&self) -> HeaderIter {
        HeaderIter {
            buf: self.headers.clone(),
            pos: 0,
            remaining: self.header_count,
        }
    }
}

/// A record header: a key (UTF-8 by convention, not checked) and a nullable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key bytes.
    pub key: Bytes,
    /// Header value, `None` if null.
    pub value: Option<Bytes>,
}

impl RecordHeader {
    /// The key as UTF-8, if it is.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// The headers of one owned record (validated when the record was read).
#[derive(Debug, Clone)]
pub struct HeaderIter {
    buf: Bytes,
    pos: usize,
    remaining: u32,
}

impl Iterator for HeaderIter {
    type Item = RecordHeader;

    fn next(&mut self) -> Option<RecordHeader> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Validated when the record was read, so this cannot fail; stop quietly if it somehow does.
        let (key, value) = next_field(&self.buf, &mut self.pos)?;
        let key = self.buf.slice(key?);
        let value = value.map(|r| self.buf.slice(r));
        Some(RecordHeader { key, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// Owning walk over a records section, yielding each [`Record`] or the first error (then ending).
#[derive(Debug, Clone)]
pub struct RecordIter {
    records: RecordSection,
    walk: Walk,
}

impl RecordIter {
    pub(super) fn new(records: RecordSection) -> RecordIter {
        let walk = Walk::new(records.ctx.records_count);
        RecordIter { records, walk }
    }

    /// Records not yet yielded, per the batch's recordsCount.
    pub fn remaining(&self) -> usize {
        self.walk.remaining()
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Result<Record, BatchError>> {
        let raw = self.walk.step(&self.records.data)?;
        Some(raw.map(|raw| {
            let ctx = &self.records.ctx;
            Record::from_raw(
                &self.records.data,
                &raw,
                ctx.offset(&raw),
                ctx.timestamp(&raw),
            )
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // An error can end the walk early; one trailing-bytes error can follow the last record.
        (0, Some(self.walk.remaining() + 1))
    }
}
