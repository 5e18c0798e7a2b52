//! The simulated partition log: one record per offset, a fsynced prefix, and a crash that keeps
//! the fsynced prefix plus some of the rest (the page cache may have written part of it back).

use crate::replication::epoch::EpochCache;
use crate::replication::follower::LocalLog;

/// One stored record: the epoch of the leader that appended it and a unique value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub epoch: i32,
    pub value: u64,
}

#[derive(Debug, Default)]
pub(super) struct SimLog {
    entries: Vec<Entry>,
    synced: usize,
    cache: EpochCache,
}

impl SimLog {
    pub fn len(&self) -> i64 {
        self.entries.len() as i64
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn cache(&self) -> &EpochCache {
        &self.cache
    }

    pub fn local(&self) -> LocalLog {
        LocalLog {
            // The simulated log keeps every record: its start never moves.
            log_start_offset: 0,
            log_end_offset: self.len(),
            durable_offset: self.synced as i64,
            last_epoch: self
                .entries
                .last()
                .map_or(crate::replication::epoch::UNDEFINED_EPOCH, |e| e.epoch),
        }
    }

    pub fn durable(&self) -> i64 {
        self.synced as i64
    }

    /// Appends; the epoch cache is kept in step (the real log does the same).
    pub fn append(&mut self, entry: Entry) -> Result<(), String> {
        let offset = self.len();
        self.cache
            .assign(entry.epoch, offset)
            .map_err(|e| e.to_string())?;
        self.entries.push(entry);
        Ok(())
    }

    pub fn sync(&mut self) {
        self.synced = self.entries.len();
    }

    /// Truncation is made durable before anything else happens (as the real log must).
    pub fn truncate(&mut self, offset: i64) {
        let keep = usize::try_from(offset.max(0))
            .unwrap_or(0)
            .min(self.entries.len());
        self.entries.truncate(keep);
        self.synced = self.synced.min(keep);
        self.cache.truncate_from_end(keep as i64);
    }

    /// A crash: everything fsynced survives, and `extra` of the unsynced records too.
    pub fn crash(&mut self, extra: usize) {
        let keep = (self.synced + extra).min(self.entries.len());
        self.truncate(keep as i64);
        self.synced = keep;
    }
}
