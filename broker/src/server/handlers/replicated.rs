//! The cluster-mode (`--peers`) side of the handlers: what changes when topics live in the
//! replicated metadata ([`ClusterNode`]) instead of this broker's registry.
//!
//! - Produce goes to the partition's [`LeaderReplica`]: `acks=all` waits for the high watermark
//!   (durable on every ISR member) with at least `min.insync.replicas` in sync, else
//!   NOT_ENOUGH_REPLICAS; a wait longer than the request's `timeout_ms` is REQUEST_TIMED_OUT
//!   (a leader cut off from its followers can never acknowledge).
//! - Metadata lists every unfenced broker with its advertised address, the metadata leader as
//!   controller, and each partition's leader, leader epoch, replicas and ISR.
//! - CreateTopics and DeleteTopics are proposed through the metadata Raft; each broker then
//!   creates (or deletes) its replicas as it applies the change.
//! - InitProducerId hands out ids unique in the cluster: the local allocator's id times
//!   [`PRODUCER_ID_NODE_STRIDE`] plus the node id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::wire::messages::create_topics::CreatableTopic;
use sluice_protocol::wire::messages::find_coordinator::FindCoordinatorResponse;
use sluice_protocol::wire::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use sluice_protocol::wire::messages::produce::PartitionProduceResponse;
use sluice_protocol::wire::ErrorCode;

use super::log_error_code;
use super::produce::error_partition;
use super::topics::{validate_new_topic, TopicFailure};
use crate::metadata::topic_name::validate_topic_name;
use crate::replication::cluster::{ClusterError, ClusterNode};
use crate::replication::controller::{
    ClusterState, CommandOutcome, MetadataCommand, MetadataError, TopicInfo,
};
use crate::replication::limits::{MIN_INSYNC_REPLICAS_REPLICATED, PRODUCER_ID_NODE_STRIDE};
use crate::replication::message::TopicPartition;
use crate::replication::replica::ReplicaAppendError;
use crate::server::broker::Broker;
use crate::server::dispatch::Handlers;

/// How long a topic change may wait for the metadata leader (an election takes well under 1 s).
const PROPOSE_DEADLINE: Duration = Duration::from_secs(10);
/// How long CreateTopics waits for this broker to apply the new topic, so that a Metadata
/// request sent right after the answer already sees it.
const APPLY_DEADLINE: Duration = Duration::from_secs(5);
/// Topics whose names start like this are the broker's own.
const INTERNAL_PREFIX: &str = "__";

/// Appends to the partition this broker leads (see the module doc).
pub(super) async fn produce(
    cluster: &Arc<ClusterNode>,
    topic: &str,
    index: i32,
    batches: Bytes,
    acks_all: bool,
    timeout_ms: u64,
) -> PartitionProduceResponse {
    let tp = TopicPartition::new(topic, index);
    let Some(leader) = cluster.leader(&tp) else {
        return error_partition(index, ErrorCode::NOT_LEADER_OR_FOLLOWER);
    };
    let append = leader.append(batches, acks_all);
    let result = if acks_all {
        match tokio::time::timeout(Duration::from_millis(timeout_ms), append).await {
            Ok(result) => result,
            Err(_) => {
                tracing::debug!(%tp, timeout_ms, "acks=all not replicated in time");
                return error_partition(index, ErrorCode::REQUEST_TIMED_OUT);
            }
        }
    } else {
        append.await
    };
    match result {
        Ok(info) => PartitionProduceResponse {
            index,
            error_code: ErrorCode::NONE.as_i16(),
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time,
            log_start_offset: info.log_start_offset,
        },
        Err(ReplicaAppendError::Replica(e)) => {
            tracing::debug!(%tp, error = %e, "replicated produce refused");
            error_partition(index, ErrorCode(e.code()))
        }
        Err(ReplicaAppendError::Log(err)) => {
            let code = log_error_code(&err);
            if code == ErrorCode::KAFKA_STORAGE_ERROR {
                tracing::error!(%tp, "append failed: {err}");
            } else {
                tracing::debug!(%tp, "append refused: {err}");
            }
            error_partition(index, code)
        }
    }
}

