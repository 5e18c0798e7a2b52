//! Metadata: the broker, its topics and partitions (this node leads every partition), and
//! auto-creation of requested topics when `auto.create.topics.enable` is on and the client allows
//! it.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::wire::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use sluice_protocol::wire::ErrorCode;

use crate::metadata::topic_name::validate_topic_name;
use crate::metadata::TopicInfo;
use crate::server::dispatch::Handlers;

/// Topics whose names start like this are the broker's own (committed offsets, stream state).
const INTERNAL_PREFIX: &str = "__";

impl Handlers {
    pub(crate) async fn metadata(&self, req: MetadataRequest) -> MetadataResponse {
        if let Some(cluster) = self.broker.cluster().cloned() {
            return self.cluster_metadata(&cluster, req).await;
        }
        let broker = &self.broker;
        let (host, port) = broker.advertised();
        let node_id = broker.node_id();
        let topics = match req.topics {
            None => broker
                .topics()
                .live_topics()
                .iter()
                .map(|info| self.describe_topic(info))
                .collect(),
            Some(requested) => {
                let mut out = Vec::with_capacity(requested.len());
                for topic in requested {
                    out.push(
                        self.requested_topic(&topic.name, req.allow_auto_topic_creation)
                            .await,
                    );
                }
                out
            }
        };
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: vec![MetadataResponseBroker {
                node_id,
                host,
                port,
                rack: None,
            }],
            cluster_id: Some(broker.cluster_id().to_string()),
            controller_id: node_id,
            topics,
            ..Default::default()
        }
    }

    async fn requested_topic(&self, name: &str, allow_auto_create: bool) -> MetadataResponseTopic {
        if let Some(info) = self.broker.topic(name) {
            return self.describe_topic(&info);
        }
        let error = |code: ErrorCode| MetadataResponseTopic {
            error_code: code.as_i16(),
            name: name.to_string(),
            is_internal: false,
            partitions: Vec::new(),
            ..Default::default()
        };
        if validate_topic_name(name).is_err() {
            return error(ErrorCode::INVALID_TOPIC_EXCEPTION);
        }
        if !(allow_auto_create && self.broker.config().auto_create_topics) {
            return error(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
        }
        let partitions = self.broker.config().num_partitions;
        match self.create_topic(name, partitions, BTreeMap::new()).await {
            Ok(info) => {
                tracing::info!(topic = name, partitions, "auto-created topic");
                self.describe_topic(&info)
            }
            // Another request created it meanwhile.
            Err((ErrorCode::TOPIC_ALREADY_EXISTS, _)) => match self.broker.topic(name) {
                Some(info) => self.describe_topic(&info),
                None => error(ErrorCode::LEADER_NOT_AVAILABLE),
            },
            Err((code, message)) => {
                tracing::warn!(topic = name, "auto-create failed: {message}");
                error(code)
            }
        }
    }

    fn describe_topic(&self, info: &Arc<TopicInfo>) -> MetadataResponseTopic {
        let node_id = self.broker.node_id();
        let partitions = (0..info.partitions)
            .map(|index| {
                // Missing: being created right now (retriable); offline: its data is unusable.
                let error = match self.broker.logs().partition(&info.name, index) {
                    None => ErrorCode::LEADER_NOT_AVAILABLE,
                    Some(log) if log.offline().is_some() => ErrorCode::KAFKA_STORAGE_ERROR,
                    Some(_) => ErrorCode::NONE,
                };
                let online = error == ErrorCode::NONE;
                MetadataResponsePartition {
                    error_code: error.as_i16(),
                    partition_index: index,
                    leader_id: if online { node_id } else { -1 },
                    leader_epoch: self.broker.leader_epoch(&info.name, index),
                    replica_nodes: vec![node_id],
                    isr_nodes: if online { vec![node_id] } else { Vec::new() },
                    offline_replicas: if error == ErrorCode::KAFKA_STORAGE_ERROR {
                        vec![node_id]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        MetadataResponseTopic {
            error_code: ErrorCode::NONE.as_i16(),
            name: info.name.clone(),
            is_internal: info.name.starts_with(INTERNAL_PREFIX),
            partitions,
            ..Default::default()
        }
    }
}
