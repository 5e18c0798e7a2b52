//! The controller's decisions over cluster metadata, as a deterministic state machine: the same
//! [`MetadataCommand`]s applied in the same order (the Raft log's) give the same [`ClusterState`]
//! on every node. Time-based decisions (fencing a silent broker) are made outside by
//! [`Liveness`] on the active controller and enter the log as commands.
//!
//! Rules: leaders are elected only from the ISR and only among unfenced brokers that are not
//! shutting down; every leader change bumps the leader epoch; a fenced broker leaves every ISR
//! except as its last member (no unclean election: a partition whose last ISR member is gone has no
//! leader until it returns); an ISR change from a leader is applied only if its leader epoch and
//! partition epoch are current, and may add only unfenced brokers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::limits::{
    BROKERS_MAX, BROKER_SESSION_TIMEOUT_MS, MIN_INSYNC_REPLICAS_REPLICATED, PARTITIONS_MAX,
    REPLICATION_FACTOR_MAX,
};
use super::message::{AlterPartition, PartitionState, TopicPartition};
use super::{NodeId, NO_NODE};

/// A change to cluster metadata; the Raft log's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// A broker (re)starts. A new incarnation fences the previous one first.
    RegisterBroker {
        /// Broker id.
        id: NodeId,
        /// Differs on every process start.
        incarnation: u64,
        /// The address clients connect to (`--advertised-listener`).
        client_addr: String,
        /// The address peers connect to (`--peer-listen`).
        peer_addr: String,
    },
    /// The active controller stopped hearing from this incarnation.
    FenceBroker {
        /// Broker id.
        id: NodeId,
        /// The incarnation being fenced (a newer one is left alone).
        incarnation: u64,
    },
    /// A fenced incarnation is heard from again.
    UnfenceBroker {
        /// Broker id.
        id: NodeId,
        /// The incarnation heard from.
        incarnation: u64,
    },
    /// Create a topic, assigning replicas over the unfenced brokers.
    CreateTopic {
        /// Topic name.
        name: String,
        /// Number of partitions.
        partitions: i32,
        /// Replicas per partition.
        replication_factor: usize,
        /// Topic configs by Kafka name.
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Replace a topic's configs (Kafka's AlterConfigs: the whole set of overrides).
    AlterTopicConfigs {
        /// Topic name.
        name: String,
        /// The new overrides by Kafka name; keys left out return to their defaults.
        configs: BTreeMap<String, String>,
    },
    /// A leader's ISR change.
    AlterPartition(AlterPartition),
    /// A broker is shutting down cleanly: move its leaderships away and take it out of the ISRs.
    ControlledShutdown {
        /// Broker id.
        id: NodeId,
        /// Its incarnation.
        incarnation: u64,
    },
}

/// Why a command was refused. Refusals are deterministic, so every replica refuses alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetadataError {
    /// CreateTopic on an existing name.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// The topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The partition does not exist.
    #[error("unknown partition {0}")]
    UnknownPartition(TopicPartition),
    /// Not enough live brokers, or out of bounds.
    #[error("replication factor {requested} is invalid with {available} live brokers (max {REPLICATION_FACTOR_MAX})")]
    InvalidReplicationFactor {
        /// Asked for.
        requested: usize,
        /// Unfenced brokers.
        available: usize,
    },
    /// Partition count out of bounds.
    #[error("invalid partition count {0} (1..={PARTITIONS_MAX} partitions in the cluster)")]
    InvalidPartitions(i32),
    /// A config value that cannot be used.
    #[error("invalid config {key}={value}")]
    InvalidConfig {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// The broker id is not registered (or has another incarnation).
    #[error("unknown broker {0} or stale incarnation")]
    UnknownBroker(NodeId),
    /// Too many brokers.
    #[error("cluster already has {BROKERS_MAX} brokers")]
    TooManyBrokers,
    /// AlterPartition from a broker that is not the leader at that epoch (FENCED_LEADER_EPOCH).
    #[error("stale leader or leader epoch")]
    FencedLeaderEpoch,
    /// AlterPartition based on an old partition epoch (INVALID_UPDATE_VERSION).
    #[error("stale partition epoch")]
    InvalidUpdateVersion,
    /// AlterPartition adding a fenced or unknown broker, or one not assigned (INELIGIBLE_REPLICA).
    #[error("ineligible replica {0} in proposed ISR")]
    IneligibleReplica(NodeId),
}

/// A successful command's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// Applied, nothing to report.
    Done,
    /// The partition's state after an accepted AlterPartition.
    Partition(PartitionState),
    /// After ControlledShutdown: partitions this broker still leads (0 means it may stop).
    RemainingLeaderships(usize),
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    /// Broker id.
    pub id: NodeId,
    /// Current incarnation.
    pub incarnation: u64,
    /// Client address.
    pub client_addr: String,
    /// Peer address.
    pub peer_addr: String,
    /// Not heard from: no leaderships, no ISR membership (except as the last member).
    pub fenced: bool,
    /// In controlled shutdown.
    pub shutting_down: bool,
}

