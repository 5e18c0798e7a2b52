//! Cluster mode (`--peers`): the daemon's glue to [`ClusterNode`].
//!
//! [`start`] runs after the client listener is bound and the logs are open: it starts the node
//! (metadata Raft voter and broker) on the already-bound peer listener and hands it to the
//! [`Broker`], whose lookups then follow the replicated metadata. [`serving_token`] gives the
//! listener a shutdown signal that fires only after a controlled shutdown has moved this node's
//! leaderships away, so SIGTERM never leaves a partition without a leader while clients wait.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::broker::Broker;
use super::daemon::ServerError;
use crate::config::Peer;
use crate::replication::cluster::{ClusterConfig, ClusterNode};

/// Starts the cluster node on `peer_listener` and installs it in `broker`.
pub async fn start(broker: &Arc<Broker>, peer_listener: TcpListener) -> Result<(), ServerError> {
    let config = broker.config();
    let peers: BTreeMap<i32, String> = config
        .peers
        .iter()
        .map(|p| (p.node_id, p.addr.clone()))
        .collect();
    let (host, port) = broker.advertised();
    let client_addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let cluster_config =
        ClusterConfig::new(config.node_id, peers, client_addr, config.data_dir.clone());
    let node = ClusterNode::start(cluster_config, Arc::clone(broker.logs()), peer_listener)
        .await
        .map_err(|err| ServerError::Cluster(err.to_string()))?;
    tracing::info!(
        node_id = config.node_id,
        peers = config.peers.len(),
        "cluster node started"
    );
    broker.set_cluster(Arc::new(node));
    Ok(())
}

/// The token the listener stops on: `shutdown` itself on a single node; in a cluster, a token
/// cancelled once leaderships have been handed over (or the shutdown grace period has passed).
pub fn serving_token(broker: &Arc<Broker>, shutdown: &CancellationToken) -> CancellationToken {
    let Some(cluster) = broker.cluster().cloned() else {
        return shutdown.clone();
    };
    let serving = CancellationToken::new();
    let (outer, inner) = (shutdown.clone(), serving.clone());
    let grace = broker.config().shutdown_grace;
    tokio::spawn(async move {
        outer.cancelled().await;
        tracing::info!("controlled shutdown: moving leaderships to other replicas");
        if cluster.hand_over(grace).await {
            tracing::info!("controlled shutdown: leaderships handed over");
        } else {
            tracing::warn!("controlled shutdown: some leaderships could not be handed over");
        }
        inner.cancel();
    });
    serving
}

/// The cluster id a node reports until the replicated metadata has one (it normally does: the
/// first broker registration sets it): derived from the peer list.
pub fn cluster_id(peers: &[Peer]) -> String {
    let mut entries: Vec<String> = peers
        .iter()
        .map(|p| format!("{}@{}", p.node_id, p.addr))
        .collect();
    entries.sort();
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in entries.join(",").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sluice-{hash:016x}")
}
