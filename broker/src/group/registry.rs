//! Every group of one coordinator: request validation, member-id generation, timers across groups,
//! committed-offset bookkeeping, ListGroups / DescribeGroups / DeleteGroups.
//!
//! Still synchronous and clock-free: each call takes `now_ms` and returns the answers it produced.
//! Offset commits are split in two so the driver can make them durable in between:
//! [`Groups::validate_commit`] (generation fencing) before writing to `__consumer_offsets`, and
//! [`Groups::apply_offsets`] once the write is durable.

use std::collections::BTreeMap;

use super::config::GroupConfig;
use super::limits;
use super::machine::{Cx, Group};
use super::types::{
    Code, CommitIdentity, CommittedOffset, Delivery, GroupDescription, GroupListing, GroupState,
    HeartbeatRequest, JoinRequest, JoinResponse, LeaveRequest, Reply, ReplyToken, SyncRequest,
    SyncResponse, TopicPartition,
};

/// All groups of a coordinator.
#[derive(Debug)]
pub struct Groups {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    id_seed: u64,
    id_counter: u64,
}

impl Groups {
    /// An empty coordinator. `id_seed` makes member ids unique across restarts (pass something
    /// random, e.g. from the wall clock and the process id).
    pub fn new(config: GroupConfig, id_seed: u64) -> Groups {
        Groups {
            config,
            groups: BTreeMap::new(),
            id_seed,
            id_counter: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// One group, if known.
    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    /// Number of groups held.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// A fresh member id `<client id>-<uuid-shaped unique suffix>`, as Kafka forms them.
    fn new_member_id(&mut self, client_id: &str) -> String {
        self.id_counter += 1;
        let a = splitmix(self.id_seed ^ self.id_counter.rotate_left(17));
        let b = splitmix(a ^ self.id_counter);
        let prefix: String = client_id.chars().take(64).collect();
        format!(
            "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            a as u16,
            (b >> 48) as u16,
            b & 0xffff_ffff_ffff
        )
    }

    /// Handles a JoinGroup; the answer for `token` is among the returned deliveries now or a later
    /// call's.
    pub fn join(&mut self, token: ReplyToken, req: JoinRequest, now_ms: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        let reject = |out: &mut Vec<Delivery>, code: Code, member_id: &str| {
            out.push(Delivery {
                token,
                reply: Reply::Join(JoinResponse::error(code, member_id)),
            });
        };
        if let Err(code) = check_group_id(&req.group_id) {
            reject(&mut out, code, &req.member_id);
            return out;
        }
        let session = i64::from(req.session_timeout_ms);
        if session < self.config.min_session_timeout_ms as i64
            || session > self.config.max_session_timeout_ms as i64
        {
            reject(&mut out, Code::InvalidSessionTimeout, &req.member_id);
            return out;
        }
        if !join_within_limits(&req) {
            reject(&mut out, Code::InvalidRequest, &req.member_id);
            return out;
        }
        if !self.groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                reject(&mut out, Code::UnknownMemberId, &req.member_id);
                return out;
            }
            if self.groups.len() >= limits::GROUPS_MAX {
                tracing::warn!(
                    groups = self.groups.len(),
                    "too many groups; refusing a new one"
                );
                reject(&mut out, Code::CoordinatorNotAvailable, &req.member_id);
                return out;
            }
            self.groups
                .insert(req.group_id.clone(), Group::new(req.group_id.clone()));
        }
        let new_id = req
            .member_id
            .is_empty()
            .then(|| self.new_member_id(&req.client_id));
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return out;
        };
        let mut cx = Cx {
            now_ms,
            config: &self.config,
            out: &mut out,
        };
        group.join(token, req, new_id, &mut cx);
        out
    }

    /// Handles a SyncGroup.
    pub fn sync(&mut self, token: ReplyToken, req: SyncRequest, now_ms: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        let reject = |out: &mut Vec<Delivery>, code: Code| {
            out.push(Delivery {
                token,
                reply: Reply::Sync(SyncResponse::error(code)),
            });
        };
        if let Err(code) = check_group_id(&req.group_id) {
            reject(&mut out, code);
            return out;
        }
        if req.assignments.len() > limits::MEMBERS_PER_GROUP_MAX
            || req
                .assignments
                .iter()
                .any(|a| a.assignment.len() > limits::ASSIGNMENT_BYTES_MAX)
        {
            reject(&mut out, Code::InvalidRequest);
            return out;
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            reject(&mut out, Code::UnknownMemberId);
            return out;
        };
        let mut cx = Cx {
            now_ms,
            config: &self.config,
            out: &mut out,
        };
        group.sync(token, req, &mut cx);
        out
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: u64) -> Code {
        if let Err(code) = check_group_id(&req.group_id) {
            return code;
        }
        match self.groups.get_mut(&req.group_id) {
            Some(group) => group.heartbeat(req, now_ms),
            None => Code::UnknownMemberId,
        }
    }

    /// Handles a LeaveGroup; other members' parked answers may come back with it.
    pub fn leave(&mut self, req: &LeaveRequest, now_ms: u64) -> (Code, Vec<Delivery>) {
        let mut out = Vec::new();
        if let Err(code) = check_group_id(&req.group_id) {
            return (code, out);
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return (Code::UnknownMemberId, out);
        };
        let mut cx = Cx {
            now_ms,
            config: &self.config,
            out: &mut out,
        };
        let code = group.leave(req, &mut cx);
        (code, out)
    }

    /// Applies every timer due at `now_ms` in every group, and forgets groups that hold nothing.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        for group in self.groups.values_mut() {
            if group.next_deadline_ms().is_some_and(|d| d <= now_ms) {
                let mut cx = Cx {
                    now_ms,
                    config: &self.config,
                    out: &mut out,
                };
                group.tick(&mut cx);
            }
        }
        self.groups
            .retain(|_, g| !g.is_disposable() && g.state() != GroupState::Dead);
        out
    }

    /// The earliest time `tick` has something to do.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .min()
    }

    /// Whether an OffsetCommit from `who` may be applied; call before making it durable.
    pub fn validate_commit(&mut self, who: &CommitIdentity, now_ms: u64) -> Code {
        if who.group_id.len() > limits::GROUP_ID_BYTES_MAX {
            return Code::InvalidGroupId;
        }
        match self.groups.get_mut(&who.group_id) {
            Some(group) => group.validate_commit(who, now_ms),
            None if who.generation_id < 0 => {
                if self.groups.len() >= limits::GROUPS_MAX {
                    Code::CoordinatorNotAvailable
                } else {
                    Code::None
                }
            }
            None => Code::IllegalGeneration,
        }
    }

    /// Checks one committed offset of a commit: topic name bound and metadata size.
    pub fn check_offset(&self, partition: &TopicPartition, offset: &CommittedOffset) -> Code {
        if partition.topic.is_empty()
            || partition.topic.len() > limits::TOPIC_NAME_BYTES_MAX
            || partition.partition < 0
        {
            Code::UnknownTopicOrPartition
        } else if offset.metadata.len() > self.config.offset_metadata_max_bytes {
            Code::OffsetMetadataTooLarge
        } else {
            Code::None
        }
    }

    /// Records durable offsets (a commit that was made durable, or records replayed from
    /// `__consumer_offsets` at start-up; `None` is a tombstone). Creates the group if needed.
    pub fn apply_offsets<I>(&mut self, group_id: &str, offsets: I)
    where
        I: IntoIterator<Item = (TopicPartition, Option<CommittedOffset>)>,
    {
        if !self.groups.contains_key(group_id) {
            self.groups
                .insert(group_id.to_owned(), Group::new(group_id.to_owned()));
        }
        if let Some(group) = self.groups.get_mut(group_id) {
            for (tp, offset) in offsets {
                group.put_offset(tp, offset);
            }
            if group.is_disposable() {
                self.groups.remove(group_id);
            }
        }
    }

    /// OffsetFetch: the committed offsets of `partitions`, or of every partition the group has
    /// committed when `partitions` is `None`. Unknown ones come back as `None`.
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let group = self.groups.get(group_id);
        match partitions {
            Some(list) => list
                .iter()
                .map(|tp| (tp.clone(), group.and_then(|g| g.offsets().get(tp).cloned())))
                .collect(),
            None => group
                .map(|g| {
                    g.offsets()
                        .iter()
                        .map(|(tp, o)| (tp.clone(), Some(o.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// ListGroups.
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups
            .values()
            .filter(|g| g.state() != GroupState::Dead)
            .map(|g| GroupListing {
                group_id: g.group_id().to_owned(),
                protocol_type: g.protocol_type().unwrap_or_default().to_owned(),
                state: g.state(),
            })
            .collect()
    }

    /// DescribeGroups for one group (unknown groups are reported Dead, as Kafka does).
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        match self.groups.get(group_id) {
            Some(group) => group.describe(),
            None => GroupDescription {
                error: Code::None,
                group_id: group_id.to_owned(),
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// DeleteGroups for one group: only an Empty group; returns the partitions whose offsets must
    /// get tombstones.
    pub fn delete(&mut self, group_id: &str) -> Result<Vec<TopicPartition>, Code> {
        check_group_id(group_id)?;
        let Some(group) = self.groups.get_mut(group_id) else {
            return Err(Code::GroupIdNotFound);
        };
        let partitions = group.delete()?;
        self.groups.remove(group_id);
        Ok(partitions)
    }
}

fn check_group_id(group_id: &str) -> Result<(), Code> {
    if group_id.is_empty() || group_id.len() > limits::GROUP_ID_BYTES_MAX {
        Err(Code::InvalidGroupId)
    } else {
        Ok(())
    }
}

fn join_within_limits(req: &JoinRequest) -> bool {
    let strings = [
        req.member_id.as_str(),
        req.protocol_type.as_str(),
        req.client_id.as_str(),
        req.client_host.as_str(),
        req.group_instance_id.as_deref().unwrap_or(""),
    ];
    strings
        .iter()
        .all(|s| s.len() <= limits::MEMBER_STRING_BYTES_MAX)
        && req.protocols.len() <= limits::PROTOCOLS_PER_MEMBER_MAX
        && req.protocols.iter().all(|p| {
            p.name.len() <= limits::MEMBER_STRING_BYTES_MAX
                && p.metadata.len() <= limits::PROTOCOL_METADATA_BYTES_MAX
        })
}

/// SplitMix64: spreads a counter into well-mixed bits for member ids (not cryptographic: member ids
/// are identifiers, not secrets, exactly as in Kafka).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
