//! The replication cores bound to a real partition log ([`crate::log::Partition`]): what the
//! broker's produce and fetch paths and its follower fetcher call. No network here: requests and
//! responses are values, carried by whatever transport the caller has.
//!
//! - [`LeaderReplica`]: `append` (acks=all waits for the high watermark; NOT_ENOUGH_REPLICAS when
//!   the ISR is smaller than `min.insync.replicas`), `fetch` (answers a follower with whole stored
//!   batches, or tells it where its log diverges), `high_watermark` for consumer reads.
//! - [`FollowerReplica`]: `poll_fetch` and `on_fetch_response` (truncate, or append keeping the
//!   leader's offsets and epochs, then start a group commit so the next fetch reports the new
//!   durable offset).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::epoch::{EpochCache, UNDEFINED_EPOCH};
use super::follower::{FollowerAction, FollowerState, LocalLog};
use super::leader::{AckId, LeaderConfig, LeaderState, LogPosition};
use super::message::{
    AlterPartition, FetchData, FetchRequest, FetchResponse, PartitionState, ReplicaError,
    TopicPartition,
};
use super::NodeId;
use crate::log::{AppendInfo, Durability, LogError, Partition};

/// Why a replicated append failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaAppendError {
    /// Replication refused or gave up (NOT_ENOUGH_REPLICAS, NOT_LEADER_OR_FOLLOWER, ...).
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The local log refused.
    #[error(transparent)]
    Log(#[from] LogError),
}

