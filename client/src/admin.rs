//! The admin client: create, delete, list and describe topics, read and alter topic configs, list
//! offsets, delete records (move a partition's log start).
//!
//! ```text
//! let admin = Admin::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! admin.create_topic(&NewTopic::new("orders", 3)).await?;
//! let d = admin.describe_topic("orders").await?;   // partitions, leaders, ISR, offsets, configs
//! ```

use std::collections::HashMap;
use std::time::Duration;

use sluice_protocol::wire::messages::alter_configs as wa;
use sluice_protocol::wire::messages::create_topics as wc;
use sluice_protocol::wire::messages::delete_records as wdr;
use sluice_protocol::wire::messages::delete_topics::DeleteTopicsRequest;
use sluice_protocol::wire::messages::describe_configs as wd;
use sluice_protocol::wire::{Request, Response};

use crate::cluster::{held_margin, Client, Target};
use crate::config::ClientConfig;
use crate::error::{AdminError, ClientError, KafkaCode};
use crate::limits::METADATA_RETRIES_MAX;

/// DescribeConfigs / AlterConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs config source of a value set on the topic (DYNAMIC_TOPIC_CONFIG).
const CONFIG_SOURCE_TOPIC: i8 = 1;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: i32,
    /// Replication factor (at least 1, at most the number of brokers).
    pub replication_factor: i16,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions, one replica and default configs.
    pub fn new(name: &str, partitions: i32) -> Self {
        NewTopic {
            name: name.to_string(),
            partitions,
            replication_factor: 1,
            configs: Vec::new(),
        }
    }
}

/// A topic in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Its name.
    pub name: String,
    /// Its partition count.
    pub partitions: usize,
    /// Whether it is internal.
    pub internal: bool,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition.
    pub partition: i32,
    /// The leader's node id (-1: none).
    pub leader: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// The log start offset, if the leader answered.
    pub start_offset: Option<i64>,
    /// The high watermark (end offset), if the leader answered.
    pub end_offset: Option<i64>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Its name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<PartitionDescription>,
    /// Its configs as the broker reports them, sorted by name.
    pub configs: Vec<(String, String)>,
}

/// Administrative operations on the cluster.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

fn broker_error(code: i16, message: Option<String>, context: String) -> AdminError {
    let context = match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{context} ({m})"),
        None => context,
    };
    ClientError::Broker {
        code: KafkaCode(code),
        context,
    }
    .into()
}

fn wrong_type() -> AdminError {
    ClientError::Protocol {
        addr: "admin".into(),
        reason: "response of the wrong type".into(),
    }
    .into()
}

impl Admin {
    /// Connects to the cluster.
    pub async fn connect(config: ClientConfig) -> Result<Admin, AdminError> {
        Ok(Admin {
            client: Client::connect(config).await?,
        })
    }

