//! The partition log: segment files, indexes, recovery, retention, compaction, durable group commit.
//!
//! Every topic-partition is a directory of append-only segments holding Kafka RecordBatch v2 bytes
//! exactly as produced (base offset and leader epoch stamped in place). The layout on disk and the
//! invariants are in ARCHITECTURE.md ("Storage"). Entry points:
//!
//! - [`LogManager`] (`manager`): all partitions of a data directory; open/create/delete, maintenance
//!   tick, clean shutdown.
//! - [`Partition`] (`partition`): the async-safe handle connections share: `append` (with
//!   [`Durability`]), `append_as_follower`, `read`, `offset_for_timestamp`, `subscribe` (fires on every
//!   append), `truncate_to`, `leader_epoch_cache`.
//! - [`PartitionLog`] (`partition_log`): the synchronous core the handle drives (time passed in).
//! - [`LogConfig`] (`config`): topic settings by Kafka name.
//! - `checkpoint::write_atomic` / `checkpoint::read_checked`: atomic, checksummed small files.
//! - `storage`: the narrow file trait; `mem_storage`: the in-memory crash model for tests.

pub mod batch;
pub mod checkpoint;
pub mod clock;
pub mod compaction;
pub mod config;
#[cfg(test)]
mod crash_tests;
pub mod error;
pub mod group_commit;
pub mod leader_epoch;
pub mod limits;
pub mod manager;
pub mod mem_storage;
pub mod offset_index;
pub mod partition;
pub mod partition_log;
pub mod producer_state;
pub mod read;
pub mod recovery;
pub mod recycle;
pub mod retention;
pub mod scan;
pub mod segment;
pub mod spare;
pub mod storage;
pub mod time_index;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, LogConfig};
pub use error::{LogError, LogResult};
pub use manager::LogManager;
pub use partition::{Durability, Partition};
pub use partition_log::{AppendInfo, PartitionLog};
pub use read::{FileRange, ReadResult, SendChunk};
