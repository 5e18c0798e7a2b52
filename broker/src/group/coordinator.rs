//! The async group coordinator: drives the synchronous [`Groups`] core with real time and makes
//! committed offsets durable in `__consumer_offsets`.
//!
//! - One `std::sync::Mutex` guards the core and the table of parked answers (never held across an
//!   `.await`); a parked JoinGroup / SyncGroup waits on a oneshot channel filled when the core
//!   delivers its answer.
//! - A timer task sleeps until the core's next deadline (or until a request changes it) and calls
//!   `tick`; it holds only a weak reference, so dropping the coordinator ends it.
//! - OffsetCommit: validate (generation fencing) under the lock, append the records to the group's
//!   partition of `__consumer_offsets`, wait until durable (concurrent commits share one fsync),
//!   then apply them to memory and answer. Appends to one offsets partition take a sequence number
//!   under a per-partition lock and are applied strictly in that order, so memory follows the log.
//! - Start-up: [`GroupCoordinator::load`] replays every partition of the offsets log before the
//!   coordinator answers anything; a record that does not decode is logged and skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::config::GroupConfig;
use super::offsets_format::{self, RecordKey};
use super::offsets_log::{partition_for, OffsetsLog, OffsetsLogError, OffsetsRecord};
use super::registry::Groups;
use super::types::{
    Code, CommitIdentity, CommittedOffset, Delivery, GroupDescription, GroupListing,
    HeartbeatRequest, JoinRequest, JoinResponse, LeaveRequest, Reply, ReplyToken, SyncRequest,
    SyncResponse, TopicPartition,
};

/// Where clients reach this coordinator (FindCoordinator's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorNode {
    /// Broker id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

struct Core {
    groups: Groups,
    waiters: HashMap<ReplyToken, oneshot::Sender<Reply>>,
    next_token: u64,
    /// One per offsets partition: writes applied to memory in log order.
    applies: Vec<ApplyQueue>,
}

/// Offsets written to the log, applied to memory once durable and in log order: an append takes
/// a sequence number (under the partition's commit lock, so numbers follow log order); when its
/// fsync is done it is parked here, and every parked write from `next` on is applied in turn.
#[derive(Debug, Default)]
struct ApplyQueue {
    issued: u64,
    next: u64,
    /// `None`: the write was not made durable; skip it.
    done: BTreeMap<u64, Option<PendingWrite>>,
}

/// One durable write of offsets (`None` values are tombstones).
type PendingWrite = (String, Vec<(TopicPartition, Option<CommittedOffset>)>);

impl ApplyQueue {
    fn issue(&mut self) -> u64 {
        let seq = self.issued;
        self.issued += 1;
        seq
    }

    fn complete(&mut self, seq: u64, write: Option<PendingWrite>, groups: &mut Groups) {
        self.done.insert(seq, write);
        while let Some(write) = self.done.remove(&self.next) {
            if let Some((group_id, offsets)) = write {
                groups.apply_offsets(&group_id, offsets);
            }
            self.next += 1;
        }
    }
}

struct Inner {
    core: Mutex<Core>,
    timer_wake: Notify,
    epoch: Instant,
    log: Arc<dyn OffsetsLog>,
    /// One lock per offsets partition: appends take their sequence numbers in log order.
    commit_locks: Vec<tokio::sync::Mutex<()>>,
    /// Per offsets partition, the next sequence number to apply (everything below is in memory).
    applied: Vec<tokio::sync::watch::Sender<u64>>,
    node: Mutex<Option<CoordinatorNode>>,
}

/// The broker's group coordinator. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct GroupCoordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator").finish_non_exhaustive()
    }
}

/// Answer to FindCoordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorAnswer {
    /// Error code.
    pub error: Code,
    /// The coordinator (meaningless on error).
    pub node: CoordinatorNode,
}

