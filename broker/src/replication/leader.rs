//! The leader side of one partition: follower positions, the high watermark, ISR changes and
//! acks=all completion. Synchronous and I/O-free: the driver reports appends, fsyncs, fetches and
//! controller answers with the current time, and acts on the values returned.
//!
//! The high watermark is the minimum *durable* end offset over the ISR, counting members being
//! added from the moment they are proposed and members being removed until the controller has
//! committed their removal, so it is always computed over a superset of the controller's ISR. A
//! follower's offsets count only after a fetch in this epoch whose prefix check passed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::epoch::{EpochCache, UNDEFINED_EPOCH};
use super::limits::{ALTER_PARTITION_RETRY_MS, REPLICA_LAG_TIME_MAX_MS};
use super::message::{
    AlterPartition, FetchAnswer, FetchRequest, PartitionState, ReplicaError, TopicPartition,
};
use super::NodeId;

/// Tunables of the leader side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// How long to wait for an AlterPartition answer before sending it again.
    pub alter_partition_retry_ms: u64,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            replica_lag_time_max_ms: REPLICA_LAG_TIME_MAX_MS,
            alter_partition_retry_ms: ALTER_PARTITION_RETRY_MS,
        }
    }
}

/// Where the local log stands when leadership starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    /// The next offset to be written.
    pub log_end_offset: i64,
    /// The end of the fsynced prefix.
    pub durable_offset: i64,
    /// The last high watermark known.
    pub high_watermark: i64,
}

/// Identifies one acks=all append waiting for the high watermark.
pub type AckId = u64;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset from its last valid fetch in this epoch, if any.
    pub log_end_offset: Option<i64>,
    /// The follower's durable end offset from that fetch (-1 when unknown).
    pub durable_offset: i64,
    /// The follower's log start offset from its last fetch in this epoch (-1 when unknown).
    pub log_start_offset: i64,
    /// The last time the follower had fetched up to the leader's end offset.
    pub last_caught_up_ms: u64,
    last_fetch_ms: u64,
    leader_end_at_last_fetch: i64,
}

#[derive(Debug, Clone)]
struct PendingIsr {
    /// The latest proposal (based on our partition epoch).
    request: AlterPartition,
    sent_at_ms: u64,
    /// Every member any proposal on this partition epoch added: a copy of any of them may still
    /// be applied by the controller, so all count toward the HW until a newer partition state
    /// says what happened.
    counted: BTreeSet<NodeId>,
}

/// The leader of one partition in one leader epoch.
#[derive(Debug)]
pub struct LeaderState {
    tp: TopicPartition,
    me: NodeId,
    config: LeaderConfig,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<NodeId>,
    isr: BTreeSet<NodeId>,
    min_insync: usize,
    pending: Option<PendingIsr>,
    followers: BTreeMap<NodeId, FollowerProgress>,
    /// Brokers the metadata says are fenced or shutting down: never proposed for the ISR and not
    /// counted by a pending proposal (the controller would refuse them, and counting a dead
    /// member would hold every acks=all write; KIP-841). See [`Self::set_ineligible`].
    ineligible: BTreeSet<NodeId>,
    high_watermark: i64,
    epoch_start_offset: i64,
    log_end_offset: i64,
    durable_offset: i64,
    waiting: VecDeque<(AckId, i64)>,
    next_ack_id: AckId,
    completed: Vec<(AckId, Result<(), ReplicaError>)>,
}

