//! A cluster node: the runtime that turns the replicated metadata into running replicas.
//!
//! Every node is a metadata Raft voter (combined mode, as KRaft's `process.roles=broker,controller`)
//! and a broker. [`ClusterNode::start`] opens the metadata log, serves the peer protocol (Raft RPCs,
//! proposals forwarded to the metadata leader, heartbeats, follower fetches) and runs three loops:
//! - controller: on the metadata leader only, [`Liveness`] fences brokers whose heartbeats stopped
//!   and unfences returning ones, through the log;
//! - heartbeat: registers this incarnation, then heartbeats the active controller;
//! - reconcile: follows every change of [`ClusterState`]: becomes leader (a [`LeaderReplica`] in
//!   [`Leaders`]) or follower (a [`run_follower`] task) of each assigned partition on every newer
//!   leader epoch, takes ISR updates, and sends the leaders' ISR proposals to the controller.
//!
//! The Kafka-facing side (Produce, Fetch and Metadata handlers in `server`) reads [`Self::leaders`]
//! and [`Self::state`]; that wiring is not written yet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::controller::{ClusterState, CommandOutcome, Liveness, MetadataCommand, MetadataError};
use super::fetcher::{now_ms, run_follower, Leaders, ReplicaHandler};
use super::leader::LeaderConfig;
use super::limits::{BROKER_HEARTBEAT_INTERVAL_MS, BROKER_SESSION_TIMEOUT_MS};
use super::message::{PartitionState, TopicPartition};
use super::peer::transport::{
    serve, BoxFuture, PeerClient, PeerHandler, RaftHandler, TcpRaftNetwork,
};
use super::peer::{PeerRequest, PeerResponse};
use super::raft::{self, MetadataRaft, MetadataRaftError};
use super::replica::{FollowerReplica, LeaderReplica};
use super::{NodeId, NO_NODE};
use crate::log::{LogConfig, LogManager};

/// How often the controller and reconcile loops run when nothing wakes them.
const LOOP_INTERVAL_MS: u64 = 50;
/// How long a new active controller waits to hear from a broker before fencing it: three
/// heartbeat intervals (live brokers find the new controller within one).
const FAILOVER_GRACE_MS: u64 = 3 * BROKER_HEARTBEAT_INTERVAL_MS;
/// Directory (inside the data dir) of the metadata log.
pub const METADATA_DIR: &str = "__cluster_metadata";

/// What a node needs to join the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// Every node's peer address, this one's included (`--peers`).
    pub peers: BTreeMap<NodeId, String>,
    /// The address clients are told to use for this node.
    pub client_addr: String,
    /// Where the metadata log lives (`<data dir>/__cluster_metadata`).
    pub metadata_dir: PathBuf,
    /// Leader-side replication settings.
    pub leader: LeaderConfig,
    /// Broker session timeout at the controller.
    pub session_timeout_ms: u64,
}

impl ClusterConfig {
    /// A config with default timings.
    pub fn new(
        node_id: NodeId,
        peers: BTreeMap<NodeId, String>,
        client_addr: String,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            node_id,
            peers,
            client_addr,
            metadata_dir: data_dir.join(METADATA_DIR),
            leader: LeaderConfig::default(),
            session_timeout_ms: BROKER_SESSION_TIMEOUT_MS,
        }
    }
}

/// Why a node could not start or a proposal failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The metadata Raft failed.
    #[error(transparent)]
    Raft(#[from] MetadataRaftError),
    /// This node's id is not in `--peers`.
    #[error("node {0} is not in the peer list")]
    NotAPeer(NodeId),
    /// No metadata leader is known or reachable.
    #[error("no metadata leader reachable: {0}")]
    NoController(String),
}

struct Follow {
    stop: watch::Sender<bool>,
    replica: Arc<FollowerReplica>,
}

struct Shared {
    config: ClusterConfig,
    incarnation: u64,
    raft: MetadataRaft,
    state: watch::Receiver<ClusterState>,
    logs: Arc<LogManager>,
    leaders: Arc<Leaders>,
    leader_epochs: Mutex<BTreeMap<TopicPartition, i32>>,
    follows: Mutex<BTreeMap<TopicPartition, Follow>>,
    clients: Mutex<BTreeMap<NodeId, Arc<PeerClient>>>,
    liveness: Mutex<Option<Liveness>>,
    fetch_handler: ReplicaHandler,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn me(&self) -> NodeId {
        self.config.node_id
    }

