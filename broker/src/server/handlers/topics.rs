//! CreateTopics and DeleteTopics, and the topic creation shared with Metadata auto-creation.
//!
//! Creation order: validate everything (name, partition count, replication factor, configs via
//! `LogConfig`), register the topic (persisted), then create the partition logs; a failure in the
//! last step rolls the registration back. Deletion is two-phase (registry marks the topic
//! `deleting`, the partition files are removed, the entry is dropped), and a start-up after a
//! crash in between finishes it (see `server::daemon`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sluice_protocol::wire::messages::create_topics::{
    CreatableTopicResult, CreateTopicsRequest, CreateTopicsResponse,
};
use sluice_protocol::wire::messages::delete_topics::{
    DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse,
};
use sluice_protocol::wire::ErrorCode;

use crate::config::limits::PARTITIONS_PER_TOPIC_MAX;
use crate::metadata::topic_name::validate_topic_name;
use crate::metadata::{MetadataError, TopicInfo};
use crate::server::broker::Broker;
use crate::server::dispatch::Handlers;

/// A failed topic operation: the error code and a message for the client.
pub(crate) type TopicFailure = (ErrorCode, String);

/// The consumer-offsets topic cannot be created or deleted by clients: the group coordinator owns
/// it (its partitions live in the log manager, outside the topic registry).
const PROTECTED_TOPICS: &[&str] = &["__consumer_offsets"];

impl Handlers {
    pub(crate) async fn create_topics(&self, req: CreateTopicsRequest) -> CreateTopicsResponse {
        let mut seen = BTreeSet::new();
        let duplicates: BTreeSet<String> = req
            .topics
            .iter()
            .filter(|t| !seen.insert(t.name.clone()))
            .map(|t| t.name.clone())
            .collect();
        let mut results = Vec::with_capacity(req.topics.len());
        for topic in req.topics {
            let name = topic.name.clone();
            let outcome = if duplicates.contains(&name) {
                Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("topic {name:?} appears more than once in the request"),
                ))
            } else {
                self.create_requested(topic, req.validate_only).await
            };
            let (code, message) = match outcome {
                Ok(()) => (ErrorCode::NONE, None),
                Err((code, message)) => (code, Some(message)),
            };
            results.push(CreatableTopicResult {
                name,
                error_code: code.as_i16(),
                error_message: message,
            });
        }
        CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: results,
        }
    }

    async fn create_requested(
        &self,
        topic: sluice_protocol::wire::messages::create_topics::CreatableTopic,
        validate_only: bool,
    ) -> Result<(), TopicFailure> {
        if let Some(cluster) = self.broker.cluster().cloned() {
            return self.create_replicated(&cluster, topic, validate_only).await;
        }
        let partitions = match topic.num_partitions {
            -1 => self.broker.config().num_partitions,
            n => n,
        };
        if !topic.assignments.is_empty() {
            let node = self.broker.node_id();
            let own = topic
                .assignments
                .iter()
                .all(|a| a.broker_ids.as_slice() == [node]);
            if !own || topic.num_partitions != -1 {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!("replica assignments may only name this broker ({node})"),
                ));
            }
        }
        let partitions = if topic.assignments.is_empty() {
            partitions
        } else {
            i32::try_from(topic.assignments.len()).unwrap_or(i32::MAX)
        };
        if !matches!(topic.replication_factor, -1 | 1) {
            return Err((
                ErrorCode::INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {} is larger than the 1 available broker",
                    topic.replication_factor
                ),
            ));
        }
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
            if self.broker.topics().get(&topic.name).is_some() {
                return Err(already_exists(&topic.name));
            }
            return Ok(());
        }
        self.create_topic(&topic.name, partitions, configs)
            .await
            .map(|info| {
                tracing::info!(
                    topic = info.name,
                    partitions = info.partitions,
                    "created topic"
                );
            })
    }

    /// Validates, registers and creates the partition logs of a new topic.
    pub(crate) async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<TopicInfo>, TopicFailure> {
        let log_config = validate_new_topic(&self.broker, name, partitions, &configs)?;
        let _admin = self.broker.admin.lock().await;
        let registry = Arc::clone(self.broker.topics());
        let owned_name = name.to_string();
        let info = blocking(move || registry.create(&owned_name, partitions, configs))
            .await?
            .map_err(|err| metadata_failure(name, err))?;
        let broker = Arc::clone(&self.broker);
        let owned_name = name.to_string();
        let created = blocking(move || {
            let mut made = Vec::new();
            for partition in 0..partitions {
                match broker
                    .logs()
                    .create_partition(&owned_name, partition, log_config.clone())
                {
                    Ok(_) => made.push(partition),
                    Err(err) => {
                        // Undo only what this call made: a partition that already existed
                        // belongs to someone else (the group coordinator's internal topic).
                        for partition in made {
                            let _ = broker.logs().delete_partition(&owned_name, partition);
                        }
                        let _ = broker
                            .topics()
                            .mark_deleting(&owned_name)
                            .and_then(|_| broker.topics().remove(&owned_name));
                        return Err(err);
                    }
                }
            }
            Ok(())
        })
        .await?;
        if let Err(err) = created {
            tracing::error!(
                topic = name,
                "creating partition logs failed: {err}; rolled back"
            );
            return Err((
                ErrorCode::KAFKA_STORAGE_ERROR,
                format!("cannot create the partition logs of {name:?}: {err}"),
            ));
        }
        Ok(info)
    }

    pub(crate) async fn delete_topics(&self, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
        let mut responses = Vec::with_capacity(req.topic_names.len());
        for name in req.topic_names {
            let code = match self.delete_topic(&name).await {
                Ok(()) => {
                    tracing::info!(topic = name, "deleted topic");
                    ErrorCode::NONE
                }
                Err((code, message)) => {
                    tracing::info!(topic = name, "delete refused: {message}");
                    code
                }
            };
            responses.push(DeletableTopicResult {
                name,
                error_code: code.as_i16(),
            });
        }
        DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses,
        }
    }

    async fn delete_topic(&self, name: &str) -> Result<(), TopicFailure> {
        if PROTECTED_TOPICS.contains(&name) {
            return Err((
                ErrorCode::INVALID_TOPIC_EXCEPTION,
                format!("{name} is an internal topic and cannot be deleted"),
            ));
        }
        if let Some(cluster) = self.broker.cluster().cloned() {
            return self.delete_replicated(&cluster, name).await;
        }
        let _admin = self.broker.admin.lock().await;
        if self.broker.topics().get(name).is_none() {
            return Err((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic {name:?} does not exist"),
            ));
        }
        let broker = Arc::clone(&self.broker);
        let owned_name = name.to_string();
        blocking(move || delete_topic_files(&broker, &owned_name))
            .await?
            .map_err(|err| (ErrorCode::KAFKA_STORAGE_ERROR, err))
    }
}

