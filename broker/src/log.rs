//! The partition log: segment files, indexes, recovery, retention, compaction, durable group commit.
pub mod batch;
pub mod checkpoint;
pub mod config;
#[cfg(test)]
mod crash_tests;
pub mod error;
pub mod leader_epoch;
pub mod limits;
pub mod mem_storage;
pub mod offset_index;
pub mod partition_log;
pub mod producer_state;
pub mod read;
pub mod recovery;
pub mod scan;
pub mod segment;
pub mod storage;
pub mod time_index;
