//! The sparse offset index of one segment (`.index`): binary-searched, memory-mapped when sealed.
//!
//! Entries are 8 bytes, big-endian: offset relative to the segment base (u32), byte position of
//! that batch in the `.log` file (u32). Entries are strictly increasing in both fields; one is added
//! per `index.interval.bytes` of log. The active segment's index lives in a `Vec` and is written
//! out when the segment is sealed; sealed indexes are mapped read-only (never truncated in place:
//! a changed index is written to a new file and renamed over, so a mapping never sees a truncated
//! file). An index is a cache: recovery rebuilds it from the log whenever it is missing or fails
//! its sanity check.

use memmap2::Mmap;

/// Bytes per offset index entry.
pub const ENTRY_BYTES: usize = 8;

/// Where an index's bytes live.
#[derive(Debug)]
pub enum IndexBuf {
    /// Growing, in memory (active segment or rebuilt).
    Owned(Vec<u8>),
    /// A read-only map of a sealed index file.
    Mapped(Mmap),
}

impl IndexBuf {
    /// The raw entry bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            IndexBuf::Owned(v) => v,
            IndexBuf::Mapped(m) => m,
        }
    }

    fn owned(&mut self) -> &mut Vec<u8> {
        if let IndexBuf::Mapped(m) = self {
            *self = IndexBuf::Owned(m.to_vec());
        }
        match self {
            IndexBuf::Owned(v) => v,
            IndexBuf::Mapped(_) => unreachable!("converted above"),
        }
    }
}

/// A sparse offset -> file position index.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    buf: IndexBuf,
    max_entries: usize,
}

impl OffsetIndex {
    /// An empty index for a segment starting at `base_offset`.
    pub fn new(base_offset: i64, max_entries: usize) -> OffsetIndex {
        OffsetIndex {
            base_offset,
            buf: IndexBuf::Owned(Vec::new()),
            max_entries,
        }
    }

    /// Wraps bytes loaded from disk after a sanity check against the segment's log length and next
    /// offset; an error says why the index must be rebuilt instead.
    pub fn load(
        base_offset: i64,
        buf: IndexBuf,
        max_entries: usize,
        log_len: u64,
        next_offset: Option<i64>,
    ) -> Result<OffsetIndex, String> {
        let n = buf.bytes().len();
        if !n.is_multiple_of(ENTRY_BYTES) || n / ENTRY_BYTES > max_entries.max(1) * 2 {
            return Err(format!(
                "index size {n} is not a whole, bounded number of entries"
            ));
        }
        let index = OffsetIndex {
            base_offset,
            buf,
            max_entries,
        };
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..index.len() {
            let (off, pos) = index.entry(i);
            if let Some((po, pp)) = prev {
                if off <= po || pos <= pp {
                    return Err(format!("index entry {i} is not increasing"));
                }
            }
            if u64::from(pos) >= log_len || next_offset.is_some_and(|n| off >= n) {
                return Err(format!("index entry {i} points past the log"));
            }
            prev = Some((off, pos));
        }
        Ok(index)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.buf.bytes().len() / ENTRY_BYTES
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when no more entries fit (`segment.index.bytes`): the segment must roll.
    pub fn is_full(&self) -> bool {
        self.len() >= self.max_entries
    }

    /// Capacity in entries.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Entry `i` as (absolute offset, position).
    pub fn entry(&self, i: usize) -> (i64, u32) {
        let b = &self.buf.bytes()[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES];
        let rel = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let pos = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        (self.base_offset + i64::from(rel), pos)
    }

    /// The last entry with offset <= `offset`, or (base offset, 0) when none.
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid).0 <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            (self.base_offset, 0)
        } else {
            self.entry(lo - 1)
        }
    }

    /// Adds an entry; ignored unless both fields increase (callers add in log order).
    pub fn append(&mut self, offset: i64, position: u32) {
        if let Some((lo, lp)) = self.last() {
            if offset <= lo || position <= lp {
                return;
            }
        }
        let rel = (offset - self.base_offset) as u32;
        let v = self.buf.owned();
        v.extend_from_slice(&rel.to_be_bytes());
        v.extend_from_slice(&position.to_be_bytes());
    }

    /// The last entry.
    pub fn last(&self) -> Option<(i64, u32)> {
        let n = self.len();
        (n > 0).then(|| self.entry(n - 1))
    }

    /// Drops every entry for an offset >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = (0..self.len())
            .take_while(|&i| self.entry(i).0 < offset)
            .count();
        if keep < self.len() {
            self.buf.owned().truncate(keep * ENTRY_BYTES);
        }
    }

    /// The raw bytes to write to disk.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lookup_agrees_with_linear_scan(gaps in proptest::collection::vec((1i64..50, 1u32..5000), 0..200), probes in proptest::collection::vec(0i64..12_000, 1..50)) {
            let base = 1000;
            let mut idx = OffsetIndex::new(base, 10_000);
            let (mut off, mut pos) = (base, 0u32);
            let mut entries = vec![];
            for (g, p) in gaps {
                off += g;
                pos += p;
                idx.append(off, pos);
                entries.push((off, pos));
            }
            for probe in probes {
                let probe = base + probe - 100;
                let expected = entries.iter().rev().find(|e| e.0 <= probe).copied().unwrap_or((base, 0));
                prop_assert_eq!(idx.lookup(probe), expected);
            }
            let bytes = idx.as_bytes().to_vec();
            let loaded = OffsetIndex::load(base, IndexBuf::Owned(bytes), 10_000, u64::from(pos) + 1, None).unwrap();
            prop_assert_eq!(loaded.len(), entries.len());
        }
    }

    #[test]
    fn truncate_and_reject_bad_files() {
        let mut idx = OffsetIndex::new(0, 10);
        idx.append(5, 100);
        idx.append(10, 200);
        idx.append(9, 300);
        assert_eq!(idx.len(), 2);
        idx.truncate_to(10);
        assert_eq!(idx.last(), Some((5, 100)));
        assert!(OffsetIndex::load(0, IndexBuf::Owned(vec![0; 7]), 10, 1000, None).is_err());
        let mut bad = vec![];
        bad.extend_from_slice(&5u32.to_be_bytes());
        bad.extend_from_slice(&100u32.to_be_bytes());
        bad.extend_from_slice(&4u32.to_be_bytes());
        bad.extend_from_slice(&200u32.to_be_bytes());
        assert!(OffsetIndex::load(0, IndexBuf::Owned(bad.clone()), 10, 1000, None).is_err());
        assert!(OffsetIndex::load(0, IndexBuf::Owned(bad[..8].to_vec()), 10, 50, None).is_err());
        assert!(
            OffsetIndex::load(0, IndexBuf::Owned(bad[..8].to_vec()), 10, 500, Some(5)).is_err()
        );
    }
}
