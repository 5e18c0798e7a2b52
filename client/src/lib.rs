//! The Sluice client: an async library for producing, consuming and administering, over the Kafka
//! wire protocol, and the `sluice` CLI built on it ([`cli`], run by `src/bin/sluice.rs`).
//!
//! - [`Producer`]: batching, idempotent, murmur2-partitioned `send` with delivery futures.
//! - [`Consumer`]: `assign`, `seek`, `poll` with prefetch, and `read_range` for exact offset
//!   ranges (what the stream engine uses).
//! - [`Admin`]: topics (create, delete, list, describe), configs, offsets.
//! - [`Client`]: the shared cluster handle under all three: one pipelined connection per broker,
//!   ApiVersions negotiation, a metadata cache, timeouts and reconnects.
//!
//! Errors are typed per operation ([`ProduceError`], [`ConsumeError`], [`AdminError`], wrapping
//! [`ClientError`]) and their messages say what to do.
#![warn(missing_docs)]

pub mod admin;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group;
pub mod limits;
pub mod message;
pub mod metadata;
pub mod partitioner;
pub mod producer;

pub use admin::{Admin, NewTopic, TopicDescription};
pub use cluster::Client;
pub use config::{
    Acks, ClientConfig, CompressionType, ConsumerConfig, OffsetReset, ProducerConfig,
};
pub use consumer::{Consumer, SeekTo};
pub use error::{AdminError, ClientError, ConsumeError, ProduceError};
pub use message::{ConsumerRecord, Header, ProducerRecord, RecordMetadata};
pub use producer::{Delivery, Producer};
