//! The broker-backed [`Log`]: `sluice-client`'s `Client`, `Admin`, idempotent `Producer` and
//! bounded-range reader, driven on a small tokio runtime owned by this value.
//!
//! The engine's tasks and driver are plain threads that block on this runtime (`Handle::block_on`
//! from a non-runtime thread is allowed), so a `ClientLog` must not be used from inside another
//! tokio runtime's worker thread.

use crate::error::StreamError;
use crate::log::{Log, OutRecord, PendingRead, Record};
use crate::planner::PartitionOffsets;
use sluice_client::consumer::read_range;
use sluice_client::{
    Admin, Client, ClientConfig, ConsumerConfig, ConsumerRecord, NewTopic, Producer,
    ProducerConfig, ProducerRecord,
};
use std::sync::Arc;

/// A [`Log`] over a Sluice (or any Kafka-compatible) cluster.
pub struct ClientLog {
    rt: tokio::runtime::Runtime,
    client: Client,
    admin: Admin,
    producer: Producer,
    consumer: ConsumerConfig,
}

impl std::fmt::Debug for ClientLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLog").finish_non_exhaustive()
    }
}

fn broker(e: impl std::fmt::Display) -> StreamError {
    StreamError::Broker(e.to_string())
}

impl ClientLog {
    /// Connects to `brokers` (`host:port[,host:port...]`).
    pub fn connect(brokers: &str) -> Result<ClientLog, StreamError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sluice-stream-io")
            .enable_all()
            .build()
            .map_err(|e| StreamError::Config(format!("cannot start the I/O runtime: {e}")))?;
        let (client, producer) = rt.block_on(async {
            let client = Client::connect(ClientConfig::new(brokers))
                .await
                .map_err(broker)?;
            // acks=all + idempotence: ordered, de-duplicated retries per partition, which the
            // exactly-once sink and the progress logs rely on.
            let mut pc = ProducerConfig::new(brokers);
            pc.client.allow_auto_topic_creation = false;
            let producer = Producer::with_client(client.clone(), pc)
                .await
                .map_err(broker)?;
            Ok::<_, StreamError>((client, producer))
        })?;
        let admin = Admin::with_client(client.clone());
        let consumer = ConsumerConfig::new(brokers);
        Ok(ClientLog {
            rt,
            client,
            admin,
            producer,
            consumer,
        })
    }
}

/// Client records to engine records: the byte fields move over without copying.
fn convert(topic: &Arc<str>, records: Vec<ConsumerRecord>) -> Vec<Record> {
    records
        .into_iter()
        .map(|r| Record {
            topic: topic.clone(),
            partition: r.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().map(|h| (h.key, h.value)).collect(),
        })
        .collect()
}

impl Log for ClientLog {
    fn partitions(&self, topic: &str) -> Result<i32, StreamError> {
        let t = self.rt.block_on(self.client.topic(topic)).map_err(broker)?;
        Ok(t.partitions.len() as i32)
    }

    fn offsets(&self, topic: &str, partition: i32) -> Result<PartitionOffsets, StreamError> {
        self.rt.block_on(async {
            let start = self
                .admin
                .earliest_offset(topic, partition)
                .await
                .map_err(broker)?;
            let end = self
                .admin
                .latest_offset(topic, partition)
                .await
                .map_err(broker)?;
            Ok(PartitionOffsets { start, end })
        })
    }

    fn start_read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> Option<PendingRead> {
        let (client, config, name) = (
            self.client.clone(),
            self.consumer.clone(),
            topic.to_string(),
        );
        let task = self.rt.spawn(async move {
            read_range(&client, &config, &name, partition, from, until).await
        });
        let rt = self.rt.handle().clone();
        let topic: Arc<str> = Arc::from(topic);
        Some(Box::new(move || {
            let records = rt
                .block_on(task)
                .map_err(|e| StreamError::Broker(format!("read task failed: {e}")))?
                .map_err(broker)?;
            Ok(convert(&topic, records))
        }))
    }

    fn read_range(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> Result<Vec<Record>, StreamError> {
        let records = self
            .rt
            .block_on(read_range(
                &self.client,
                &self.consumer,
                topic,
                partition,
                from,
                until,
            ))
            .map_err(broker)?;
        Ok(convert(&Arc::from(topic), records))
    }

    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, StreamError> {
        self.rt.block_on(async {
            match self
                .admin
                .offset_for_time(topic, partition, timestamp_ms)
                .await
                .map_err(broker)?
            {
                Some(o) => Ok(o),
                None => self
                    .admin
                    .latest_offset(topic, partition)
                    .await
                    .map_err(broker),
            }
        })
    }

    fn ensure_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), StreamError> {
        self.rt.block_on(async {
            if self.admin.describe_topic(topic).await.is_ok() {
                return Ok(());
            }
            let mut t = NewTopic::new(topic, partitions);
            t.configs = configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            match self.admin.create_topic(&t).await {
                Ok(()) => Ok(()),
                // Created concurrently (or the create raced a metadata refresh): fine if it exists.
                Err(e) => match self.admin.describe_topic(topic).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(broker(e)),
                },
            }
        })
    }

    fn write(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutRecord>,
    ) -> Result<(), StreamError> {
        self.rt.block_on(async {
            let mut deliveries = Vec::with_capacity(records.len());
            for r in &records {
                let headers: Vec<(&str, Option<&[u8]>)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_deref()))
                    .collect();
                let mut pr = ProducerRecord {
                    topic,
                    partition: Some(partition),
                    key: r.key.as_deref(),
                    value: r.value.as_deref(),
                    headers: &headers,
                    timestamp_ms: r.timestamp_ms,
                };
                pr.partition = Some(partition);
                deliveries.push(self.producer.send(pr).await.map_err(broker)?);
            }
            self.producer.flush().await;
            for d in deliveries {
                d.await.map_err(broker)?;
            }
            Ok(())
        })
    }
}
