//! The Sluice broker: partition logs on disk, the Kafka-protocol server, the group coordinator and
//! replication. The `sluiced` binary in `src/bin/sluiced.rs` drives it.
#![warn(missing_docs)]

pub mod config;
pub mod group;
pub mod log;
pub mod metadata;
pub mod replication;
pub mod server;
