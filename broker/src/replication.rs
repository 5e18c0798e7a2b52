//! Partition replication: leader epochs, high watermark, in-sync replicas, follower fetch.
