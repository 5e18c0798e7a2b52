//! The sparse time index of one segment (`.timeindex`).
//!
//! Entries are 12 bytes, big-endian: the largest batch max-timestamp seen so far in the segment
//! (i64) and the offset of the batch that carried it, relative to the segment base (u32). Both
//! fields increase strictly, so a binary search finds the last entry with timestamp < T: every batch
//! up to that entry's offset has max timestamp < T, and a by-timestamp lookup scans batch headers
//! from there. Like the offset index it is a cache, rebuilt from the log when missing or insane.

use crate::log::offset_index::IndexBuf;

/// Bytes per time index entry.
pub const ENTRY_BYTES: usize = 12;

/// A sparse timestamp -> offset index.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    entries: Vec<(i64, i64)>,
}

impl TimeIndex {
    /// An empty index for a segment starting at `base_offset`.
    pub fn new(base_offset: i64) -> TimeIndex {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    /// Parses bytes loaded from disk, checking they are increasing and below `next_offset`.
    pub fn load(
        base_offset: i64,
        buf: &IndexBuf,
        next_offset: i64,
        max_entries: usize,
    ) -> Result<TimeIndex, String> {
        let b = buf.bytes();
        if !b.len().is_multiple_of(ENTRY_BYTES) || b.len() / ENTRY_BYTES > max_entries.max(1) * 2 {
            return Err(format!(
                "time index size {} is not a whole, bounded number of entries",
                b.len()
            ));
        }
        let mut idx = TimeIndex::new(base_offset);
        for (i, e) in b.chunks_exact(ENTRY_BYTES).enumerate() {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&e[..8]);
            let ts = i64::from_be_bytes(ts);
            let off = base_offset + i64::from(u32::from_be_bytes([e[8], e[9], e[10], e[11]]));
            if off >= next_offset
                || idx
                    .entries
                    .last()
                    .is_some_and(|&(lt, lo)| ts <= lt || off <= lo)
            {
                return Err(format!(
                    "time index entry {i} is out of order or past the log"
                ));
            }
            idx.entries.push((ts, off));
        }
        Ok(idx)
    }

    /// Adds an entry when both timestamp and offset advance.
    pub fn append(&mut self, max_timestamp: i64, offset: i64) {
        if self
            .entries
            .last()
            .is_none_or(|&(t, o)| max_timestamp > t && offset > o)
        {
            self.entries.push((max_timestamp, offset));
        }
    }

    /// Offset to start scanning from for the first batch with max timestamp >= `ts`.
    pub fn lookup(&self, ts: i64) -> i64 {
        let n = self.entries.partition_point(|&(t, _)| t < ts);
        if n == 0 {
            self.base_offset
        } else {
            self.entries[n - 1].1
        }
    }

    /// Largest timestamp recorded.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|e| e.0)
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        self.entries.retain(|&(_, o)| o < offset);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serialised bytes for the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.entries.len() * ENTRY_BYTES);
        for &(t, o) in &self.entries {
            v.extend_from_slice(&t.to_be_bytes());
            v.extend_from_slice(&((o - self.base_offset) as u32).to_be_bytes());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_scan_start() {
        let mut t = TimeIndex::new(100);
        t.append(10, 100);
        t.append(20, 150);
        t.append(15, 160); // not increasing: skipped
        t.append(30, 200);
        assert_eq!(t.lookup(5), 100);
        assert_eq!(t.lookup(10), 100);
        assert_eq!(t.lookup(11), 100);
        assert_eq!(t.lookup(21), 150);
        assert_eq!(t.lookup(31), 200);
        let loaded = TimeIndex::load(100, &IndexBuf::Owned(t.to_bytes()), 201, 10).unwrap();
        assert_eq!(loaded.len(), 3);
        assert!(TimeIndex::load(100, &IndexBuf::Owned(t.to_bytes()), 200, 10).is_err());
        assert!(TimeIndex::load(100, &IndexBuf::Owned(vec![1; 13]), 300, 10).is_err());
        t.truncate_to(150);
        assert_eq!(t.max_timestamp(), Some(10));
    }
}