impl GroupCoordinator {
    /// Builds the coordinator over `log`, replaying every committed offset in it first, and starts
    /// its timer task (needs a tokio runtime).
    pub async fn load(
        config: GroupConfig,
        log: Arc<dyn OffsetsLog>,
    ) -> Result<GroupCoordinator, OffsetsLogError> {
        let seed = id_seed();
        let mut groups = Groups::new(config, seed);
        let mut n_records = 0usize;
        for partition in 0..log.n_partitions() {
            let records = log.read_all(partition).await?;
            for (index, record) in records.into_iter().enumerate() {
                n_records += 1;
                // A record that does not decode is skipped, not fatal: the log's CRCs already
                // vouch for the bytes, so this is foreign data, and one group's offsets must
                // not keep the broker down.
                if let Err(e) = replay(&mut groups, partition, index, record) {
                    tracing::warn!(error = %e, "skipping an unreadable __consumer_offsets record");
                }
            }
        }
        tracing::info!(
            groups = groups.len(),
            records = n_records,
            "loaded committed offsets"
        );
        let n_locks = usize::try_from(log.n_partitions().max(1)).unwrap_or(1);
        let inner = Arc::new(Inner {
            core: Mutex::new(Core {
                groups,
                waiters: HashMap::new(),
                next_token: 0,
                applies: (0..n_locks).map(|_| ApplyQueue::default()).collect(),
            }),
            timer_wake: Notify::new(),
            epoch: Instant::now(),
            log,
            commit_locks: (0..n_locks).map(|_| tokio::sync::Mutex::new(())).collect(),
            applied: (0..n_locks)
                .map(|_| tokio::sync::watch::Sender::new(0))
                .collect(),
            node: Mutex::new(None),
        });
        tokio::spawn(timer_task(Arc::downgrade(&inner)));
        Ok(GroupCoordinator { inner })
    }

