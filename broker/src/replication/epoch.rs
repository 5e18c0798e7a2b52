//! The leader-epoch cache: for each leader epoch the first offset written in it (KIP-101).
//!
//! Every batch carries the epoch of the leader that appended it, so a log is a sequence of epoch
//! runs. [`EpochCache::end_offset_for`] answers Kafka's OffsetsForLeaderEpoch question: "where does
//! epoch E end in your log?", which is how a follower finds where its log diverges from the leader's.

use super::limits::EPOCH_ENTRIES_MAX;

/// Kafka's "no epoch" value (an empty log, or a batch written before epochs existed).
pub const UNDEFINED_EPOCH: i32 = -1;

/// The answer to "where does this epoch end": the largest epoch <= the requested one that the log
/// has, and the first offset after it (the start of the next epoch, or the log end offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EpochEndOffset {
    /// The largest epoch in the log that is <= the requested epoch, or [`UNDEFINED_EPOCH`] when
    /// the requested epoch is older than everything in the log.
    pub epoch: i32,
    /// The first offset after `epoch`'s run.
    pub end_offset: i64,
}

/// Errors from updating the cache; each means the caller broke the log's ordering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EpochError {
    /// Epochs in a log only grow.
    #[error("leader epoch {epoch} is older than the latest epoch {latest} in the log")]
    EpochRegressed {
        /// The epoch being assigned.
        epoch: i32,
        /// The latest epoch already in the cache.
        latest: i32,
    },
    /// A new epoch cannot start before the previous one did.
    #[error("epoch {epoch} would start at {start_offset}, before the previous epoch's start {previous_start}")]
    OffsetRegressed {
        /// The epoch being assigned.
        epoch: i32,
        /// Where it would start.
        start_offset: i64,
        /// Where the latest epoch starts.
        previous_start: i64,
    },
}

/// Epoch runs of one partition's log, oldest first: `(epoch, start_offset)` with both strictly
/// increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(i32, i64)>,
}

impl EpochCache {
    /// An empty cache (an empty log).
    pub fn new() -> Self {
        Self::default()
    }

    /// The runs, oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The latest epoch in the log, or [`UNDEFINED_EPOCH`] for an empty one.
    pub fn latest_epoch(&self) -> i32 {
        self.entries.last().map_or(UNDEFINED_EPOCH, |e| e.0)
    }

    /// Records that a batch stamped `epoch` was appended at `offset`. Appending in the latest epoch
    /// is a no-op; a newer epoch starts a run (replacing an empty run that started at the same
    /// offset).
    pub fn assign(&mut self, epoch: i32, offset: i64) -> Result<(), EpochError> {
        if let Some(&(latest, start)) = self.entries.last() {
            if epoch == latest {
                return Ok(());
            }
            if epoch < latest {
                return Err(EpochError::EpochRegressed { epoch, latest });
            }
            if offset < start {
                return Err(EpochError::OffsetRegressed {
                    epoch,
                    start_offset: offset,
                    previous_start: start,
                });
            }
            if offset == start {
                self.entries.pop();
            }
        }
        self.entries.push((epoch, offset));
        if self.entries.len() > EPOCH_ENTRIES_MAX {
            // The oldest runs matter only to followers that far behind; they are below the log
            // start of any partition that has seen this many leaders, in practice.
            self.entries.remove(0);
        }
        Ok(())
    }

    /// Forgets every run starting at or after `end_offset`, after the log was truncated there.
    pub fn truncate_from_end(&mut self, end_offset: i64) {
        while self
            .entries
            .last()
            .is_some_and(|&(_, start)| start >= end_offset)
        {
            self.entries.pop();
        }
    }

    /// Where `epoch` ends in a log whose end offset is `log_end_offset`; `None` for an empty cache
    /// or an undefined epoch.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<EpochEndOffset> {
        if epoch == UNDEFINED_EPOCH || self.entries.is_empty() {
            return None;
        }
        // Index of the first run with an epoch greater than the requested one.
        let higher = self.entries.partition_point(|&(e, _)| e <= epoch);
        let end_offset = self
            .entries
            .get(higher)
            .map_or(log_end_offset, |&(_, start)| start);
        let floor_epoch = match higher.checked_sub(1) {
            Some(i) => self.entries[i].0,
            None => UNDEFINED_EPOCH,
        };
        Some(EpochEndOffset {
            epoch: floor_epoch,
            end_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(runs: &[(i32, i64)]) -> EpochCache {
        let mut c = EpochCache::new();
        for &(e, o) in runs {
            c.assign(e, o).unwrap();
        }
        c
    }

    #[test]
    fn end_offset_is_start_of_next_epoch_or_log_end() {
        let c = cache(&[(1, 0), (3, 10), (4, 15)]);
        let at = |e| c.end_offset_for(e, 20);
        assert_eq!(
            at(1),
            Some(EpochEndOffset {
                epoch: 1,
                end_offset: 10
            })
        );
        // Epoch 2 never wrote: the floor is 1, which ends where 3 starts.
        assert_eq!(
            at(2),
            Some(EpochEndOffset {
                epoch: 1,
                end_offset: 10
            })
        );
        assert_eq!(
            at(3),
            Some(EpochEndOffset {
                epoch: 3,
                end_offset: 15
            })
        );
        assert_eq!(
            at(4),
            Some(EpochEndOffset {
                epoch: 4,
                end_offset: 20
            })
        );
        assert_eq!(
            at(9),
            Some(EpochEndOffset {
                epoch: 4,
                end_offset: 20
            })
        );
        assert_eq!(
            at(0),
            Some(EpochEndOffset {
                epoch: UNDEFINED_EPOCH,
                end_offset: 0
            })
        );
        assert_eq!(at(UNDEFINED_EPOCH), None);
        assert_eq!(EpochCache::new().end_offset_for(1, 0), None);
    }

    #[test]
    fn assign_rejects_regressions_and_replaces_empty_runs() {
        let mut c = cache(&[(1, 0), (2, 5)]);
        assert_eq!(
            c.assign(1, 7),
            Err(EpochError::EpochRegressed {
                epoch: 1,
                latest: 2
            })
        );
        assert!(matches!(
            c.assign(3, 4),
            Err(EpochError::OffsetRegressed { .. })
        ));
        c.assign(3, 5).unwrap();
        assert_eq!(c.entries(), &[(1, 0), (3, 5)]);
        c.assign(3, 9).unwrap();
        assert_eq!(c.latest_epoch(), 3);
    }

    #[test]
    fn truncation_drops_runs_starting_at_or_after_the_cut() {
        let mut c = cache(&[(1, 0), (2, 5), (3, 8)]);
        c.truncate_from_end(8);
        assert_eq!(c.entries(), &[(1, 0), (2, 5)]);
        c.truncate_from_end(6);
        assert_eq!(c.entries(), &[(1, 0), (2, 5)]);
        c.truncate_from_end(0);
        assert_eq!(c.latest_epoch(), UNDEFINED_EPOCH);
    }
}
