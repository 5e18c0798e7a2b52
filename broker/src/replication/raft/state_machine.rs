//! The metadata state machine: [`ClusterState`] advanced by committed [`MetadataCommand`]s, with
//! snapshots in `raft-snapshot` (an atomic checksummed file holding the snapshot metadata and the
//! state as JSON). After a restart the state comes back from the snapshot and openraft re-applies
//! the committed log entries after it.
//!
//! [`MetadataCommand`]: crate::replication::controller::MetadataCommand

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::file::{self, FileError};
use super::{MetadataResponse, TypeConfig};
use crate::replication::controller::ClusterState;

const SNAPSHOT_FILE: &str = "raft-snapshot";

type StoreResult<T> = Result<T, StorageError<u64>>;

/// What a snapshot file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<u64, BasicNode>,
    state: ClusterState,
}

/// Errors opening the state machine.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    /// The snapshot file is unreadable or corrupt.
    #[error(transparent)]
    File(#[from] FileError),
    /// The snapshot decoded to nonsense.
    #[error("{0}: undecodable snapshot")]
    Decode(String),
}

/// The metadata state machine.
pub struct StateMachine {
    dir: PathBuf,
    state: ClusterState,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, BasicNode>,
    snapshot_seq: u64,
    tx: watch::Sender<ClusterState>,
}

fn read_snapshot(dir: &Path) -> Result<Option<SnapshotFile>, StateMachineError> {
    let path = dir.join(SNAPSHOT_FILE);
    match file::read_checked(&path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| StateMachineError::Decode(path.display().to_string())),
    }
}

impl StateMachine {
    /// Opens the state machine in `dir` from its last snapshot, if any; the receiver sees every
    /// applied state.
    pub fn open(dir: &Path) -> Result<(Self, watch::Receiver<ClusterState>), StateMachineError> {
        let snap = read_snapshot(dir)?;
        let (state, last_applied, last_membership) = match snap {
            Some(s) => (s.state, s.meta.last_log_id, s.meta.last_membership),
            None => (ClusterState::new(), None, StoredMembership::default()),
        };
        let (tx, rx) = watch::channel(state.clone());
        Ok((
            Self {
                dir: dir.to_owned(),
                state,
                last_applied,
                last_membership,
                snapshot_seq: 0,
                tx,
            },
            rx,
        ))
    }
}

/// Builds a snapshot of the state as it was when the builder was made.
pub struct SnapshotBuilder {
    dir: PathBuf,
    file: SnapshotFile,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let bytes = serde_json::to_vec(&self.file)
            .map_err(|e| StorageIOError::write_snapshot(None, &io::Error::other(e)))?;
        file::write_atomic(&self.dir.join(SNAPSHOT_FILE), &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(self.file.meta.signature()), &e))?;
        Ok(Snapshot {
            meta: self.file.meta.clone(),
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<MetadataResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            out.push(match entry.payload {
                EntryPayload::Blank => MetadataResponse::Internal,
                EntryPayload::Normal(cmd) => MetadataResponse::Command(self.state.apply(&cmd)),
                EntryPayload::Membership(m) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    MetadataResponse::Internal
                }
            });
        }
        self.tx.send_replace(self.state.clone());
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        let last = self.last_applied;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.snapshot_seq),
            None => format!("none-{}", self.snapshot_seq),
        };
        SnapshotBuilder {
            dir: self.dir.clone(),
            file: SnapshotFile {
                meta: SnapshotMeta {
                    last_log_id: last,
                    last_membership: self.last_membership.clone(),
                    snapshot_id,
                },
                state: self.state.clone(),
            },
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), &io::Error::other(e))
        })?;
        file::write_atomic(&self.dir.join(SNAPSHOT_FILE), &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.state = file.state;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.tx.send_replace(self.state.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = match file::read_checked(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(StorageIOError::read_snapshot(None, &e).into()),
        };
        let file: SnapshotFile = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(None, &io::Error::other(e)))?;
        Ok(Some(Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