    /// An admin client sharing an existing client's connections.
    pub fn with_client(client: Client) -> Admin {
        Admin { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates a topic and waits until every partition has a leader.
    pub async fn create_topic(&self, topic: &NewTopic) -> Result<(), AdminError> {
        let timeout_ms = self.client.config().request_timeout_ms();
        let request = Request::CreateTopics(wc::CreateTopicsRequest {
            topics: vec![wc::CreatableTopic {
                name: topic.name.clone(),
                num_partitions: topic.partitions,
                replication_factor: topic.replication_factor,
                assignments: Vec::new(),
                configs: topic
                    .configs
                    .iter()
                    .map(|(k, v)| wc::CreatableTopicConfig {
                        name: k.clone(),
                        value: Some(v.clone()),
                    })
                    .collect(),
            }],
            timeout_ms,
            validate_only: false,
        });
        let response = self
            .client
            .send_request(Target::Controller, request, Duration::ZERO)
            .await?;
        let Response::CreateTopics(r) = response else {
            return Err(wrong_type());
        };
        for t in r.topics {
            if t.error_code != 0 {
                return Err(broker_error(
                    t.error_code,
                    t.error_message,
                    format!("create topic {}", t.name),
                ));
            }
        }
        // Metadata may lag the creation by a moment on some brokers: wait for it, bounded.
        for attempt in 0..=METADATA_RETRIES_MAX {
            self.client.invalidate(&topic.name);
            match self.client.topic(&topic.name).await {
                Ok(_) => return Ok(()),
                Err(ClientError::UnknownTopic(_)) if attempt < METADATA_RETRIES_MAX => {
                    tokio::time::sleep(self.client.config().retry_backoff).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let timeout_ms = self.client.config().request_timeout_ms();
        let request = Request::DeleteTopics(DeleteTopicsRequest {
            topic_names: vec![name.to_string()],
            timeout_ms,
        });
        let response = self
            .client
            .send_request(Target::Controller, request, Duration::ZERO)
            .await?;
        let Response::DeleteTopics(r) = response else {
            return Err(wrong_type());
        };
        for t in r.responses {
            if t.error_code != 0 {
                return Err(broker_error(
                    t.error_code,
                    None,
                    format!("delete topic {}", t.name),
                ));
            }
        }
        self.client.forget_topic(name);
        Ok(())
    }

    /// Every topic, sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicListing>, AdminError> {
        let m = self.client.refresh_metadata(None).await?;
        let mut out: Vec<TopicListing> = m
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0)
            .map(|t| TopicListing {
                name: t.name,
                partitions: t.partitions.len(),
                internal: t.is_internal,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A topic's partitions (leader, replicas, ISR, start and end offsets) and configs.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription, AdminError> {
        self.client.invalidate(name);
        let info = self.client.topic(name).await?;
        let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in &info.partitions {
            if p.leader >= 0 {
                by_leader.entry(p.leader).or_default().push(p.partition);
            }
        }
        let mut offsets: HashMap<i32, (Option<i64>, Option<i64>)> = HashMap::new();
        for (leader, parts) in by_leader {
            for (ts, is_start) in [(-2i64, true), (-1i64, false)] {
                let query: Vec<(&str, i32, i64)> = parts.iter().map(|&p| (name, p, ts)).collect();
                // A leader that does not answer leaves "-" in the table rather than failing all.
                let Ok(listed) = self.client.list_offsets(leader, &query).await else {
                    continue;
                };
                for o in listed.into_iter().filter(|o| o.error_code == 0) {
                    let e = offsets.entry(o.partition).or_default();
                    if is_start {
                        e.0 = Some(o.offset);
                    } else {
                        e.1 = Some(o.offset);
                    }
                }
            }
        }
        let partitions = info
            .partitions
            .iter()
            .map(|p| {
                let (start, end) = offsets.get(&p.partition).copied().unwrap_or_default();
                PartitionDescription {
                    partition: p.partition,
                    leader: p.leader,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    start_offset: start,
                    end_offset: end,
                }
            })
            .collect();
        let configs = self.topic_configs(name).await?;
        Ok(TopicDescription {
            name: name.to_string(),
            partitions,
            configs,
        })
    }

    /// A topic's configs (DescribeConfigs), sorted by name; sensitive values are left out.
    pub async fn topic_configs(&self, name: &str) -> Result<Vec<(String, String)>, AdminError> {
        Ok(self
            .describe_configs(name)
            .await?
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect())
    }

    /// The configs set on the topic itself (not broker defaults), sorted by name.
    pub async fn topic_config_overrides(
        &self,
        name: &str,
    ) -> Result<Vec<(String, String)>, AdminError> {
        Ok(self
            .describe_configs(name)
            .await?
            .into_iter()
            .filter(|(_, _, is_override)| *is_override)
            .map(|(k, v, _)| (k, v))
            .collect())
    }

    /// Sets some of a topic's configs and removes others (back to their defaults), keeping the
    /// rest: the overrides are read, merged, and written back with AlterConfigs.
    pub async fn update_topic_configs(
        &self,
        name: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), AdminError> {
        let mut configs: std::collections::BTreeMap<String, String> = self
            .topic_config_overrides(name)
            .await?
            .into_iter()
            .collect();
        for k in remove {
            configs.remove(k);
        }
        for (k, v) in set {
            configs.insert(k.clone(), v.clone());
        }
        let configs: Vec<(String, String)> = configs.into_iter().collect();
        self.alter_topic_configs(name, &configs).await
    }

    /// (name, value, set on the topic) for each non-sensitive config, sorted by name.
    async fn describe_configs(
        &self,
        name: &str,
    ) -> Result<Vec<(String, String, bool)>, AdminError> {
        let request = Request::DescribeConfigs(wd::DescribeConfigsRequest {
            resources: vec![wd::DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_string(),
                configuration_keys: None,
            }],
            include_synonyms: false,
        });
        let response = self
            .client
            .send_request(Target::Any, request, Duration::ZERO)
            .await?;
        let Response::DescribeConfigs(r) = response else {
            return Err(wrong_type());
        };
        let mut out = Vec::new();
        for result in r.results {
            if result.error_code != 0 {
                return Err(broker_error(
                    result.error_code,
                    result.error_message,
                    format!("describe configs of {name}"),
                ));
            }
            for c in result.configs {
                if !c.is_sensitive {
                    // v1+ says where a value comes from (1: set on the topic); v0 only whether
                    // it is a default.
                    let is_override = c.config_source == CONFIG_SOURCE_TOPIC
                        || (c.config_source < 0 && !c.is_default);
                    out.push((c.name, c.value.unwrap_or_default(), is_override));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Replaces a topic's configs (AlterConfigs: the given set replaces every value set on the
    /// topic; see [`Admin::update_topic_configs`] to change some and keep the others).
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        configs: &[(String, String)],
    ) -> Result<(), AdminError> {
        let request = Request::AlterConfigs(wa::AlterConfigsRequest {
            resources: vec![wa::AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_string(),
                configs: configs
                    .iter()
                    .map(|(k, v)| wa::AlterableConfig {
                        name: k.clone(),
                        value: Some(v.clone()),
                    })
                    .collect(),
            }],
            validate_only: false,
        });
        let response = self
            .client
            .send_request(Target::Controller, request, Duration::ZERO)
            .await?;
        let Response::AlterConfigs(r) = response else {
            return Err(wrong_type());
        };
        for result in r.responses {
            if result.error_code != 0 {
                return Err(broker_error(
                    result.error_code,
                    result.error_message,
                    format!("alter configs of {name}"),
                ));
            }
        }
        Ok(())
    }

    /// DeleteRecords: deletes the records of each `(partition, offset)` before `offset` (-1:
    /// before the high watermark, i.e. all of them) by moving the partition's log start there.
    /// Returns each partition's new low watermark or its error (OFFSET_OUT_OF_RANGE past the
    /// high watermark, ...), in the order given. One request per leader, all at once; partitions
    /// whose leader moved are retried after a metadata refresh. In a cluster the leader answers
    /// once every in-sync replica has dropped the records.
    pub async fn delete_records(
        &self,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> Result<Vec<(i32, Result<i64, AdminError>)>, AdminError> {
        let timeout_ms = self.client.config().request_timeout_ms();
        let mut done: HashMap<i32, Result<i64, AdminError>> = HashMap::with_capacity(offsets.len());
        let mut pending: Vec<(i32, i64)> = offsets.to_vec();
        for attempt in 0..=METADATA_RETRIES_MAX {
            let mut by_leader: HashMap<i32, Vec<wdr::DeleteRecordsPartition>> = HashMap::new();
            for &(partition, offset) in &pending {
                let leader = self.client.leader(topic, partition).await?;
                by_leader
                    .entry(leader)
                    .or_default()
                    .push(wdr::DeleteRecordsPartition {
                        partition_index: partition,
                        offset,
                    });
            }
            let mut requests = tokio::task::JoinSet::new();
            for (leader, partitions) in by_leader {
                let client = self.client.clone();
                let request = Request::DeleteRecords(wdr::DeleteRecordsRequest {
                    topics: vec![wdr::DeleteRecordsTopic {
                        name: topic.to_string(),
                        partitions,
                    }],
                    timeout_ms,
                });
                requests.spawn(async move {
                    client
                        .send_request(Target::Node(leader), request, held_margin(timeout_ms))
                        .await
                });
            }
            let mut retry = Vec::new();
            while let Some(joined) = requests.join_next().await {
                let response = joined.map_err(|e| ClientError::Protocol {
                    addr: "admin".into(),
                    reason: format!("delete records task: {e}"),
                })??;
                let Response::DeleteRecords(r) = response else {
                    return Err(wrong_type());
                };
                for p in r.topics.into_iter().flat_map(|t| t.partitions) {
                    let code = KafkaCode(p.error_code);
                    let asked = pending.iter().find(|x| x.0 == p.partition_index).copied();
                    match asked {
                        None => {}
                        Some(_) if p.error_code == 0 => {
                            done.insert(p.partition_index, Ok(p.low_watermark));
                        }
                        Some(x) if code.is_retriable() && attempt < METADATA_RETRIES_MAX => {
                            if code.refreshes_metadata() {
                                self.client.invalidate(topic);
                            }
                            retry.push(x);
                        }
                        Some(_) => {
                            let e = broker_error(
                                p.error_code,
                                None,
                                format!("delete records of {topic}/{}", p.partition_index),
                            );
                            done.insert(p.partition_index, Err(e));
                        }
                    }
                }
            }
            if retry.is_empty() {
                break;
            }
            pending = retry;
            tokio::time::sleep(self.client.config().retry_backoff).await;
        }
        Ok(offsets
            .iter()
            .map(|&(partition, _)| {
                let result = done.remove(&partition).unwrap_or_else(|| {
                    Err(ClientError::Protocol {
                        addr: "admin".into(),
                        reason: format!("no answer for {topic}/{partition} to delete records"),
                    }
                    .into())
                });
                (partition, result)
            })
            .collect())
    }

    /// The earliest offset (log start) of a partition.
    pub async fn earliest_offset(&self, topic: &str, partition: i32) -> Result<i64, AdminError> {
        Ok(self
            .client
            .offset_for_timestamp(topic, partition, -2)
            .await?)
    }

    /// The latest offset (high watermark) of a partition.
    pub async fn latest_offset(&self, topic: &str, partition: i32) -> Result<i64, AdminError> {
        Ok(self
            .client
            .offset_for_timestamp(topic, partition, -1)
            .await?)
    }

    /// The first offset whose record timestamp is at or after `timestamp_ms`, or `None`.
    pub async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>, AdminError> {
        let o = self
            .client
            .offset_for_timestamp(topic, partition, timestamp_ms.max(0))
            .await?;
        Ok((o >= 0).then_some(o))
    }
}