/// Kafka's checks for a new topic; returns the effective log config.
pub(super) fn validate_new_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> Result<crate::log::LogConfig, TopicFailure> {
    validate_topic_name(name).map_err(|message| (ErrorCode::INVALID_TOPIC_EXCEPTION, message))?;
    if PROTECTED_TOPICS.contains(&name) {
        return Err((
            ErrorCode::INVALID_REQUEST,
            format!("{name} is an internal topic; the broker creates it"),
        ));
    }
    if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return Err((
            ErrorCode::INVALID_PARTITIONS,
            format!("partition count {partitions} is outside 1..={PARTITIONS_PER_TOPIC_MAX}"),
        ));
    }
    broker
        .topic_log_config(configs)
        .map_err(|err| (ErrorCode::INVALID_CONFIG, err.to_string()))
}

/// Runs the two-phase deletion of `name` (registry mark, files, registry entry); also used at
/// start-up to finish a deletion a crash interrupted.
pub(crate) fn delete_topic_files(broker: &Broker, name: &str) -> Result<(), String> {
    let info = match broker.topics().mark_deleting(name) {
        Ok(info) => info,
        // Already marked (resuming after a crash): use the recorded partition count.
        Err(MetadataError::UnknownTopic(_)) => broker
            .topics()
            .deleting_topics()
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| format!("topic {name:?} does not exist"))?,
        Err(err) => return Err(err.to_string()),
    };
    for partition in 0..info.partitions {
        broker
            .logs()
            .delete_partition(name, partition)
            .map_err(|err| format!("cannot delete {name}-{partition}: {err}"))?;
    }
    broker.topics().remove(name).map_err(|err| err.to_string())
}

fn already_exists(name: &str) -> TopicFailure {
    (
        ErrorCode::TOPIC_ALREADY_EXISTS,
        format!("topic {name:?} already exists"),
    )
}

fn metadata_failure(name: &str, err: MetadataError) -> TopicFailure {
    match err {
        MetadataError::AlreadyExists(_) => already_exists(name),
        MetadataError::InvalidName(message) => (ErrorCode::INVALID_TOPIC_EXCEPTION, message),
        MetadataError::InvalidPartitions(n) => (
            ErrorCode::INVALID_PARTITIONS,
            format!("invalid partition count {n}"),
        ),
        other => (ErrorCode::KAFKA_STORAGE_ERROR, other.to_string()),
    }
}

/// Runs blocking file work (registry writes with fsync, creating or removing partition
/// directories) off the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TopicFailure> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        (
            ErrorCode::UNKNOWN_SERVER_ERROR,
            format!("internal error: {err}"),
        )
    })
}
