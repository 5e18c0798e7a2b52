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
//! The Kafka-facing side (`server::Broker` and `server::handlers::replicated`) reads
//! [`ClusterNode::leader`] and [`ClusterNode::state`], proposes topic changes with
//! [`ClusterNode::propose_retrying`], and on SIGTERM calls [`ClusterNode::hand_over`].

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
use crate::log::LogManager;

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

/// A topic's config overrides by Kafka name.
type TopicConfigs = BTreeMap<String, String>;

struct Shared {
    config: ClusterConfig,
    incarnation: u64,
    raft: MetadataRaft,
    state: watch::Receiver<ClusterState>,
    logs: Arc<LogManager>,
    leaders: Arc<Leaders>,
    /// Partitions this node has a role in: (topic id, leader epoch acted on).
    known: Mutex<BTreeMap<TopicPartition, (u64, i32)>>,
    /// The topic configs last written to this node's partition logs, by topic: (topic id, configs).
    applied_configs: Mutex<BTreeMap<String, (u64, TopicConfigs)>>,
    follows: Mutex<BTreeMap<TopicPartition, Follow>>,
    durable_tasks: Mutex<BTreeMap<TopicPartition, JoinHandle<()>>>,
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
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics
            .current_leader
            .and_then(|l| NodeId::try_from(l).ok())?;
        // A node restarted from a term it led names itself until it hears from the new leader:
        // it is not acting as leader then, so nobody is known yet.
        if leader == self.me() && metrics.state != openraft::ServerState::Leader {
            return None;
        }
        Some(leader)
    }

    /// Proposes through the metadata leader, wherever it is.
    async fn propose(
        &self,
        cmd: MetadataCommand,
    ) -> Result<Result<CommandOutcome, MetadataError>, ClusterError> {
        let mut leader = self
            .metadata_leader()
            .ok_or_else(|| ClusterError::NoController("no leader elected".into()))?;
        if leader == self.me() {
            // A node restarted from a term it led still names itself leader until it hears
            // from the new one; the local Raft knows better and names the real leader.
            match raft::propose(&self.raft, cmd.clone()).await {
                Err(raft::MetadataRaftError::NotLeader { leader: Some(l) })
                    if NodeId::try_from(l).is_ok_and(|l| l != self.me()) =>
                {
                    leader = NodeId::try_from(l).unwrap_or(leader);
                }
                result => return Ok(result?),
            }
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
        self.drop_gone(&state).await;
        self.drop_other_incarnations(&state).await;
        for (tp, p) in state.partitions() {
            if !p.replicas.contains(&self.me()) {
                continue;
            }
            let Some(topic) = state.topics.get(&tp.topic) else {
                continue;
            };
            self.reconcile_partition(&tp, p, topic.id, &topic.configs);
        }
        self.apply_topic_configs(&state).await;
        let now = now_ms();
        let ineligible = state.ineligible_brokers();
        let proposals: Vec<_> = {
            let known = lock(&self.known);
            known
                .keys()
                .filter_map(|tp| self.leaders.get(tp))
                .filter_map(|l| {
                    l.set_ineligible(ineligible.clone());
                    l.tick(now).map(|a| (l, a))
                })
                .collect()
        };
        for (leader, alter) in proposals {
            match self.propose(MetadataCommand::AlterPartition(alter)).await {
                Ok(Ok(CommandOutcome::Partition(state))) => {
                    leader.update_state(&state);
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "ISR change refused by the controller");
                    leader.on_alter_rejected();
                }
                _ => leader.on_alter_rejected(),
            }
        }
    }

    /// Writes changed topic configs (AlterTopicConfigs) into this node's partition logs, also
    /// those altered while this node was down; a partition already holding them is left alone.
    async fn apply_topic_configs(&self, state: &ClusterState) {
        let mut changed = Vec::new();
        {
            // This node's partitions by topic, in one pass over the roles it holds.
            let mut local: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            let known = lock(&self.known);
            for tp in known.keys() {
                local
                    .entry(tp.topic.as_str())
                    .or_default()
                    .push(tp.partition);
            }
            let mut applied = lock(&self.applied_configs);
            applied.retain(|name, _| state.topics.contains_key(name));
            for (name, partitions) in local {
                let Some(topic) = state.topics.get(name) else {
                    continue;
                };
                let done = applied
                    .get(name)
                    .is_some_and(|(id, configs)| *id == topic.id && *configs == topic.configs);
                if !done {
                    applied.insert(name.to_string(), (topic.id, topic.configs.clone()));
                    changed.push((name.to_string(), topic.configs.clone(), partitions));
                }
            }
        }
        for (name, configs, partitions) in changed {
            let logs = self.logs.clone();
            let config = match logs.defaults().with_overrides(&configs) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(topic = %name, error = %e, "cannot apply the topic's configs");
                    continue;
                }
            };
            let topic = name.clone();
            let applied = tokio::task::spawn_blocking(move || {
                let wanted = config.to_props();
                partitions
                    .into_iter()
                    .filter(|&p| {
                        logs.partition(&topic, p)
                            .and_then(|part| part.config().ok())
                            .is_none_or(|c| c.to_props() != wanted)
                    })
                    .map(|p| logs.set_config(&topic, p, config.clone()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
            match applied {
                Ok(Ok(done)) if !done.is_empty() => {
                    tracing::info!(topic = %name, partitions = done.len(), "applied altered topic configs")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(topic = %name, error = %e, "cannot apply topic configs")
                }
                Err(e) => tracing::error!(topic = %name, error = %e, "config task failed"),
            }
        }
    }

    /// Leaves and deletes the replicas of topics deleted (or deleted and created again) and of
    /// partitions no longer assigned here.
    async fn drop_gone(&self, state: &ClusterState) {
        let gone: Vec<TopicPartition> = lock(&self.known)
            .iter()
            .filter(|(tp, (id, _))| {
                let assigned = state.topics.get(&tp.topic).and_then(|t| {
                    let p = t.partitions.get(usize::try_from(tp.partition).ok()?)?;
                    Some(t.id == *id && p.replicas.contains(&self.me()))
                });
                assigned != Some(true)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in gone {
            self.leave(&tp);
            lock(&self.known).remove(&tp);
            let logs = self.logs.clone();
            let (topic, partition) = (tp.topic.clone(), tp.partition);
            let deleted =
                tokio::task::spawn_blocking(move || logs.delete_partition(&topic, partition)).await;
            match deleted {
                Ok(Ok(())) => tracing::info!(%tp, "deleted the replica of a removed partition"),
                Ok(Err(e)) => tracing::error!(%tp, error = %e, "cannot delete a removed replica"),
                Err(e) => tracing::error!(%tp, error = %e, "replica deletion task failed"),
            }
        }
    }

    /// Deletes the local replicas, not yet taken up in this run, that belong to another
    /// incarnation of their topic: the topic was deleted while this node was down and created
    /// again under the same name (the stamp differs from the metadata's topic id). Their records
    /// would otherwise pass for the new topic's at the same offsets. An unstamped replica (a data
    /// dir from before stamps) is stamped as this incarnation's.
    async fn drop_other_incarnations(&self, state: &ClusterState) {
        let candidates: Vec<(TopicPartition, u64)> = {
            let known = lock(&self.known);
            state
                .partitions()
                .filter(|(tp, p)| p.replicas.contains(&self.me()) && !known.contains_key(tp))
                .filter_map(|(tp, _)| {
                    let id = state.topics.get(&tp.topic)?.id;
                    self.logs.partition(&tp.topic, tp.partition)?;
                    Some((tp, id))
                })
                .collect()
        };
        for (tp, id) in candidates {
            let logs = self.logs.clone();
            let checked = tokio::task::spawn_blocking(move || {
                match logs.topic_id(&tp.topic, tp.partition)? {
                    Some(stamped) if stamped != id => {
                        tracing::warn!(%tp, stamped, id,
                            "a replica of a deleted topic of the same name: deleting it");
                        logs.delete_partition(&tp.topic, tp.partition)
                    }
                    Some(_) => Ok(()),
                    None => logs.stamp_topic_id(&tp.topic, tp.partition, id),
                }
            })
            .await;
            match checked {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot check a replica's topic id"),
                Err(e) => tracing::error!(error = %e, "topic id check task failed"),
            }
        }
    }

    /// Stops leading or following `tp`; returns the last high watermark and fetch id known.
    fn leave(&self, tp: &TopicPartition) -> (i64, u64) {
        let mut hw = 0;
        let mut next_fetch_id = 0;
        if let Some(f) = lock(&self.follows).remove(tp) {
            let _ = f.stop.send(true);
            hw = f.replica.high_watermark().unwrap_or(0);
            next_fetch_id = f.replica.next_fetch_id();
        }
        if let Some(task) = lock(&self.durable_tasks).remove(tp) {
            task.abort();
        }
        if let Some(old) = self.leaders.remove(tp) {
            hw = old.high_watermark();
            old.resign();
        }
        (hw, next_fetch_id)
    }

    fn reconcile_partition(
        self: &Arc<Self>,
        tp: &TopicPartition,
        p: &PartitionState,
        topic_id: u64,
        configs: &BTreeMap<String, String>,
    ) {
        let known = lock(&self.known).get(tp).copied();
        if let Some((id, epoch)) = known {
            if id == topic_id && epoch > p.leader_epoch {
                return;
            }
            if id == topic_id && epoch == p.leader_epoch {
                if let Some(l) = self.leaders.get(tp) {
                    l.update_state(p);
                }
                return;
            }
        }
        let partition = match self.logs.partition(&tp.topic, tp.partition) {
            Some(part) => part,
            None => {
                let config = self
                    .logs
                    .defaults()
                    .with_overrides(configs)
                    .unwrap_or_else(|_| self.logs.defaults().clone());
                match self.logs.create_partition(&tp.topic, tp.partition, config) {
                    Ok(part) => {
                        if let Err(e) = self.logs.stamp_topic_id(&tp.topic, tp.partition, topic_id)
                        {
                            // Unstamped, it is taken as this incarnation's at the next start.
                            tracing::warn!(%tp, error = %e, "cannot stamp the topic id");
                        }
                        part
                    }
                    Err(e) => {
                        tracing::error!(%tp, error = %e, "cannot create the partition log");
                        return;
                    }
                }
            }
        };
        lock(&self.known).insert(tp.clone(), (topic_id, p.leader_epoch));
        // Leave the previous role: stop following, or resign (waiting producers get NOT_LEADER).
        let (hw, next_fetch_id) = self.leave(tp);
        if p.leader == self.me() {
            match LeaderReplica::new(partition, self.me(), p, self.config.leader, now_ms(), hw) {
                Ok(l) => {
                    tracing::info!(%tp, epoch = p.leader_epoch, "leading");
                    let l = Arc::new(l);
                    let task = tokio::spawn(LeaderReplica::follow_durable(Arc::downgrade(&l)));
                    lock(&self.durable_tasks).insert(tp.clone(), task);
                    // A leader's own durable offset bounds the high watermark.
                    l.partition().sync_unsynced_tail();
                    self.leaders.insert(tp.clone(), topic_id, l);
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
            tokio::spawn(run_follower(
                replica.clone(),
                client,
                tp.clone(),
                topic_id,
                stop_rx,
            ));
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
        let addrs = config
            .peers
            .iter()
            .filter_map(|(&id, addr)| Some((u64::try_from(id).ok()?, addr.clone())))
            .collect();
        let node = raft::open_node(
            id,
            &config.metadata_dir,
            raft::default_config()?,
            TcpRaftNetwork::with_addrs(addrs),
        )
        .await?;
        let leaders = Arc::new(Leaders::new());
        let shared = Arc::new(Shared {
            incarnation: fastrand::u64(1..u64::MAX),
            raft: node.raft.clone(),
            state: node.state,
            logs,
            leaders: leaders.clone(),
            known: Mutex::new(BTreeMap::new()),
            applied_configs: Mutex::new(BTreeMap::new()),
            follows: Mutex::new(BTreeMap::new()),
            durable_tasks: Mutex::new(BTreeMap::new()),
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

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.shared.me()
    }

    /// The configuration the node started with.
    pub fn config(&self) -> &ClusterConfig {
        &self.shared.config
    }

    /// The leadership of `tp` if this node leads it now.
    pub fn leader(&self, tp: &TopicPartition) -> Option<Arc<LeaderReplica>> {
        self.shared.leaders.get(tp).filter(|l| !l.is_resigned())
    }

    /// Proposes `cmd`, retrying while no metadata leader is reachable (an election in progress),
    /// until `deadline` passes. A command whose answer was lost may have been applied: callers
    /// treat "already done" refusals accordingly.
    pub async fn propose_retrying(
        &self,
        cmd: MetadataCommand,
        deadline: Duration,
    ) -> Result<Result<CommandOutcome, MetadataError>, ClusterError> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            match self.shared.propose(cmd.clone()).await {
                Err(e) if tokio::time::Instant::now() < until => {
                    tracing::debug!(error = %e, "proposal failed; retrying");
                    tokio::time::sleep(Duration::from_millis(LOOP_INTERVAL_MS)).await;
                }
                other => return other,
            }
        }
    }

    /// Waits until this node has applied a state satisfying `pred`, or `deadline` passes;
    /// returns whether it did.
    pub async fn wait_applied(
        &self,
        deadline: Duration,
        pred: impl Fn(&ClusterState) -> bool,
    ) -> bool {
        let mut rx = self.shared.state.clone();
        let applied = tokio::time::timeout(deadline, rx.wait_for(|s| pred(s)))
            .await
            .is_ok_and(|r| r.is_ok());
        applied
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

    /// Clean shutdown: hands leaderships over ([`Self::hand_over`]), then stops.
    pub async fn shutdown(&self, deadline: Duration) {
        self.hand_over(deadline).await;
        self.stop().await;
    }

    /// Controlled shutdown's first half: asks the controller to move this node's leaderships to
    /// other in-sync replicas (retrying until none is left or `deadline` passes) and waits until
    /// this node has applied that, so clients are redirected before it stops. Returns whether
    /// every leadership moved.
    pub async fn hand_over(&self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        let cmd = MetadataCommand::ControlledShutdown {
            id: self.shared.me(),
            incarnation: self.shared.incarnation,
        };
        let me = self.shared.me();
        while tokio::time::Instant::now() < until {
            if let Ok(Ok(CommandOutcome::RemainingLeaderships(0))) =
                self.shared.propose(cmd.clone()).await
            {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                return self
                    .wait_applied(left, |s| s.partitions().all(|(_, p)| p.leader != me))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(LOOP_INTERVAL_MS)).await;
        }
        false
    }

    /// Stops at once, as a crash would (nothing handed over); acks=all appends still waiting
    /// get NOT_LEADER_OR_FOLLOWER.
    pub async fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
        for (_, f) in std::mem::take(&mut *lock(&self.shared.follows)) {
            let _ = f.stop.send(true);
        }
        for (_, t) in std::mem::take(&mut *lock(&self.shared.durable_tasks)) {
            t.abort();
        }
        let tps: Vec<TopicPartition> = lock(&self.shared.known).keys().cloned().collect();
        for tp in tps {
            if let Some(l) = self.shared.leaders.remove(&tp) {
                l.resign();
            }
        }
        let _ = self.shared.raft.shutdown().await;
    }
}
