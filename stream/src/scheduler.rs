//! The scheduler: runs a job (one action) as stages of tasks on the context's worker pool.
//!
//! The lineage is cut at shuffle dependencies: every shuffle whose map outputs are missing becomes a
//! shuffle-map stage, run before the stages that read it (parents first); the final RDD's partitions
//! are the result stage. Stage numbers are assigned in lineage order within the job, so a task id
//! `(batch, stage, partition)` names the same work when the same batch is re-run after a crash.
//!
//! A task that fails (an error or a panic in user code) is retried up to the context's attempt
//! limit, recomputing its partition from lineage; shuffle outputs and cached blocks already made are
//! reused.

use crate::context::Context;
use crate::error::{JobError, TaskError};
use crate::rdd::{Data, Dependency, Lineage, PartIter, Rdd, ShuffleStage};
use crate::task::{TaskContext, TaskId};
use rayon::prelude::*;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// Shuffle stages reachable from `root`, parents before children, each once.
fn shuffle_stages(root: Arc<dyn Lineage>) -> Vec<Arc<dyn ShuffleStage>> {
    fn visit(
        node: &Arc<dyn Lineage>,
        seen_rdds: &mut HashSet<u64>,
        seen_shuffles: &mut HashSet<u64>,
        out: &mut Vec<Arc<dyn ShuffleStage>>,
    ) {
        if !seen_rdds.insert(node.id()) {
            return;
        }
        for dep in node.dependencies() {
            match dep {
                Dependency::Narrow(parent) => visit(&parent, seen_rdds, seen_shuffles, out),
                Dependency::Shuffle(stage) => {
                    visit(&stage.parent(), seen_rdds, seen_shuffles, out);
                    if seen_shuffles.insert(stage.shuffle_id()) {
                        out.push(stage);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    visit(&root, &mut HashSet::new(), &mut HashSet::new(), &mut out);
    out
}

/// Runs `body` as task `task_id`, retrying failures and panics up to `attempts` times.
pub(crate) fn run_task<R>(
    task_id: TaskId,
    attempts: u32,
    body: impl Fn(&TaskContext) -> Result<R, TaskError>,
) -> Result<R, JobError> {
    let mut last = TaskError::Panicked("no attempt was made".into());
    for attempt in 0..attempts {
        let tc = TaskContext { task_id, attempt };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&tc)));
        match outcome {
            Ok(Ok(r)) => return Ok(r),
            // A sink may have written part of its output: retrying the task could write it twice.
            // The streaming driver re-runs the whole batch instead, after reading back what landed.
            Ok(Err(e @ TaskError::Sink(_))) => {
                return Err(JobError::TaskFailed {
                    task: task_id,
                    attempts: attempt + 1,
                    cause: e,
                })
            }
            Ok(Err(e)) => last = e,
            Err(payload) => last = TaskError::Panicked(panic_message(payload.as_ref())),
        }
        tracing::warn!(task = %task_id, attempt, error = %last, "task failed; recomputing from lineage");
    }
    Err(JobError::TaskFailed {
        task: task_id,
        attempts,
        cause: last,
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

fn stage_number(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Runs the missing map tasks of every shuffle `rdd` depends on, in lineage order.
fn run_shuffle_stages(ctx: &Context, root: Arc<dyn Lineage>) -> Result<usize, JobError> {
    let stages = shuffle_stages(root);
    let batch = ctx.batch();
    let attempts = ctx.inner.task_attempts;
    for (i, stage) in stages.iter().enumerate() {
        let missing = stage.missing_maps();
        if missing.is_empty() {
            continue;
        }
        tracing::debug!(
            shuffle = stage.shuffle_id(),
            stage = i,
            tasks = missing.len(),
            "shuffle map stage"
        );
        let results: Vec<Result<(), JobError>> = ctx.inner.pool.install(|| {
            missing
                .par_iter()
                .map(|&m| {
                    let id = TaskId {
                        batch,
                        stage: stage_number(i),
                        partition: m as u32,
                    };
                    run_task(id, attempts, |tc| stage.run_map_task(m, tc))
                })
                .collect()
        });
        results.into_iter().collect::<Result<Vec<()>, JobError>>()?;
    }
    Ok(stages.len())
}

/// Runs a job: `f` is applied to the iterator of each of `partitions` of `rdd`, in parallel, and
/// the results are returned in the order of `partitions`.
pub(crate) fn run_job<T: Data, R: Send>(
    rdd: &Rdd<T>,
    partitions: &[usize],
    f: impl Fn(&TaskContext, PartIter<T>) -> Result<R, TaskError> + Sync,
) -> Result<Vec<R>, JobError> {
    let ctx = rdd.context();
    let result_stage = run_shuffle_stages(ctx, rdd.lineage())?;
    let batch = ctx.batch();
    let attempts = ctx.inner.task_attempts;
    let results: Vec<Result<R, JobError>> = ctx.inner.pool.install(|| {
        partitions
            .par_iter()
            .map(|&p| {
                let id = TaskId {
                    batch,
                    stage: stage_number(result_stage),
                    partition: p as u32,
                };
                run_task(id, attempts, |tc| {
                    let it = rdd.node.compute(p, tc)?;
                    f(tc, it)
                })
            })
            .collect()
    });
    results.into_iter().collect()
}