/// A producer id unique in the cluster, from this node's unique local id.
pub(super) fn cluster_producer_id(local_id: i64, node_id: i32) -> Option<i64> {
    local_id
        .checked_mul(PRODUCER_ID_NODE_STRIDE)?
        .checked_add(i64::from(node_id))
}

fn host_port(addr: &str) -> Option<(String, i32)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    Some((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
}

fn partition_entry(
    state: &ClusterState,
    index: usize,
    p: &crate::replication::message::PartitionState,
) -> MetadataResponsePartition {
    let live = |id: &i32| state.brokers.get(id).is_some_and(|b| !b.fenced);
    let error = if p.leader < 0 {
        ErrorCode::LEADER_NOT_AVAILABLE
    } else {
        ErrorCode::NONE
    };
    MetadataResponsePartition {
        error_code: error.as_i16(),
        partition_index: i32::try_from(index).unwrap_or(i32::MAX),
        leader_id: p.leader,
        leader_epoch: p.leader_epoch,
        replica_nodes: p.replicas.clone(),
        isr_nodes: p.isr.clone(),
        offline_replicas: p.replicas.iter().copied().filter(|r| !live(r)).collect(),
    }
}

fn topic_entry(state: &ClusterState, name: &str, t: &TopicInfo) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: ErrorCode::NONE.as_i16(),
        name: name.to_string(),
        is_internal: name.starts_with(INTERNAL_PREFIX),
        partitions: t
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| partition_entry(state, i, p))
            .collect(),
        ..Default::default()
    }
}

fn topic_error(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: code.as_i16(),
        name: name.to_string(),
        is_internal: false,
        partitions: Vec::new(),
        ..Default::default()
    }
}

fn metadata_failure(name: &str, err: MetadataError) -> TopicFailure {
    let code = match &err {
        MetadataError::TopicExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
        MetadataError::UnknownTopic(_) | MetadataError::UnknownPartition(_) => {
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        }
        MetadataError::InvalidReplicationFactor { .. } => ErrorCode::INVALID_REPLICATION_FACTOR,
        MetadataError::InvalidPartitions(_) => ErrorCode::INVALID_PARTITIONS,
        MetadataError::InvalidConfig { .. } => ErrorCode::INVALID_CONFIG,
        _ => ErrorCode::UNKNOWN_SERVER_ERROR,
    };
    (code, format!("{name}: {err}"))
}

fn unreachable_controller(err: ClusterError) -> TopicFailure {
    (
        ErrorCode::REQUEST_TIMED_OUT,
        format!("the metadata leader did not answer: {err}"),
    )
}

