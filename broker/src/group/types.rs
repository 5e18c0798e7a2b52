//! The coordinator core's own request and response types.
//!
//! They mirror Kafka's JoinGroup / SyncGroup / Heartbeat / LeaveGroup / OffsetCommit / OffsetFetch
//! messages field for field (snake_case), minus what the core does not need, so the async
//! coordinator maps the wire structs onto them in one place and the core stays independent of the
//! codec's versions.

use bytes::Bytes;

/// A Kafka error code as the group APIs use them (the numbers are Kafka's and never change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum Code {
    /// Success.
    None = 0,
    /// Something unexpected; the client retries.
    UnknownServerError = -1,
    /// A topic or partition this broker does not host.
    UnknownTopicOrPartition = 3,
    /// The commit's metadata string is longer than `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge = 12,
    /// The coordinator is loading offsets after a start-up.
    CoordinatorLoadInProgress = 14,
    /// The coordinator is not available (e.g. the group was just deleted).
    CoordinatorNotAvailable = 15,
    /// This broker is not the coordinator of the group.
    NotCoordinator = 16,
    /// The member's generation is not the group's current one.
    IllegalGeneration = 22,
    /// The member's protocol type or protocols do not match the group's.
    InconsistentGroupProtocol = 23,
    /// The group id is empty where a group id is required.
    InvalidGroupId = 24,
    /// The member id is not known to the group.
    UnknownMemberId = 25,
    /// The session timeout is outside the broker's allowed range.
    InvalidSessionTimeout = 26,
    /// The group is rebalancing; the member must rejoin.
    RebalanceInProgress = 27,
    /// The request is malformed or exceeds a limit.
    InvalidRequest = 42,
    /// A storage error prevented the commit.
    KafkaStorageError = 56,
    /// DeleteGroups on a group that still has members.
    NonEmptyGroup = 68,
    /// DeleteGroups on a group that does not exist.
    GroupIdNotFound = 69,
    /// The group already has `group.max.size` members.
    GroupMaxSizeReached = 81,
    /// JoinGroup v4+: the member must rejoin with the member id given in the response.
    MemberIdRequired = 79,
    /// A newer member with the same `group.instance.id` replaced this one.
    FencedInstanceId = 82,
}

impl Code {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        self as i16
    }
}

/// Names a request whose answer the core may deliver later (a parked JoinGroup or SyncGroup).
/// The driver picks the values; the core only hands them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyToken(pub u64);

/// One answer for a parked or immediately answered request.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The request being answered.
    pub token: ReplyToken,
    /// The answer.
    pub reply: Reply,
}

/// The answer to a JoinGroup or a SyncGroup.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Answer to a JoinGroup.
    Join(JoinResponse),
    /// Answer to a SyncGroup.
    Sync(SyncResponse),
}

/// One protocol a member supports, with its opaque metadata (for consumers: the subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinProtocol {
    /// Protocol name, e.g. an assignor name `range`.
    pub name: String,
    /// Opaque protocol metadata relayed to the leader.
    pub metadata: Bytes,
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    /// The request's API version (v4+ gets MEMBER_ID_REQUIRED on a first join).
    pub api_version: i16,
    /// The group.
    pub group_id: String,
    /// How long the coordinator waits for a heartbeat before expelling the member.
    pub session_timeout_ms: i32,
    /// How long the coordinator waits for every member to rejoin in a rebalance.
    pub rebalance_timeout_ms: i32,
    /// Empty on the first join.
    pub member_id: String,
    /// Static membership (`group.instance.id`, v5+).
    pub group_instance_id: Option<String>,
    /// E.g. `consumer`.
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<JoinProtocol>,
    /// The request header's client id.
    pub client_id: String,
    /// The peer's address, reported by DescribeGroups.
    pub client_host: String,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// The member id.
    pub member_id: String,
    /// Its static instance id, if any.
    pub group_instance_id: Option<String>,
    /// Its metadata for the selected protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    /// Error code.
    pub error: Code,
    /// The generation the member joined (-1 on error).
    pub generation_id: i32,
    /// The selected protocol (empty on error).
    pub protocol_name: String,
    /// The leader's member id.
    pub leader: String,
    /// The member's id (also set with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// Every member with its metadata, for the leader only; empty for followers.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    /// An error response carrying `member_id`.
    pub fn error(error: Code, member_id: &str) -> JoinResponse {
        JoinResponse {
            error,
            generation_id: -1,
            protocol_name: String::new(),
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// One member's assignment in the leader's SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAssignment {
    /// The member.
    pub member_id: String,
    /// Its opaque assignment.
    pub assignment: Bytes,
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRequest {
    /// The group.
    pub group_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The member.
    pub member_id: String,
    /// Static instance id (v3+).
    pub group_instance_id: Option<String>,
    /// The leader's assignments; empty from followers.
    pub assignments: Vec<SyncAssignment>,
}

/// A SyncGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    /// Error code.
    pub error: Code,
    /// The member's assignment (empty on error).
    pub assignment: Bytes,
}

impl SyncResponse {
    /// An error response.
    pub fn error(error: Code) -> SyncResponse {
        SyncResponse {
            error,
            assignment: Bytes::new(),
        }
    }
}

/// A Heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// The group.
    pub group_id: String,
    /// The member's generation.
    pub generation_id: i32,
    /// The member.
    pub member_id: String,
    /// Static instance id (v3+).
    pub group_instance_id: Option<String>,
}

/// A LeaveGroup request (v0-2: one member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveRequest {
    /// The group.
    pub group_id: String,
    /// The member leaving.
    pub member_id: String,
}

/// Identifies a partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// The leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When the commit was accepted (wall-clock ms since the epoch).
    pub commit_timestamp_ms: i64,
}

/// The identity part of an OffsetCommit request (the offsets travel separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitIdentity {
    /// The group.
    pub group_id: String,
    /// The member's generation; -1 for a commit outside group management.
    pub generation_id: i32,
    /// The member; empty outside group management.
    pub member_id: String,
    /// Static instance id (v7+).
    pub group_instance_id: Option<String>,
}

/// The state names DescribeGroups and ListGroups report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members are consuming with their assignments.
    Stable,
    /// Deleted or unknown.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// One member in a DescribeGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Metadata for the selected protocol (empty unless Stable).
    pub metadata: Bytes,
    /// The member's assignment (empty unless Stable).
    pub assignment: Bytes,
}

/// A DescribeGroups answer for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Error code.
    pub error: Code,
    /// The group.
    pub group_id: String,
    /// The state.
    pub state: GroupState,
    /// The protocol type (e.g. `consumer`), empty if none.
    pub protocol_type: String,
    /// The selected protocol, empty unless a generation is running.
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
}

/// One group in a ListGroups answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group.
    pub group_id: String,
    /// Its protocol type, empty for groups that only hold offsets.
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
}