    fn client(&self, id: NodeId) -> Option<Arc<PeerClient>> {
        let addr = self.config.peers.get(&id)?;
        let mut clients = lock(&self.clients);
        Some(
            clients
                .entry(id)
                .or_insert_with(|| Arc::new(PeerClient::new(addr.clone())))
                .clone(),
        )
    }

    fn metadata_leader(&self) -> Option<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(|l| NodeId::try_from(l).ok())
    }

    /// Proposes through the metadata leader, wherever it is.
    async fn propose(
        &self,
        cmd: MetadataCommand,
    ) -> Result<Result<CommandOutcome, MetadataError>, ClusterError> {
        let leader = self
            .metadata_leader()
            .ok_or_else(|| ClusterError::NoController("no leader elected".into()))?;
        if leader == self.me() {
            return Ok(raft::propose(&self.raft, cmd).await?);
        }
        let client = self
            .client(leader)
            .ok_or(ClusterError::NoController(format!("unknown node {leader}")))?;
        match client.call(PeerRequest::Propose(cmd)).await {
            Ok((PeerResponse::Proposed(Ok(r)), _)) => Ok(r),
            Ok((PeerResponse::Proposed(Err(e)), _)) => Err(ClusterError::NoController(e)),
            Ok((other, _)) => Err(ClusterError::NoController(format!("{other:?}"))),
            Err(e) => Err(ClusterError::NoController(e.to_string())),
        }
    }

    /// One pass of the reconcile loop: roles from the current state, leader ticks.
    async fn reconcile(self: &Arc<Self>) {
        let state = self.state.borrow().clone();
        for (tp, p) in state.partitions() {
            if !p.replicas.contains(&self.me()) {
                continue;
            }
            let configs = state
                .topics
                .get(&tp.topic)
                .map(|t| t.configs.clone())
                .unwrap_or_default();
            self.reconcile_partition(&tp, p, &configs);
        }
        let now = now_ms();
        let proposals: Vec<_> = {
            let epochs = lock(&self.leader_epochs);
            epochs
                .keys()
                .filter_map(|tp| self.leaders.get(tp))
                .filter_map(|l| l.tick(now).map(|a| (l, a)))
                .collect()
        };
        for (leader, alter) in proposals {
            match self.propose(MetadataCommand::AlterPartition(alter)).await {
                Ok(Ok(CommandOutcome::Partition(state))) => {
                    leader.update_state(&state);
                }
                _ => leader.on_alter_rejected(),
            }
        }
    }

    fn reconcile_partition(
        self: &Arc<Self>,
        tp: &TopicPartition,
        p: &PartitionState,
        configs: &BTreeMap<String, String>,
    ) {
        let known = lock(&self.leader_epochs).get(tp).copied();
        if known.is_some_and(|e| e > p.leader_epoch) {
            return;
        }
        if known == Some(p.leader_epoch) {
            if let Some(l) = self.leaders.get(tp) {
                l.update_state(p);
            }
            return;
        }
        let partition = match self.logs.partition(&tp.topic, tp.partition) {
            Some(part) => part,
            None => {
                let config = LogConfig::from_props(configs).unwrap_or_default();
                match self.logs.create_partition(&tp.topic, tp.partition, config) {
                    Ok(part) => part,
                    Err(e) => {
                        tracing::error!(%tp, error = %e, "cannot create the partition log");
                        return;
                    }
                }
            }
        };
        lock(&self.leader_epochs).insert(tp.clone(), p.leader_epoch);
        // Leave the previous role: stop following, or resign (waiting producers get NOT_LEADER).
        let mut hw = 0;
        let mut next_fetch_id = 0;
        if let Some(f) = lock(&self.follows).remove(tp) {
            let _ = f.stop.send(true);
            hw = f.replica.high_watermark().unwrap_or(0);
            next_fetch_id = f.replica.next_fetch_id();
        }
        if let Some(old) = self.leaders.remove(tp) {
            hw = old.high_watermark();
            if let Ok(old) = Arc::try_unwrap(old) {
                old.resign();
            }
        }
        if p.leader == self.me() {
            match LeaderReplica::new(partition, self.me(), p, self.config.leader, now_ms(), hw) {
                Ok(l) => {
                    tracing::info!(%tp, epoch = p.leader_epoch, "leading");
                    self.leaders.insert(tp.clone(), Arc::new(l));
                }
                Err(e) => tracing::error!(%tp, error = %e, "cannot lead"),
            }
        } else if p.leader != NO_NODE {
            let Some(client) = self.client(p.leader) else {
                return;
            };
            let replica = Arc::new(FollowerReplica::new(
                partition,
                self.me(),
                p,
                hw,
                next_fetch_id,
            ));
            let (stop, stop_rx) = watch::channel(false);
            tokio::spawn(run_follower(replica.clone(), client, tp.clone(), stop_rx));
            tracing::info!(%tp, epoch = p.leader_epoch, leader = p.leader, "following");
            lock(&self.follows).insert(tp.clone(), Follow { stop, replica });
        }
    }

    /// One pass of the controller loop (the metadata leader only).
    async fn control(&self) {
        let is_leader = self.metadata_leader() == Some(self.me());
        let cmds = {
            let mut liveness = lock(&self.liveness);
            if !is_leader {
                *liveness = None;
                return;
            }
            let state = self.state.borrow().clone();
            let l = liveness.get_or_insert_with(|| {
                Liveness::after_failover(self.config.session_timeout_ms, FAILOVER_GRACE_MS)
            });
            l.on_heartbeat(self.me(), self.incarnation, now_ms());
            l.tick(now_ms(), &state)
        };
        for cmd in cmds {
            tracing::info!(?cmd, "controller decision");
            if let Err(e) = raft::propose(&self.raft, cmd).await {
                tracing::warn!(error = %e, "controller proposal failed");
            }
        }
    }

    async fn heartbeat(&self, registered: &mut bool) {
        if !*registered {
            let cmd = MetadataCommand::RegisterBroker {
                id: self.me(),
                incarnation: self.incarnation,
                client_addr: self.config.client_addr.clone(),
                peer_addr: self
                    .config
                    .peers
                    .get(&self.me())
                    .cloned()
                    .unwrap_or_default(),
            };
            *registered = matches!(self.propose(cmd).await, Ok(Ok(_)));
            if !*registered {
                return;
            }
        }
        let Some(leader) = self.metadata_leader() else {
            return;
        };
        if leader == self.me() {
            if let Some(l) = lock(&self.liveness).as_mut() {
                l.on_heartbeat(self.me(), self.incarnation, now_ms());
            }
            return;
        }
        if let Some(client) = self.client(leader) {
            let _ = client
                .call(PeerRequest::Heartbeat {
                    id: self.me(),
                    incarnation: self.incarnation,
                })
                .await;
        }
    }
}

