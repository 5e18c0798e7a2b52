//! The follower side of one partition: when to fetch, and what a fetch response means for the
//! local log (append, or truncate a divergent tail by leader epoch, KIP-101/279). Synchronous and
//! I/O-free; the driver passes the local log's position with every call.

use super::epoch::{EpochCache, UNDEFINED_EPOCH};
use super::limits::FETCH_TIMEOUT_MS;
use super::message::{FetchRequest, FetchResponse, ReplicaError, TopicPartition};
use super::NodeId;

/// Backoff after an error answer, before fetching again.
pub const FETCH_ERROR_BACKOFF_MS: u64 = 50;

/// The local log's position, as the driver sees it when calling the follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLog {
    /// The first offset kept.
    pub log_start_offset: i64,
    /// The next offset to be written.
    pub log_end_offset: i64,
    /// The end of the fsynced prefix.
    pub durable_offset: i64,
    /// The epoch of the last batch ([`UNDEFINED_EPOCH`] when empty).
    pub last_epoch: i32,
}

/// What the driver must do after a fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerAction<R> {
    /// A stale or unexpected response: nothing to do.
    Ignore,
    /// The local log diverges from the leader's: truncate it to this offset (durably) and fetch
    /// again.
    Truncate {
        /// The new log end offset.
        offset: i64,
    },
    /// The local log ends below the leader's log start (retention or DeleteRecords removed what
    /// it lacks): empty it and start over at this offset (Kafka's truncateFullyAndStartAt).
    Reset {
        /// The leader's log start offset, the new local log start and end.
        offset: i64,
    },
    /// Append these records, which start at the local log end offset, keeping their offsets and
    /// epochs.
    Append {
        /// The batches.
        records: R,
    },
    /// The leader refused; wait for newer metadata or the backoff.
    Backoff(ReplicaError),
}

/// A follower of one partition under one leader epoch.
#[derive(Debug)]
pub struct FollowerState {
    tp: TopicPartition,
    me: NodeId,
    leader: NodeId,
    leader_epoch: i32,
    leader_high_watermark: i64,
    /// The leader's log start offset from its latest answer (-1 before one).
    leader_log_start: i64,
    in_flight: Option<(u64, u64)>,
    next_fetch_id: u64,
    not_before_ms: u64,
    fetch_timeout_ms: u64,
}

