//! Sluice's stream engine: RDD-style partitioned datasets, micro-batch streaming over the log, and
//! bounded batch jobs.
//!
//! - [`rdd`]: `Rdd<T>`, immutable partitioned lazy datasets with lineage, narrow and key-value
//!   operations and actions, run by the scheduler (stages cut at shuffles, retries from lineage,
//!   task ids `(batch, stage, partition)`) on the [`context`]'s worker pool.
//! - Micro-batch cores, synchronous with time passed in: [`planner`] (offset ranges per batch) with
//!   [`rate`] (PID backpressure), [`event_time`] (windows and watermark), [`state`] (keyed state
//!   with timeouts), [`progress`] (offset/commit/state records, restart decision), [`sink`]
//!   (exactly-once output tags).
//! - [`dstream`]: DStreams and their graph; [`streaming`]: `StreamingContext` and its driver;
//!   [`batch_job`]: `BatchContext` for bounded jobs; [`listener`]: batch reports and the summary.
//! - [`log`]: the narrow interface to the event log, with an in-memory implementation; the
//!   broker-backed one is `client_log` (feature `client`).
//!
//! Nothing here may be called from inside a tokio runtime's worker thread: the engine runs on its
//! own threads and blocks on its own runtime for I/O.
#![warn(missing_docs)]

pub mod batch_job;
#[cfg(feature = "client")]
pub mod client_log;
pub mod context;
pub mod dstream;
pub mod error;
pub mod event_time;
pub mod hash;
pub mod limits;
pub mod listener;
pub mod log;
pub mod partitioner;
pub mod planner;
pub mod progress;
pub mod rate;
pub mod rdd;
pub(crate) mod scheduler;
pub mod sink;
pub mod state;
pub mod streaming;
pub mod task;
pub(crate) mod topic_sink;

pub use context::{Context, ContextConfig};
pub use dstream::{Batch, DStream, StreamGraph};
pub use error::{JobError, StreamError, TaskError};
pub use partitioner::{HashPartitioner, Partitioner, PartitionerIdentity};
pub use rdd::{union_all, Aggregator, Data, Key, PartIter, Rdd};
pub use task::{TaskContext, TaskId};
