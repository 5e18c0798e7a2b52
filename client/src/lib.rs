//! The Sluice client: an async library for producing, consuming and administering, over the Kafka
//! wire protocol. The `sluice` CLI in `src/bin/sluice.rs` is built on it.
#![warn(missing_docs)]

pub mod config;
pub mod connection;
pub mod error;
pub mod group;
pub mod limits;
pub mod message;
pub mod metadata;
pub mod partitioner;
pub mod producer;