impl FollowerState {
    /// Follows `leader` (possibly [`super::NO_NODE`]: then nothing is fetched) in `leader_epoch`.
    /// `high_watermark` is the last one known; fetch ids start at `first_fetch_id` (carry
    /// [`Self::next_fetch_id`] over from the previous follower state so that a late answer to an
    /// earlier leadership's fetch can never be taken for an answer to this one's).
    pub fn new(
        tp: TopicPartition,
        me: NodeId,
        leader: NodeId,
        leader_epoch: i32,
        high_watermark: i64,
        first_fetch_id: u64,
    ) -> Self {
        Self {
            tp,
            me,
            leader,
            leader_epoch,
            leader_high_watermark: high_watermark,
            leader_log_start: -1,
            in_flight: None,
            next_fetch_id: first_fetch_id,
            not_before_ms: 0,
            fetch_timeout_ms: FETCH_TIMEOUT_MS,
        }
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// The leader followed.
    pub fn leader(&self) -> NodeId {
        self.leader
    }

    /// The leader epoch followed.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// Re-send a fetch after this long without an answer (default [`FETCH_TIMEOUT_MS`]); keep it
    /// well below `replica.lag.time.max.ms` so one lost message does not cost ISR membership.
    pub fn set_fetch_timeout_ms(&mut self, timeout_ms: u64) {
        self.fetch_timeout_ms = timeout_ms;
    }

    /// The id the next fetch will carry.
    pub fn next_fetch_id(&self) -> u64 {
        self.next_fetch_id
    }

    /// The leader's log start offset as of its latest answer (-1 before one): the local log
    /// start follows it, up to the local log end.
    pub fn leader_log_start(&self) -> i64 {
        self.leader_log_start
    }

    /// The local high watermark: the leader's, capped by what this replica holds.
    pub fn high_watermark(&self, log: LocalLog) -> i64 {
        self.leader_high_watermark.min(log.log_end_offset)
    }

    /// The next fetch to send to [`Self::leader`], if one is due now.
    pub fn poll_fetch(&mut self, now_ms: u64, log: LocalLog) -> Option<FetchRequest> {
        if self.leader < 0 || now_ms < self.not_before_ms {
            return None;
        }
        if let Some((_, sent)) = self.in_flight {
            if now_ms.saturating_sub(sent) < self.fetch_timeout_ms {
                return None;
            }
        }
        let fetch_id = self.next_fetch_id;
        self.next_fetch_id += 1;
        self.in_flight = Some((fetch_id, now_ms));
        Some(FetchRequest {
            replica: self.me,
            leader_epoch: self.leader_epoch,
            fetch_offset: log.log_end_offset,
            last_fetched_epoch: log.last_epoch,
            durable_offset: log.durable_offset.min(log.log_end_offset),
            log_start_offset: log.log_start_offset,
            fetch_id,
        })
    }

    /// Handles a fetch response; `cache` and `log` describe the local log now.
    pub fn on_fetch_response<R>(
        &mut self,
        now_ms: u64,
        resp: FetchResponse<R>,
        log: LocalLog,
        cache: &EpochCache,
    ) -> FollowerAction<R> {
        match self.in_flight {
            Some((id, _)) if id == resp.fetch_id => self.in_flight = None,
            _ => return FollowerAction::Ignore,
        }
        let data = match resp.result {
            Ok(data) => data,
            Err(e) => {
                self.not_before_ms = now_ms + FETCH_ERROR_BACKOFF_MS;
                return FollowerAction::Backoff(e);
            }
        };
        // What this follower knew to be committed before this answer: the leader's high
        // watermark in the same answer covers the leader's log, not the tail being cut here.
        let known_committed = self.leader_high_watermark;
        self.leader_high_watermark = self.leader_high_watermark.max(data.high_watermark);
        self.leader_log_start = self.leader_log_start.max(data.log_start_offset);
        // Nothing below the leader's log start can be continued: a log ending there, or cut
        // there by a divergence, starts over at it.
        let reset = FollowerAction::Reset {
            offset: self.leader_log_start,
        };
        if log.log_end_offset < self.leader_log_start {
            return reset;
        }
        if let Some(div) = data.diverging {
            let ours = if div.epoch == UNDEFINED_EPOCH {
                None
            } else {
                cache.end_offset_for(div.epoch, log.log_end_offset)
            };
            let offset = ours
                .map_or(div.end_offset, |o| o.end_offset.min(div.end_offset))
                .min(log.log_end_offset)
                .max(0);
            if offset < known_committed.min(log.log_end_offset) {
                tracing::error!(tp = %self.tp, offset, hw = known_committed,
                    "truncating below the high watermark: committed records would be lost");
            }
            if offset < self.leader_log_start {
                return reset;
            }
            return FollowerAction::Truncate { offset };
        }
        FollowerAction::Append {
            records: data.records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::epoch::EpochEndOffset;
    use crate::replication::message::FetchData;

    fn log(leo: i64, epoch: i32) -> LocalLog {
        LocalLog {
            log_start_offset: 0,
            log_end_offset: leo,
            durable_offset: leo,
            last_epoch: epoch,
        }
    }

    #[test]
    fn stale_responses_are_ignored_and_timeouts_resend() {
        let mut f = FollowerState::new(TopicPartition::new("t", 0), 2, 1, 3, 0, 0);
        let req = f.poll_fetch(0, log(5, 3)).unwrap();
        assert_eq!(
            (req.fetch_offset, req.last_fetched_epoch, req.leader_epoch),
            (5, 3, 3)
        );
        assert!(f.poll_fetch(10, log(5, 3)).is_none(), "one fetch in flight");
        let again = f.poll_fetch(FETCH_TIMEOUT_MS, log(5, 3)).unwrap();
        assert_ne!(again.fetch_id, req.fetch_id);
        let stale = FetchResponse::<Vec<u8>> {
            fetch_id: req.fetch_id,
            result: Ok(FetchData {
                high_watermark: 5,
                log_start_offset: 0,
                diverging: None,
                records: vec![],
            }),
        };
        assert_eq!(
            f.on_fetch_response(0, stale, log(5, 3), &EpochCache::new()),
            FollowerAction::Ignore
        );
    }

    #[test]
    fn divergence_truncates_to_the_smaller_end() {
        let mut cache = EpochCache::new();
        cache.assign(1, 0).unwrap();
        cache.assign(2, 8).unwrap();
        let mut f = FollowerState::new(TopicPartition::new("t", 0), 2, 1, 3, 0, 0);
        let req = f.poll_fetch(0, log(12, 2)).unwrap();
        // The leader never saw epoch 2: its epoch 1 ends at 10, ours at 8.
        let resp = FetchResponse::<()> {
            fetch_id: req.fetch_id,
            result: Ok(FetchData {
                high_watermark: 4,
                log_start_offset: 0,
                diverging: Some(EpochEndOffset {
                    epoch: 1,
                    end_offset: 10,
                }),
                records: (),
            }),
        };
        assert_eq!(
            f.on_fetch_response(0, resp, log(12, 2), &cache),
            FollowerAction::Truncate { offset: 8 }
        );
        assert_eq!(f.high_watermark(log(8, 1)), 4);
    }

    #[test]
    fn a_log_below_the_leaders_start_starts_over_there() {
        let mut f = FollowerState::new(TopicPartition::new("t", 0), 2, 1, 3, 0, 0);
        let answer = |fetch_id, diverging| FetchResponse::<()> {
            fetch_id,
            result: Ok(FetchData {
                high_watermark: 40,
                log_start_offset: 30,
                diverging,
                records: (),
            }),
        };
        // The whole local log lies below the leader's start.
        let req = f.poll_fetch(0, log(10, 3)).unwrap();
        assert_eq!(
            f.on_fetch_response(
                0,
                answer(req.fetch_id, None),
                log(10, 3),
                &EpochCache::new()
            ),
            FollowerAction::Reset { offset: 30 }
        );
        assert_eq!(f.leader_log_start(), 30);
        // A divergent tail whose cut would fall below the leader's start.
        let mut cache = EpochCache::new();
        cache.assign(2, 0).unwrap();
        let req = f.poll_fetch(0, log(35, 2)).unwrap();
        let div = Some(EpochEndOffset {
            epoch: 1,
            end_offset: 20,
        });
        assert_eq!(
            f.on_fetch_response(0, answer(req.fetch_id, div), log(35, 2), &cache),
            FollowerAction::Reset { offset: 30 }
        );
        // Above the start, records are appended as usual.
        let req = f.poll_fetch(0, log(35, 3)).unwrap();
        assert_eq!(
            f.on_fetch_response(0, answer(req.fetch_id, None), log(35, 3), &cache),
            FollowerAction::Append { records: () }
        );
    }
}
