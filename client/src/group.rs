//! Consumer-group membership: subscribe, assignors, rebalance callbacks, offset commits.
//!
//! - [`consumer`]: [`GroupConsumer`], `subscribe` + `poll` with rebalances inside `poll`, rebalance
//!   callbacks, `commit_sync` / `commit_async`, optional auto-commit.
//! - [`member`]: [`Membership`], one member's side of the group protocol (find coordinator, join,
//!   sync, heartbeat, leave, commit, fetch offsets).
//! - [`admin`]: list, describe (with lag), reset offsets, delete groups.
//! - [`protocol`]: the consumer protocol's subscription and assignment bytes.
//! - [`assignor`]: the `range` and `roundrobin` assignors the leader runs.
//! - [`cli`]: `sluice group ...`.
pub mod admin;
pub mod assignor;
pub mod cli;
pub mod consumer;
pub mod member;
pub mod protocol;

pub use consumer::{
    GroupConsumeError, GroupConsumer, GroupConsumerConfig, OffsetReset, RebalanceContext,
    RebalanceListener,
};
pub use member::{GroupConfig, GroupError, Membership};
