//! Partition replication and cluster metadata (issue 7), Kafka's design: followers fetch from the
//! leader, leader epochs are stamped in every batch, the high watermark is the minimum durable end
//! offset over the in-sync replicas, divergent tails are truncated by leader epoch (KIP-101/279),
//! and leaders are elected only from the ISR by a controller whose state is replicated with Raft.
//!
//! The cores are synchronous and I/O-free; time and messages are arguments, decisions are values:
//! - [`epoch::EpochCache`]: leader epoch -> start offset, and the end offset of an epoch.
//! - [`leader::LeaderState`]: follower positions, ISR shrink/expand, high watermark, acks=all.
//! - [`follower::FollowerState`]: what to fetch next and what to do with a response.
//! - [`controller::ClusterState`]: brokers, partitions, elections, applied from
//!   [`controller::MetadataCommand`]s in log order; [`controller::Liveness`] decides fencing.
//! - [`sim`]: a seeded in-memory cluster of these cores with loss, delay, reordering, partitions and
//!   crashes, checking the safety invariants.
//! - [`replica`]: the leader and follower cores bound to a real [`crate::log::Partition`].
//! - [`raft`]: the openraft-backed metadata log and state machine, stored on disk.
//! - [`fetcher`]: follower fetches over the peer protocol (leader side and follower task).
//! - [`peer`]: the broker-to-broker protocol (metadata Raft RPCs, follower fetches) and its TCP
//!   transport.
//!
//! See ARCHITECTURE.md ("replication") for the design and its invariants.

pub mod cluster;
pub mod controller;
pub mod epoch;
pub mod fetcher;
pub mod follower;
pub mod leader;
pub mod limits;
pub mod message;
pub mod peer;
pub mod raft;
pub mod replica;
pub mod sim;

/// A broker's id in the cluster (`--node-id`).
pub type NodeId = i32;
/// Kafka's "no leader / unknown" broker id.
pub const NO_NODE: NodeId = -1;
