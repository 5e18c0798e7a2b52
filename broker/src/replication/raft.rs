//! The cluster metadata log: openraft 0.9 replicating [`MetadataCommand`]s into the
//! [`ClusterState`] of every controller node, with the log, vote and snapshots on disk.
//!
//! - [`log_store::LogStore`]: the Raft log as an append-only file of checksummed records
//!   (`raft-log`), fsynced before openraft is told an append is durable; a torn tail left by a
//!   crash is cut at open. Vote, committed index and purge point are small atomic files.
//! - [`state_machine::StateMachine`]: applies commands to a [`ClusterState`], publishes each new
//!   state on a `tokio::sync::watch` channel, and snapshots to `raft-snapshot` (atomic file).
//! - [`mem_network::MemRouter`]: an in-process transport between Raft nodes (tests, and several
//!   nodes in one process); `sluiced --peers` uses the TCP transport in
//!   `peer::transport` (`TcpRaftNetwork`).
//!
//! Entry point: [`open_node`] then, once on one node of a new cluster, `raft.initialize(..)`;
//! propose with [`propose`].

pub mod file;
pub mod log_store;
pub mod mem_network;
pub mod state_machine;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::controller::{ClusterState, CommandOutcome, MetadataCommand, MetadataError};
use super::limits::PROPOSE_TIMEOUT_MS;

openraft::declare_raft_types!(
    /// openraft's type configuration for the metadata log.
    pub TypeConfig:
        D = MetadataCommand,
        R = MetadataResponse,
);

/// A running metadata Raft node.
pub type MetadataRaft = openraft::Raft<TypeConfig>;

/// What applying one log entry returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataResponse {
    /// A command's outcome (refusals are deterministic results too, not Raft failures).
    Command(Result<CommandOutcome, MetadataError>),
    /// A blank or membership entry.
    Internal,
}

/// Errors of the metadata Raft layer.
#[derive(Debug, thiserror::Error)]
pub enum MetadataRaftError {
    /// The on-disk log, vote or snapshot could not be read or written.
    #[error("metadata storage: {0}")]
    Storage(String),
    /// The Raft configuration is invalid.
    #[error("metadata raft config: {0}")]
    Config(String),
    /// The Raft node stopped.
    #[error("metadata raft stopped: {0}")]
    Fatal(String),
    /// This node is not the metadata leader; the leader is named if known.
    #[error("not the metadata leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<u64>,
    },
    /// Not committed within [`PROPOSE_TIMEOUT_MS`] (a leader cut off from its quorum); the
    /// command may still commit later, so callers retry with commands that are safe to repeat.
    #[error("metadata proposal not committed within {PROPOSE_TIMEOUT_MS} ms")]
    Timeout,
}

/// A metadata node: the Raft handle and the applied cluster state as it changes.
pub struct MetadataNode {
    /// The Raft handle (clone freely).
    pub raft: MetadataRaft,
    /// The latest applied [`ClusterState`].
    pub state: watch::Receiver<ClusterState>,
}

/// Raft timing for the metadata log: heartbeats every 100 ms and elections after 0.3-0.6 s of
/// silence, so a dead metadata leader is replaced early in the 3 s failover budget (the new
/// controller still has to notice the dead broker, see `cluster`).
pub fn default_config() -> Result<openraft::Config, MetadataRaftError> {
    openraft::Config {
        cluster_name: "sluice-metadata".into(),
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1_000),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MetadataRaftError::Config(e.to_string()))
}

/// Opens (or creates) the metadata store in `dir` and starts the Raft node `id`.
pub async fn open_node<N>(
    id: u64,
    dir: &Path,
    config: openraft::Config,
    network: N,
) -> Result<MetadataNode, MetadataRaftError>
where
    N: openraft::RaftNetworkFactory<TypeConfig>,
{
    std::fs::create_dir_all(dir)
        .map_err(|e| MetadataRaftError::Storage(format!("{}: {e}", dir.display())))?;
    let log =
        log_store::LogStore::open(dir).map_err(|e| MetadataRaftError::Storage(e.to_string()))?;
    let (sm, state) = state_machine::StateMachine::open(dir)
        .map_err(|e| MetadataRaftError::Storage(e.to_string()))?;
    let raft = openraft::Raft::new(id, Arc::new(config), network, log, sm)
        .await
        .map_err(|e| MetadataRaftError::Fatal(e.to_string()))?;
    Ok(MetadataNode { raft, state })
}

/// Membership of a new cluster: every node id with its peer address.
pub fn membership(nodes: &[(u64, String)]) -> BTreeMap<u64, openraft::BasicNode> {
    nodes
        .iter()
        .map(|(id, addr)| (*id, openraft::BasicNode::new(addr.clone())))
        .collect()
}

/// Proposes `cmd` through the metadata leader (this node must be it) and returns the command's
/// outcome once committed and applied, or [`MetadataRaftError::Timeout`]: the loops that propose
/// (registration, fencing, ISR changes) must not hang on a leader that lost its quorum.
pub async fn propose(
    raft: &MetadataRaft,
    cmd: MetadataCommand,
) -> Result<Result<CommandOutcome, MetadataError>, MetadataRaftError> {
    let written = tokio::time::timeout(
        std::time::Duration::from_millis(PROPOSE_TIMEOUT_MS),
        raft.client_write(cmd),
    )
    .await
    .map_err(|_| MetadataRaftError::Timeout)?;
    match written {
        Ok(resp) => match resp.data {
            MetadataResponse::Command(result) => Ok(result),
            MetadataResponse::Internal => Err(MetadataRaftError::Fatal(
                "a command applied as an internal entry".into(),
            )),
        },
        Err(openraft::error::RaftError::APIError(
            openraft::error::ClientWriteError::ForwardToLeader(f),
        )) => Err(MetadataRaftError::NotLeader {
            leader: f.leader_id,
        }),
        Err(e) => Err(MetadataRaftError::Fatal(e.to_string())),
    }
}
