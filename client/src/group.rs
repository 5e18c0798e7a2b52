//! Consumer-group membership: subscribe, assignors, rebalance callbacks, offset commits.
//!
//! - [`protocol`]: the consumer protocol's subscription and assignment bytes.
//! - [`assignor`]: the `range` and `roundrobin` assignors the leader runs.
pub mod assignor;
pub mod protocol;
