//! Walking the batches of a segment file: header-only (index rebuild, replay) or fully validated
//! (recovery: length bounds, magic, CRC-32C, offsets strictly increasing).
//!
//! The scanner reads the file in large chunks through [`Storage::read_at`], so recovering a log of
//! small batches costs few syscalls, and bounds every batch length (by the header parser's limits)
//! before it grows its buffer.

use std::io;

use crate::log::batch::{check_crc, Header, HEADER_BYTES};
use crate::log::limits::SCAN_CHUNK_BYTES;
use crate::log::storage::Storage;

/// Bytes a header-only scan prefetches: enough for many small batch headers per read.
const HEADER_SCAN_PREFETCH_BYTES: usize = 64 * 1024;

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every batch up to the end of the file (or to where the visitor stopped) was valid.
    Clean {
        /// Position after the last visited batch.
        end: u64,
    },
    /// The batch at `position` is short or invalid.
    Invalid {
        /// Where the bad batch starts.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// What the visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Keep going.
    Continue,
    /// Stop before the next batch.
    Stop,
}

/// Scans the batches of `file` from `from` to `end`.
///
/// With `verify`, each batch's CRC is checked and its base offset must exceed `prev_last_offset`
/// (then updated), and the visitor sees the whole batch; without, it sees only the header bytes.
pub fn scan(
    file: &dyn Storage,
    from: u64,
    end: u64,
    verify: bool,
    mut prev_last_offset: Option<i64>,
    mut visit: impl FnMut(u64, &Header, &[u8]) -> Visit,
) -> io::Result<ScanEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = 0u64;
    let mut pos = from;
    let invalid = |position, reason: String| Ok(ScanEnd::Invalid { position, reason });
    while pos < end {
        let remaining = end - pos;
        if remaining < HEADER_BYTES as u64 {
            return invalid(pos, format!("short batch header: {remaining} bytes"));
        }
        let prefetch = if verify {
            HEADER_BYTES
        } else {
            HEADER_SCAN_PREFETCH_BYTES
        };
        fill(
            file,
            &mut buf,
            &mut buf_pos,
            pos,
            HEADER_BYTES,
            prefetch,
            end,
        )?;
        let at = (pos - buf_pos) as usize;
        let header = match Header::parse(&buf[at..]) {
            Ok(h) => h,
            Err(e) => return invalid(pos, e.to_string()),
        };
        let total = header.total_bytes() as u64;
        if total > remaining {
            return invalid(
                pos,
                format!("batch of {total} bytes but {remaining} left in the file"),
            );
        }
        if verify && prev_last_offset.is_some_and(|p| header.base_offset <= p) {
            return invalid(
                pos,
                format!("base offset {} does not increase", header.base_offset),
            );
        }
        let bytes: &[u8] = if verify {
            fill(
                file,
                &mut buf,
                &mut buf_pos,
                pos,
                total as usize,
                SCAN_CHUNK_BYTES,
                end,
            )?;
            let at = (pos - buf_pos) as usize;
            let whole = &buf[at..at + total as usize];
            if let Err(e) = check_crc(whole, &header) {
                return invalid(pos, e.to_string());
            }
            whole
        } else {
            &buf[at..at + HEADER_BYTES]
        };
        if visit(pos, &header, bytes) == Visit::Stop {
            return Ok(ScanEnd::Clean { end: pos });
        }
        prev_last_offset = Some(header.last_offset());
        pos += total;
    }
    Ok(ScanEnd::Clean { end: pos })
}

/// Makes `buf` cover `[pos, pos + need)`, reading `max(need, prefetch)` bytes (clipped at `end`)
/// when it does not already.
fn fill(
    file: &dyn Storage,
    buf: &mut Vec<u8>,
    buf_pos: &mut u64,
    pos: u64,
    need: usize,
    prefetch: usize,
    end: u64,
) -> io::Result<()> {
    let covered = pos >= *buf_pos && pos + need as u64 <= *buf_pos + buf.len() as u64;
    if covered {
        return Ok(());
    }
    let n = (need.max(prefetch) as u64).min(end - pos) as usize;
    buf.clear();
    buf.resize(n, 0);
    file.read_at(pos, buf)?;
    *buf_pos = pos;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::mem_storage::MemDirectory;
    use crate::log::storage::Directory;

    #[test]
    fn finds_torn_tail_and_non_increasing_offsets() {
        let d = MemDirectory::new();
        let f = d.open("x", true).unwrap();
        let a = batch(0, 2, 1, None, b"aa");
        let b = batch(2, 1, 1, None, &[7u8; 3000]);
        f.append(&[IoSlice::new(&a), IoSlice::new(&b), IoSlice::new(&b[..40])])
            .unwrap();
        let mut seen = vec![];
        let end = scan(&*f, 0, f.len(), true, None, |p, h, _| {
            seen.push((p, h.base_offset));
            Visit::Continue
        })
        .unwrap();
        assert_eq!(seen, vec![(0, 0), (a.len() as u64, 2)]);
        assert!(
            matches!(end, ScanEnd::Invalid { position, .. } if position == (a.len() + b.len()) as u64)
        );
        f.truncate((a.len() + b.len()) as u64).unwrap();
        f.append(&[IoSlice::new(&b)]).unwrap();
        let end = scan(&*f, 0, f.len(), true, None, |_, _, _| Visit::Continue).unwrap();
        assert!(matches!(end, ScanEnd::Invalid { reason, .. } if reason.contains("increase")));
        let end = scan(&*f, 0, f.len(), false, None, |_, _, _| Visit::Continue).unwrap();
        assert_eq!(end, ScanEnd::Clean { end: f.len() });
    }
}
