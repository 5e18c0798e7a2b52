//! Named limits and defaults for replication, each with its reason.

/// Kafka's `replica.lag.time.max.ms` default: a follower that has not caught up to the leader's end
/// for this long leaves the ISR.
pub const REPLICA_LAG_TIME_MAX_MS: u64 = 30_000;
/// Broker session timeout: a broker with no heartbeat for this long is fenced. Small enough that a
/// dead partition leader is replaced within 3 s even when it also led the metadata log (metadata
/// election, 0.5-1 s, then a full session for the new controller, then one apply).
pub const BROKER_SESSION_TIMEOUT_MS: u64 = 1_500;
/// How often a broker heartbeats the controller: five per session timeout, so a lost heartbeat or
/// two does not fence it.
pub const BROKER_HEARTBEAT_INTERVAL_MS: u64 = 300;
/// `min.insync.replicas` for topics with a replication factor of at least 2 (Kafka's default is 1;
/// the issue asks for 2 so that an acks=all write survives the loss of any one broker).
pub const MIN_INSYNC_REPLICAS_REPLICATED: usize = 2;
/// Largest replication factor accepted: a replica set is a small list, and more than this is a typo.
pub const REPLICATION_FACTOR_MAX: usize = 16;
/// Most leader-epoch entries kept per partition before the oldest are merged away; each entry is a
/// leadership change, so this bounds memory against a flapping leader.
pub const EPOCH_ENTRIES_MAX: usize = 4_096;
/// A pending AlterPartition is re-sent after this long without an answer (the message may be lost).
pub const ALTER_PARTITION_RETRY_MS: u64 = 1_000;
/// A follower re-sends a fetch after this long without a response.
pub const FETCH_TIMEOUT_MS: u64 = 1_000;
/// Most partitions one controller tracks; bounds the metadata state a peer can make us hold.
pub const PARTITIONS_MAX: usize = 100_000;
/// Most brokers in a cluster.
pub const BROKERS_MAX: usize = 1_024;
/// Largest metadata file (snapshot, vote) read back: the whole cluster's metadata is far smaller;
/// a larger length field means corruption.
pub const RAFT_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Largest single metadata log entry: a command is a few hundred bytes, a membership change a few
/// KiB; anything beyond this is corruption, not data.
pub const RAFT_ENTRY_BYTES_MAX: u32 = 4 * 1024 * 1024;
/// Largest frame on the peer connection: a fetch response carries at most
/// [`PEER_FETCH_BYTES_MAX`] of records plus a small header; Raft appends and snapshot chunks are
/// far smaller. A bigger length prefix is garbage and closes the connection.
pub const PEER_FRAME_BYTES_MAX: u32 = 64 * 1024 * 1024;
/// Largest fetch a follower asks for at once (Kafka's `replica.fetch.response.max.bytes` is 10 MiB).
pub const PEER_FETCH_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Idle connections a peer client keeps to one peer for reuse (one is in use per concurrent call:
/// each followed partition's fetch, heartbeats, Raft RPCs); more are closed after their call.
pub const PEER_IDLE_CONNECTIONS_MAX: usize = 64;
/// How long a metadata proposal may wait to be committed: far above a healthy commit (a few ms)
/// and an election (under 1 s), so only a leader cut off from its quorum reaches it.
pub const PROPOSE_TIMEOUT_MS: u64 = 5_000;
/// How long a peer call waits for its answer before the connection is dropped and redialled.
pub const PEER_CALL_TIMEOUT_MS: u64 = 5_000;
const _: () = assert!(PEER_FETCH_BYTES_MAX < PEER_FRAME_BYTES_MAX);
/// How long a leader holds a follower's fetch that found nothing new (Kafka's
/// `replica.fetch.wait.max.ms`): long enough not to spin, short enough to notice a new leader.
pub const REPLICA_FETCH_WAIT_MS: u64 = 500;
/// How long a follower waits before fetching again after an error or a refusal.
pub const REPLICA_FETCH_BACKOFF_MS: u64 = 100;
/// Largest node id in a cluster: producer ids are made unique in the cluster by multiplying a
/// node's local id by [`PRODUCER_ID_NODE_STRIDE`] and adding its node id.
pub const NODE_ID_MAX: i32 = 1_023;
/// See [`NODE_ID_MAX`].
pub const PRODUCER_ID_NODE_STRIDE: i64 = NODE_ID_MAX as i64 + 1;
