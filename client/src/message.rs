//! The records applications hand to the producer and get from the consumer.
//!
//! [`ProducerRecord`] borrows its topic, key, value and headers: the producer copies them straight
//! into the batch being built, so sending allocates nothing per record. [`ConsumerRecord`] holds
//! `Bytes` slices of the fetched response (no copy) and shares its topic name.

use std::sync::Arc;

use bytes::Bytes;

/// One record header: a string key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value (`None` is a null value, distinct from empty).
    pub value: Option<Bytes>,
}

/// A record to send. Build with [`ProducerRecord::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy)]
pub struct ProducerRecord<'a> {
    /// The topic to write to.
    pub topic: &'a str,
    /// A fixed partition, or `None` to let the partitioner choose (by key hash, or sticky when
    /// the key is null).
    pub partition: Option<i32>,
    /// The key (`None` is a null key).
    pub key: Option<&'a [u8]>,
    /// The value (`None` is a null value, a tombstone on compacted topics).
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Create time in milliseconds since the epoch, or `None` for now.
    pub timestamp_ms: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A record with a value and nothing else.
    pub fn new(topic: &'a str, value: &'a [u8]) -> Self {
        ProducerRecord {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
            timestamp_ms: None,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets a fixed partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: &'a [(&'a str, Option<&'a [u8]>)]) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Bytes this record adds to a batch, roughly (for `buffer.memory` accounting).
    pub fn estimated_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.map_or(0, |v| v.len()) + 10)
            .sum();
        21 + self.key.map_or(0, |k| k.len()) + self.value.map_or(0, |v| v.len()) + headers
    }
}

/// Where a record was stored, once the broker acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset, or -1 when not known (acks=0).
    pub offset: i64,
    /// The timestamp stored: the create time, or the broker's append time when the topic uses
    /// `LogAppendTime`.
    pub timestamp_ms: i64,
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Its timestamp (ms since the epoch), of the type the batch carries.
    pub timestamp: i64,
    /// The key, a slice of the fetched data.
    pub key: Option<Bytes>,
    /// The value, a slice of the fetched data.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}
