//! Several real `sluiced` processes forming one cluster on loopback: node ids 1..=N, each with an
//! ephemeral client port and a peer port reserved up front, below the ephemeral range (every
//! node's `--peers` must name all of them). Dropping a [`Cluster`] kills every process (each is
//! a [`Broker`]).
//!
//! With [`ClusterBuilder::proxied`], every ordered pair of nodes talks through its own
//! [`Proxy`] (node i's `--peers` names the proxy i→j for node j), so a test can cut any link in
//! either direction: [`Cluster::isolate`] cuts every link to and from one node, a network
//! partition that leaves loopback and the processes untouched.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

use std::time::Duration;

use sluice_client::cluster::Target;
use sluice_protocol::wire::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use sluice_protocol::wire::{Request, Response};

use crate::broker::Broker;
use crate::proxy::Proxy;

/// Options for a [`Cluster`].
#[derive(Debug)]
pub struct ClusterBuilder {
    nodes: i32,
    args: Vec<String>,
    proxied: bool,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            nodes: 3,
            args: Vec::new(),
            proxied: false,
        }
    }
}

/// Lowest port [`peer_port`] hands out.
const PEER_PORT_MIN: u32 = 10_000;

/// A port for a node's peer listener: free right now on loopback, and below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`) when that leaves room.
///
/// The other nodes dial a node's peer port before it listens, and every dial takes an ephemeral
/// source port. A peer port inside that range can be taken before the node binds it, by any
/// outgoing connection or by a dial to itself (a connection to 127.0.0.1:P from port P connects
/// to itself). That happened: a node failed to start with "Address already in use". Ports are
/// probed from a per-process starting point, so test processes running at once rarely probe the
/// same ones.
fn peer_port() -> u16 {
    static PROBED: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > PEER_PORT_MIN + 1_000 {
        let span = ephemeral_low - PEER_PORT_MIN;
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let offset = start.wrapping_add(PROBED.fetch_add(1, Ordering::Relaxed)) % span;
            let Ok(port) = u16::try_from(PEER_PORT_MIN + offset) else {
                continue;
            };
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("reserve a port")
        .port()
}

impl ClusterBuilder {
    /// Number of nodes (default 3).
    pub fn nodes(mut self, n: i32) -> ClusterBuilder {
        self.nodes = n;
        self
    }

    /// An extra `sluiced` argument for every node.
    pub fn arg(mut self, arg: impl Into<String>) -> ClusterBuilder {
        self.args.push(arg.into());
        self
    }

    /// Routes every broker-to-broker link through a [`Proxy`] the test can cut.
    pub fn proxied(mut self) -> ClusterBuilder {
        self.proxied = true;
        self
    }

    /// Starts every node and waits for each to listen.
    pub fn start(self) -> Cluster {
        let ids: Vec<i32> = (1..=self.nodes).collect();
        let peer_addrs: BTreeMap<i32, SocketAddr> = ids
            .iter()
            .map(|&id| (id, SocketAddr::from(([127, 0, 0, 1], peer_port()))))
            .collect();
        let mut links = BTreeMap::new();
        if self.proxied {
            for &from in &ids {
                for &to in &ids {
                    if from != to {
                        links.insert((from, to), Proxy::start(peer_addrs[&to]));
                    }
                }
            }
        }
        let mut nodes = BTreeMap::new();
        for &id in &ids {
            let peers = ids
                .iter()
                .map(|&to| {
                    let addr = links
                        .get(&(id, to))
                        .map_or(peer_addrs[&to], |p: &Proxy| p.addr());
                    format!("{to}@{addr}")
                })
                .collect::<Vec<_>>()
                .join(",");
            let mut builder = Broker::builder()
                .arg("--node-id")
                .arg(id.to_string())
                .arg("--peer-listen")
                .arg(peer_addrs[&id].to_string())
                .arg("--peers")
                .arg(peers);
            for arg in &self.args {
                builder = builder.arg(arg.clone());
            }
            nodes.insert(id, builder.start());
        }
        Cluster { nodes, links }
    }
}

/// Running cluster nodes (see the module doc).
#[derive(Debug)]
pub struct Cluster {
    nodes: BTreeMap<i32, Broker>,
    links: BTreeMap<(i32, i32), Proxy>,
}

impl Cluster {
    /// A three-node cluster with default settings.
    pub fn start() -> Cluster {
        ClusterBuilder::default().start()
    }

    /// Options before starting.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.keys().copied().collect()
    }

    /// Node `id`.
    pub fn node(&self, id: i32) -> &Broker {
        &self.nodes[&id]
    }

    /// Node `id`, to kill or restart it.
    pub fn node_mut(&mut self, id: i32) -> &mut Broker {
        self.nodes.get_mut(&id).expect("no such node")
    }

    /// Every node's client address, comma-separated (a client's bootstrap list).
    pub fn bootstrap(&self) -> String {
        self.bootstrap_of(&self.ids())
    }

    /// The client addresses of the nodes running now.
    pub fn running_addrs(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.pid().is_some())
            .map(Broker::bootstrap)
            .collect()
    }

    /// The client addresses of `ids`.
    pub fn addrs_of(&self, ids: &[i32]) -> Vec<String> {
        ids.iter().map(|id| self.nodes[id].bootstrap()).collect()
    }

    /// The client addresses of `ids`, comma-separated.
    pub fn bootstrap_of(&self, ids: &[i32]) -> String {
        ids.iter()
            .map(|id| self.nodes[id].bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Cuts every link to and from node `id` (needs [`ClusterBuilder::proxied`]).
    pub fn isolate(&self, id: i32) {
        assert!(!self.links.is_empty(), "isolate needs a proxied cluster");
        for ((from, to), link) in &self.links {
            if *from == id || *to == id {
                link.cut();
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for link in self.links.values() {
            link.heal();
        }
    }
}

impl Cluster {
    /// SIGKILLs every node.
    pub fn kill_all(&mut self) {
        for node in self.nodes.values_mut() {
            node.kill9();
        }
    }

    /// The record batches stored in node `id`'s replica of `topic`/`partition`, as
    /// `(base offset, batch bytes)` in offset order, read from its segment files (call it while
    /// the node is stopped). Reading stops at the first byte range that is not a valid batch (a
    /// torn tail a crash left, which recovery would cut).
    pub fn stored_batches(&self, id: i32, topic: &str, partition: i32) -> Vec<(i64, Vec<u8>)> {
        let dir = self.nodes[&id]
            .data_dir()
            .join("logs")
            .join(format!("{topic}-{partition}"));
        let mut segments: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        segments.sort();
        let mut out = Vec::new();
        for segment in segments {
            let bytes = bytes::Bytes::from(std::fs::read(&segment).expect("read segment"));
            for batch in sluice_protocol::record::BatchIter::new(bytes) {
                let Ok(batch) = batch else {
                    break;
                };
                out.push((batch.header().base_offset, batch.as_bytes().to_vec()));
            }
        }
        out
    }
}

/// A partition's leader and ISR as a broker reports them in Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// The leader (-1: none).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
}

/// The client configuration the views use: short timeouts, so a dead node costs little.
fn view_config(addr: &str) -> sluice_client::ClientConfig {
    let mut c = sluice_client::ClientConfig::new(addr);
    c.request_timeout = std::time::Duration::from_secs(2);
    c.connect_timeout = std::time::Duration::from_millis(500);
    c
}

/// Asks each broker at `addrs` for `topic`/`partition`'s leader and ISR and returns the view if
/// every broker that answered agrees (a broker that just restarted may briefly serve metadata
/// older than the cluster's); `None` if none answered, they disagree, or the partition is absent.
pub async fn partition_view(
    addrs: &[String],
    topic: &str,
    partition: i32,
) -> Option<PartitionView> {
    let mut agreed: Option<PartitionView> = None;
    for addr in addrs {
        let Ok(client) = sluice_client::Client::connect(view_config(addr)).await else {
            continue;
        };
        // Asked of this broker, not of whichever one the client would pick.
        let request = Request::Metadata(MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: topic.to_string(),
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        });
        let Ok(Response::Metadata(m)) = client
            .send_request(Target::Address(addr.clone()), request, Duration::ZERO)
            .await
        else {
            continue;
        };
        let t = m
            .topics
            .iter()
            .find(|t| t.name == topic && t.error_code == 0)?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.partition_index == partition)?;
        let mut isr = p.isr_nodes.clone();
        isr.sort_unstable();
        let view = PartitionView {
            leader: p.leader_id,
            leader_epoch: p.leader_epoch,
            isr,
        };
        match &agreed {
            Some(v) if *v != view => return None,
            _ => agreed = Some(view),
        }
    }
    agreed
}

/// Waits until the brokers at `addrs` agree on a view of `topic`/`partition` satisfying `pred`,
/// failing after `deadline`.
pub async fn wait_partition(
    addrs: &[String],
    topic: &str,
    partition: i32,
    deadline: std::time::Duration,
    what: &str,
    pred: impl Fn(&PartitionView) -> bool,
) -> PartitionView {
    let end = tokio::time::Instant::now() + deadline;
    let mut last = None;
    loop {
        if let Some(view) = partition_view(addrs, topic, partition).await {
            if pred(&view) {
                return view;
            }
            last = Some(view);
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what} (last agreed view: {last:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
