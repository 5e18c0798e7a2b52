//! Walking the records of a batch without copying them.
//!
//! Record layout (all lengths zig-zag varints, -1 = null):
//! `length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//!  keyLength varint | key | valueLength varint | value | headerCount varint |
//!  (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*`
//!
//! [`RecordIter`] walks a records section held as one [`Bytes`] (a slice of the batch, or the one
//! buffer a compressed section was inflated into). Each [`Record`] hands out its key, value and header
//! fields as `Bytes` slices of that buffer: no per-record allocation or copy. A record is fully
//! validated (every length in bounds, its length prefix matching its content) before it is yielded, so
//! [`Record::headers`] never fails.

use std::ops::Range;

use bytes::Bytes;

use super::error::BatchError;
use super::limits::HEADERS_PER_RECORD_MAX;
use super::varint::{read_varint, read_varlong, VarintError};

/// One record of a batch, its fields borrowed from the batch's buffer.
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

/// The headers of one record (validated when the record was read).
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
        // The record was validated when read, so these cannot fail; stop quietly if they somehow do.
        let key = read_field(&self.buf, &mut self.pos).ok()??;
        let value = read_field(&self.buf, &mut self.pos).ok()?;
        Some(RecordHeader { key, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// Reads a nullable length-prefixed field, returning its byte range in `buf`.
#[inline]
fn read_field_range(buf: &[u8], pos: &mut usize) -> Result<Option<Range<usize>>, &'static str> {
    let len = read_varint(buf, pos).map_err(varint_reason)?;
    if len == -1 {
        return Ok(None);
    }
    if len < -1 {
        return Err("negative field length");
    }
    let start = *pos;
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("field runs past the record")?;
    *pos = end;
    Ok(Some(start..end))
}

/// Reads a nullable length-prefixed field as a slice of `buf`.
fn read_field(buf: &Bytes, pos: &mut usize) -> Result<Option<Bytes>, &'static str> {
    Ok(read_field_range(buf, pos)?.map(|r| buf.slice(r)))
}

/// Skips a nullable length-prefixed field (validation pass).
fn skip_field(buf: &[u8], pos: &mut usize, nullable: bool) -> Result<(), &'static str> {
    let len = read_varint(buf, pos).map_err(varint_reason)?;
    if len == -1 && nullable {
        return Ok(());
    }
    if len < 0 {
        return Err(if nullable {
            "negative field length"
        } else {
            "null or negative header key length"
        });
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("field runs past the record")?;
    *pos = end;
    Ok(())
}

fn varint_reason(e: VarintError) -> &'static str {
    match e {
        VarintError::Truncated => "varint runs past the record",
        VarintError::Overflow => "varint too long",
    }
}

/// How record timestamps are derived from the batch header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordContext {
    pub base_offset: i64,
    pub base_timestamp: i64,
    /// `Some(max_timestamp)` under LogAppendTime.
    pub log_append_time: Option<i64>,
    pub records_count: i32,
}

/// Iterator over the records of one batch, yielding each record or the first error (then ending).
///
/// After the last of `recordsCount` records, bytes left in the section are an error, as are too few
/// bytes for the announced count.
#[derive(Debug, Clone)]
pub struct RecordIter {
    data: Bytes,
    pos: usize,
    index: i32,
    ctx: RecordContext,
    done: bool,
}

impl RecordIter {
    pub(crate) fn new(data: Bytes, ctx: RecordContext) -> RecordIter {
        RecordIter {
            data,
            pos: 0,
            index: 0,
            ctx,
            done: false,
        }
    }

    /// Records not yet yielded, per the batch's recordsCount.
    pub fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            (self.ctx.records_count - self.index).max(0) as usize
        }
    }

    fn fail(&mut self, reason: &'static str) -> Option<Result<Record, BatchError>> {
        self.done = true;
        Some(Err(BatchError::InvalidRecord {
            index: self.index,
            reason,
        }))
    }

    fn read_record(&self) -> Result<(Record, usize), &'static str> {
        let buf = &self.data;
        let mut pos = self.pos;
        let length = read_varint(buf, &mut pos).map_err(|e| match e {
            VarintError::Truncated => "record length runs past the batch",
            VarintError::Overflow => "record length varint too long",
        })?;
        if length < 0 {
            return Err("negative record length");
        }
        let end = pos
            .checked_add(length as usize)
            .filter(|&e| e <= buf.len())
            .ok_or("record runs past the batch")?;
        // Parse within the record's own bytes so no field can reach into the next record; positions
        // stay absolute so fields are sliced straight from the section (one refcount each).
        let body = &buf[..end];
        let mut p = pos;
        let attributes = *body.get(p).ok_or("record too short")? as i8;
        p += 1;
        let timestamp_delta = read_varlong(body, &mut p).map_err(varint_reason)?;
        let offset_delta = read_varint(body, &mut p).map_err(varint_reason)?;
        let key = read_field_range(body, &mut p)?;
        let value = read_field_range(body, &mut p)?;
        let header_count = read_varint(body, &mut p).map_err(varint_reason)?;
        if header_count < 0 {
            return Err("negative header count");
        }
        let header_count = header_count as usize;
        if header_count > HEADERS_PER_RECORD_MAX {
            return Err("header count above HEADERS_PER_RECORD_MAX");
        }
        let headers_start = p;
        for _ in 0..header_count {
            skip_field(body, &mut p, false)?;
            skip_field(body, &mut p, true)?;
        }
        if p != end {
            return Err("record length does not match its content");
        }
        let timestamp = match self.ctx.log_append_time {
            Some(ts) => ts,
            None => self.ctx.base_timestamp.wrapping_add(timestamp_delta),
        };
        let record = Record {
            offset: self.ctx.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp,
            timestamp_delta,
            offset_delta,
            attributes,
            key: key.map(|r| buf.slice(r)),
            value: value.map(|r| buf.slice(r)),
            headers: if header_count == 0 {
                Bytes::new()
            } else {
                buf.slice(headers_start..end)
            },
            header_count: header_count as u32,
        };
        Ok((record, end))
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Result<Record, BatchError>> {
        if self.done {
            return None;
        }
        if self.index >= self.ctx.records_count {
            self.done = true;
            if self.pos != self.data.len() {
                return Some(Err(BatchError::InvalidRecord {
                    index: self.index,
                    reason: "bytes left after the last record",
                }));
            }
            return None;
        }
        match self.read_record() {
            Ok((record, end)) => {
                self.pos = end;
                self.index += 1;
                Some(Ok(record))
            }
            Err(reason) => self.fail(reason),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // An error can end the walk early, and one trailing-bytes error can follow the last record.
        (0, Some(self.remaining() + 1))
    }
}
