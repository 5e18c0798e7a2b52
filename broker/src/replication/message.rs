//! The values the replication cores exchange: follower fetches, partition state from the
//! controller, and ISR change requests. Record bytes never pass through the cores: a fetch answer
//! says where to read from, and the driver attaches the batches.

use serde::{Deserialize, Serialize};

use super::epoch::EpochEndOffset;
use super::NodeId;

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Replication errors that travel back to a follower or a producer, each a Kafka error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ReplicaError {
    /// This broker does not lead the partition (NOT_LEADER_OR_FOLLOWER, 6).
    #[error("not the leader of this partition")]
    NotLeader,
    /// The request's leader epoch is older than the leader's (FENCED_LEADER_EPOCH, 74).
    #[error("the request's leader epoch is older than the leader's")]
    FencedLeaderEpoch,
    /// The request's leader epoch is newer than the leader's (UNKNOWN_LEADER_EPOCH, 75).
    #[error("the request's leader epoch is newer than this broker knows")]
    UnknownLeaderEpoch,
    /// Fewer in-sync replicas than `min.insync.replicas` (NOT_ENOUGH_REPLICAS, 19).
    #[error("fewer in-sync replicas than min.insync.replicas")]
    NotEnoughReplicas,
    /// The ISR shrank below `min.insync.replicas` after the append (NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20).
    #[error("the in-sync replicas fell below min.insync.replicas after the append")]
    NotEnoughReplicasAfterAppend,
    /// The fetch is for another incarnation of the topic (INCONSISTENT_TOPIC_ID, 103).
    #[error("the fetch names another incarnation of the topic")]
    InconsistentTopicId,
}

impl ReplicaError {
    /// The Kafka wire error code.
    pub fn code(self) -> i16 {
        match self {
            ReplicaError::NotLeader => 6,
            ReplicaError::FencedLeaderEpoch => 74,
            ReplicaError::UnknownLeaderEpoch => 75,
            ReplicaError::NotEnoughReplicas => 19,
            ReplicaError::NotEnoughReplicasAfterAppend => 20,
            ReplicaError::InconsistentTopicId => 103,
        }
    }
}

/// An offset a peer of an earlier version did not send (serde's default for fields added since).
pub(crate) fn unknown_offset() -> i64 {
    -1
}

/// A follower's fetch (Kafka's Fetch with `replica_id` set, plus the durable offset Sluice needs
/// because acks=all means fsynced on the replicas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The fetching replica.
    pub replica: NodeId,
    /// The follower's idea of the current leader epoch.
    pub leader_epoch: i32,
    /// The follower's log end offset: the first offset it wants.
    pub fetch_offset: i64,
    /// The epoch of the follower's last batch ([`super::epoch::UNDEFINED_EPOCH`] for an empty log).
    pub last_fetched_epoch: i32,
    /// The end of the follower's fsynced prefix (<= `fetch_offset`).
    pub durable_offset: i64,
    /// The follower's log start offset (a DeleteRecords on the leader completes once every
    /// in-sync replica's has passed it; -1 from a node of an earlier version, which then holds
    /// DeleteRecords until it is upgraded).
    #[serde(default = "unknown_offset")]
    pub log_start_offset: i64,
    /// Echoed in the response so the follower ignores stale answers.
    pub fetch_id: u64,
}

/// The leader's answer to a fetch, before the driver attaches records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchAnswer {
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// Set when the follower's log diverges: truncate, then fetch again; no records are sent.
    pub diverging: Option<EpochEndOffset>,
    /// Where the driver reads records from (the request's fetch offset) when not diverging.
    pub read_from: i64,
}

/// A fetch response as the follower sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse<R> {
    /// Echo of the request's id.
    pub fetch_id: u64,
    /// The answer, or why there is none.
    pub result: Result<FetchData<R>, ReplicaError>,
}

/// A successful fetch response's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchData<R> {
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// The leader's log start offset: the follower moves its own up to it, and a follower whose
    /// log ends below it starts over there.
    pub log_start_offset: i64,
    /// Set when the follower must truncate.
    pub diverging: Option<EpochEndOffset>,
    /// The batches starting at the request's fetch offset (empty when diverging).
    pub records: R,
}

/// The controller's view of one partition (Kafka's LeaderAndIsr / PartitionRecord).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// The leader, or [`super::NO_NODE`] when no ISR member is available.
    pub leader: NodeId,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of this record (leader or ISR): the version AlterPartition checks.
    pub partition_epoch: i32,
    /// In-sync replicas, leader included.
    pub isr: Vec<NodeId>,
    /// The topic's `min.insync.replicas`.
    pub min_insync: usize,
}

/// A leader's request to change the ISR (KIP-497 AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartition {
    /// The partition.
    pub tp: TopicPartition,
    /// The requesting leader.
    pub leader: NodeId,
    /// Its leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch its ISR is based on.
    pub partition_epoch: i32,
    /// The proposed ISR.
    pub new_isr: Vec<NodeId>,
}
