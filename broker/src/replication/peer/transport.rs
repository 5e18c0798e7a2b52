//! The peer protocol over TCP: [`serve`] answers requests with a [`PeerHandler`], [`PeerClient`]
//! calls one peer (one connection, redialled after any failure), and [`TcpRaftNetwork`] is the
//! openraft network for the metadata log on top of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{
    decode_frame, encode_frame, PeerBody, PeerError, PeerFrame, PeerRequest, PeerResponse,
};
use crate::replication::limits::{PEER_CALL_TIMEOUT_MS, PEER_IDLE_CONNECTIONS_MAX};
use crate::replication::raft::{MetadataRaft, TypeConfig};

/// A boxed future, as handlers return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Serves peer requests: the answer and the raw bytes (record batches) that follow it.
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, req: PeerRequest) -> BoxFuture<'_, (PeerResponse, Vec<Bytes>)>;
}

/// Serves the metadata Raft's RPCs; anything else is answered `Unavailable`.
pub struct RaftHandler {
    raft: MetadataRaft,
}

impl RaftHandler {
    /// Serves `raft`.
    pub fn new(raft: MetadataRaft) -> Self {
        Self { raft }
    }

    /// Answers a Raft request; `None` for other requests.
    pub async fn handle_raft(&self, req: PeerRequest) -> Result<PeerResponse, PeerRequest> {
        Ok(match req {
            PeerRequest::RaftAppend(r) => {
                PeerResponse::RaftAppend(self.raft.append_entries(r).await)
            }
            PeerRequest::RaftVote(r) => PeerResponse::RaftVote(self.raft.vote(r).await),
            PeerRequest::RaftInstallSnapshot(r) => {
                PeerResponse::RaftInstallSnapshot(self.raft.install_snapshot(r).await)
            }
            other => return Err(other),
        })
    }
}

impl PeerHandler for RaftHandler {
    fn handle(&self, req: PeerRequest) -> BoxFuture<'_, (PeerResponse, Vec<Bytes>)> {
        Box::pin(async move {
            match self.handle_raft(req).await {
                Ok(resp) => (resp, Vec::new()),
                Err(_) => (
                    PeerResponse::Unavailable("this peer serves only the metadata log".into()),
                    Vec::new(),
                ),
            }
        })
    }
}