    /// Sets the address FindCoordinator reports (the broker's advertised listener).
    pub fn set_node(&self, node: CoordinatorNode) {
        if let Ok(mut slot) = self.inner.node.lock() {
            *slot = Some(node);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `f` on the core under the lock, hands its deliveries to their waiters and wakes the
    /// timer (deadlines may have moved).
    fn with_core<T>(
        &self,
        f: impl FnOnce(&mut Core, u64) -> (T, Vec<Delivery>),
    ) -> Result<T, Code> {
        let now = self.now_ms();
        let mut core = self
            .inner
            .core
            .lock()
            .map_err(|_| Code::UnknownServerError)?;
        let (value, deliveries) = f(&mut core, now);
        deliver(&mut core, deliveries);
        drop(core);
        self.inner.timer_wake.notify_one();
        Ok(value)
    }

    /// Parks a request under a fresh token and waits for its answer.
    async fn parked(
        &self,
        f: impl FnOnce(&mut Groups, ReplyToken, u64) -> Vec<Delivery>,
    ) -> Option<Reply> {
        let (tx, rx) = oneshot::channel();
        let registered = self.with_core(|core, now| {
            core.next_token += 1;
            let token = ReplyToken(core.next_token);
            core.waiters.insert(token, tx);
            ((), f(&mut core.groups, token, now))
        });
        registered.ok()?;
        rx.await.ok()
    }

    /// FindCoordinator: this broker coordinates every group (single node); COORDINATOR_NOT_AVAILABLE
    /// until [`GroupCoordinator::set_node`] was called.
    pub fn find_coordinator(&self, key: &str) -> FindCoordinatorAnswer {
        let node = self.inner.node.lock().ok().and_then(|n| n.clone());
        match node {
            Some(node) => {
                tracing::trace!(key, "find coordinator");
                FindCoordinatorAnswer {
                    error: Code::None,
                    node,
                }
            }
            None => FindCoordinatorAnswer {
                error: Code::CoordinatorNotAvailable,
                node: CoordinatorNode {
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                },
            },
        }
    }

    /// JoinGroup; resolves when the join round completes.
    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        let member_id = req.member_id.clone();
        match self
            .parked(|groups, token, now| groups.join(token, req, now))
            .await
        {
            Some(Reply::Join(response)) => response,
            _ => JoinResponse::error(Code::UnknownServerError, &member_id),
        }
    }

    /// SyncGroup; resolves when the leader's assignment is in.
    pub async fn sync(&self, req: SyncRequest) -> SyncResponse {
        match self
            .parked(|groups, token, now| groups.sync(token, req, now))
            .await
        {
            Some(Reply::Sync(response)) => response,
            _ => SyncResponse::error(Code::UnknownServerError),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(&self, req: &HeartbeatRequest) -> Code {
        self.with_core(|core, now| (core.groups.heartbeat(req, now), Vec::new()))
            .unwrap_or_else(|code| code)
    }

    /// LeaveGroup.
    pub fn leave(&self, req: &LeaveRequest) -> Code {
        self.with_core(|core, now| core.groups.leave(req, now))
            .unwrap_or_else(|code| code)
    }

    /// OffsetCommit: per-partition answers, in request order. Acknowledged only once durable.
    pub async fn commit(
        &self,
        who: CommitIdentity,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) -> Vec<(TopicPartition, Code)> {
        let log_partition = partition_for(&who.group_id, self.inner.log.n_partitions());
        let lock_index = usize::try_from(log_partition).unwrap_or(0);
        let Some(commit_lock) = self.inner.commit_locks.get(lock_index) else {
            return offsets
                .into_iter()
                .map(|(tp, _)| (tp, Code::UnknownServerError))
                .collect();
        };
        let _ordered = commit_lock.lock().await;
        let checked = self.with_core(|core, now| {
            let code = core.groups.validate_commit(&who, now);
            let codes: Vec<Code> = offsets
                .iter()
                .map(|(tp, o)| {
                    if code != Code::None {
                        code
                    } else {
                        core.groups.check_offset(tp, o)
                    }
                })
                .collect();
            (codes, Vec::new())
        });
        let codes = match checked {
            Ok(codes) => codes,
            Err(code) => return offsets.into_iter().map(|(tp, _)| (tp, code)).collect(),
        };
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        let mut answers: Vec<(TopicPartition, Code)> = Vec::with_capacity(offsets.len());
        for ((tp, offset), code) in offsets.into_iter().zip(codes) {
            let mut code = code;
            if code == Code::None {
                match encode(&who.group_id, &tp, Some(&offset)) {
                    Ok(record) => {
                        records.push(record);
                        accepted.push((tp.clone(), Some(offset)));
                    }
                    Err(_) => code = Code::InvalidRequest,
                }
            }
            answers.push((tp, code));
        }
        if records.is_empty() {
            return answers;
        }
        let durable = self
            .write_ordered(
                log_partition,
                records,
                (who.group_id.clone(), accepted),
                _ordered,
            )
            .await;
        if let Err(e) = durable {
            tracing::warn!(group = %who.group_id, error = %e, "offset commit not durable");
            for (_, code) in answers.iter_mut().filter(|(_, c)| *c == Code::None) {
                *code = Code::KafkaStorageError;
            }
        }
        answers
    }

    /// Appends `records` while the partition's commit lock (`ordered`) is held, releases it, waits
    /// for durability (sharing the fsync with other commits), and applies `write` to memory in
    /// log order. The wait runs in its own task, so a caller that goes away cannot leave the
    /// apply queue waiting for it.
    async fn write_ordered(
        &self,
        log_partition: i32,
        records: Vec<OffsetsRecord>,
        write: PendingWrite,
        ordered: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<(), OffsetsLogError> {
        let queue = usize::try_from(log_partition).unwrap_or(0);
        let target = self.inner.log.append(log_partition, records).await?;
        let seq = {
            let mut core = self
                .inner
                .core
                .lock()
                .map_err(|_| OffsetsLogError::Storage("coordinator state poisoned".into()))?;
            match core.applies.get_mut(queue) {
                Some(q) => q.issue(),
                None => {
                    return Err(OffsetsLogError::Storage(format!(
                        "no offsets partition {log_partition}"
                    )))
                }
            }
        };
        drop(ordered);
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            let durable = inner.log.wait_durable(log_partition, target).await;
            let write = durable.is_ok().then_some(write);
            let next = match inner.core.lock() {
                Ok(mut core) => {
                    let Core {
                        groups, applies, ..
                    } = &mut *core;
                    applies.get_mut(queue).map(|q| {
                        q.complete(seq, write, groups);
                        q.next
                    })
                }
                Err(_) => None,
            };
            let Some(applied) = inner.applied.get(queue) else {
                return durable;
            };
            if let Some(next) = next {
                applied.send_if_modified(|n| {
                    let moved = next > *n;
                    *n = next.max(*n);
                    moved
                });
            }
            // Answer only once this write is visible in memory (earlier writes, whose fsync is
            // implied by ours, are applied first), so a commit is always read back.
            let mut rx = applied.subscribe();
            if rx.wait_for(|n| *n > seq).await.is_err() {
                return Err(OffsetsLogError::Storage("coordinator stopped".into()));
            }
            durable
        });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(OffsetsLogError::Storage(e.to_string())),
        }
    }

    /// OffsetFetch: `None` asks for every partition the group committed.
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        self.with_core(|core, _| (core.groups.committed(group_id, partitions), Vec::new()))
            .unwrap_or_default()
    }