impl Handlers {
    /// Metadata in a cluster (see the module doc).
    pub(super) async fn cluster_metadata(
        &self,
        cluster: &Arc<ClusterNode>,
        req: MetadataRequest,
    ) -> MetadataResponse {
        let broker = &self.broker;
        let mut topics = Vec::new();
        match &req.topics {
            None => {
                let state = cluster.state().borrow().clone();
                for (name, t) in &state.topics {
                    topics.push(topic_entry(&state, name, t));
                }
            }
            Some(requested) => {
                for topic in requested {
                    let name = topic.name.as_str();
                    let known = cluster.state().borrow().topics.contains_key(name);
                    if !known && req.allow_auto_topic_creation && broker.config().auto_create_topics
                    {
                        let partitions = broker.config().num_partitions;
                        match self
                            .create_replicated_topic(cluster, name, partitions, 1, BTreeMap::new())
                            .await
                        {
                            Ok(()) => tracing::info!(topic = name, "auto-created topic"),
                            Err((ErrorCode::TOPIC_ALREADY_EXISTS, _)) => {}
                            Err((code, message)) => {
                                tracing::warn!(topic = name, "auto-create failed: {message}");
                                topics.push(topic_error(name, code));
                                continue;
                            }
                        }
                    }
                    let state = cluster.state().borrow().clone();
                    topics.push(match state.topics.get(name) {
                        Some(t) => topic_entry(&state, name, t),
                        None if validate_topic_name(name).is_err() => {
                            topic_error(name, ErrorCode::INVALID_TOPIC_EXCEPTION)
                        }
                        None => topic_error(name, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                    });
                }
            }
        }
        let state = cluster.state().borrow().clone();
        let mut brokers: Vec<MetadataResponseBroker> = state
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let (host, port) = host_port(&b.client_addr)?;
                Some(MetadataResponseBroker {
                    node_id: b.id,
                    host,
                    port,
                    rack: None,
                })
            })
            .collect();
        if !brokers.iter().any(|b| b.node_id == broker.node_id()) {
            // Not registered yet (just started): clients can still reach this broker.
            let (host, port) = broker.advertised();
            brokers.push(MetadataResponseBroker {
                node_id: broker.node_id(),
                host,
                port,
                rack: None,
            });
            brokers.sort_by_key(|b| b.node_id);
        }
        MetadataResponse {
            throttle_time_ms: 0,
            brokers,
            cluster_id: Some(if state.cluster_id.is_empty() {
                broker.cluster_id().to_string()
            } else {
                state.cluster_id.clone()
            }),
            controller_id: cluster.metadata_leader().unwrap_or(-1),
            topics,
            ..Default::default()
        }
    }

    /// CreateTopics for one topic in a cluster.
    pub(super) async fn create_replicated(
        &self,
        cluster: &Arc<ClusterNode>,
        topic: CreatableTopic,
        validate_only: bool,
    ) -> Result<(), TopicFailure> {
        let partitions = match topic.num_partitions {
            -1 => self.broker.config().num_partitions,
            n => n,
        };
        if !topic.assignments.is_empty() {
            return Err((
                ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                "manual replica assignments are not supported; give a replication factor"
                    .to_string(),
            ));
        }
        let replication_factor = match topic.replication_factor {
            -1 => 1,
            n if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            n => {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    format!("replication factor {n} is below 1"),
                ))
            }
        };
        let mut configs = BTreeMap::new();
        for config in topic.configs {
            match config.value {
                Some(value) => {
                    configs.insert(config.name, value);
                }
                None => {
                    return Err((
                        ErrorCode::INVALID_CONFIG,
                        format!("config {} has a null value", config.name),
                    ))
                }
            }
        }
        if validate_only {
            validate_new_topic(&self.broker, &topic.name, partitions, &configs)?;
            let state = cluster.state().borrow().clone();
            if state.topics.contains_key(&topic.name) {
                return Err((
                    ErrorCode::TOPIC_ALREADY_EXISTS,
                    format!("topic {:?} already exists", topic.name),
                ));
            }
            let live = state.brokers.values().filter(|b| !b.fenced).count();
            if replication_factor > live {
                return Err(metadata_failure(
                    &topic.name,
                    MetadataError::InvalidReplicationFactor {
                        requested: replication_factor,
                        available: live,
                    },
                ));
            }
            return Ok(());
        }
        self.create_replicated_topic(
            cluster,
            &topic.name,
            partitions,
            replication_factor,
            configs,
        )
        .await?;
        tracing::info!(
            topic = topic.name,
            partitions,
            replication_factor,
            "created topic"
        );
        Ok(())
    }

    async fn create_replicated_topic(
        &self,
        cluster: &Arc<ClusterNode>,
        name: &str,
        partitions: i32,
        replication_factor: usize,
        mut configs: BTreeMap<String, String>,
    ) -> Result<(), TopicFailure> {
        validate_new_topic(&self.broker, name, partitions, &configs)?;
        if replication_factor >= 2 && !configs.contains_key("min.insync.replicas") {
            // Stated explicitly, so that DescribeConfigs shows what the controller enforces.
            configs.insert(
                "min.insync.replicas".to_string(),
                MIN_INSYNC_REPLICAS_REPLICATED.to_string(),
            );
        }
        if replication_factor <= cluster.config().peers.len() {
            // Just after start-up the brokers may not have registered yet: give them a moment
            // rather than refusing a replication factor the cluster can satisfy.
            cluster
                .wait_applied(APPLY_DEADLINE, |s| {
                    s.brokers
                        .values()
                        .filter(|b| !b.fenced && !b.shutting_down)
                        .count()
                        >= replication_factor
                })
                .await;
        }
        let cmd = MetadataCommand::CreateTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            configs,
        };
        match cluster.propose_retrying(cmd, PROPOSE_DEADLINE).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(metadata_failure(name, err)),
            Err(err) => return Err(unreachable_controller(err)),
        }
        cluster
            .wait_applied(APPLY_DEADLINE, |s| s.topics.contains_key(name))
            .await;
        Ok(())
    }

    /// AlterConfigs for one topic in a cluster: the new overrides go through the metadata log,
    /// and every replica writes them into its partition logs as it applies the change.
    pub(super) async fn alter_replicated(
        &self,
        cluster: &Arc<ClusterNode>,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), TopicFailure> {
        let cmd = MetadataCommand::AlterTopicConfigs {
            name: name.to_string(),
            configs: configs.clone(),
        };
        match cluster.propose_retrying(cmd, PROPOSE_DEADLINE).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(metadata_failure(name, err)),
            Err(err) => return Err(unreachable_controller(err)),
        }
        cluster
            .wait_applied(APPLY_DEADLINE, |s| {
                s.topics.get(name).is_some_and(|t| t.configs == configs)
            })
            .await;
        Ok(())
    }

    /// DeleteTopics for one topic in a cluster.
    pub(super) async fn delete_replicated(
        &self,
        cluster: &Arc<ClusterNode>,
        name: &str,
    ) -> Result<(), TopicFailure> {
        let cmd = MetadataCommand::DeleteTopic {
            name: name.to_string(),
        };
        match cluster.propose_retrying(cmd, PROPOSE_DEADLINE).await {
            Ok(Ok(CommandOutcome::Done)) | Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(metadata_failure(name, err)),
            Err(err) => return Err(unreachable_controller(err)),
        }
        cluster
            .wait_applied(APPLY_DEADLINE, |s| !s.topics.contains_key(name))
            .await;
        Ok(())
    }
}

