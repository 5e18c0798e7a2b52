//! The group APIs in wire terms: maps `sluice_protocol::wire` requests onto the coordinator's own
//! types and its answers back, version details included (v0 rebalance timeouts, OffsetFetch of
//! every partition, DescribeGroups member data).
//!
//! Entry point for the server: [`GroupCoordinator::handle`]`(&ClientInfo, Request) ->
//! Option<Response>` answers any group API (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups) and returns
//! `None` for any other request.

use std::collections::BTreeMap;

use sluice_protocol::wire::messages::{
    delete_groups::{DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse},
    describe_groups::{
        DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
    },
    find_coordinator::{FindCoordinatorRequest, FindCoordinatorResponse},
    heartbeat::{HeartbeatRequest as WireHeartbeat, HeartbeatResponse},
    join_group::{JoinGroupRequest, JoinGroupResponse, JoinGroupResponseMember},
    leave_group::{LeaveGroupRequest, LeaveGroupResponse},
    list_groups::{ListGroupsResponse, ListedGroup},
    offset_commit::{
        OffsetCommitRequest, OffsetCommitResponse, OffsetCommitResponsePartition,
        OffsetCommitResponseTopic,
    },
    offset_fetch::{
        OffsetFetchRequest, OffsetFetchResponse, OffsetFetchResponsePartition,
        OffsetFetchResponseTopic,
    },
    sync_group::{SyncGroupRequest, SyncGroupResponse},
};
use sluice_protocol::wire::{Request, Response};

use super::coordinator::GroupCoordinator;
use super::types::{
    Code, CommitIdentity, CommittedOffset, HeartbeatRequest, JoinProtocol, JoinRequest,
    LeaveRequest, SyncAssignment, SyncRequest, TopicPartition,
};

/// Who sent a request: what the coordinator records about members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The request's API version.
    pub api_version: i16,
    /// The header's client id.
    pub client_id: String,
    /// The peer address, e.g. `/127.0.0.1` (Kafka's form).
    pub client_host: String,
}

impl GroupCoordinator {
    /// Answers a group API request; `None` when `request` is not one.
    pub async fn handle(&self, client: &ClientInfo, request: Request) -> Option<Response> {
        Some(match request {
            Request::FindCoordinator(r) => self.find_coordinator_wire(&r).into(),
            Request::JoinGroup(r) => self.join_wire(client, r).await.into(),
            Request::SyncGroup(r) => self.sync_wire(r).await.into(),
            Request::Heartbeat(r) => self.heartbeat_wire(&r).into(),
            Request::LeaveGroup(r) => self.leave_wire(&r).into(),
            Request::OffsetCommit(r) => self.offset_commit_wire(r).await.into(),
            Request::OffsetFetch(r) => self.offset_fetch_wire(&r).into(),
            Request::ListGroups(_) => self.list_groups_wire().into(),
            Request::DescribeGroups(r) => self.describe_groups_wire(&r).into(),
            Request::DeleteGroups(r) => self.delete_groups_wire(&r).await.into(),
            _ => return None,
        })
    }

    /// FindCoordinator (key type 0 = group; transactions are not supported).
    pub fn find_coordinator_wire(&self, req: &FindCoordinatorRequest) -> FindCoordinatorResponse {
        if req.key_type != 0 {
            return FindCoordinatorResponse {
                error_code: Code::CoordinatorNotAvailable.as_i16(),
                error_message: Some("Sluice has no transaction coordinator".into()),
                node_id: -1,
                host: String::new(),
                port: -1,
                ..Default::default()
            };
        }
        let answer = self.find_coordinator(&req.key);
        FindCoordinatorResponse {
            error_code: answer.error.as_i16(),
            error_message: None,
            node_id: answer.node.node_id,
            host: answer.node.host,
            port: answer.node.port,
            ..Default::default()
        }
    }

    /// JoinGroup.
    pub async fn join_wire(&self, client: &ClientInfo, req: JoinGroupRequest) -> JoinGroupResponse {
        let request = JoinRequest {
            api_version: client.api_version,
            group_id: req.group_id,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            member_id: req.member_id,
            group_instance_id: req.group_instance_id,
            protocol_type: req.protocol_type,
            protocols: req
                .protocols
                .into_iter()
                .map(|p| JoinProtocol {
                    name: p.name,
                    metadata: p.metadata,
                })
                .collect(),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
        };
        let r = self.join(request).await;
        JoinGroupResponse {
            error_code: r.error.as_i16(),
            generation_id: r.generation_id,
            protocol_name: r.protocol_name,
            leader: r.leader,
            member_id: r.member_id,
            members: r
                .members
                .into_iter()
                .map(|m| JoinGroupResponseMember {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    metadata: m.metadata,
                })
                .collect(),
            ..Default::default()
        }
    }

    /// SyncGroup.
    pub async fn sync_wire(&self, req: SyncGroupRequest) -> SyncGroupResponse {
        let request = SyncRequest {
            group_id: req.group_id,
            generation_id: req.generation_id,
            member_id: req.member_id,
            group_instance_id: req.group_instance_id,
            assignments: req
                .assignments
                .into_iter()
                .map(|a| SyncAssignment {
                    member_id: a.member_id,
                    assignment: a.assignment,
                })
                .collect(),
        };
        let r = self.sync(request).await;
        SyncGroupResponse {
            error_code: r.error.as_i16(),
            assignment: r.assignment,
            ..Default::default()
        }
    }