impl LeaderState {
    /// Becomes leader at `state.leader_epoch`; `log` describes the local log and the last high
    /// watermark known (it only grows from here).
    pub fn new(
        tp: TopicPartition,
        me: NodeId,
        state: &PartitionState,
        config: LeaderConfig,
        now_ms: u64,
        log: LogPosition,
    ) -> Self {
        let LogPosition {
            log_end_offset,
            durable_offset,
            high_watermark,
        } = log;
        let followers = state
            .replicas
            .iter()
            .filter(|&&r| r != me)
            .map(|&r| {
                (
                    r,
                    FollowerProgress {
                        log_end_offset: None,
                        durable_offset: -1,
                        log_start_offset: -1,
                        // A new leader gives every follower a full lag period to show up.
                        last_caught_up_ms: now_ms,
                        last_fetch_ms: now_ms,
                        leader_end_at_last_fetch: log_end_offset,
                    },
                )
            })
            .collect();
        let mut leader = Self {
            tp,
            me,
            config,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            replicas: state.replicas.clone(),
            isr: state.isr.iter().copied().collect(),
            min_insync: state.min_insync.max(1),
            pending: None,
            followers,
            ineligible: BTreeSet::new(),
            high_watermark: high_watermark.min(log_end_offset),
            epoch_start_offset: log_end_offset,
            log_end_offset,
            durable_offset: durable_offset.min(log_end_offset),
            waiting: VecDeque::new(),
            next_ack_id: 0,
            completed: Vec::new(),
        };
        leader.isr.insert(me);
        leader.advance_high_watermark();
        leader
    }

    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// This leadership's epoch: stamp it into every appended batch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The partition epoch of the ISR this leader works from.
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// Consumers may read below this offset.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The first offset of this leadership's epoch.
    pub fn epoch_start_offset(&self) -> i64 {
        self.epoch_start_offset
    }

    /// The ISR as committed by the controller.
    pub fn isr(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.isr.iter().copied()
    }

    /// The ISR the high watermark is computed over: committed members plus members being added.
    pub fn maximal_isr(&self) -> BTreeSet<NodeId> {
        let mut set = self.isr.clone();
        if let Some(p) = &self.pending {
            set.extend(p.counted.iter().copied());
        }
        set
    }

    /// What this leader knows of `follower`.
    pub fn follower(&self, follower: NodeId) -> Option<&FollowerProgress> {
        self.followers.get(&follower)
    }

    /// The low watermark given the leader's own log start: the smallest log start offset over
    /// the ISR (-1 for a member not heard from in this epoch). A DeleteRecords completes when it
    /// reaches the requested offset: then no in-sync replica, the only ones that can become
    /// leader, still holds the deleted records.
    pub fn low_watermark(&self, leader_log_start: i64) -> i64 {
        self.isr
            .iter()
            .filter(|&&id| id != self.me)
            .map(|id| self.followers.get(id).map_or(-1, |f| f.log_start_offset))
            .fold(leader_log_start, i64::min)
    }

    /// Whether an acks=all produce may be appended now (NOT_ENOUGH_REPLICAS otherwise).
    pub fn check_append(&self, acks_all: bool) -> Result<(), ReplicaError> {
        if acks_all && self.isr.len() < self.min_insync {
            return Err(ReplicaError::NotEnoughReplicas);
        }
        Ok(())
    }

    /// The local log grew to `log_end_offset` (an append in this epoch).
    pub fn on_append(&mut self, log_end_offset: i64) {
        self.log_end_offset = self.log_end_offset.max(log_end_offset);
    }

    /// The local log is fsynced up to `durable_offset`.
    pub fn on_synced(&mut self, durable_offset: i64) {
        self.durable_offset = self
            .durable_offset
            .max(durable_offset.min(self.log_end_offset));
        self.advance_high_watermark();
    }

    /// Registers an acks=all append whose last offset is `end_offset - 1`; it completes through
    /// [`Self::take_completed`] once the high watermark reaches `end_offset`.
    pub fn register_ack(&mut self, end_offset: i64) -> AckId {
        let id = self.next_ack_id;
        self.next_ack_id += 1;
        self.waiting.push_back((id, end_offset));
        self.complete_acks();
        id
    }

    /// Acks=all appends that finished since the last call: `Ok` once committed with enough
    /// replicas in sync, `Err(NotEnoughReplicasAfterAppend)` if the ISR shrank below
    /// `min.insync.replicas` meanwhile.
    pub fn take_completed(&mut self) -> Vec<(AckId, Result<(), ReplicaError>)> {
        std::mem::take(&mut self.completed)
    }

