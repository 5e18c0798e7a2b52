//! The leader epoch cache: for each leader epoch, the first offset written in it.
//!
//! Replication asks "where does epoch E end?" (OffsetsForLeaderEpoch) to find where a follower's log
//! diverges. Entries are strictly increasing in both epoch and start offset. The cache is truncated
//! with the log (`truncate_from_end`) and by retention (`truncate_from_start`), and persisted as the
//! `leader-epoch-checkpoint` small file: entry count u32, then (epoch i32, start offset i64) pairs,
//! big-endian. Since every stored batch carries its leader epoch, recovery can also rebuild it from
//! the batches it scans.

use crate::log::checkpoint::Reader;
use crate::log::limits::LEADER_EPOCH_ENTRIES_MAX;

/// Epoch -> first offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// An empty cache.
    pub fn new() -> LeaderEpochCache {
        LeaderEpochCache::default()
    }

    /// Records that `epoch` starts at `start_offset`; returns true when the cache changed.
    /// Epochs older than the latest are ignored (a batch stamped by an older leader, replicated).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        match self.entries.last() {
            Some(&(e, _)) if epoch <= e => false,
            _ => {
                self.entries.retain(|&(_, o)| o < start_offset);
                self.entries.push((epoch, start_offset));
                true
            }
        }
    }

    /// The latest epoch.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// For `epoch`, the largest epoch <= it that the log has and the offset where that epoch ends
    /// (the start of the next epoch, or `log_end` for the latest); `None` when `epoch` predates
    /// every entry (Kafka answers UNDEFINED_EPOCH_OFFSET then).
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let n = self.entries.partition_point(|&(e, _)| e <= epoch);
        if n == 0 {
            return None;
        }
        let found = self.entries[n - 1].0;
        let end = self.entries.get(n).map_or(log_end, |e| e.1);
        Some((found, end))
    }

    /// Removes entries starting at or after `offset` (log truncated to `offset`).
    pub fn truncate_from_end(&mut self, offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < offset);
        before != self.entries.len()
    }

    /// Drops entries wholly below the new log start and moves the first one up to it.
    pub fn truncate_from_start(&mut self, log_start: i64) -> bool {
        let keep_from = self.entries.partition_point(|&(_, o)| o <= log_start);
        if keep_from == 0 {
            return false;
        }
        let epoch = self.entries[keep_from - 1].0;
        let changed = keep_from > 1 || self.entries[0].1 != log_start;
        self.entries.drain(..keep_from - 1);
        self.entries[0] = (epoch, log_start);
        changed
    }

    /// Serialises for the checkpoint file.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.entries.len() * 12);
        v.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for &(e, o) in &self.entries {
            v.extend_from_slice(&e.to_be_bytes());
            v.extend_from_slice(&o.to_be_bytes());
        }
        v
    }

    /// Parses a checkpoint payload.
    pub fn decode(payload: &[u8]) -> Result<LeaderEpochCache, String> {
        let mut r = Reader::new(payload);
        let n = r.u32().ok_or("short leader epoch checkpoint")? as usize;
        if n > LEADER_EPOCH_ENTRIES_MAX || r.remaining() != n * 12 {
            return Err(format!(
                "leader epoch checkpoint with {n} entries has the wrong size"
            ));
        }
        let mut c = LeaderEpochCache::new();
        for _ in 0..n {
            let (e, o) = (r.i32().ok_or("short")?, r.i64().ok_or("short")?);
            if c.entries.last().is_some_and(|&(le, lo)| e <= le || o < lo) {
                return Err("leader epoch checkpoint is not increasing".into());
            }
            c.entries.push((e, o));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assign_lookup_truncate_roundtrip() {
        let mut c = LeaderEpochCache::new();
        assert!(c.assign(1, 0));
        assert!(!c.assign(1, 5));
        assert!(c.assign(3, 10));
        assert!(c.assign(4, 20));
        assert_eq!(c.end_offset_for(0, 30), None);
        assert_eq!(c.end_offset_for(1, 30), Some((1, 10)));
        assert_eq!(c.end_offset_for(2, 30), Some((1, 10)));
        assert_eq!(c.end_offset_for(4, 30), Some((4, 30)));
        assert_eq!(LeaderEpochCache::decode(&c.encode()).unwrap(), c);
        assert!(c.truncate_from_end(15));
        assert_eq!(c.entries(), &[(1, 0), (3, 10)]);
        assert!(c.truncate_from_start(12));
        assert_eq!(c.entries(), &[(3, 12)]);
        assert!(LeaderEpochCache::decode(&[0, 0, 0, 9]).is_err());
    }
}
