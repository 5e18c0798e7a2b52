//! The Sluice broker: partition logs on disk, the Kafka-protocol server, the group coordinator and
//! (later) replication. The `sluiced` binary in `src/bin/sluiced.rs` drives it.
#![warn(missing_docs)]

pub mod log;