fn epoch_cache(partition: &Partition) -> Result<EpochCache, LogError> {
    let stored = partition.leader_epoch_cache()?;
    let mut cache = EpochCache::new();
    for &(epoch, start) in stored.entries() {
        // The stored cache is already ordered; a refusal would mean it is not, and the entry is
        // skipped rather than trusted.
        if cache.assign(epoch, start).is_err() {
            tracing::warn!(
                topic = partition.topic(),
                partition = partition.partition(),
                epoch,
                start,
                "unordered leader epoch entry"
            );
        }
    }
    Ok(cache)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct LeaderInner {
    state: LeaderState,
    waiters: BTreeMap<AckId, oneshot::Sender<Result<(), ReplicaError>>>,
    /// Set by [`LeaderReplica::resign`]: nothing more is appended or acknowledged.
    resigned: bool,
}

impl LeaderInner {
    fn complete(&mut self, hw: &watch::Sender<i64>) {
        for (id, result) in self.state.take_completed() {
            if let Some(tx) = self.waiters.remove(&id) {
                let _ = tx.send(result);
            }
        }
        let now = self.state.high_watermark();
        hw.send_if_modified(|v| {
            let newer = now > *v;
            if newer {
                *v = now;
            }
            newer
        });
    }
}

/// This broker leads the partition in one leader epoch.
pub struct LeaderReplica {
    partition: Arc<Partition>,
    inner: Mutex<LeaderInner>,
    /// The high watermark as it moves (consumer long-polls wake on it).
    hw: watch::Sender<i64>,
    /// Ticks when what the low watermark depends on may have moved (a follower's fetch, an ISR
    /// change, the end of the leadership): DeleteRecords waits on it.
    replicas_moved: watch::Sender<()>,
}

impl LeaderReplica {
    /// Becomes leader for `state` (whose `leader` is `me`) over `partition`; `high_watermark` is
    /// the last one known locally.
    pub fn new(
        partition: Arc<Partition>,
        me: NodeId,
        state: &PartitionState,
        config: LeaderConfig,
        now_ms: u64,
        high_watermark: i64,
    ) -> Result<Self, LogError> {
        let tp = TopicPartition::new(partition.topic(), partition.partition());
        let pos = LogPosition {
            log_end_offset: partition.log_end_offset()?,
            durable_offset: partition.durable_offset(),
            high_watermark,
        };
        let state = LeaderState::new(tp, me, state, config, now_ms, pos);
        let hw = watch::Sender::new(state.high_watermark());
        Ok(Self {
            partition,
            inner: Mutex::new(LeaderInner {
                state,
                waiters: BTreeMap::new(),
                resigned: false,
            }),
            hw,
            replicas_moved: watch::Sender::new(()),
        })
    }

    /// The low watermark: the smallest log start offset over the in-sync replicas, this one
    /// included (see [`LeaderState::low_watermark`]).
    pub fn low_watermark(&self) -> Result<i64, LogError> {
        let start = self.partition.log_start_offset()?;
        Ok(lock(&self.inner).state.low_watermark(start))
    }

    /// Waits until the low watermark reaches `offset`, and returns it: a DeleteRecords is
    /// complete once no in-sync replica holds the records below it. Fails with
    /// NOT_LEADER_OR_FOLLOWER if the leadership ends first.
    pub async fn wait_low_watermark(&self, offset: i64) -> Result<i64, ReplicaAppendError> {
        let mut moved = self.replicas_moved.subscribe();
        loop {
            moved.mark_unchanged();
            let low = self.low_watermark()?;
            if low >= offset {
                return Ok(low);
            }
            if self.is_resigned() {
                return Err(ReplicaError::NotLeader.into());
            }
            // The sender lives as long as `self`.
            let _ = moved.changed().await;
        }
    }

    /// Watches the high watermark (it only grows during a leadership).
    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Moves the high watermark as the local log's fsyncs complete, until the leadership ends
    /// (`leader` dropped) or the partition stops: without it, a leader's own fsync finishing
    /// after its followers' would leave the HW (and acks=all) waiting for the next fetch.
    pub async fn follow_durable(leader: std::sync::Weak<LeaderReplica>) {
        let Some(mut durable) = leader.upgrade().map(|l| l.partition.durable_watch()) else {
            return;
        };
        while durable.changed().await.is_ok() {
            match leader.upgrade() {
                Some(l) => {
                    l.high_watermark();
                }
                None => return,
            }
        }
    }

    /// The partition log.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// The leader epoch stamped into appended batches.
    pub fn leader_epoch(&self) -> i32 {
        lock(&self.inner).state.leader_epoch()
    }

    /// Consumers read below this.
    pub fn high_watermark(&self) -> i64 {
        let mut inner = lock(&self.inner);
        inner.state.on_synced(self.partition.durable_offset());
        inner.complete(&self.hw);
        inner.state.high_watermark()
    }

    /// Appends a producer's (validated) batches. With `acks_all`, returns only once the high
    /// watermark has passed them with at least `min.insync.replicas` in sync.
    pub async fn append(
        &self,
        batches: Bytes,
        acks_all: bool,
    ) -> Result<AppendInfo, ReplicaAppendError> {
        let epoch = {
            let inner = lock(&self.inner);
            if inner.resigned {
                return Err(ReplicaError::NotLeader.into());
            }
            inner.state.check_append(acks_all)?;
            inner.state.leader_epoch()
        };
        let durability = if acks_all {
            Durability::Durable
        } else {
            Durability::PageCache
        };
        let info = self.partition.append(batches, epoch, durability).await?;
        if !acks_all {
            // The high watermark counts fsynced offsets only, so even acks=0/1 records become
            // visible to consumers after a sync: start one (group commit shares it).
            self.partition.kick_sync();
        }
        let end = info.last_offset + 1;
        {
            let mut inner = lock(&self.inner);
            inner.state.on_append(end);
        }
        if acks_all {
            self.wait_committed(end).await
        } else {
            self.high_watermark();
            Ok(())
        }
        .map(|()| info)
    }

    /// Waits until the high watermark reaches `end` (everything before it is durable on every
    /// in-sync replica) with at least `min.insync.replicas` in sync: acks=all's wait, also for
    /// writers that appended with [`Self::append`] without it and wait later (the replicated
    /// offsets log). Fails with NOT_LEADER_OR_FOLLOWER if the leadership ends first, and with
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below the minimum.
    pub async fn wait_committed(&self, end: i64) -> Result<(), ReplicaAppendError> {
        let rx = {
            let mut inner = lock(&self.inner);
            inner.state.on_synced(self.partition.durable_offset());
            let id = inner.state.register_ack(end);
            let (tx, rx) = oneshot::channel();
            inner.waiters.insert(id, tx);
            inner.complete(&self.hw);
            if inner.resigned {
                // The leadership ended: nobody will complete the wait.
                for (_, tx) in std::mem::take(&mut inner.waiters) {
                    let _ = tx.send(Err(ReplicaError::NotLeader));
                }
            }
            rx
        };
        // A dropped sender means the leadership ended before the answer.
        rx.await.map_err(|_| ReplicaError::NotLeader)??;
        Ok(())
    }

    /// Answers a follower's fetch with up to `max_bytes` of whole batches from its fetch offset.
    pub fn fetch(
        &self,
        now_ms: u64,
        req: &FetchRequest,
        max_bytes: usize,
    ) -> Result<FetchResponse<Vec<Bytes>>, LogError> {
        // The log start and end first: the state's end must never lag the log a follower may have
        // read, and records below the start are gone.
        let start = self.partition.log_start_offset()?;
        let end = self.partition.log_end_offset()?;
        let cache = epoch_cache(&self.partition)?;
        let answer = {
            let mut inner = lock(&self.inner);
            inner.state.on_append(end);
            inner.state.on_synced(self.partition.durable_offset());
            let answer = inner.state.on_fetch(now_ms, req, &cache);
            inner.complete(&self.hw);
            answer
        };
        self.replicas_moved.send_replace(());
        let result = match answer {
            Err(e) => Err(e),
            Ok(a) if a.diverging.is_some() => Ok(FetchData {
                high_watermark: a.high_watermark,
                log_start_offset: start,
                diverging: a.diverging,
                records: Vec::new(),
            }),
            Ok(a) => {
                // Below the start, the follower starts over at it (the answer says where).
                let records = if a.read_from >= end || a.read_from < start {
                    Vec::new()
                } else {
                    self.partition
                        .read(a.read_from, max_bytes, i64::MAX)?
                        .chunks
                };
                Ok(FetchData {
                    high_watermark: a.high_watermark,
                    log_start_offset: start,
                    diverging: None,
                    records,
                })
            }
        };
        Ok(FetchResponse {
            fetch_id: req.fetch_id,
            result,
        })
    }

    /// Periodic work: an ISR change to send to the controller, if any.
    pub fn tick(&self, now_ms: u64) -> Option<AlterPartition> {
        let mut inner = lock(&self.inner);
        inner.state.on_synced(self.partition.durable_offset());
        let out = inner.state.tick(now_ms);
        inner.complete(&self.hw);
        out
    }

    /// Brokers the controller would not add to an ISR now (see [`LeaderState::set_ineligible`]).
    pub fn set_ineligible(&self, ineligible: BTreeSet<NodeId>) {
        let mut inner = lock(&self.inner);
        inner.state.set_ineligible(ineligible);
        inner.complete(&self.hw);
    }

    /// The controller's answer to an AlterPartition was a refusal.
    pub fn on_alter_rejected(&self) {
        lock(&self.inner).state.on_alter_rejected();
    }

    /// Newer controller state for this leadership (ISR changes); false if it is not for it.
    pub fn update_state(&self, state: &PartitionState) -> bool {
        let mut inner = lock(&self.inner);
        let ours = inner.state.update_state(state);
        inner.complete(&self.hw);
        drop(inner);
        self.replicas_moved.send_replace(());
        ours
    }

    /// The leadership's current ISR (committed members), leader included.
    pub fn isr(&self) -> Vec<NodeId> {
        lock(&self.inner).state.isr().collect()
    }

    /// Ends the leadership: appends already committed are acknowledged, every other waiting
    /// acks=all append fails with NOT_LEADER_OR_FOLLOWER, and later appends are refused. Takes
    /// `&self` because produce requests in flight may hold the replica.
    pub fn resign(&self) {
        let mut inner = lock(&self.inner);
        inner.state.on_synced(self.partition.durable_offset());
        inner.complete(&self.hw);
        inner.resigned = true;
        for (_, tx) in std::mem::take(&mut inner.waiters) {
            let _ = tx.send(Err(ReplicaError::NotLeader));
        }
        drop(inner);
        self.replicas_moved.send_replace(());
    }

    /// Whether [`Self::resign`] was called.
    pub fn is_resigned(&self) -> bool {
        lock(&self.inner).resigned
    }
}

/// What a follower did with a fetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerOutcome {
    /// Stale or refused; nothing changed.
    Nothing,
    /// The divergent tail was cut at this offset.
    Truncated(i64),
    /// The log ended below the leader's log start: it was emptied and starts over here.
    Reset(i64),
    /// Records were appended; the log now ends here.
    Appended(i64),
}