struct Handler(Arc<Shared>);

impl PeerHandler for Handler {
    fn handle(&self, req: PeerRequest) -> BoxFuture<'_, (PeerResponse, Vec<Bytes>)> {
        Box::pin(async move {
            let shared = &self.0;
            match req {
                PeerRequest::Propose(cmd) => {
                    let r = raft::propose(&shared.raft, cmd)
                        .await
                        .map_err(|e| e.to_string());
                    (PeerResponse::Proposed(r), Vec::new())
                }
                PeerRequest::Heartbeat { id, incarnation } => {
                    let mut liveness = lock(&shared.liveness);
                    let ok = match liveness.as_mut() {
                        Some(l) => {
                            l.on_heartbeat(id, incarnation, now_ms());
                            true
                        }
                        None => false,
                    };
                    (PeerResponse::Heartbeat(ok), Vec::new())
                }
                other => shared.fetch_handler.handle(other).await,
            }
        })
    }
}

/// A running cluster node.
pub struct ClusterNode {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterNode {
    /// Starts the node: metadata Raft over `peer_listener`, the peer server and the loops. The
    /// lowest-numbered node initialises a new cluster's metadata log.
    pub async fn start(
        config: ClusterConfig,
        logs: Arc<LogManager>,
        peer_listener: TcpListener,
    ) -> Result<Self, ClusterError> {
        let me = config.node_id;
        if !config.peers.contains_key(&me) {
            return Err(ClusterError::NotAPeer(me));
        }
        let id = u64::try_from(me).map_err(|_| ClusterError::NotAPeer(me))?;
        let node = raft::open_node(
            id,
            &config.metadata_dir,
            raft::default_config()?,
            TcpRaftNetwork,
        )
        .await?;
        let leaders = Arc::new(Leaders::new());
        let shared = Arc::new(Shared {
            incarnation: fastrand::u64(1..u64::MAX),
            raft: node.raft.clone(),
            state: node.state,
            logs,
            leaders: leaders.clone(),
            leader_epochs: Mutex::new(BTreeMap::new()),
            follows: Mutex::new(BTreeMap::new()),
            clients: Mutex::new(BTreeMap::new()),
            liveness: Mutex::new(None),
            fetch_handler: ReplicaHandler::new(leaders, Some(RaftHandler::new(node.raft.clone()))),
            config,
        });
        let mut tasks = vec![tokio::spawn({
            let handler: Arc<dyn PeerHandler> = Arc::new(Handler(shared.clone()));
            async move {
                if let Err(e) = serve(peer_listener, handler).await {
                    tracing::error!(error = %e, "peer listener failed");
                }
            }
        })];
        let lowest = shared.config.peers.keys().next().copied();
        let initialized = shared
            .raft
            .is_initialized()
            .await
            .map_err(|e| MetadataRaftError::Fatal(e.to_string()))?;
        if lowest == Some(me) && !initialized {
            let members: Vec<(u64, String)> = shared
                .config
                .peers
                .iter()
                .filter_map(|(&id, addr)| Some((u64::try_from(id).ok()?, addr.clone())))
                .collect();
            shared
                .raft
                .initialize(raft::membership(&members))
                .await
                .map_err(|e| MetadataRaftError::Fatal(e.to_string()))?;
        }
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(LOOP_INTERVAL_MS));
            loop {
                tick.tick().await;
                s.control().await;
            }
        }));
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(BROKER_HEARTBEAT_INTERVAL_MS / 2));
            let mut registered = false;
            loop {
                tick.tick().await;
                s.heartbeat(&mut registered).await;
            }
        }));
        let s = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut changes = s.state.clone();
            loop {
                s.reconcile().await;
                let _ = tokio::time::timeout(
                    Duration::from_millis(LOOP_INTERVAL_MS),
                    changes.changed(),
                )
                .await;
            }
        }));
        Ok(Self { shared, tasks })
    }

    /// The partitions this node leads (the produce and fetch paths use these).
    pub fn leaders(&self) -> &Arc<Leaders> {
        &self.shared.leaders
    }

    /// The cluster metadata as last applied here.
    pub fn state(&self) -> watch::Receiver<ClusterState> {
        self.shared.state.clone()
    }

    /// The metadata leader (active controller), if known.
    pub fn metadata_leader(&self) -> Option<NodeId> {
        self.shared.metadata_leader()
    }

    /// Proposes a metadata command through the metadata leader (CreateTopic, ...).
    pub async fn propose(
        &self,
        cmd: MetadataCommand,
    ) -> Result<Result<CommandOutcome, MetadataError>, ClusterError> {
        self.shared.propose(cmd).await
    }

    /// Clean shutdown: asks the controller to move this node's leaderships away (retrying until
    /// none is left or `deadline` passes), then stops.
    pub async fn shutdown(self, deadline: Duration) {
        let until = tokio::time::Instant::now() + deadline;
        let cmd = MetadataCommand::ControlledShutdown {
            id: self.shared.me(),
            incarnation: self.shared.incarnation,
        };
        while tokio::time::Instant::now() < until {
            if let Ok(Ok(CommandOutcome::RemainingLeaderships(0))) =
                self.shared.propose(cmd.clone()).await
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(LOOP_INTERVAL_MS)).await;
        }
        self.stop().await;
    }

    /// Stops at once, as a crash would (nothing handed over).
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        for (_, f) in std::mem::take(&mut *lock(&self.shared.follows)) {
            let _ = f.stop.send(true);
        }
        let _ = self.shared.raft.shutdown().await;
    }
}
