//! An in-process transport between metadata Raft nodes: each call goes straight to the target
//! node's handle. Nodes can be cut off to simulate a partition. Used by the tests; `sluiced` uses
//! `peer::transport::TcpRaftNetwork`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};

use super::{MetadataRaft, TypeConfig};

#[derive(Default)]
struct Routes {
    nodes: BTreeMap<u64, MetadataRaft>,
    cut: BTreeSet<u64>,
}

/// The shared switchboard; clone it into every node's [`MemRouter::factory`].
#[derive(Clone, Default)]
pub struct MemRouter {
    routes: Arc<Mutex<Routes>>,
}

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable")]
struct Down(u64);

impl MemRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `id` reachable through `raft`.
    pub fn add(&self, id: u64, raft: MetadataRaft) {
        if let Ok(mut r) = self.routes.lock() {
            r.nodes.insert(id, raft);
        }
    }

    /// Makes `id` unreachable (it was shut down).
    pub fn remove(&self, id: u64) {
        if let Ok(mut r) = self.routes.lock() {
            r.nodes.remove(&id);
        }
    }

    /// Cuts `id` off from everyone (or reconnects it).
    pub fn set_cut(&self, id: u64, cut: bool) {
        if let Ok(mut r) = self.routes.lock() {
            if cut {
                r.cut.insert(id);
            } else {
                r.cut.remove(&id);
            }
        }
    }

    /// The network factory for node `from`.
    pub fn factory(&self, from: u64) -> MemNetwork {
        MemNetwork {
            from,
            router: self.clone(),
            target: 0,
        }
    }

    fn route(&self, from: u64, to: u64) -> Result<MetadataRaft, Unreachable> {
        let r = self
            .routes
            .lock()
            .map_err(|_| Unreachable::new(&Down(to)))?;
        if r.cut.contains(&from) || r.cut.contains(&to) {
            return Err(Unreachable::new(&Down(to)));
        }
        r.nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&Down(to)))
    }
}

/// One node's view of the [`MemRouter`]; also the connection to one target.
pub struct MemNetwork {
    from: u64,
    target: u64,
    router: MemRouter,
}

impl RaftNetworkFactory<TypeConfig> for MemNetwork {
    type Network = MemNetwork;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Self::Network {
        MemNetwork {
            from: self.from,
            target,
            router: self.router.clone(),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl RaftNetwork<TypeConfig> for MemNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let raft = self.router.route(self.from, self.target)?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let raft = self.router.route(self.from, self.target)?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        let raft = self.router.route(self.from, self.target)?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}