    /// Gives up leadership: every waiting append fails with NOT_LEADER_OR_FOLLOWER.
    pub fn resign(mut self) -> Vec<(AckId, Result<(), ReplicaError>)> {
        let mut out = std::mem::take(&mut self.completed);
        out.extend(
            self.waiting
                .drain(..)
                .map(|(id, _)| (id, Err(ReplicaError::NotLeader))),
        );
        out
    }

    /// Answers a follower's fetch. `cache` and the log end offset describe the local log.
    pub fn on_fetch(
        &mut self,
        now_ms: u64,
        req: &FetchRequest,
        cache: &EpochCache,
    ) -> Result<FetchAnswer, ReplicaError> {
        if req.leader_epoch < self.leader_epoch {
            return Err(ReplicaError::FencedLeaderEpoch);
        }
        if req.leader_epoch > self.leader_epoch {
            return Err(ReplicaError::UnknownLeaderEpoch);
        }
        let leader_end = self.log_end_offset;
        let Some(progress) = self.followers.get_mut(&req.replica) else {
            return Err(ReplicaError::NotLeader);
        };
        if req.last_fetched_epoch != UNDEFINED_EPOCH || req.fetch_offset > leader_end {
            let ours = cache.end_offset_for(req.last_fetched_epoch, leader_end);
            let diverging = match ours {
                Some(end)
                    if end.epoch == req.last_fetched_epoch && end.fetch_ok(req.fetch_offset) =>
                {
                    None
                }
                Some(end) => Some(end),
                // Our log is empty or the follower has no epoch but claims data: everything goes.
                None => Some(super::epoch::EpochEndOffset {
                    epoch: UNDEFINED_EPOCH,
                    end_offset: 0,
                }),
            };
            if let Some(end) = diverging {
                return Ok(FetchAnswer {
                    high_watermark: self.high_watermark,
                    diverging: Some(end),
                    read_from: req.fetch_offset,
                });
            }
        }
        // Kafka's lastCaughtUpTime: caught up now if at our end, or as of the previous fetch if
        // this fetch reaches what our end was then.
        if req.fetch_offset >= leader_end {
            progress.last_caught_up_ms = now_ms;
        } else if req.fetch_offset >= progress.leader_end_at_last_fetch {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.last_fetch_ms = now_ms;
        progress.leader_end_at_last_fetch = leader_end;
        progress.log_end_offset = Some(req.fetch_offset);
        progress.durable_offset = req.durable_offset.min(req.fetch_offset);
        progress.log_start_offset = req.log_start_offset;
        self.advance_high_watermark();
        Ok(FetchAnswer {
            high_watermark: self.high_watermark,
            diverging: None,
            read_from: req.fetch_offset,
        })
    }

    /// The brokers the controller considers ineligible for ISR membership right now (fenced or
    /// shutting down), from the latest metadata. They are not proposed for expansion, and a
    /// pending expansion stops counting them for the high watermark: the controller refuses to
    /// add an ineligible broker, so counting it would only hold the HW (and acks=all) at its last
    /// durable offset, forever if it is gone.
    pub fn set_ineligible(&mut self, ineligible: BTreeSet<NodeId>) {
        if let Some(p) = &mut self.pending {
            p.counted
                .retain(|id| !ineligible.contains(id) || self.isr.contains(id));
        }
        self.ineligible = ineligible;
        self.advance_high_watermark();
    }

    /// Periodic work: proposes an ISR change (or re-sends an unanswered one) to the controller.
    pub fn tick(&mut self, now_ms: u64) -> Option<AlterPartition> {
        let mut new_isr = self.isr.clone();
        for (&id, p) in &self.followers {
            let in_isr = self.isr.contains(&id);
            let lagging =
                now_ms.saturating_sub(p.last_caught_up_ms) > self.config.replica_lag_time_max_ms;
            if in_isr && lagging {
                new_isr.remove(&id);
            } else if !in_isr
                && !lagging
                && !self.ineligible.contains(&id)
                && p.durable_offset >= self.high_watermark
                && p.log_end_offset
                    .is_some_and(|leo| leo >= self.epoch_start_offset)
            {
                new_isr.insert(id);
            }
        }
        let new_isr: Vec<NodeId> = new_isr.into_iter().collect();
        let retry_due = |p: &PendingIsr| {
            now_ms.saturating_sub(p.sent_at_ms) >= self.config.alter_partition_retry_ms
        };
        let unchanged = new_isr.iter().copied().eq(self.isr.iter().copied());
        match &mut self.pending {
            // Nothing to change and nothing outstanding.
            None if unchanged => return None,
            // Nothing to change, and what is pending no longer counts anyone outside the ISR
            // (its additions became ineligible): drop it rather than re-send it.
            Some(p) if unchanged && p.counted.iter().all(|id| self.isr.contains(id)) => {
                self.pending = None;
                return None;
            }
            // The same proposal: re-send once the answer is overdue (lost, or refused because a
            // member was not eligible yet).
            Some(p) if p.request.new_isr == new_isr => {
                if !retry_due(p) {
                    return None;
                }
                p.sent_at_ms = now_ms;
                return Some(p.request.clone());
            }
            Some(p) if !retry_due(p) => return None,
            _ => {}
        }
        let request = AlterPartition {
            tp: self.tp.clone(),
            leader: self.me,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
        };
        tracing::debug!(tp = %self.tp, isr = ?request.new_isr, "proposing ISR change");
        let mut counted = self.pending.take().map(|p| p.counted).unwrap_or_default();
        counted.extend(request.new_isr.iter().copied());
        self.pending = Some(PendingIsr {
            request: request.clone(),
            sent_at_ms: now_ms,
            counted,
        });
        self.advance_high_watermark();
        Some(request)
    }

    /// The controller refused our AlterPartition (stale epochs, or a member it does not consider
    /// eligible). Nothing to undo: the proposal keeps counting until a newer partition state
    /// arrives, and [`Self::tick`] proposes again after the retry interval.
    pub fn on_alter_rejected(&mut self) {
        tracing::debug!(tp = %self.tp, "ISR change refused");
    }

    /// The controller's partition state for our epoch (from an AlterPartition answer or metadata
    /// propagation). Returns false, changing nothing, if it is not for this leadership.
    pub fn update_state(&mut self, state: &PartitionState) -> bool {
        if state.leader != self.me || state.leader_epoch != self.leader_epoch {
            return false;
        }
        if state.partition_epoch > self.partition_epoch {
            self.partition_epoch = state.partition_epoch;
            self.isr = state.isr.iter().copied().collect();
            self.isr.insert(self.me);
            self.min_insync = state.min_insync.max(1);
            // Whatever was pending was based on an older version: it was applied (and is in this
            // state) or will be rejected; the next tick proposes again if still needed.
            self.pending = None;
            for &r in &state.replicas {
                if r != self.me {
                    self.followers.entry(r).or_insert(FollowerProgress {
                        log_end_offset: None,
                        durable_offset: -1,
                        log_start_offset: -1,
                        last_caught_up_ms: 0,
                        last_fetch_ms: 0,
                        leader_end_at_last_fetch: self.log_end_offset,
                    });
                }
            }
            self.replicas = state.replicas.clone();
            self.advance_high_watermark();
        }
        true
    }

    fn advance_high_watermark(&mut self) {
        let mut candidate = self.durable_offset;
        for id in self.maximal_isr() {
            if id == self.me {
                continue;
            }
            let durable = self.followers.get(&id).map_or(-1, |p| p.durable_offset);
            candidate = candidate.min(durable);
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
        }
        self.complete_acks();
    }

    fn complete_acks(&mut self) {
        while let Some(&(id, end)) = self.waiting.front() {
            if end > self.high_watermark {
                break;
            }
            self.waiting.pop_front();
            let result = if self.isr.len() >= self.min_insync {
                Ok(())
            } else {
                Err(ReplicaError::NotEnoughReplicasAfterAppend)
            };
            self.completed.push((id, result));
        }
    }
}

impl super::epoch::EpochEndOffset {
    /// Whether a follower at `fetch_offset` whose last epoch is this one agrees with our log.
    fn fetch_ok(&self, fetch_offset: i64) -> bool {
        fetch_offset <= self.end_offset
    }
}

#[cfg(test)]
mod tests;