    /// Heartbeat.
    pub fn heartbeat_wire(&self, req: &WireHeartbeat) -> HeartbeatResponse {
        let code = self.heartbeat(&HeartbeatRequest {
            group_id: req.group_id.clone(),
            generation_id: req.generation_id,
            member_id: req.member_id.clone(),
            group_instance_id: req.group_instance_id.clone(),
        });
        HeartbeatResponse {
            error_code: code.as_i16(),
            ..Default::default()
        }
    }

    /// LeaveGroup (v0-2: one member).
    pub fn leave_wire(&self, req: &LeaveGroupRequest) -> LeaveGroupResponse {
        let code = self.leave(&LeaveRequest {
            group_id: req.group_id.clone(),
            member_id: req.member_id.clone(),
        });
        LeaveGroupResponse {
            error_code: code.as_i16(),
            ..Default::default()
        }
    }

    /// OffsetCommit; answered once the offsets are durable.
    pub async fn offset_commit_wire(&self, req: OffsetCommitRequest) -> OffsetCommitResponse {
        let who = CommitIdentity {
            group_id: req.group_id,
            generation_id: req.generation_id,
            member_id: req.member_id,
            group_instance_id: req.group_instance_id,
        };
        let now = wall_clock_ms();
        let mut order: Vec<String> = Vec::new();
        let mut offsets = Vec::new();
        for topic in req.topics {
            if !order.contains(&topic.name) {
                order.push(topic.name.clone());
            }
            for p in topic.partitions {
                offsets.push((
                    TopicPartition {
                        topic: topic.name.clone(),
                        partition: p.partition_index,
                    },
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.unwrap_or_default(),
                        commit_timestamp_ms: now,
                    },
                ));
            }
        }
        let answers = self.commit(who, offsets).await;
        let mut by_topic: BTreeMap<String, Vec<OffsetCommitResponsePartition>> = BTreeMap::new();
        for (tp, code) in answers {
            by_topic
                .entry(tp.topic)
                .or_default()
                .push(OffsetCommitResponsePartition {
                    partition_index: tp.partition,
                    error_code: code.as_i16(),
                });
        }
        OffsetCommitResponse {
            topics: order
                .into_iter()
                .map(|name| {
                    let partitions = by_topic.remove(&name).unwrap_or_default();
                    OffsetCommitResponseTopic { name, partitions }
                })
                .collect(),
            ..Default::default()
        }
    }

    /// OffsetFetch; `topics: None` (v2+) means every partition the group committed.
    pub fn offset_fetch_wire(&self, req: &OffsetFetchRequest) -> OffsetFetchResponse {
        if req.group_id.len() > super::limits::GROUP_ID_BYTES_MAX {
            return OffsetFetchResponse {
                error_code: Code::InvalidGroupId.as_i16(),
                ..Default::default()
            };
        }
        let wanted: Option<Vec<TopicPartition>> = req.topics.as_ref().map(|topics| {
            topics
                .iter()
                .flat_map(|t| {
                    t.partition_indexes.iter().map(move |p| TopicPartition {
                        topic: t.name.clone(),
                        partition: *p,
                    })
                })
                .collect()
        });
        let committed = self.committed(&req.group_id, wanted.as_deref());
        let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
        for (tp, offset) in committed {
            let partition = match offset {
                Some(o) => OffsetFetchResponsePartition {
                    partition_index: tp.partition,
                    committed_offset: o.offset,
                    committed_leader_epoch: o.leader_epoch,
                    metadata: Some(o.metadata),
                    error_code: 0,
                },
                None => OffsetFetchResponsePartition {
                    partition_index: tp.partition,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error_code: 0,
                },
            };
            match topics.last_mut() {
                Some(last) if last.name == tp.topic => last.partitions.push(partition),
                _ => topics.push(OffsetFetchResponseTopic {
                    name: tp.topic,
                    partitions: vec![partition],
                }),
            }
        }
        OffsetFetchResponse {
            topics,
            error_code: 0,
            ..Default::default()
        }
    }

    /// ListGroups.
    pub fn list_groups_wire(&self) -> ListGroupsResponse {
        ListGroupsResponse {
            error_code: 0,
            groups: self
                .list()
                .into_iter()
                .map(|g| ListedGroup {
                    group_id: g.group_id,
                    protocol_type: g.protocol_type,
                })
                .collect(),
            ..Default::default()
        }
    }

    /// DescribeGroups.
    pub fn describe_groups_wire(&self, req: &DescribeGroupsRequest) -> DescribeGroupsResponse {
        DescribeGroupsResponse {
            groups: req
                .groups
                .iter()
                .take(super::limits::GROUPS_MAX)
                .map(|group_id| {
                    let d = self.describe(group_id);
                    DescribedGroup {
                        error_code: d.error.as_i16(),
                        group_id: d.group_id,
                        group_state: d.state.name().to_owned(),
                        protocol_type: d.protocol_type,
                        protocol_data: d.protocol,
                        members: d
                            .members
                            .into_iter()
                            .map(|m| DescribedGroupMember {
                                member_id: m.member_id,
                                group_instance_id: m.group_instance_id,
                                client_id: m.client_id,
                                client_host: m.client_host,
                                member_metadata: m.metadata,
                                member_assignment: m.assignment,
                            })
                            .collect(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        }
    }

    /// DeleteGroups.
    pub async fn delete_groups_wire(&self, req: &DeleteGroupsRequest) -> DeleteGroupsResponse {
        let mut results = Vec::with_capacity(req.groups_names.len().min(super::limits::GROUPS_MAX));
        for group_id in req.groups_names.iter().take(super::limits::GROUPS_MAX) {
            let code = self.delete(group_id).await;
            results.push(DeletableGroupResult {
                group_id: group_id.clone(),
                error_code: code.as_i16(),
            });
        }
        DeleteGroupsResponse {
            results,
            ..Default::default()
        }
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
