//! DescribeConfigs and AlterConfigs for topics (Kafka topic-config names, via `log::LogConfig`)
//! and DescribeConfigs for the broker (read-only).
//!
//! AlterConfigs has Kafka's replace semantics: the request's configs become the topic's complete
//! set of overrides; everything else returns to the broker default. New values are validated as a
//! whole before anything is persisted, then applied to every live partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::wire::messages::alter_configs::{
    AlterConfigsRequest, AlterConfigsResourceResponse, AlterConfigsResponse,
};
use sluice_protocol::wire::messages::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResourceResult, DescribeConfigsResponse,
    DescribeConfigsResult,
};
use sluice_protocol::wire::ErrorCode;

use super::topics::{blocking, TopicFailure};
use crate::server::dispatch::Handlers;

/// Kafka's resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's config sources (DescribeConfigs v1+).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

impl Handlers {
    pub(crate) fn describe_configs(&self, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
        let results = req
            .resources
            .into_iter()
            .map(|resource| {
                let keys = resource.configuration_keys.clone();
                let described = match resource.resource_type {
                    RESOURCE_TOPIC => self.describe_topic_configs(&resource.resource_name),
                    RESOURCE_BROKER => self.describe_broker_configs(&resource.resource_name),
                    other => Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("resource type {other} is not supported"),
                    )),
                };
                match described {
                    Ok(mut configs) => {
                        if let Some(keys) = keys {
                            configs.retain(|c| keys.contains(&c.name));
                        }
                        DescribeConfigsResult {
                            error_code: ErrorCode::NONE.as_i16(),
                            error_message: None,
                            resource_type: resource.resource_type,
                            resource_name: resource.resource_name,
                            configs,
                        }
                    }
                    Err((code, message)) => DescribeConfigsResult {
                        error_code: code.as_i16(),
                        error_message: Some(message),
                        resource_type: resource.resource_type,
                        resource_name: resource.resource_name,
                        configs: Vec::new(),
                    },
                }
            })
            .collect();
        DescribeConfigsResponse {
            throttle_time_ms: 0,
            results,
        }
    }

    fn describe_topic_configs(
        &self,
        name: &str,
    ) -> Result<Vec<DescribeConfigsResourceResult>, TopicFailure> {
        let info = self.broker.topic(name).ok_or_else(|| {
            (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic {name:?} does not exist"),
            )
        })?;
        let effective = self
            .broker
            .topic_log_config(&info.configs)
            .map_err(|err| (ErrorCode::INVALID_CONFIG, err.to_string()))?;
        // In a cluster, a replicated topic's min.insync.replicas default is the controller's
        // (2 from replication factor 2 on), not the single-node default: report what is enforced.
        let enforced_min_insync = self.broker.cluster().and_then(|cluster| {
            let state = cluster.state();
            let state = state.borrow();
            let p = state.topics.get(name)?.partitions.first()?;
            Some(p.min_insync.to_string())
        });
        Ok(effective
            .to_props()
            .into_iter()
            .map(|(key, value)| {
                let overridden = info.configs.contains_key(&key);
                let value = match &enforced_min_insync {
                    Some(enforced) if key == "min.insync.replicas" && !overridden => {
                        enforced.clone()
                    }
                    _ => value,
                };
                DescribeConfigsResourceResult {
                    name: key,
                    value: Some(value),
                    read_only: false,
                    is_default: !overridden,
                    config_source: if overridden {
                        SOURCE_TOPIC
                    } else {
                        SOURCE_DEFAULT
                    },
                    is_sensitive: false,
                    synonyms: Vec::new(),
                }
            })
            .collect())
    }

    fn describe_broker_configs(
        &self,
        name: &str,
    ) -> Result<Vec<DescribeConfigsResourceResult>, TopicFailure> {
        let config = self.broker.config();
        if !name.is_empty() && name != config.node_id.to_string() {
            return Err((
                ErrorCode::INVALID_REQUEST,
                format!("this is broker {}, not {name:?}", config.node_id),
            ));
        }
        let (host, port) = self.broker.advertised();
        let mut entries: BTreeMap<&str, String> = BTreeMap::from([
            ("broker.id", config.node_id.to_string()),
            ("listeners", format!("PLAINTEXT://{}", config.listen)),
            ("advertised.listeners", format!("PLAINTEXT://{host}:{port}")),
            ("log.dirs", config.data_dir.display().to_string()),
            (
                "auto.create.topics.enable",
                config.auto_create_topics.to_string(),
            ),
            ("num.partitions", config.num_partitions.to_string()),
            ("max.connections", config.max_connections.to_string()),
            (
                "connections.max.idle.ms",
                config.connections_max_idle.as_millis().to_string(),
            ),
            (
                "socket.request.max.bytes",
                config.socket_request_max_bytes.to_string(),
            ),
        ]);
        let defaults = self
            .broker
            .topic_log_config(&BTreeMap::new())
            .map_err(|err| (ErrorCode::INVALID_CONFIG, err.to_string()))?
            .to_props();
        let log_defaults: Vec<(String, String)> = defaults
            .into_iter()
            .map(|(key, value)| (format!("log.{key}"), value))
            .collect();
        for (key, value) in super::replicated::cluster_broker_configs(&self.broker) {
            entries.insert(key, value);
        }
        let mut out: Vec<DescribeConfigsResourceResult> = entries
            .iter_mut()
            .map(|(key, value)| broker_entry(key, std::mem::take(value)))
            .collect();
        out.extend(
            log_defaults
                .into_iter()
                .map(|(key, value): (String, String)| broker_entry(&key, value)),
        );
        Ok(out)
    }

    pub(crate) async fn alter_configs(&self, req: AlterConfigsRequest) -> AlterConfigsResponse {
        let mut responses = Vec::with_capacity(req.resources.len());
        for resource in req.resources {
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC => {
                    let mut overrides = BTreeMap::new();
                    for config in resource.configs {
                        if let Some(value) = config.value {
                            overrides.insert(config.name, value);
                        }
                    }
                    self.alter_topic_configs(&resource.resource_name, overrides, req.validate_only)
                        .await
                }
                RESOURCE_BROKER => Err((
                    ErrorCode::INVALID_REQUEST,
                    "broker configs are set with flags or the config file at start-up".to_string(),
                )),
                other => Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("resource type {other} is not supported"),
                )),
            };
            let (code, message) = match outcome {
                Ok(()) => (ErrorCode::NONE, None),
                Err((code, message)) => (code, Some(message)),
            };
            responses.push(AlterConfigsResourceResponse {
                error_code: code.as_i16(),
                error_message: message,
                resource_type: resource.resource_type,
                resource_name: resource.resource_name,
            });
        }
        AlterConfigsResponse {
            throttle_time_ms: 0,
            responses,
        }
    }

    async fn alter_topic_configs(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), TopicFailure> {
        if let Some(cluster) = self.broker.cluster() {
            self.broker
                .topic_log_config(&overrides)
                .map_err(|err| (ErrorCode::INVALID_CONFIG, err.to_string()))?;
            if validate_only {
                return self.broker.topic(name).map(|_| ()).ok_or_else(|| {
                    (
                        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("topic {name:?} does not exist"),
                    )
                });
            }
            return self.alter_replicated(cluster, name, overrides).await;
        }
        let _admin = self.broker.admin.lock().await;
        let info = self.broker.topic(name).ok_or_else(|| {
            (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("topic {name:?} does not exist"),
            )
        })?;
        let log_config = self
            .broker
            .topic_log_config(&overrides)
            .map_err(|err| (ErrorCode::INVALID_CONFIG, err.to_string()))?;
        if validate_only {
            return Ok(());
        }
        let registry = Arc::clone(self.broker.topics());
        let owned = name.to_string();
        blocking(move || registry.set_configs(&owned, overrides))
            .await?
            .map_err(|err| (ErrorCode::KAFKA_STORAGE_ERROR, err.to_string()))?;
        let logs = Arc::clone(self.broker.logs());
        let owned = name.to_string();
        blocking(move || {
            for partition in 0..info.partitions {
                if let Err(err) = logs.set_config(&owned, partition, log_config.clone()) {
                    tracing::warn!(topic = owned, partition, "config not applied: {err}");
                }
            }
        })
        .await?;
        tracing::info!(topic = name, "altered topic configs");
        Ok(())
    }
}

fn broker_entry(key: &str, value: String) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult {
        name: key.to_string(),
        value: Some(value),
        read_only: true,
        is_default: false,
        config_source: SOURCE_STATIC_BROKER,
        is_sensitive: false,
        synonyms: Vec::new(),
    }
}
