//! Group administration: list groups, describe one (members, assignments, committed offsets, end
//! offsets and lag), reset a group's offsets (only while it has no members), delete a group.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_protocol::wire::messages::{
    delete_groups::DeleteGroupsRequest, describe_groups::DescribeGroupsRequest,
    list_groups::ListGroupsRequest,
};
use sluice_protocol::wire::{Request, Response};

use super::member::{GroupConfig, GroupError, Membership};
use super::protocol::Assignment;
use crate::cluster::{Client, Target};
use crate::error::KafkaCode;

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// Its protocol type (`consumer`), empty for groups holding only offsets.
    pub protocol_type: String,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Its assignment (empty unless the group is Stable).
    pub assignment: Assignment,
}

/// One partition's progress in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset, if any.
    pub committed: Option<i64>,
    /// The partition's end offset (high watermark).
    pub end: Option<i64>,
    /// `end - committed` when both are known.
    pub lag: Option<i64>,
    /// The member that owns the partition now, if any.
    pub member_id: Option<String>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Empty, PreparingRebalance, CompletingRebalance, Stable or Dead.
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// The selected assignor.
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberInfo>,
    /// Committed and assigned partitions with their lag, sorted.
    pub partitions: Vec<PartitionLag>,
}

/// Where `reset` moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// Each partition's log start offset.
    Earliest,
    /// Each partition's end offset.
    Latest,
    /// An absolute offset, clamped to the partition's stored range.
    Offset(i64),
}

/// Group administration over a [`Client`].
#[derive(Debug, Clone)]
pub struct GroupAdmin {
    client: Client,
}

impl GroupAdmin {
    /// Uses `client`'s connections.
    pub fn new(client: Client) -> GroupAdmin {
        GroupAdmin { client }
    }

    fn membership(&self, group_id: &str) -> Membership {
        Membership::new(self.client.clone(), GroupConfig::new(group_id))
    }

