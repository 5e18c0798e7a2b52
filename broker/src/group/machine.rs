//! One consumer group's state machine (Kafka's classic group protocol).
//!
//! States and what moves between them:
//!
//! | from | event | to |
//! |---|---|---|
//! | Empty | a member joins | PreparingRebalance (first round waits `group.initial.rebalance.delay.ms`) |
//! | PreparingRebalance | every member rejoined, or the rebalance timeout passed | CompletingRebalance (members left) or Empty |
//! | CompletingRebalance | the leader's SyncGroup | Stable |
//! | CompletingRebalance, Stable | a join that changes membership or metadata, a leave, an expiry | PreparingRebalance |
//! | Empty | DeleteGroups | Dead (and removed) |
//!
//! JoinGroup and SyncGroup answers that must wait (for the round to finish, for the leader's
//! assignment) are parked in the member under the caller's [`ReplyToken`] and handed back as
//! [`Delivery`] values when ready; every other answer is returned directly. Time is `now_ms`, a
//! monotonic millisecond count chosen by the driver; nothing here reads a clock or does I/O.
//!
//! **Invariant**: a member has at most one parked join and one parked sync; every parked token is
//! eventually delivered exactly once (answered, superseded with an error, or failed when the member
//! is removed), so no caller waits forever.

mod join;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::config::GroupConfig;
use super::types::{
    Code, CommitIdentity, CommittedOffset, Delivery, GroupDescription, GroupState,
    HeartbeatRequest, JoinProtocol, JoinResponse, LeaveRequest, MemberDescription, Reply,
    ReplyToken, SyncRequest, SyncResponse, TopicPartition,
};

/// What a state-machine call needs besides the request: the time, the settings, and where to put
/// answers for parked requests.
pub struct Cx<'a> {
    /// Monotonic milliseconds.
    pub now_ms: u64,
    /// Coordinator settings.
    pub config: &'a GroupConfig,
    /// Answers produced by this call (possibly for other members' parked requests).
    pub out: &'a mut Vec<Delivery>,
}

impl Cx<'_> {
    fn join_reply(&mut self, token: ReplyToken, response: JoinResponse) {
        self.out.push(Delivery {
            token,
            reply: Reply::Join(response),
        });
    }

    fn sync_reply(&mut self, token: ReplyToken, response: SyncResponse) {
        self.out.push(Delivery {
            token,
            reply: Reply::Sync(response),
        });
    }
}

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// Static instance id, if the member is static.
    pub group_instance_id: Option<String>,
    /// The client id of its last join.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: u64,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: u64,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<JoinProtocol>,
    /// The assignment from the last completed sync.
    pub assignment: Bytes,
    awaiting_join: Option<ReplyToken>,
    awaiting_sync: Option<ReplyToken>,
    session_deadline_ms: u64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether the coordinator keeps the session alive regardless of heartbeats (the member waits
    /// on a parked answer, so it cannot heartbeat on the same connection).
    fn kept_alive(&self) -> bool {
        self.awaiting_join.is_some() || self.awaiting_sync.is_some()
    }
}

/// The first round of an empty group waits `group.initial.rebalance.delay.ms`, extended while new
/// members keep arriving, up to the rebalance timeout.
#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    remaining_ms: u64,
    new_member_added: bool,
}

/// A consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    group_id: String,
    state: GroupState,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: BTreeMap<String, Member>,
    /// Members told MEMBER_ID_REQUIRED, with the deadline for their second join.
    pending_members: BTreeMap<String, u64>,
    /// `group.instance.id` -> member id.
    static_members: BTreeMap<String, String>,
    /// End of the current join round (PreparingRebalance only).
    join_deadline_ms: Option<u64>,
    initial_delay: Option<InitialDelay>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pending_sync: BTreeSet<String>,
    /// When members still in `pending_sync` are expelled.
    sync_deadline_ms: Option<u64>,
    offsets: BTreeMap<TopicPartition, CommittedOffset>,
}

