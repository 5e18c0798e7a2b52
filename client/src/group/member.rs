//! One member's side of Kafka's classic group protocol: find the coordinator, join and sync
//! (running the assignor when elected leader), heartbeat, commit and fetch offsets, leave.
//!
//! [`Membership`] talks to the coordinator over its own [`Client`] (so a JoinGroup parked for a
//! whole rebalance never delays fetches on the data connections, as in the Java client), keeps the
//! member id and generation, and turns the coordinator's error codes into [`GroupError`]s that say
//! whether to rejoin, rediscover the coordinator, or give up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_protocol::wire::messages::{
    find_coordinator::FindCoordinatorRequest,
    heartbeat::HeartbeatRequest,
    join_group::{JoinGroupRequest, JoinGroupRequestProtocol},
    leave_group::LeaveGroupRequest,
    offset_commit::{OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch::{OffsetFetchRequest, OffsetFetchRequestTopic},
    sync_group::{SyncGroupRequest, SyncGroupRequestAssignment},
};
use sluice_protocol::wire::{Request, Response};

use super::assignor::Assignor;
use super::protocol::{Assignment, Subscription};
use crate::cluster::{Client, Target};
use crate::error::{ClientError, KafkaCode};

/// Settings of a group member.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The group id.
    pub group_id: String,
    /// `group.instance.id` for static membership.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: the coordinator expels the member after this long without a
    /// heartbeat (the broker bounds it by `group.min/max.session.timeout.ms`).
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`: how long a rebalance waits for this member to rejoin.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
}

impl GroupConfig {
    /// Kafka's defaults (session 45 s, rebalance 5 min, heartbeat 3 s) for `group_id`.
    pub fn new(group_id: &str) -> GroupConfig {
        GroupConfig {
            group_id: group_id.to_string(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
        }
    }
}

/// Why a group operation failed, and what the caller should do about it.
#[derive(Debug, thiserror::Error, Clone)]
pub enum GroupError {
    /// Talking to the cluster failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The group is rebalancing or this member's generation is over: rejoin.
    #[error("group {group}: {}; the member must rejoin", describe_code(*code))]
    Rejoin {
        /// The group.
        group: String,
        /// The code that said so.
        code: KafkaCode,
    },
    /// The coordinator moved or is not ready: find it again and retry.
    #[error("group {group}: coordinator unavailable ({})", describe_code(*code))]
    CoordinatorMoved {
        /// The group.
        group: String,
        /// The code.
        code: KafkaCode,
    },
    /// Anything else the coordinator refused (invalid session timeout, fenced instance, ...).
    #[error("group {group}: {context}: {}", describe_code(*code))]
    Refused {
        /// The group.
        group: String,
        /// What was being done.
        context: &'static str,
        /// The code.
        code: KafkaCode,
    },
    /// The leader could not decode a member's subscription, or the assignment was unreadable.
    #[error("group {group}: {reason}")]
    Protocol {
        /// The group.
        group: String,
        /// What was wrong.
        reason: String,
    },
    /// The coordinator chose a protocol this member has no assignor for.
    #[error("group {group}: the coordinator selected protocol {protocol:?}, which this client does not implement")]
    UnknownProtocol {
        /// The group.
        group: String,
        /// The protocol name.
        protocol: String,
    },
}

impl GroupError {
    /// True when rejoining the group (or finding the coordinator again) may fix it.
    pub fn is_retriable(&self) -> bool {
        match self {
            GroupError::Rejoin { .. } | GroupError::CoordinatorMoved { .. } => true,
            GroupError::Client(e) => e.is_retriable() || matches!(e, ClientError::Connection(_)),
            _ => false,
        }
    }
}

/// The generation a member is in, shared with its heartbeat task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generation {
    /// The member id ("" before the first join).
    pub member_id: String,
    /// The generation (-1 when not in one).
    pub generation_id: i32,
    /// Whether this member leads the generation.
    pub is_leader: bool,
}

/// Outcome of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The member is in good standing.
    Ok,
    /// The member must rejoin (rebalance, new generation, or expelled).
    Rejoin,
}

/// A committed offset as the coordinator reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The next offset to consume.
    pub offset: i64,
    /// The client's metadata string.
    pub metadata: String,
}

/// A member's connection to its group.
#[derive(Debug, Clone)]
pub struct Membership {
    client: Client,
    config: GroupConfig,
    coordinator: Arc<Mutex<Option<String>>>,
    generation: Arc<Mutex<Generation>>,
}

const PROTOCOL_TYPE: &str = "consumer";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain value updates: a panic elsewhere cannot leave them half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Membership {
    /// A member of `config.group_id` talking through `client` (give it a client of its own).
    pub fn new(client: Client, config: GroupConfig) -> Membership {
        Membership {
            client,
            config,
            coordinator: Arc::new(Mutex::new(None)),
            generation: Arc::new(Mutex::new(Generation {
                generation_id: -1,
                ..Default::default()
            })),
        }
    }

    /// The settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The client used to reach the coordinator.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The current generation.
    pub fn generation(&self) -> Generation {
        lock(&self.generation).clone()
    }

    fn group(&self) -> String {
        self.config.group_id.clone()
    }

    fn classify(&self, context: &'static str, code: i16) -> Result<(), GroupError> {
        let code = KafkaCode(code);
        match code.0 {
            0 => Ok(()),
            // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
            14..=16 => {
                *lock(&self.coordinator) = None;
                Err(GroupError::CoordinatorMoved {
                    group: self.group(),
                    code,
                })
            }
            // UNKNOWN_MEMBER_ID: forget the id; ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS: rejoin
            25 => {
                *lock(&self.generation) = Generation {
                    generation_id: -1,
                    ..Default::default()
                };
                Err(GroupError::Rejoin {
                    group: self.group(),
                    code,
                })
            }
            22 | 27 => {
                lock(&self.generation).generation_id = -1;
                Err(GroupError::Rejoin {
                    group: self.group(),
                    code,
                })
            }
            _ => Err(GroupError::Refused {
                group: self.group(),
                context,
                code,
            }),
        }
    }

    /// The coordinator's address, asking FindCoordinator if not known.
    pub async fn coordinator(&self) -> Result<String, GroupError> {
        if let Some(addr) = lock(&self.coordinator).clone() {
            return Ok(addr);
        }
        let request = Request::FindCoordinator(FindCoordinatorRequest {
            key: self.group(),
            key_type: 0,
        });
        let response = self
            .client
            .send_request(Target::Any, request, Duration::ZERO)
            .await?;
        let Response::FindCoordinator(r) = response else {
            return Err(self.protocol_error("FindCoordinator answered with another API"));
        };
        self.classify("find coordinator", r.error_code)?;
        let addr = format!("{}:{}", r.host, r.port);
        *lock(&self.coordinator) = Some(addr.clone());
        Ok(addr)
    }

    fn protocol_error(&self, reason: &str) -> GroupError {
        GroupError::Protocol {
            group: self.group(),
            reason: reason.to_string(),
        }
    }

    async fn send(&self, request: Request, extra: Duration) -> Result<Response, GroupError> {
        let addr = self.coordinator().await?;
        match self
            .client
            .send_request(Target::Address(addr), request, extra)
            .await
        {
            Ok(r) => Ok(r),
            Err(e) => {
                // The coordinator may have moved or died: look it up again next time.
                *lock(&self.coordinator) = None;
                Err(e.into())
            }
        }
    }

    /// Joins the group and syncs: one rebalance from this member's side. The leader runs the
    /// assignor matching the selected protocol over every member's subscription, using
    /// `partition_counts` to learn each subscribed topic's size. Returns this member's assignment.
    pub async fn join_and_sync<F, Fut>(
        &self,
        subscription: &Subscription,
        assignors: &[Box<dyn Assignor>],
        partition_counts: F,
    ) -> Result<Assignment, GroupError>
    where
        F: FnOnce(Vec<String>) -> Fut,
        Fut: std::future::Future<Output = Result<BTreeMap<String, i32>, GroupError>>,
    {
        let metadata = subscription.encode();
        let protocols: Vec<JoinGroupRequestProtocol> = assignors
            .iter()
            .map(|a| JoinGroupRequestProtocol {
                name: a.name().to_string(),
                metadata: metadata.clone(),
            })
            .collect();
        let mut joined = None;
        // At most two rounds: the second carries the member id from MEMBER_ID_REQUIRED.
        for _ in 0..2 {
            let member_id = lock(&self.generation).member_id.clone();
            let request = Request::JoinGroup(JoinGroupRequest {
                group_id: self.group(),
                session_timeout_ms: millis(self.config.session_timeout),
                rebalance_timeout_ms: millis(self.config.rebalance_timeout),
                member_id,
                group_instance_id: self.config.group_instance_id.clone(),
                protocol_type: PROTOCOL_TYPE.to_string(),
                protocols: protocols.clone(),
            });
            // The answer waits for the whole join round.
            let response = self.send(request, self.config.rebalance_timeout).await?;
            let Response::JoinGroup(r) = response else {
                return Err(self.protocol_error("JoinGroup answered with another API"));
            };
            if r.error_code == 79 {
                // MEMBER_ID_REQUIRED: rejoin at once with the id handed out.
                lock(&self.generation).member_id = r.member_id;
                continue;
            }
            self.classify("join group", r.error_code)?;
            joined = Some(r);
            break;
        }
        let Some(joined) = joined else {
            return Err(self.protocol_error("the coordinator asked for a member id twice"));
        };
        let is_leader = joined.leader == joined.member_id;
        *lock(&self.generation) = Generation {
            member_id: joined.member_id.clone(),
            generation_id: joined.generation_id,
            is_leader,
        };
        tracing::info!(
            group = %self.config.group_id,
            generation = joined.generation_id,
            member = %joined.member_id,
            leader = is_leader,
            protocol = %joined.protocol_name,
            "joined group"
        );
        let assignments = if is_leader {
            let Some(assignor) = assignors.iter().find(|a| a.name() == joined.protocol_name) else {
                return Err(GroupError::UnknownProtocol {
                    group: self.group(),
                    protocol: joined.protocol_name,
                });
            };
            let mut members = BTreeMap::new();
            for m in &joined.members {
                let sub = Subscription::decode(&m.metadata).map_err(|e| {
                    self.protocol_error(&format!("member {}'s subscription: {e}", m.member_id))
                })?;
                members.insert(m.member_id.clone(), sub);
            }
            let mut topics: Vec<String> = members
                .values()
                .flat_map(|s| s.topics.iter().cloned())
                .collect();
            topics.sort();
            topics.dedup();
            let counts = partition_counts(topics).await?;
            assignor
                .assign(&members, &counts)
                .into_iter()
                .map(|(member_id, a)| SyncGroupRequestAssignment {
                    member_id,
                    assignment: a.encode(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let request = Request::SyncGroup(SyncGroupRequest {
            group_id: self.group(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            assignments,
        });
        let response = self.send(request, self.config.rebalance_timeout).await?;
        let Response::SyncGroup(r) = response else {
            return Err(self.protocol_error("SyncGroup answered with another API"));
        };
        self.classify("sync group", r.error_code)?;
        Assignment::decode(&r.assignment)
            .map_err(|e| self.protocol_error(&format!("assignment: {e}")))
    }

    /// Sends one heartbeat for the current generation.
    pub async fn heartbeat(&self) -> Result<Heartbeat, GroupError> {
        let generation = self.generation();
        if generation.generation_id < 0 {
            return Ok(Heartbeat::Rejoin);
        }
        let request = Request::Heartbeat(HeartbeatRequest {
            group_id: self.group(),
            generation_id: generation.generation_id,
            member_id: generation.member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        });
        let Response::Heartbeat(r) = self.send(request, Duration::ZERO).await? else {
            return Err(self.protocol_error("Heartbeat answered with another API"));
        };
        match self.classify("heartbeat", r.error_code) {
            Ok(()) => Ok(Heartbeat::Ok),
            Err(GroupError::Rejoin { .. }) => Ok(Heartbeat::Rejoin),
            Err(e) => Err(e),
        }
    }

    /// Leaves the group (static members do not: their session simply lapses, as in Kafka).
    pub async fn leave(&self) -> Result<(), GroupError> {
        let generation = self.generation();
        if generation.member_id.is_empty() || self.config.group_instance_id.is_some() {
            return Ok(());
        }
        let request = Request::LeaveGroup(LeaveGroupRequest {
            group_id: self.group(),
            member_id: generation.member_id,
        });
        let Response::LeaveGroup(r) = self.send(request, Duration::ZERO).await? else {
            return Err(self.protocol_error("LeaveGroup answered with another API"));
        };
        *lock(&self.generation) = Generation {
            generation_id: -1,
            ..Default::default()
        };
        // Already gone (expired) is as good as left.
        match r.error_code {
            0 | 25 => Ok(()),
            code => self.classify("leave group", code),
        }
    }

    /// Commits `offsets` ((topic, partition) -> next offset to read) for the current generation, or
    /// as a standalone commit (generation -1) when `standalone` (the group must be empty).
    pub async fn commit(
        &self,
        offsets: &BTreeMap<(String, i32), i64>,
        standalone: bool,
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let generation = if standalone {
            Generation {
                generation_id: -1,
                ..Default::default()
            }
        } else {
            self.generation()
        };
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((topic, partition), offset) in offsets {
            topics
                .entry(topic)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: *partition,
                    committed_offset: *offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some(String::new()),
                });
        }
        let request = Request::OffsetCommit(OffsetCommitRequest {
            group_id: self.group(),
            generation_id: generation.generation_id,
            member_id: generation.member_id,
            group_instance_id: if standalone {
                None
            } else {
                self.config.group_instance_id.clone()
            },
            retention_time_ms: -1,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_string(),
                    partitions,
                })
                .collect(),
        });
        let Response::OffsetCommit(r) = self.send(request, Duration::ZERO).await? else {
            return Err(self.protocol_error("OffsetCommit answered with another API"));
        };
        for t in &r.topics {
            for p in &t.partitions {
                self.classify("commit offsets", p.error_code)?;
            }
        }
        Ok(())
    }

    /// The committed offsets of `partitions` (`None` inside the map: nothing committed). With
    /// `partitions` = `None`, every partition the group committed.
    pub async fn committed(
        &self,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<BTreeMap<(String, i32), Option<Committed>>, GroupError> {
        let topics = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in ps {
                by_topic.entry(t).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                    name: name.to_string(),
                    partition_indexes,
                })
                .collect()
        });
        let request = Request::OffsetFetch(OffsetFetchRequest {
            group_id: self.group(),
            topics,
        });
        let Response::OffsetFetch(r) = self.send(request, Duration::ZERO).await? else {
            return Err(self.protocol_error("OffsetFetch answered with another API"));
        };
        self.classify("fetch offsets", r.error_code)?;
        let mut out = BTreeMap::new();
        for t in r.topics {
            for p in t.partitions {
                self.classify("fetch offsets", p.error_code)?;
                let value = (p.committed_offset >= 0).then(|| Committed {
                    offset: p.committed_offset,
                    metadata: p.metadata.unwrap_or_default(),
                });
                out.insert((t.name.clone(), p.partition_index), value);
            }
        }
        Ok(out)
    }
}

/// Kafka's name for a group-related error code, with what to do about it.
pub fn describe_code(code: KafkaCode) -> String {
    let (name, advice) = match code.0 {
        14 => (
            "COORDINATOR_LOAD_IN_PROGRESS",
            "the coordinator is loading offsets; retry",
        ),
        15 => ("COORDINATOR_NOT_AVAILABLE", "retry; is the broker up?"),
        16 => ("NOT_COORDINATOR", "the coordinator moved; retry"),
        22 => ("ILLEGAL_GENERATION", "the group rebalanced since; rejoin"),
        23 => (
            "INCONSISTENT_GROUP_PROTOCOL",
            "the members use different protocols or assignors",
        ),
        24 => ("INVALID_GROUP_ID", "the group id is empty or too long"),
        25 => (
            "UNKNOWN_MEMBER_ID",
            "the member was expelled or the group forgotten; rejoin",
        ),
        26 => (
            "INVALID_SESSION_TIMEOUT",
            "outside the broker's group.min/max.session.timeout.ms",
        ),
        27 => ("REBALANCE_IN_PROGRESS", "the group is rebalancing; rejoin"),
        68 => (
            "NON_EMPTY_GROUP",
            "the group still has members; stop its consumers first",
        ),
        69 => ("GROUP_ID_NOT_FOUND", "no such group"),
        79 => ("MEMBER_ID_REQUIRED", "rejoin with the member id given"),
        81 => (
            "GROUP_MAX_SIZE_REACHED",
            "the group has group.max.size members",
        ),
        82 => (
            "FENCED_INSTANCE_ID",
            "another member with this group.instance.id took over",
        ),
        _ => return code.to_string(),
    };
    format!("{name} (error {}): {advice}", code.0)
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
