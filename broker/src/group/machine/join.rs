//! JoinGroup and everything a join round involves: new and returning members, static
//! replacement, protocol checks, preparing and completing a rebalance, removing members.

use bytes::Bytes;

use super::{Cx, Group, InitialDelay, Member};
use crate::group::limits;
use crate::group::protocol_select;
use crate::group::types::{
    Code, GroupState, JoinMember, JoinRequest, JoinResponse, ReplyToken, SyncResponse,
};

impl Group {
    // ---- JoinGroup ----

    /// Handles a JoinGroup. `new_member_id` is the id to hand out when the request's member id is
    /// empty. The answer goes to `cx.out` under `token`, now or when the round completes.
    pub fn join(
        &mut self,
        token: ReplyToken,
        req: JoinRequest,
        new_member_id: Option<String>,
        cx: &mut Cx<'_>,
    ) {
        if self.state == GroupState::Dead {
            return cx.join_reply(
                token,
                JoinResponse::error(Code::CoordinatorNotAvailable, &req.member_id),
            );
        }
        match new_member_id {
            Some(id) if req.member_id.is_empty() => self.join_new(token, req, id, cx),
            _ => self.join_existing(token, req, cx),
        }
    }

    pub(super) fn join_new(
        &mut self,
        token: ReplyToken,
        req: JoinRequest,
        new_id: String,
        cx: &mut Cx<'_>,
    ) {
        if !self.accepts(&req, None) {
            return cx.join_reply(
                token,
                JoinResponse::error(Code::InconsistentGroupProtocol, ""),
            );
        }
        if let Some(instance) = &req.group_instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return self.replace_static(token, req, old_id, new_id, cx);
            }
        } else if req.api_version >= 4 {
            if self.pending_members.len() >= limits::PENDING_MEMBERS_PER_GROUP_MAX {
                return cx.join_reply(token, JoinResponse::error(Code::GroupMaxSizeReached, ""));
            }
            let deadline = cx.now_ms.saturating_add(session_ms(&req));
            self.pending_members.insert(new_id.clone(), deadline);
            return cx.join_reply(token, JoinResponse::error(Code::MemberIdRequired, &new_id));
        }
        self.add_member_and_rebalance(token, req, new_id, cx);
    }

    pub(super) fn join_existing(&mut self, token: ReplyToken, req: JoinRequest, cx: &mut Cx<'_>) {
        let id = req.member_id.clone();
        if self.pending_members.contains_key(&id) {
            if !self.accepts(&req, None) {
                return cx.join_reply(
                    token,
                    JoinResponse::error(Code::InconsistentGroupProtocol, &id),
                );
            }
            self.pending_members.remove(&id);
            return self.add_member_and_rebalance(token, req, id, cx);
        }
        if let Some(code) = self.fenced(&id, req.group_instance_id.as_deref()) {
            return cx.join_reply(token, JoinResponse::error(code, &id));
        }
        let Some(member) = self.members.get(&id) else {
            return cx.join_reply(token, JoinResponse::error(Code::UnknownMemberId, &id));
        };
        if !self.accepts(&req, Some(&id)) {
            return cx.join_reply(
                token,
                JoinResponse::error(Code::InconsistentGroupProtocol, &id),
            );
        }
        let unchanged = member.protocols == req.protocols;
        let is_leader = self.leader_id.as_deref() == Some(id.as_str());
        match self.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(token, req, cx),
            GroupState::CompletingRebalance if unchanged => {
                // The member lost its join answer: send it again, no new round.
                self.touch(&id, cx.now_ms);
                let response = self.join_response_for(&id);
                cx.join_reply(token, response);
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.touch(&id, cx.now_ms);
                let response = self.join_response_for(&id);
                cx.join_reply(token, response);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(token, req, cx)
            }
            GroupState::Empty | GroupState::Dead => {
                cx.join_reply(token, JoinResponse::error(Code::UnknownMemberId, &id))
            }
        }
    }

    /// A static member came back with a new process (empty member id, known instance id): the new
    /// id replaces the old one, which is fenced. In a stable group whose selected protocol stays
    /// the same, it takes over the old assignment without a rebalance.
    pub(super) fn replace_static(
        &mut self,
        token: ReplyToken,
        req: JoinRequest,
        old_id: String,
        new_id: String,
        cx: &mut Cx<'_>,
    ) {
        let Some(mut member) = self.members.remove(&old_id) else {
            // The map pointed to a member that is gone: treat as a fresh static member.
            if let Some(instance) = &req.group_instance_id {
                self.static_members.remove(instance);
            }
            return self.add_member_and_rebalance(token, req, new_id, cx);
        };
        if let Some(old) = member.awaiting_join.take() {
            cx.join_reply(old, JoinResponse::error(Code::FencedInstanceId, &old_id));
        }
        if let Some(old) = member.awaiting_sync.take() {
            cx.sync_reply(old, SyncResponse::error(Code::FencedInstanceId));
        }
        member.member_id = new_id.clone();
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_id.as_str()) {
            self.leader_id = Some(new_id.clone());
        }
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        if self.state == GroupState::Stable {
            // As Kafka: if the protocol the group would select is unchanged, the new incarnation
            // simply takes the old one's place (and assignment) without a rebalance; a leader
            // also gets the member list, and its SyncGroup in Stable returns its assignment.
            self.update_member(&new_id, &req, cx.now_ms);
            let next =
                protocol_select::select(self.members.values().map(|m| m.protocols.as_slice()));
            if next.is_some() && next == self.protocol_name {
                let response = self.join_response_for(&new_id);
                return cx.join_reply(token, response);
            }
        }
        let mut req = req;
        req.member_id = new_id;
        self.update_member_and_rebalance(token, req, cx);
    }

    /// Whether the request's protocol type and protocols fit the group; `except` is the member's
    /// own id when it is already a member (its old protocols do not count).
    pub(super) fn accepts(&self, req: &JoinRequest, except: Option<&str>) -> bool {
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return false;
        }
        let others = self
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != except)
            .map(|m| m.protocols.as_slice());
        if self.members.keys().any(|id| Some(id.as_str()) != except)
            && self.protocol_type.as_deref() != Some(req.protocol_type.as_str())
        {
            return false;
        }
        protocol_select::supports(others, &req.protocols)
    }

    /// FENCED_INSTANCE_ID when `instance` belongs to another member id.
    pub(super) fn fenced(&self, member_id: &str, instance: Option<&str>) -> Option<Code> {
        let instance = instance?;
        match self.static_members.get(instance) {
            Some(owner) if owner != member_id => Some(Code::FencedInstanceId),
            _ => None,
        }
    }

    pub(super) fn add_member_and_rebalance(
        &mut self,
        token: ReplyToken,
        req: JoinRequest,
        id: String,
        cx: &mut Cx<'_>,
    ) {
        if self.members.len() >= cx.config.max_size.min(limits::MEMBERS_PER_GROUP_MAX) {
            return cx.join_reply(token, JoinResponse::error(Code::GroupMaxSizeReached, &id));
        }
        let member = Member {
            member_id: id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: session_ms_of(req.session_timeout_ms),
            rebalance_timeout_ms: rebalance_ms_of(req.rebalance_timeout_ms, req.session_timeout_ms),
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(token),
            awaiting_sync: None,
            session_deadline_ms: cx
                .now_ms
                .saturating_add(session_ms_of(req.session_timeout_ms)),
        };
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type);
        }
        if let Some(instance) = req.group_instance_id {
            self.static_members.insert(instance, id.clone());
        }
        self.members.insert(id.clone(), member);
        if self.leader_id.is_none() {
            self.leader_id = Some(id);
        }
        if let Some(delay) = self.initial_delay.as_mut() {
            delay.new_member_added = true;
        }
        self.rebalance_or_try_complete(cx);
    }

    pub(super) fn update_member(&mut self, id: &str, req: &JoinRequest, now_ms: u64) {
        if let Some(member) = self.members.get_mut(id) {
            member.protocols = req.protocols.clone();
            member.protocol_type = req.protocol_type.clone();
            member.session_timeout_ms = session_ms_of(req.session_timeout_ms);
            member.rebalance_timeout_ms =
                rebalance_ms_of(req.rebalance_timeout_ms, req.session_timeout_ms);
            member.client_id = req.client_id.clone();
            member.client_host = req.client_host.clone();
            member.session_deadline_ms = now_ms.saturating_add(member.session_timeout_ms);
        }
    }

    pub(super) fn update_member_and_rebalance(
        &mut self,
        token: ReplyToken,
        req: JoinRequest,
        cx: &mut Cx<'_>,
    ) {
        let id = req.member_id.clone();
        self.update_member(&id, &req, cx.now_ms);
        if let Some(member) = self.members.get_mut(&id) {
            if let Some(old) = member.awaiting_join.replace(token) {
                // A second join while the first is parked: the newer one wins.
                cx.join_reply(old, JoinResponse::error(Code::RebalanceInProgress, &id));
            }
        }
        self.rebalance_or_try_complete(cx);
    }

    pub(super) fn rebalance_or_try_complete(&mut self, cx: &mut Cx<'_>) {
        match self.state {
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(cx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(cx),
            GroupState::Dead => {}
        }
    }

    pub(super) fn prepare_rebalance(&mut self, cx: &mut Cx<'_>) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(token) = member.awaiting_sync.take() {
                    // Its session was kept alive while parked: the clock restarts now.
                    member.session_deadline_ms =
                        cx.now_ms.saturating_add(member.session_timeout_ms);
                    cx.sync_reply(token, SyncResponse::error(Code::RebalanceInProgress));
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        let rebalance_ms = self.rebalance_timeout_ms();
        let delay_ms = cx.config.initial_rebalance_delay_ms;
        if self.state == GroupState::Empty && delay_ms > 0 {
            self.initial_delay = Some(InitialDelay {
                remaining_ms: rebalance_ms.saturating_sub(delay_ms),
                new_member_added: false,
            });
            self.join_deadline_ms = Some(cx.now_ms.saturating_add(delay_ms));
        } else {
            self.initial_delay = None;
            self.join_deadline_ms = Some(cx.now_ms.saturating_add(rebalance_ms));
        }
        tracing::debug!(group = %self.group_id, from = self.state.name(), "preparing rebalance");
        self.state = GroupState::PreparingRebalance;
        self.try_complete_join(cx);
    }

    pub(super) fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    pub(super) fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    pub(super) fn try_complete_join(&mut self, cx: &mut Cx<'_>) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_joined()
        {
            self.complete_join(cx);
        }
    }

    /// Ends the join round: members that did not rejoin are removed, a new generation starts.
    pub(super) fn complete_join(&mut self, cx: &mut Cx<'_>) {
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in absent {
            tracing::info!(group = %self.group_id, member = %id, "member did not rejoin in time");
            self.remove_member(&id, Code::UnknownMemberId, cx);
        }
        self.join_deadline_ms = None;
        self.initial_delay = None;
        self.generation_id = self.generation_id.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.state = GroupState::Empty;
            tracing::info!(group = %self.group_id, generation = self.generation_id, "group is empty");
            return;
        }
        let protocol =
            protocol_select::select(self.members.values().map(|m| m.protocols.as_slice()))
                .or_else(|| {
                    // Unreachable while joins are checked with `accepts`; stay answerable regardless.
                    self.members
                        .values()
                        .next()
                        .and_then(|m| m.protocols.first())
                        .map(|p| p.name.clone())
                })
                .unwrap_or_default();
        self.protocol_name = Some(protocol);
        if self
            .leader_id
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        tracing::info!(
            group = %self.group_id,
            generation = self.generation_id,
            members = self.members.len(),
            protocol = self.protocol_name.as_deref().unwrap_or(""),
            "join round complete"
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        let mut rebalance_ms = 0;
        for id in ids {
            let response = self.join_response_for(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.session_deadline_ms = cx.now_ms.saturating_add(member.session_timeout_ms);
                rebalance_ms = rebalance_ms.max(member.rebalance_timeout_ms);
                if let Some(token) = member.awaiting_join.take() {
                    cx.join_reply(token, response);
                }
            }
            self.pending_sync.insert(id);
        }
        self.sync_deadline_ms = Some(cx.now_ms.saturating_add(rebalance_ms));
    }

    /// The join answer of the current generation for `id`; the leader also gets every member.
    pub(super) fn join_response_for(&self, id: &str) -> JoinResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let is_leader = self.leader_id.as_deref() == Some(id);
        let members = if is_leader {
            self.members
                .values()
                .map(|m| JoinMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: Code::None,
            generation_id: self.generation_id,
            protocol_name: protocol,
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: id.to_owned(),
            members,
        }
    }

    /// Removes a member, failing its parked requests with `code`, and fixes the leader.
    pub(super) fn remove_member(&mut self, id: &str, code: Code, cx: &mut Cx<'_>) -> bool {
        let Some(mut member) = self.members.remove(id) else {
            return false;
        };
        if let Some(token) = member.awaiting_join.take() {
            cx.join_reply(token, JoinResponse::error(code, id));
        }
        if let Some(token) = member.awaiting_sync.take() {
            cx.sync_reply(token, SyncResponse::error(code));
        }
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader_id.as_deref() == Some(id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        true
    }

    /// Removes a member and rebalances whatever is left.
    pub(super) fn remove_member_and_update(&mut self, id: &str, cx: &mut Cx<'_>) {
        if self.remove_member(id, Code::UnknownMemberId, cx) {
            self.rebalance_or_try_complete_after_removal(cx);
        }
    }

    pub(super) fn rebalance_or_try_complete_after_removal(&mut self, cx: &mut Cx<'_>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(cx),
            GroupState::PreparingRebalance => self.try_complete_join(cx),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(super) fn touch(&mut self, id: &str, now_ms: u64) {
        if let Some(member) = self.members.get_mut(id) {
            member.session_deadline_ms = now_ms.saturating_add(member.session_timeout_ms);
        }
    }
}

pub(super) fn session_ms(req: &JoinRequest) -> u64 {
    session_ms_of(req.session_timeout_ms)
}

pub(super) fn session_ms_of(session_timeout_ms: i32) -> u64 {
    u64::try_from(session_timeout_ms).unwrap_or(0)
}

/// JoinGroup v0 had no rebalance timeout: the session timeout stands in, as in Kafka.
pub(super) fn rebalance_ms_of(rebalance_timeout_ms: i32, session_timeout_ms: i32) -> u64 {
    if rebalance_timeout_ms > 0 {
        rebalance_timeout_ms as u64
    } else {
        session_ms_of(session_timeout_ms)
    }
}
