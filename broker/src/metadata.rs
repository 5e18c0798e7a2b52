//! Topic and partition metadata the broker serves: topics, partitions, configs, leaders.
