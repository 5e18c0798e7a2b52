//! Actions: the operations that run a job and return its results to the driver.

use super::{Data, PartIter, Rdd};
use crate::error::{JobError, TaskError};
use crate::scheduler::run_job;
use crate::task::TaskContext;

impl<T: Data> Rdd<T> {
    fn all_partitions(&self) -> Vec<usize> {
        (0..self.num_partitions()).collect()
    }

    /// All elements, partitions in order.
    pub fn collect(&self) -> Result<Vec<T>, JobError> {
        let parts = run_job(self, &self.all_partitions(), |_, it| {
            Ok(it.collect::<Vec<T>>())
        })?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// The number of elements.
    pub fn count(&self) -> Result<u64, JobError> {
        let counts = run_job(self, &self.all_partitions(), |_, it| Ok(it.count() as u64))?;
        Ok(counts.into_iter().sum())
    }

    /// Combines all elements with an associative, commutative `f`; `None` when empty.
    pub fn reduce(&self, f: impl Fn(T, T) -> T + Send + Sync) -> Result<Option<T>, JobError> {
        let parts = run_job(self, &self.all_partitions(), |_, it| Ok(it.reduce(&f)))?;
        Ok(parts.into_iter().flatten().reduce(&f))
    }

    /// Folds each partition from `zero`, then the partition results from `zero` (Spark's `fold`:
    /// `zero` must be neutral for `f`).
    pub fn fold(&self, zero: T, f: impl Fn(T, T) -> T + Send + Sync) -> Result<T, JobError> {
        let parts = run_job(self, &self.all_partitions(), |_, it| {
            Ok(it.fold(zero.clone(), &f))
        })?;
        Ok(parts.into_iter().fold(zero, &f))
    }

    /// The first `n` elements in partition order, scanning as few partitions as it can: one
    /// partition first, then four times as many per round (Spark's `take`).
    pub fn take(&self, n: usize) -> Result<Vec<T>, JobError> {
        let mut out = Vec::new();
        let total = self.num_partitions();
        let mut next = 0;
        let mut step = 1;
        while out.len() < n && next < total {
            let end = (next + step).min(total);
            let parts: Vec<usize> = (next..end).collect();
            let want = n - out.len();
            let got = run_job(self, &parts, |_, it| Ok(it.take(want).collect::<Vec<T>>()))?;
            for part in got {
                let room = n - out.len();
                out.extend(part.into_iter().take(room));
            }
            next = end;
            step *= 4;
        }
        Ok(out)
    }

    /// The first element, if any.
    pub fn first(&self) -> Result<Option<T>, JobError> {
        Ok(self.take(1)?.into_iter().next())
    }

    /// Runs `f` on every element, on the workers (at least once per element: a retried task
    /// repeats it).
    pub fn foreach(&self, f: impl Fn(T) + Send + Sync) -> Result<(), JobError> {
        run_job(self, &self.all_partitions(), |_, it| {
            it.for_each(&f);
            Ok(())
        })?;
        Ok(())
    }

    /// Runs `f` on every partition with its task context (batch, stage, partition, attempt), so a
    /// sink can make its writes idempotent. An `Err` fails the attempt and the task is retried.
    pub fn foreach_partition(
        &self,
        f: impl Fn(&TaskContext, PartIter<T>) -> Result<(), TaskError> + Send + Sync,
    ) -> Result<(), JobError> {
        run_job(self, &self.all_partitions(), f)?;
        Ok(())
    }

    /// Runs `f` on every partition and returns its results in partition order (a general action
    /// for sinks that report what they wrote).
    pub fn run_partitions<R: Send>(
        &self,
        f: impl Fn(&TaskContext, PartIter<T>) -> Result<R, TaskError> + Send + Sync,
    ) -> Result<Vec<R>, JobError> {
        run_job(self, &self.all_partitions(), f)
    }
}
