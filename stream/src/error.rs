//! Error types of the RDD layer: a task's failure and a job's failure.

use crate::task::TaskId;
use thiserror::Error;

/// Why one attempt of a task failed. Tasks are retried from lineage up to
/// [`crate::limits::TASK_ATTEMPTS_MAX`] times before the job fails with [`JobError::TaskFailed`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TaskError {
    /// User code panicked inside the task; the payload's message is kept.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// Reading a source partition failed (for instance the broker was unreachable).
    #[error("source read failed: {0}")]
    Source(String),
    /// A sink failed while writing the task's output. Not retried by the scheduler (part of the
    /// output may be written); the streaming driver re-runs the batch.
    #[error("sink failed: {0}")]
    Sink(String),
}

/// Why a job (one action) failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum JobError {
    /// A task failed on every attempt.
    #[error("task {task} failed after {attempts} attempts: {cause}")]
    TaskFailed {
        /// The deterministic id of the failed task.
        task: TaskId,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's failure.
        cause: TaskError,
    },
    /// An argument to an operation was out of range (for instance zero partitions).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Why a streaming operation failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StreamError {
    /// A job of the batch failed.
    #[error(transparent)]
    Job(#[from] JobError),
    /// An invalid setting (window not a multiple of the batch interval, ...).
    #[error("invalid streaming configuration: {0}")]
    Config(String),
    /// A state snapshot could not be encoded or decoded.
    #[error("state snapshot of {node}: {reason}")]
    Snapshot {
        /// The stateful node.
        node: String,
        /// What went wrong.
        reason: String,
    },
    /// Talking to the broker failed (listing offsets, the progress logs, a sink).
    #[error("broker: {0}")]
    Broker(String),
    /// The progress logs in the broker are inconsistent with this job.
    #[error("progress log: {0}")]
    Progress(String),
    /// The context was stopped or not started.
    #[error("streaming context is {0}")]
    State(&'static str),
}