/// This broker follows the partition's leader in one leader epoch.
pub struct FollowerReplica {
    partition: Arc<Partition>,
    state: Mutex<FollowerState>,
}

impl FollowerReplica {
    /// Follows `state.leader` over `partition`; fetch ids start at `first_fetch_id`.
    pub fn new(
        partition: Arc<Partition>,
        me: NodeId,
        state: &PartitionState,
        high_watermark: i64,
        first_fetch_id: u64,
    ) -> Self {
        let tp = TopicPartition::new(partition.topic(), partition.partition());
        let f = FollowerState::new(
            tp,
            me,
            state.leader,
            state.leader_epoch,
            high_watermark,
            first_fetch_id,
        );
        Self {
            partition,
            state: Mutex::new(f),
        }
    }

    /// The partition log.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    /// The leader followed.
    pub fn leader(&self) -> NodeId {
        lock(&self.state).leader()
    }

    fn local(&self) -> Result<LocalLog, LogError> {
        let log_end_offset = self.partition.log_end_offset()?;
        let last_epoch = self
            .partition
            .leader_epoch_cache()?
            .latest_epoch()
            .unwrap_or(UNDEFINED_EPOCH);
        Ok(LocalLog {
            log_start_offset: self.partition.log_start_offset()?,
            log_end_offset,
            durable_offset: self.partition.durable_offset(),
            last_epoch,
        })
    }