/// A topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Unique for the cluster's life: a topic deleted and created again under the same name gets
    /// a new id, so brokers know their old replicas of it are gone (Kafka's topic ids).
    #[serde(default)]
    pub id: u64,
    /// Topic configs by Kafka name.
    pub configs: BTreeMap<String, String>,
    /// Partition states, by index.
    pub partitions: Vec<PartitionState>,
}

/// Everything the controller knows: brokers, topics, partition states.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Registered brokers by id.
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicInfo>,
    /// The last topic id handed out.
    #[serde(default)]
    pub last_topic_id: u64,
    /// The cluster's id, fixed by the first broker registration (from its random incarnation,
    /// so it differs between clusters and is the same on every node).
    #[serde(default)]
    pub cluster_id: String,
}

impl ClusterState {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of one partition.
    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        let idx = usize::try_from(tp.partition).ok()?;
        self.topics.get(&tp.topic)?.partitions.get(idx)
    }

    /// Every partition and its state.
    pub fn partitions(&self) -> impl Iterator<Item = (TopicPartition, &PartitionState)> {
        self.topics.iter().flat_map(|(name, t)| {
            t.partitions
                .iter()
                .enumerate()
                .map(move |(i, p)| (TopicPartition::new(name.clone(), i as i32), p))
        })
    }

    /// Brokers that may not join an ISR now: fenced or shutting down.
    pub fn ineligible_brokers(&self) -> BTreeSet<NodeId> {
        self.brokers
            .iter()
            .filter(|(_, b)| b.fenced || b.shutting_down)
            .map(|(&id, _)| id)
            .collect()
    }

    fn eligible(&self, id: NodeId) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(|b| !b.fenced && !b.shutting_down)
    }

    fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// Applies one command. Deterministic: no clock, no randomness.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> Result<CommandOutcome, MetadataError> {
        match cmd {
            MetadataCommand::RegisterBroker {
                id,
                incarnation,
                client_addr,
                peer_addr,
            } => self.register(*id, *incarnation, client_addr, peer_addr),
            MetadataCommand::FenceBroker { id, incarnation } => {
                let b = self.current(*id, *incarnation)?;
                if !b.fenced {
                    self.fence(*id);
                }
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::UnfenceBroker { id, incarnation } => {
                let b = self.current(*id, *incarnation)?;
                if b.fenced {
                    if let Some(b) = self.brokers.get_mut(id) {
                        b.fenced = false;
                    }
                    self.elect_offline();
                }
                Ok(CommandOutcome::Done)
            }
            MetadataCommand::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
            } => self.create_topic(name, *partitions, *replication_factor, configs),
            MetadataCommand::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => Ok(CommandOutcome::Done),
                None => Err(MetadataError::UnknownTopic(name.clone())),
            },
            MetadataCommand::AlterTopicConfigs { name, configs } => {
                self.alter_topic_configs(name, configs)
            }
            MetadataCommand::AlterPartition(req) => self.alter_partition(req),
            MetadataCommand::ControlledShutdown { id, incarnation } => {
                self.current(*id, *incarnation)?;
                if let Some(b) = self.brokers.get_mut(id) {
                    b.shutting_down = true;
                }
                self.move_away(*id);
                let remaining = self.partitions().filter(|(_, p)| p.leader == *id).count();
                Ok(CommandOutcome::RemainingLeaderships(remaining))
            }
        }
    }

    fn current(&self, id: NodeId, incarnation: u64) -> Result<&BrokerInfo, MetadataError> {
        self.brokers
            .get(&id)
            .filter(|b| b.incarnation == incarnation)
            .ok_or(MetadataError::UnknownBroker(id))
    }

    fn register(
        &mut self,
        id: NodeId,
        incarnation: u64,
        client_addr: &str,
        peer_addr: &str,
    ) -> Result<CommandOutcome, MetadataError> {
        match self.brokers.get(&id) {
            Some(b) if b.incarnation == incarnation => return Ok(CommandOutcome::Done),
            Some(_) => {
                // The previous process is gone: whatever it led must get a new epoch, even if
                // this new process is elected again, so nothing it said in the old epoch counts.
                self.fence(id);
            }
            None if self.brokers.len() >= BROKERS_MAX => return Err(MetadataError::TooManyBrokers),
            None => {}
        }
        if self.cluster_id.is_empty() {
            self.cluster_id = format!("sluice-{incarnation:016x}");
        }
        self.brokers.insert(
            id,
            BrokerInfo {
                id,
                incarnation,
                client_addr: client_addr.to_owned(),
                peer_addr: peer_addr.to_owned(),
                fenced: false,
                shutting_down: false,
            },
        );
        self.elect_offline();
        Ok(CommandOutcome::Done)
    }

    /// Takes `id` out of every ISR (keeping a last member) and moves its leaderships.
    fn fence(&mut self, id: NodeId) {
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = true;
        }
        self.move_away(id);
    }

    /// Moves leaderships of `id` to eligible ISR members and removes `id` from ISRs where it is not
    /// the last member. A partition with no eligible member loses its leader.
    fn move_away(&mut self, id: NodeId) {
        let eligible: BTreeMap<NodeId, bool> = self
            .brokers
            .keys()
            .map(|&b| (b, self.eligible(b)))
            .collect();
        for topic in self.topics.values_mut() {
            for p in &mut topic.partitions {
                let was_leader = p.leader == id;
                if p.isr.len() > 1 && p.isr.contains(&id) {
                    p.isr.retain(|&r| r != id);
                    p.partition_epoch += 1;
                }
                if was_leader {
                    let next =
                        p.replicas.iter().copied().find(|r| {
                            *r != id && p.isr.contains(r) && eligible.get(r) == Some(&true)
                        });
                    let new_leader = next.unwrap_or(NO_NODE);
                    // Without anyone else, a still-eligible leader (controlled shutdown of the last
                    // ISR member) keeps leading: there is nobody to hand over to.
                    if new_leader != NO_NODE || eligible.get(&id) != Some(&true) {
                        set_leader(p, new_leader);
                    }
                }
            }
        }
    }

    /// Elects a leader for every leaderless partition that has an eligible ISR member.
    fn elect_offline(&mut self) {
        let eligible: BTreeMap<NodeId, bool> = self
            .brokers
            .keys()
            .map(|&b| (b, self.eligible(b)))
            .collect();
        for topic in self.topics.values_mut() {
            for p in &mut topic.partitions {
                if p.leader != NO_NODE {
                    continue;
                }
                if let Some(r) = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|r| p.isr.contains(r) && eligible.get(r) == Some(&true))
                {
                    set_leader(p, r);
                }
            }
        }
    }

    fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: usize,
        configs: &BTreeMap<String, String>,
    ) -> Result<CommandOutcome, MetadataError> {
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_owned()));
        }
        let n_partitions = usize::try_from(partitions)
            .ok()
            .filter(|&n| n >= 1 && self.partition_count() + n <= PARTITIONS_MAX)
            .ok_or(MetadataError::InvalidPartitions(partitions))?;
        let live: Vec<NodeId> = self
            .brokers
            .values()
            .filter(|b| !b.fenced && !b.shutting_down)
            .map(|b| b.id)
            .collect();
        if replication_factor == 0
            || replication_factor > REPLICATION_FACTOR_MAX
            || replication_factor > live.len()
        {
            return Err(MetadataError::InvalidReplicationFactor {
                requested: replication_factor,
                available: live.len(),
            });
        }
        let min_insync = min_insync_replicas(configs, replication_factor)?;
        let states = (0..n_partitions)
            .map(|p| {
                let replicas: Vec<NodeId> = (0..replication_factor)
                    .map(|i| live[(p + i) % live.len()])
                    .collect();
                PartitionState {
                    leader: replicas[0],
                    isr: replicas.clone(),
                    replicas,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    min_insync,
                }
            })
            .collect();
        self.last_topic_id += 1;
        self.topics.insert(
            name.to_owned(),
            TopicInfo {
                id: self.last_topic_id,
                configs: configs.clone(),
                partitions: states,
            },
        );
        Ok(CommandOutcome::Done)
    }

    /// Replaces a topic's configs; a changed `min.insync.replicas` reaches each partition's state
    /// (with a new partition epoch, so its leader picks it up).
    fn alter_topic_configs(
        &mut self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<CommandOutcome, MetadataError> {
        let topic = self
            .topics
            .get_mut(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
        let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
        let min_insync = min_insync_replicas(configs, replication_factor)?;
        for p in &mut topic.partitions {
            if p.min_insync != min_insync {
                p.min_insync = min_insync;
                p.partition_epoch += 1;
            }
        }
        topic.configs = configs.clone();
        Ok(CommandOutcome::Done)
    }

    fn alter_partition(&mut self, req: &AlterPartition) -> Result<CommandOutcome, MetadataError> {
        let eligible: BTreeMap<NodeId, bool> = self
            .brokers
            .keys()
            .map(|&b| (b, self.eligible(b)))
            .collect();
        let p = usize::try_from(req.tp.partition)
            .ok()
            .and_then(|i| self.topics.get_mut(&req.tp.topic)?.partitions.get_mut(i))
            .ok_or_else(|| MetadataError::UnknownPartition(req.tp.clone()))?;
        if p.leader != req.leader || p.leader_epoch != req.leader_epoch {
            return Err(MetadataError::FencedLeaderEpoch);
        }
        if p.partition_epoch != req.partition_epoch {
            return Err(MetadataError::InvalidUpdateVersion);
        }
        if !req.new_isr.contains(&req.leader) {
            return Err(MetadataError::IneligibleReplica(req.leader));
        }
        for r in &req.new_isr {
            let added = !p.isr.contains(r);
            if !p.replicas.contains(r) || (added && eligible.get(r) != Some(&true)) {
                return Err(MetadataError::IneligibleReplica(*r));
            }
        }
        let mut isr = req.new_isr.clone();
        isr.sort_unstable();
        isr.dedup();
        p.isr = isr;
        p.partition_epoch += 1;
        let state = p.clone();
        // A broker in controlled shutdown that could not hand over for want of an ISR member
        // hands over as soon as one joins.
        if self
            .brokers
            .get(&req.leader)
            .is_some_and(|b| b.shutting_down)
            && state.isr.len() > 1
        {
            self.move_away(req.leader);
            if let Some(p) = self.partition(&req.tp) {
                return Ok(CommandOutcome::Partition(p.clone()));
            }
        }
        Ok(CommandOutcome::Partition(state))
    }
}

/// `min.insync.replicas` from a topic's configs, or the default for its replication factor.
fn min_insync_replicas(
    configs: &BTreeMap<String, String>,
    replication_factor: usize,
) -> Result<usize, MetadataError> {
    match configs.get("min.insync.replicas") {
        Some(v) => v.parse::<usize>().ok().filter(|&m| m >= 1).ok_or_else(|| {
            MetadataError::InvalidConfig {
                key: "min.insync.replicas".into(),
                value: v.clone(),
            }
        }),
        None if replication_factor >= 2 => Ok(MIN_INSYNC_REPLICAS_REPLICATED),
        None => Ok(1),
    }
}

fn set_leader(p: &mut PartitionState, leader: NodeId) {
    p.leader = leader;
    p.leader_epoch += 1;
    p.partition_epoch += 1;
}

/// Broker liveness as seen by the active controller (in memory: a new controller starts by giving
/// every broker a full session). Produces the fence/unfence commands to propose.
#[derive(Debug, Clone)]
pub struct Liveness {
    session_timeout_ms: u64,
    first_seen_grace_ms: u64,
    last_heard: BTreeMap<NodeId, (u64, u64)>,
}

impl Liveness {
    /// Liveness with Kafka-style session timeouts.
    pub fn new(session_timeout_ms: u64) -> Self {
        Self {
            session_timeout_ms,
            first_seen_grace_ms: session_timeout_ms,
            last_heard: BTreeMap::new(),
        }
    }

    /// Liveness for a controller that just took over: a broker not heard from yet gets only
    /// `grace_ms` (a few heartbeat intervals: live brokers find the new controller at once) instead
    /// of a whole session, so a broker that died with the old controller is fenced sooner.
    pub fn after_failover(session_timeout_ms: u64, grace_ms: u64) -> Self {
        Self {
            session_timeout_ms,
            first_seen_grace_ms: grace_ms.min(session_timeout_ms),
            last_heard: BTreeMap::new(),
        }
    }

    /// Liveness with the default session timeout.
    pub fn with_defaults() -> Self {
        Self::new(BROKER_SESSION_TIMEOUT_MS)
    }

    /// A heartbeat (or registration) from `id` in `incarnation`.
    pub fn on_heartbeat(&mut self, id: NodeId, incarnation: u64, now_ms: u64) {
        self.last_heard.insert(id, (incarnation, now_ms));
    }

    /// Commands to propose now: fence expired brokers, unfence fenced brokers heard from again.
    pub fn tick(&mut self, now_ms: u64, state: &ClusterState) -> Vec<MetadataCommand> {
        let mut out = Vec::new();
        for b in state.brokers.values() {
            let first_seen =
                now_ms.saturating_sub(self.session_timeout_ms - self.first_seen_grace_ms);
            let heard = self
                .last_heard
                .entry(b.id)
                .or_insert((b.incarnation, first_seen));
            if heard.0 != b.incarnation && heard.1 < first_seen {
                // A newly registered incarnation not heard from yet (its heartbeats start once
                // the registration is committed): it gets the first-seen grace, not a fence
                // for the silence of the process it replaced.
                *heard = (b.incarnation, first_seen);
            }
            let alive = heard.0 == b.incarnation
                && now_ms.saturating_sub(heard.1) <= self.session_timeout_ms;
            if b.fenced && alive && !b.shutting_down {
                out.push(MetadataCommand::UnfenceBroker {
                    id: b.id,
                    incarnation: b.incarnation,
                });
            } else if !b.fenced && !alive {
                out.push(MetadataCommand::FenceBroker {
                    id: b.id,
                    incarnation: b.incarnation,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
