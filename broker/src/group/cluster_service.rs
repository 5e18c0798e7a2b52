//! Cluster mode: the group coordinator runs on the leader of `__consumer_offsets-0`.
//!
//! [`spawn`] starts one task per node that
//! - has the metadata leader create `__consumer_offsets` (one partition, `cleanup.policy=compact`,
//!   replicated like any topic, up to [`OFFSETS_REPLICATION_FACTOR_MAX`] copies) once enough
//!   brokers are live for that;
//! - when this node becomes the partition's leader, loads a [`GroupCoordinator`] from its replica
//!   (writing through a [`ReplicatedOffsetsLog`]) and installs it as the broker's group service;
//! - when it stops leading, installs [`NotCoordinator`], so clients go back to FindCoordinator,
//!   which names the partition's leader.
//!
//! Groups' membership is in memory, as in Kafka: after a coordinator moves, members rejoin; their
//! committed offsets come with the replicated log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::config::GroupConfig;
use super::coordinator::{CoordinatorNode, GroupCoordinator};
use super::log_offsets::OFFSETS_TOPIC;
use super::replicated_offsets::ReplicatedOffsetsLog;
use crate::replication::cluster::ClusterNode;
use crate::replication::controller::MetadataCommand;
use crate::replication::message::TopicPartition;
use crate::replication::replica::LeaderReplica;
use crate::server::broker::Broker;
use crate::server::group_service::NotCoordinator;

/// Copies of `__consumer_offsets` (Kafka's `offsets.topic.replication.factor` default), or fewer
/// in a smaller cluster.
pub const OFFSETS_REPLICATION_FACTOR_MAX: usize = 3;

/// How often the task looks at the partition's leadership.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// The partition whose leader is the group coordinator.
pub fn offsets_partition() -> TopicPartition {
    TopicPartition::new(OFFSETS_TOPIC, 0)
}

/// Starts following the offsets partition's leadership on this node (see the module doc).
pub fn spawn(
    broker: &Arc<Broker>,
    cluster: &Arc<ClusterNode>,
    config: GroupConfig,
) -> JoinHandle<()> {
    broker.set_group_service(Arc::new(NotCoordinator));
    let (broker, cluster) = (Arc::downgrade(broker), Arc::downgrade(cluster));
    tokio::spawn(async move {
        let mut current: Option<Arc<LeaderReplica>> = None;
        let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
        loop {
            tick.tick().await;
            let (Some(broker), Some(cluster)) = (broker.upgrade(), cluster.upgrade()) else {
                return;
            };
            ensure_topic(&broker, &cluster).await;
            follow(&broker, &cluster, &config, &mut current).await;
        }
    })
}

/// Creates `__consumer_offsets` if it is missing, this node is the metadata leader and enough
/// brokers are live to give it its replicas.
async fn ensure_topic(broker: &Broker, cluster: &ClusterNode) {
    if cluster.metadata_leader() != Some(cluster.node_id()) {
        return;
    }
    let live = {
        let state = cluster.state();
        let state = state.borrow();
        if state.topics.contains_key(OFFSETS_TOPIC) {
            return;
        }
        state
            .brokers
            .values()
            .filter(|b| !b.fenced && !b.shutting_down)
            .count()
    };
    let wanted = broker
        .config()
        .peers
        .len()
        .clamp(1, OFFSETS_REPLICATION_FACTOR_MAX);
    if live < wanted {
        return;
    }
    let cmd = MetadataCommand::CreateTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: 1,
        replication_factor: wanted,
        configs: BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
    };
    match cluster.propose(cmd).await {
        Ok(Ok(_)) => tracing::info!(replicas = wanted, "created {OFFSETS_TOPIC}"),
        Ok(Err(e)) => tracing::debug!(error = %e, "creating {OFFSETS_TOPIC} refused"),
        Err(e) => tracing::debug!(error = %e, "creating {OFFSETS_TOPIC} failed"),
    }
}

/// Installs a coordinator when this node starts leading the offsets partition (a new
/// leadership, even of the same node, loads afresh) and [`NotCoordinator`] when it stops.
async fn follow(
    broker: &Broker,
    cluster: &ClusterNode,
    config: &GroupConfig,
    current: &mut Option<Arc<LeaderReplica>>,
) {
    let leading = cluster
        .leaders()
        .get(&offsets_partition())
        .filter(|l| !l.is_resigned());
    let unchanged = match (&leading, current.as_ref()) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    };
    if unchanged {
        return;
    }
    let Some(leader) = leading else {
        broker.set_group_service(Arc::new(NotCoordinator));
        *current = None;
        tracing::info!("no longer the group coordinator");
        return;
    };
    let log = Arc::new(ReplicatedOffsetsLog::new(Arc::clone(&leader)));
    match GroupCoordinator::load(config.clone(), log).await {
        Ok(coordinator) => {
            let (host, port) = broker.advertised();
            coordinator.set_node(CoordinatorNode {
                node_id: broker.node_id(),
                host,
                port,
            });
            broker.set_group_service(Arc::new(coordinator));
            *current = Some(leader);
            tracing::info!("group coordinator running here (leader of {OFFSETS_TOPIC}-0)");
        }
        // Tried again on the next tick.
        Err(e) => {
            tracing::warn!(error = %e, "cannot load committed offsets as the new coordinator")
        }
    }
}
