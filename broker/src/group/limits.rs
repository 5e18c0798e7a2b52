//! Named bounds on what a client can make the group coordinator hold.

/// Longest group id accepted: it is a key in the offsets topic and a map key in memory.
pub const GROUP_ID_BYTES_MAX: usize = 255;
/// Longest member id, instance id, client id or protocol name kept per member.
pub const MEMBER_STRING_BYTES_MAX: usize = 1024;
/// Protocols one member may offer in a JoinGroup (real clients offer one to three assignors).
pub const PROTOCOLS_PER_MEMBER_MAX: usize = 64;
/// Bytes of protocol metadata kept per protocol (a subscription lists topic names).
pub const PROTOCOL_METADATA_BYTES_MAX: usize = 1024 * 1024;
/// Bytes of one member's assignment relayed from the leader.
pub const ASSIGNMENT_BYTES_MAX: usize = 1024 * 1024;
/// Hard ceiling on members per group, whatever `group.max.size` says: joins past it are refused.
pub const MEMBERS_PER_GROUP_MAX: usize = 10_000;
/// Members that received MEMBER_ID_REQUIRED and have not rejoined yet, per group: bounds what a
/// client looping on first joins can make the coordinator remember.
pub const PENDING_MEMBERS_PER_GROUP_MAX: usize = 10_000;
/// Groups one coordinator holds in memory.
pub const GROUPS_MAX: usize = 100_000;
/// Longest topic name in a commit (Kafka's own limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