    /// ListGroups.
    pub fn list(&self) -> Vec<GroupListing> {
        self.with_core(|core, _| (core.groups.list(), Vec::new()))
            .unwrap_or_default()
    }

    /// DescribeGroups for one group.
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        self.with_core(|core, _| (core.groups.describe(group_id), Vec::new()))
            .unwrap_or_else(|code| GroupDescription {
                error: code,
                group_id: group_id.to_owned(),
                state: super::types::GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            })
    }

    /// DeleteGroups for one group: tombstones for its offsets are durable before the answer.
    pub async fn delete(&self, group_id: &str) -> Code {
        let log_partition = partition_for(group_id, self.inner.log.n_partitions());
        let lock_index = usize::try_from(log_partition).unwrap_or(0);
        let Some(commit_lock) = self.inner.commit_locks.get(lock_index) else {
            return Code::UnknownServerError;
        };
        let _ordered = commit_lock.lock().await;
        let deleted = match self.with_core(|core, _| (core.groups.delete(group_id), Vec::new())) {
            Ok(Ok(partitions)) => partitions,
            Ok(Err(code)) | Err(code) => return code,
        };
        let mut records = Vec::with_capacity(deleted.len());
        let mut tombstones = Vec::with_capacity(deleted.len());
        for tp in deleted {
            match encode(group_id, &tp, None) {
                Ok(record) => {
                    records.push(record);
                    tombstones.push((tp, None));
                }
                Err(e) => tracing::warn!(group = group_id, error = %e, "cannot encode a tombstone"),
            }
        }
        if records.is_empty() {
            return Code::None;
        }
        // Commits already in flight for this group apply before the tombstones, as in the log.
        match self
            .write_ordered(
                log_partition,
                records,
                (group_id.to_owned(), tombstones),
                _ordered,
            )
            .await
        {
            Ok(()) => Code::None,
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "group deletion not durable");
                Code::KafkaStorageError
            }
        }
    }
}

fn deliver(core: &mut Core, deliveries: Vec<Delivery>) {
    for d in deliveries {
        if let Some(tx) = core.waiters.remove(&d.token) {
            // The requester may have gone (connection closed): nothing to do then.
            let _ = tx.send(d.reply);
        }
    }
}

fn encode(
    group_id: &str,
    tp: &TopicPartition,
    offset: Option<&CommittedOffset>,
) -> Result<OffsetsRecord, offsets_format::FormatError> {
    let key = Bytes::from(offsets_format::encode_key(group_id, tp)?);
    let value = match offset {
        Some(o) => Some(Bytes::from(offsets_format::encode_value(o)?)),
        None => None,
    };
    Ok(OffsetsRecord { key, value })
}

fn replay(
    groups: &mut Groups,
    partition: i32,
    index: usize,
    record: OffsetsRecord,
) -> Result<(), OffsetsLogError> {
    let corrupt = |reason: String| OffsetsLogError::Corrupt {
        partition,
        offset: index as i64,
        reason,
    };
    match offsets_format::decode_key(&record.key).map_err(|e| corrupt(e.to_string()))? {
        RecordKey::Offset {
            group_id,
            partition: tp,
        } => {
            let value = match &record.value {
                Some(bytes) => {
                    Some(offsets_format::decode_value(bytes).map_err(|e| corrupt(e.to_string()))?)
                }
                None => None,
            };
            groups.apply_offsets(&group_id, [(tp, value)]);
        }
        RecordKey::Other => {}
    }
    Ok(())
}

/// Sleeps until the core's next deadline or until a request wakes it, then ticks.
async fn timer_task(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let (deadline_ms, now_ms) = {
            let now = u64::try_from(strong.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            let Ok(mut core) = strong.core.lock() else {
                return;
            };
            let deliveries = core.groups.tick(now);
            deliver(&mut core, deliveries);
            (core.groups.next_deadline_ms(), now)
        };
        // Wake at the next deadline, or at least once a second so a dropped coordinator is noticed.
        let wait_ms = deadline_ms
            .map(|d| d.saturating_sub(now_ms))
            .unwrap_or(1000)
            .min(1000);
        // The permit of a `notify_one` sent since the tick is kept, so no wake-up is lost.
        let wake = strong.timer_wake.notified();
        let sleep = tokio::time::sleep(std::time::Duration::from_millis(wait_ms));
        tokio::select! {
            _ = wake => {}
            _ = sleep => {}
        }
    }
}

/// A member-id seed that differs between runs: wall clock and process id.
fn id_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