    /// The local high watermark.
    pub fn high_watermark(&self) -> Result<i64, LogError> {
        let local = self.local()?;
        Ok(lock(&self.state).high_watermark(local))
    }

    /// The next fetch to send to the leader, if one is due.
    pub fn poll_fetch(&self, now_ms: u64) -> Result<Option<FetchRequest>, LogError> {
        let local = self.local()?;
        Ok(lock(&self.state).poll_fetch(now_ms, local))
    }

    /// Applies a fetch response to the local log.
    pub async fn on_fetch_response(
        &self,
        now_ms: u64,
        resp: FetchResponse<Vec<Bytes>>,
    ) -> Result<FollowerOutcome, LogError> {
        let local = self.local()?;
        let cache = epoch_cache(&self.partition)?;
        let action = lock(&self.state).on_fetch_response(now_ms, resp, local, &cache);
        let outcome = match action {
            FollowerAction::Truncate { offset } => {
                tracing::info!(
                    topic = self.partition.topic(),
                    partition = self.partition.partition(),
                    offset,
                    "truncating divergent tail"
                );
                self.partition.truncate_to(offset).await?;
                return Ok(FollowerOutcome::Truncated(offset));
            }
            FollowerAction::Reset { offset } => {
                tracing::info!(
                    topic = self.partition.topic(),
                    partition = self.partition.partition(),
                    offset,
                    local_end = local.log_end_offset,
                    "the local log ends below the leader's log start: starting over there"
                );
                self.partition.reset_to(offset).await?;
                return Ok(FollowerOutcome::Reset(offset));
            }
            FollowerAction::Append { records } if !records.is_empty() => {
                // The leader's log start may lie inside its first batch (a DeleteRecords
                // offset): an empty log starts at that batch, as Kafka's followers do, and its
                // log start then moves up to the leader's below.
                let empty = local.log_start_offset == local.log_end_offset;
                let straddling = records
                    .first()
                    .and_then(|chunk| crate::log::batch::Header::parse(chunk).ok())
                    .map(|h| h.base_offset)
                    .filter(|&base| empty && base < local.log_end_offset);
                if let Some(base) = straddling {
                    self.partition.reset_to(base).await?;
                }
                for chunk in records {
                    self.partition.append_as_follower(chunk).await?;
                }
                // acks=all needs the replicas' fsync too: start one now, the next fetch reports it.
                self.partition.kick_sync();
                FollowerOutcome::Appended(self.partition.log_end_offset()?)
            }
            FollowerAction::Append { .. } | FollowerAction::Ignore | FollowerAction::Backoff(_) => {
                // Already at the leader's end, perhaps with a tail recovered but never synced:
                // the leader cannot count this replica in sync until it is durable.
                self.partition.sync_unsynced_tail();
                FollowerOutcome::Nothing
            }
        };
        // The log start follows the leader's (its retention and DeleteRecords), so that records
        // deleted there cannot come back from here after a failover.
        let leader_start = lock(&self.state).leader_log_start();
        if leader_start > local.log_start_offset {
            self.partition.follow_log_start(leader_start).await?;
        }
        Ok(outcome)
    }

    /// The fetch id to continue from in the next follower state.
    pub fn next_fetch_id(&self) -> u64 {
        lock(&self.state).next_fetch_id()
    }
}