impl Group {
    /// A new, empty group.
    pub fn new(group_id: String) -> Group {
        Group {
            group_id,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            join_deadline_ms: None,
            initial_delay: None,
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: None,
            offsets: BTreeMap::new(),
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The current generation.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The leader's member id.
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// The selected protocol of the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The group's protocol type.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The members, by id.
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// Number of members waiting for their second join.
    pub fn n_pending_members(&self) -> usize {
        self.pending_members.len()
    }

    /// The committed offsets.
    pub fn offsets(&self) -> &BTreeMap<TopicPartition, CommittedOffset> {
        &self.offsets
    }

    /// Whether the group holds nothing worth keeping (no members, no pending joins, no offsets).
    pub fn is_disposable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
    }

    // ---- SyncGroup ----

    /// Handles a SyncGroup; the answer goes to `cx.out` under `token`, now or when the leader's
    /// assignment arrives.
    pub fn sync(&mut self, token: ReplyToken, req: SyncRequest, cx: &mut Cx<'_>) {
        let id = req.member_id.as_str();
        if self.state == GroupState::Dead {
            return cx.sync_reply(token, SyncResponse::error(Code::CoordinatorNotAvailable));
        }
        if let Some(code) = self.fenced(id, req.group_instance_id.as_deref()) {
            return cx.sync_reply(token, SyncResponse::error(code));
        }
        if !self.members.contains_key(id) {
            return cx.sync_reply(token, SyncResponse::error(Code::UnknownMemberId));
        }
        if req.generation_id != self.generation_id {
            return cx.sync_reply(token, SyncResponse::error(Code::IllegalGeneration));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                cx.sync_reply(token, SyncResponse::error(Code::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                cx.sync_reply(token, SyncResponse::error(Code::RebalanceInProgress))
            }
            GroupState::CompletingRebalance => {
                self.touch(id, cx.now_ms);
                self.synced(id);
                if let Some(member) = self.members.get_mut(id) {
                    if let Some(old) = member.awaiting_sync.replace(token) {
                        cx.sync_reply(old, SyncResponse::error(Code::RebalanceInProgress));
                    }
                }
                if self.leader_id.as_deref() == Some(id) {
                    self.install_assignment(req, cx);
                }
            }
            GroupState::Stable => {
                self.touch(id, cx.now_ms);
                self.synced(id);
                let assignment = self
                    .members
                    .get(id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                cx.sync_reply(
                    token,
                    SyncResponse {
                        error: Code::None,
                        assignment,
                    },
                );
            }
        }
    }

    fn synced(&mut self, id: &str) {
        self.pending_sync.remove(id);
        if self.pending_sync.is_empty() {
            self.sync_deadline_ms = None;
        }
    }

    /// The leader's assignment: store it, go Stable, answer every parked sync.
    fn install_assignment(&mut self, req: SyncRequest, cx: &mut Cx<'_>) {
        let mut assignments: BTreeMap<String, Bytes> = req
            .assignments
            .into_iter()
            .map(|a| (a.member_id, a.assignment))
            .collect();
        for member in self.members.values_mut() {
            member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
            if let Some(token) = member.awaiting_sync.take() {
                member.session_deadline_ms = cx.now_ms.saturating_add(member.session_timeout_ms);
                cx.sync_reply(
                    token,
                    SyncResponse {
                        error: Code::None,
                        assignment: member.assignment.clone(),
                    },
                );
            }
        }
        if !assignments.is_empty() {
            tracing::debug!(group = %self.group_id, unknown = assignments.len(), "assignment names unknown members");
        }
        self.state = GroupState::Stable;
        tracing::info!(group = %self.group_id, generation = self.generation_id, "group is stable");
    }

    // ---- Heartbeat, LeaveGroup ----

    /// Handles a Heartbeat.
    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: u64) -> Code {
        let id = req.member_id.as_str();
        if self.state == GroupState::Dead {
            return Code::CoordinatorNotAvailable;
        }
        if let Some(code) = self.fenced(id, req.group_instance_id.as_deref()) {
            return code;
        }
        if !self.members.contains_key(id) {
            return Code::UnknownMemberId;
        }
        if req.generation_id != self.generation_id {
            return Code::IllegalGeneration;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Code::UnknownMemberId,
            GroupState::PreparingRebalance => {
                self.touch(id, now_ms);
                Code::RebalanceInProgress
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.touch(id, now_ms);
                Code::None
            }
        }
    }

    /// Handles a LeaveGroup of one member.
    pub fn leave(&mut self, req: &LeaveRequest, cx: &mut Cx<'_>) -> Code {
        if self.state == GroupState::Dead {
            return Code::CoordinatorNotAvailable;
        }
        if self.pending_members.remove(&req.member_id).is_some() {
            self.try_complete_join(cx);
            return Code::None;
        }
        if !self.members.contains_key(&req.member_id) {
            return Code::UnknownMemberId;
        }
        tracing::info!(group = %self.group_id, member = %req.member_id, "member left");
        self.remove_member_and_update(&req.member_id, cx);
        Code::None
    }

    // ---- time ----

    /// Applies every timer due at `cx.now_ms`: pending-member expiry, session expiry, the end of a
    /// join round (or an extension of the initial delay), the sync deadline.
    pub fn tick(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now_ms;
        let before = self.pending_members.len();
        self.pending_members.retain(|_, deadline| *deadline > now);
        if self.pending_members.len() != before {
            self.try_complete_join(cx);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.kept_alive() && m.session_deadline_ms <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.group_id, member = %id, "session expired");
            self.remove_member_and_update(&id, cx);
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| d <= now)
        {
            let delay_ms = cx.config.initial_rebalance_delay_ms;
            match self.initial_delay.as_mut() {
                Some(delay) if delay.new_member_added && delay.remaining_ms > 0 => {
                    let step = delay_ms.min(delay.remaining_ms);
                    delay.remaining_ms -= step;
                    delay.new_member_added = false;
                    self.join_deadline_ms = Some(now.saturating_add(step));
                }
                _ => self.complete_join(cx),
            }
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && self.sync_deadline_ms.is_some_and(|d| d <= now)
        {
            self.sync_deadline_ms = None;
            let laggards: Vec<String> =
                std::mem::take(&mut self.pending_sync).into_iter().collect();
            if !laggards.is_empty() {
                for id in &laggards {
                    tracing::info!(group = %self.group_id, member = %id, "member did not sync in time");
                    self.remove_member(id, Code::UnknownMemberId, cx);
                }
                self.rebalance_or_try_complete_after_removal(cx);
            }
        }
    }

    /// The earliest time `tick` has something to do.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let pending = self.pending_members.values().copied();
        let sessions = self
            .members
            .values()
            .filter(|m| !m.kept_alive())
            .map(|m| m.session_deadline_ms);
        let join = self
            .join_deadline_ms
            .filter(|_| self.state == GroupState::PreparingRebalance);
        let sync = self
            .sync_deadline_ms
            .filter(|_| !self.pending_sync.is_empty());
        pending.chain(sessions).chain(join).chain(sync).min()
    }

    // ---- offsets ----

    /// Whether an OffsetCommit from this identity may be applied now (the commit also counts as a
    /// heartbeat).
    pub fn validate_commit(&mut self, who: &CommitIdentity, now_ms: u64) -> Code {
        if self.state == GroupState::Dead {
            return Code::CoordinatorNotAvailable;
        }
        if who.generation_id < 0 && self.state == GroupState::Empty {
            return Code::None;
        }
        if let Some(code) = self.fenced(&who.member_id, who.group_instance_id.as_deref()) {
            return code;
        }
        if !self.members.contains_key(&who.member_id) {
            return Code::UnknownMemberId;
        }
        if who.generation_id != self.generation_id {
            return Code::IllegalGeneration;
        }
        match self.state {
            GroupState::Stable | GroupState::PreparingRebalance => {
                self.touch(&who.member_id, now_ms);
                Code::None
            }
            GroupState::CompletingRebalance => Code::RebalanceInProgress,
            GroupState::Empty | GroupState::Dead => Code::UnknownMemberId,
        }
    }

    /// Records a committed (and durable) offset; `None` removes it.
    pub fn put_offset(&mut self, partition: TopicPartition, offset: Option<CommittedOffset>) {
        match offset {
            Some(offset) => {
                self.offsets.insert(partition, offset);
            }
            None => {
                self.offsets.remove(&partition);
            }
        }
    }

    /// Forgets every offset of `topic` (after the topic is deleted).
    pub fn remove_topic(&mut self, topic: &str) -> Vec<TopicPartition> {
        let gone: Vec<TopicPartition> = self
            .offsets
            .keys()
            .filter(|tp| tp.topic == topic)
            .cloned()
            .collect();
        for tp in &gone {
            self.offsets.remove(tp);
        }
        gone
    }

    /// Marks the group deleted; only an Empty group can be.
    pub fn delete(&mut self) -> Result<Vec<TopicPartition>, Code> {
        match self.state {
            GroupState::Empty => {
                self.state = GroupState::Dead;
                for (id, deadline) in std::mem::take(&mut self.pending_members) {
                    tracing::debug!(group = %self.group_id, member = %id, deadline, "pending member dropped with the group");
                }
                Ok(std::mem::take(&mut self.offsets).into_keys().collect())
            }
            GroupState::Dead => Err(Code::GroupIdNotFound),
            _ => Err(Code::NonEmptyGroup),
        }
    }

    /// The DescribeGroups answer.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupDescription {
            error: Code::None,
            group_id: self.group_id.clone(),
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if self.state == GroupState::Empty {
                String::new()
            } else {
                protocol.clone()
            },
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }
    }
}
