//! The execution context: the worker pool tasks run on, id counters, and the current batch id.
//!
//! Like Spark's `SparkContext`: every RDD belongs to one context, and actions run their tasks on the
//! context's pool. Cloning a `Context` is cheap (an `Arc`).

use crate::error::JobError;
use crate::limits::{TASK_ATTEMPTS_MAX, WORKERS_MAX};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Settings for a [`Context`].
#[derive(Debug, Clone)]
pub struct ContextConfig {
    /// Worker threads; `None` = the number of cores.
    pub workers: Option<usize>,
    /// Attempts per task before the job fails.
    pub task_attempts: u32,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            workers: None,
            task_attempts: TASK_ATTEMPTS_MAX,
        }
    }
}

pub(crate) struct ContextInner {
    pub(crate) pool: rayon::ThreadPool,
    pub(crate) workers: usize,
    pub(crate) task_attempts: u32,
    next_rdd_id: AtomicU64,
    next_shuffle_id: AtomicU64,
    batch: AtomicU64,
}

/// The handle through which RDDs are created and jobs run.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("workers", &self.inner.workers)
            .finish()
    }
}

impl Context {
    /// A context with a worker pool as described by `config`.
    pub fn new(config: ContextConfig) -> Result<Context, JobError> {
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if workers == 0 || workers > WORKERS_MAX {
            return Err(JobError::InvalidArgument(format!(
                "workers must be in 1..={WORKERS_MAX}, got {workers}"
            )));
        }
        if config.task_attempts == 0 {
            return Err(JobError::InvalidArgument(
                "task_attempts must be at least 1".into(),
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("sluice-task-{i}"))
            .build()
            .map_err(|e| JobError::InvalidArgument(format!("cannot start worker pool: {e}")))?;
        Ok(Context {
            inner: Arc::new(ContextInner {
                pool,
                workers,
                task_attempts: config.task_attempts,
                next_rdd_id: AtomicU64::new(0),
                next_shuffle_id: AtomicU64::new(0),
                batch: AtomicU64::new(0),
            }),
        })
    }

    /// A context with one worker per core and default settings.
    pub fn local() -> Result<Context, JobError> {
        Context::new(ContextConfig::default())
    }

    /// The number of worker threads (also the default partition count of `parallelize`).
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// The batch id stamped into task ids of jobs started from now on.
    pub fn batch(&self) -> u64 {
        self.inner.batch.load(Ordering::SeqCst)
    }

    /// Sets the batch id for the following jobs (the streaming driver calls this per micro-batch;
    /// jobs of one batch run one after another, as with Spark's default `concurrentJobs = 1`).
    pub fn set_batch(&self, batch: u64) {
        self.inner.batch.store(batch, Ordering::SeqCst);
    }

    pub(crate) fn new_rdd_id(&self) -> u64 {
        self.inner.next_rdd_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn new_shuffle_id(&self) -> u64 {
        self.inner.next_shuffle_id.fetch_add(1, Ordering::Relaxed)
    }
}
