//! Parsing one record's framing into byte ranges of its section (shared by both walks).

use std::ops::Range;

use super::super::limits::HEADERS_PER_RECORD_MAX;
use super::super::varint::{read_varint, read_varlong, VarintError};

/// A nullable field's byte range (`None` = null).
pub(crate) type FieldRange = Option<Range<usize>>;

/// One validated record as positions within its section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Range<usize>>,
    pub value: Option<Range<usize>>,
    /// The header entries (empty when there are none).
    pub headers: Range<usize>,
    pub header_count: u32,
    /// First byte after the record.
    pub end: usize,
}

fn varint_reason(e: VarintError) -> &'static str {
    match e {
        VarintError::Truncated => "varint runs past the record",
        VarintError::Overflow => "varint too long",
    }
}

/// Reads a nullable length-prefixed field, returning its byte range in `buf`.
#[inline]
pub(crate) fn read_field(
    buf: &[u8],
    pos: &mut usize,
) -> Result<Option<Range<usize>>, &'static str> {
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

/// Reads one header entry (key, value) from an already validated header section.
#[inline]
pub(crate) fn next_field(buf: &[u8], pos: &mut usize) -> Option<(FieldRange, FieldRange)> {
    let key = read_field(buf, pos).ok()?;
    let value = read_field(buf, pos).ok()?;
    Some((key, value))
}

/// Parses and validates the record starting at `pos` in the section `buf`.
pub(crate) fn parse_record(buf: &[u8], pos: usize) -> Result<RawRecord, &'static str> {
    let mut p = pos;
    let length = read_varint(buf, &mut p).map_err(|e| match e {
        VarintError::Truncated => "record length runs past the batch",
        VarintError::Overflow => "record length varint too long",
    })?;
    if length < 0 {
        return Err("negative record length");
    }
    let end = p
        .checked_add(length as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("record runs past the batch")?;
    // Parse within the record's own bytes so no field can reach into the next record; positions
    // stay absolute so fields index the section directly.
    let body = &buf[..end];
    let attributes = *body.get(p).ok_or("record too short")? as i8;
    p += 1;
    let timestamp_delta = read_varlong(body, &mut p).map_err(varint_reason)?;
    let offset_delta = read_varint(body, &mut p).map_err(varint_reason)?;
    let key = read_field(body, &mut p)?;
    let value = read_field(body, &mut p)?;
    let header_count = read_varint(body, &mut p).map_err(varint_reason)?;
    if header_count < 0 {
        return Err("negative header count");
    }
    if header_count as usize > HEADERS_PER_RECORD_MAX {
        return Err("header count above HEADERS_PER_RECORD_MAX");
    }
    let headers_start = p;
    for _ in 0..header_count {
        match read_field(body, &mut p)? {
            Some(_) => {}
            None => return Err("null header key"),
        }
        read_field(body, &mut p)?;
    }
    if p != end {
        return Err("record length does not match its content");
    }
    Ok(RawRecord {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers: headers_start..end,
        header_count: header_count as u32,
        end,
    })
}
