//! The group coordinator: Kafka's classic consumer-group protocol and committed offsets.
//!
//! Layout, from the pure core outwards:
//! - [`machine`]: one group's synchronous state machine (Empty, PreparingRebalance,
//!   CompletingRebalance, Stable, Dead), driven by requests and by `now_ms` passed in. Join and sync
//!   answers that must wait (for the round to finish, for the leader's assignment) are *parked*
//!   under a [`types::ReplyToken`] and handed back later as [`types::Delivery`] values, so the core
//!   never blocks and never reads a clock.
//! - [`registry`]: every group of this coordinator, request validation, member-id generation,
//!   timers (`tick`, `next_deadline_ms`), offsets, ListGroups / DescribeGroups / DeleteGroups.
//! - [`protocol_select`]: the common, most voted protocol.
//! - [`types`]: the core's own request and response types and error codes (Kafka's numbers).
//! - [`config`]: the broker settings `group.*` and `offsets.*` ([`config::GroupConfig`]).
//! - [`limits`]: named bounds on everything a client can make the coordinator hold.
//! - [`offsets_format`]: the key/value layout of `__consumer_offsets` records (Kafka's own).
//! - [`offsets_batch`]: those records as RecordBatch v2.
//! - [`offsets_log`]: the narrow [`offsets_log::OffsetsLog`] trait (append durably, read all) and
//!   an in-memory implementation; [`log_offsets`]: the real one on the partition logs.
//! - [`coordinator`]: the async [`coordinator::GroupCoordinator`]: a mutex around the core, a
//!   timer task feeding `now`, oneshot channels for parked answers, commits acknowledged only once
//!   durable, offsets replayed at start-up.
//! - [`wire_api`]: the group APIs in wire terms; the server calls
//!   [`coordinator::GroupCoordinator::handle`].
//!
//! **Boundary**: nothing in `machine`, `registry` or `protocol_select` does I/O or reads time.
pub mod cluster_service;
pub mod config;
pub mod coordinator;
pub mod limits;
pub mod log_offsets;
pub mod machine;
pub mod offsets_batch;
pub mod offsets_format;
pub mod offsets_log;
pub mod protocol_select;
pub mod registry;
pub mod replicated_offsets;
pub mod service;
pub mod types;
pub mod wire_api;

#[cfg(test)]
mod coordinator_tests;
#[cfg(test)]
mod tests;
