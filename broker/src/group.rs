//! The group coordinator: Kafka's classic consumer-group protocol and committed offsets.
//!
//! Layout:
//! - [`machine`]: one group's synchronous state machine (Empty, PreparingRebalance,
//!   CompletingRebalance, Stable, Dead), driven by requests and by `now_ms` passed in. Join and sync
//!   responses that must wait for the round to finish are *parked* under a [`types::ReplyToken`] and
//!   handed back later as [`types::Delivery`] values, so the core never blocks and never reads a clock.
//! - [`registry`]: every group of this coordinator, member-id generation, timers (`tick` and
//!   `next_deadline_ms`), offset bookkeeping, ListGroups / DescribeGroups / DeleteGroups.
//! - [`types`]: the coordinator's own request and response types and error codes (Kafka's numbers).
//! - [`config`]: the broker settings `group.*` and `offsets.*`.
//! - [`limits`]: named bounds on everything a client can make the coordinator hold.
//! - [`offsets_format`]: the key/value layout of `__consumer_offsets` records.
//!
//! **Boundary**: nothing in `machine` or `registry` does I/O or reads time; the async
//! coordinator drives them and owns the sockets' reply channels and the offsets log.
pub mod config;
pub mod coordinator;
pub mod limits;
pub mod machine;
pub mod offsets_batch;
pub mod offsets_format;
pub mod offsets_log;
pub mod protocol_select;
pub mod registry;
pub mod types;
pub mod wire_api;

#[cfg(test)]
mod coordinator_tests;
#[cfg(test)]
mod tests;
