//! Consumer-group membership: subscribe, assignors, rebalance callbacks, offset commits.