/// FindCoordinator for a consumer group in a cluster: every node gives the same answer, the
/// leader of the replicated `__consumer_offsets` partition, where the coordinator runs (see
/// `group::cluster_service`), so all members of a group meet there whichever broker they ask.
pub(crate) fn find_group_coordinator(cluster: &Arc<ClusterNode>) -> FindCoordinatorResponse {
    let state = cluster.state().borrow().clone();
    // The leader of the replicated offsets partition coordinates every group.
    let chosen = state
        .partition(&crate::group::cluster_service::offsets_partition())
        .and_then(|p| state.brokers.get(&p.leader))
        .filter(|b| !b.fenced)
        .and_then(|b| host_port(&b.client_addr).map(|(host, port)| (b.id, host, port)));
    match chosen {
        Some((node_id, host, port)) => FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE.as_i16(),
            error_message: None,
            node_id,
            host,
            port,
        },
        None => FindCoordinatorResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.as_i16(),
            error_message: Some("the offsets topic has no leader yet".to_string()),
            node_id: -1,
            host: String::new(),
            port: -1,
        },
    }
}

/// Broker configs that describe the cluster, for DescribeConfigs (Kafka's KRaft names).
pub(super) fn cluster_broker_configs(broker: &Broker) -> Vec<(&'static str, String)> {
    let Some(cluster) = broker.cluster() else {
        return Vec::new();
    };
    let voters = cluster
        .config()
        .peers
        .iter()
        .map(|(id, addr)| format!("{id}@{addr}"))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        ("node.id", cluster.node_id().to_string()),
        ("process.roles", "broker,controller".to_string()),
        ("controller.quorum.voters", voters),
    ]
}