/// Accepts peer connections forever, one task per connection, requests answered in order.
///
/// The connection tasks belong to this future: dropping or aborting it (a node stopping) closes
/// every connection it accepted. Otherwise a stopped node would go on answering its peers' pooled
/// connections with its stopped Raft and its stale state, and a node restarted in the same
/// process on the same port would not hear them: heartbeats lost (the peers fenced), proposals
/// refused.
pub async fn serve(listener: TcpListener, handler: Arc<dyn PeerHandler>) -> std::io::Result<()> {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = accepted?;
                let handler = handler.clone();
                connections.spawn(async move {
                    if let Err(e) = serve_connection(stream, handler).await {
                        tracing::debug!(%remote, error = %e, "peer connection closed");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    handler: Arc<dyn PeerHandler>,
) -> Result<(), PeerError> {
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::new();
    loop {
        while let Some((frame, _tail)) = decode_frame(&mut buf)? {
            let PeerBody::Request(req) = frame.body else {
                return Err(PeerError::Unexpected(
                    "a response where a request belongs".into(),
                ));
            };
            let (resp, tail) = handler.handle(req).await;
            let answer = PeerFrame {
                correlation_id: frame.correlation_id,
                body: PeerBody::Response(resp),
            };
            out.clear();
            encode_frame(&answer, &tail, &mut out)?;
            stream.write_all(&out).await?;
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

struct Connection {
    stream: TcpStream,
    buf: BytesMut,
}

/// A client for one peer. Each call has a connection to itself, taken from a pool of idle ones
/// (or dialled) and put back after a clean answer: a leader holds an idle partition's fetch for up
/// to `REPLICA_FETCH_WAIT_MS`, and a single shared connection would make every other call to
/// that peer (other partitions' fetches, heartbeats, Raft RPCs) wait behind it. A connection
/// that failed or timed out is dropped, never reused.
pub struct PeerClient {
    addr: String,
    idle: Mutex<Vec<Connection>>,
    next_id: AtomicU64,
    timeout: Duration,
}

impl PeerClient {
    /// A client for the peer at `addr` (host:port); nothing is dialled until the first call.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            timeout: Duration::from_millis(PEER_CALL_TIMEOUT_MS),
        }
    }

    /// Sends `req` and waits for its answer and trailing bytes.
    pub async fn call(&self, req: PeerRequest) -> Result<(PeerResponse, Bytes), PeerError> {
        let mut conn = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let result = tokio::time::timeout(self.timeout, self.call_on(&mut conn, req))
            .await
            .unwrap_or(Err(PeerError::Timeout));
        // After a failure, whatever state the stream is in cannot be trusted: it is dropped.
        if let (Ok(_), Some(c)) = (&result, conn) {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < PEER_IDLE_CONNECTIONS_MAX {
                    idle.push(c);
                }
            }
        }
        result
    }

    async fn call_on(
        &self,
        conn: &mut Option<Connection>,
        req: PeerRequest,
    ) -> Result<(PeerResponse, Bytes), PeerError> {
        if conn.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            *conn = Some(Connection {
                stream,
                buf: BytesMut::with_capacity(64 * 1024),
            });
        }
        let Some(c) = conn.as_mut() else {
            return Err(PeerError::Unexpected("no connection".into()));
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut out = BytesMut::new();
        encode_frame(
            &PeerFrame {
                correlation_id: id,
                body: PeerBody::Request(req),
            },
            &[],
            &mut out,
        )?;
        c.stream.write_all(&out).await?;
        loop {
            if let Some((frame, tail)) = decode_frame(&mut c.buf)? {
                if frame.correlation_id != id {
                    return Err(PeerError::Unexpected(format!(
                        "answer {} to call {id}",
                        frame.correlation_id
                    )));
                }
                return match frame.body {
                    PeerBody::Response(resp) => Ok((resp, tail)),
                    PeerBody::Request(_) => Err(PeerError::Unexpected(
                        "a request where an answer belongs".into(),
                    )),
                };
            }
            if c.stream.read_buf(&mut c.buf).await? == 0 {
                return Err(PeerError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}

/// openraft's network factory over [`PeerClient`]s. A node is reached at the address this node
/// was given for it (`--peers`), else at the address in the Raft membership (the initialising
/// node's `--peers`), so each node's own peer list decides how it reaches the others.
#[derive(Clone, Default)]
pub struct TcpRaftNetwork {
    addrs: Arc<std::collections::BTreeMap<u64, String>>,
}

impl TcpRaftNetwork {
    /// A network dialling `addrs` by node id (others at their membership address).
    pub fn with_addrs(addrs: std::collections::BTreeMap<u64, String>) -> Self {
        Self {
            addrs: Arc::new(addrs),
        }
    }
}

/// The Raft connection to one peer.
pub struct TcpRaftConnection {
    target: u64,
    client: PeerClient,
}

impl RaftNetworkFactory<TypeConfig> for TcpRaftNetwork {
    type Network = TcpRaftConnection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Self::Network {
        TcpRaftConnection {
            target,
            client: PeerClient::new(
                self.addrs
                    .get(&target)
                    .cloned()
                    .unwrap_or_else(|| node.addr.clone()),
            ),
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

fn unexpected<E: std::error::Error>(
    resp: &PeerResponse,
) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    let e = PeerError::Unexpected(format!("{resp:?}"));
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetwork<TypeConfig> for TcpRaftConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let (resp, _) = self
            .client
            .call(PeerRequest::RaftAppend(rpc))
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        match resp {
            PeerResponse::RaftAppend(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let (resp, _) = self
            .client
            .call(PeerRequest::RaftInstallSnapshot(rpc))
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        match resp {
            PeerResponse::RaftInstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        let (resp, _) = self
            .client
            .call(PeerRequest::RaftVote(rpc))
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        match resp {
            PeerResponse::RaftVote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(&other)),
        }
    }
}
