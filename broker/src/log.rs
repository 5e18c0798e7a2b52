//! The partition log: segment files, indexes, recovery, retention, compaction, durable group commit.
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod leader_epoch;
pub mod limits;
pub mod mem_storage;
pub mod offset_index;
pub mod storage;
pub mod time_index;
