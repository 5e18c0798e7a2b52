//! Task identity: every task has a deterministic id `(batch, stage, partition)` so that sinks can
//! make their writes idempotent across retries and job re-runs.

use std::fmt;

/// A task's deterministic id. The same batch re-run after a crash produces the same ids for the
/// same work: stage numbers are assigned in lineage order, never from a global counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The micro-batch (or 0 for a batch job) the task belongs to.
    pub batch: u64,
    /// The stage within the job: shuffle-map stages first in lineage order, the result stage last.
    pub stage: u32,
    /// The partition the task computes.
    pub partition: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}-s{}-p{}", self.batch, self.stage, self.partition)
    }
}

/// What a running task knows about itself; passed to partition-level user functions and sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskContext {
    pub(crate) task_id: TaskId,
    pub(crate) attempt: u32,
}

impl TaskContext {
    /// A context for running user code outside the scheduler (tests, driver-side helpers).
    pub fn new(task_id: TaskId, attempt: u32) -> TaskContext {
        TaskContext { task_id, attempt }
    }

    /// The deterministic task id.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// The batch id (0 for batch jobs).
    pub fn batch(&self) -> u64 {
        self.task_id.batch
    }

    /// The partition this task computes.
    pub fn partition(&self) -> usize {
        self.task_id.partition as usize
    }

    /// The attempt number, starting at 0; greater than 0 when the task is a retry.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}
