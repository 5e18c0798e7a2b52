//! The partition log: segment files, indexes, recovery, retention, compaction, durable group commit.