    /// Every group of every broker, sorted.
    pub async fn list(&self) -> Result<Vec<GroupListing>, GroupError> {
        let mut nodes: Vec<i32> = self.client.brokers().iter().map(|b| b.node_id).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let targets: Vec<Target> = if nodes.is_empty() {
            vec![Target::Any]
        } else {
            nodes.into_iter().map(Target::Node).collect()
        };
        let mut out = Vec::new();
        for target in targets {
            let response = self
                .client
                .send_request(
                    target,
                    Request::ListGroups(ListGroupsRequest {}),
                    Duration::ZERO,
                )
                .await?;
            let Response::ListGroups(r) = response else {
                return Err(protocol("", "ListGroups answered with another API"));
            };
            check("", "list groups", r.error_code)?;
            out.extend(r.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
            }));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Describes a group, with the committed offset, end offset and lag of each partition it has
    /// committed or been assigned.
    pub async fn describe(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        let membership = self.membership(group_id);
        let addr = membership.coordinator().await?;
        let request = Request::DescribeGroups(DescribeGroupsRequest {
            groups: vec![group_id.to_string()],
            include_authorized_operations: false,
        });
        let response = self
            .client
            .send_request(Target::Address(addr), request, Duration::ZERO)
            .await?;
        let Response::DescribeGroups(r) = response else {
            return Err(protocol(
                group_id,
                "DescribeGroups answered with another API",
            ));
        };
        let Some(g) = r.groups.into_iter().next() else {
            return Err(protocol(group_id, "DescribeGroups returned no group"));
        };
        check(group_id, "describe group", g.error_code)?;
        let mut members = Vec::new();
        let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
        for m in g.members {
            // Non-consumer groups carry assignments we cannot read: show them as empty.
            let assignment = if g.protocol_type == "consumer" {
                Assignment::decode(&m.member_assignment).unwrap_or_default()
            } else {
                Assignment::default()
            };
            for (t, p) in assignment.iter() {
                owner.insert((t.to_string(), p), m.member_id.clone());
            }
            members.push(MemberInfo {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                assignment,
            });
        }
        let committed = membership.committed(None).await?;
        let mut keys: Vec<(String, i32)> = committed.keys().cloned().collect();
        keys.extend(owner.keys().cloned());
        keys.sort();
        keys.dedup();
        let mut partitions = Vec::with_capacity(keys.len());
        for (topic, partition) in keys {
            let committed = committed
                .get(&(topic.clone(), partition))
                .cloned()
                .flatten()
                .map(|c| c.offset);
            let end = match self
                .client
                .offset_for_timestamp(&topic, partition, LATEST)
                .await
            {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::debug!(%topic, partition, error = %e, "no end offset");
                    None
                }
            };
            let lag = match (committed, end) {
                (Some(c), Some(e)) => Some((e - c).max(0)),
                _ => None,
            };
            let member_id = owner.get(&(topic.clone(), partition)).cloned();
            partitions.push(PartitionLag {
                topic,
                partition,
                committed,
                end,
                lag,
                member_id,
            });
        }
        Ok(GroupDescription {
            group_id: g.group_id,
            state: g.group_state,
            protocol_type: g.protocol_type,
            protocol: g.protocol_data,
            members,
            partitions,
        })
    }

    /// Moves the group's committed offsets of every partition of `topic`. Refused unless the group
    /// has no members (the coordinator enforces it too). Returns the new offsets.
    pub async fn reset(
        &self,
        group_id: &str,
        topic: &str,
        to: ResetTo,
    ) -> Result<BTreeMap<(String, i32), i64>, GroupError> {
        let description = self.describe(group_id).await?;
        if !description.members.is_empty()
            || !matches!(description.state.as_str(), "Empty" | "Dead")
        {
            return Err(GroupError::Refused {
                group: group_id.to_string(),
                context: "reset offsets",
                code: KafkaCode(68),
            });
        }
        let info = self.client.topic(topic).await?;
        let mut offsets = BTreeMap::new();
        for p in &info.partitions {
            let partition = p.partition;
            let offset = match to {
                ResetTo::Earliest => {
                    self.client
                        .offset_for_timestamp(topic, partition, EARLIEST)
                        .await?
                }
                ResetTo::Latest => {
                    self.client
                        .offset_for_timestamp(topic, partition, LATEST)
                        .await?
                }
                ResetTo::Offset(o) => {
                    let start = self
                        .client
                        .offset_for_timestamp(topic, partition, EARLIEST)
                        .await?;
                    let end = self
                        .client
                        .offset_for_timestamp(topic, partition, LATEST)
                        .await?;
                    o.clamp(start, end.max(start))
                }
            };
            offsets.insert((topic.to_string(), partition), offset);
        }
        self.membership(group_id).commit(&offsets, true).await?;
        Ok(offsets)
    }

    /// Deletes a group (it must have no members) and its committed offsets.
    pub async fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        let addr = self.membership(group_id).coordinator().await?;
        let request = Request::DeleteGroups(DeleteGroupsRequest {
            groups_names: vec![group_id.to_string()],
        });
        let response = self
            .client
            .send_request(Target::Address(addr), request, Duration::ZERO)
            .await?;
        let Response::DeleteGroups(r) = response else {
            return Err(protocol(group_id, "DeleteGroups answered with another API"));
        };
        for result in r.results {
            check(group_id, "delete group", result.error_code)?;
        }
        Ok(())
    }
}

fn check(group: &str, context: &'static str, code: i16) -> Result<(), GroupError> {
    if code == 0 {
        Ok(())
    } else {
        Err(GroupError::Refused {
            group: group.to_string(),
            context,
            code: KafkaCode(code),
        })
    }
}

fn protocol(group: &str, reason: &str) -> GroupError {
    GroupError::Protocol {
        group: group.to_string(),
        reason: reason.to_string(),
    }
}
