//! The scheduler: retries recompute from lineage, task ids are deterministic, shuffle outputs and
//! cached blocks are reused, co-partitioned inputs are not shuffled again.

use sluice_stream::{Context, ContextConfig, HashPartitioner, JobError, TaskError, TaskId};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn ctx() -> Context {
    Context::new(ContextConfig {
        workers: Some(2),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn failed_tasks_are_retried_from_lineage() {
    let ctx = ctx();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    // Partition 1 fails on its first two computations.
    let src = ctx.source("flaky", 3, move |p, tc| {
        if p == 1 && c.fetch_add(1, Ordering::SeqCst) < 2 {
            assert!(tc.attempt() < 2);
            return Err(TaskError::Source("broker unreachable".into()));
        }
        Ok(Box::new((0..10).map(move |i| (p * 10 + i) as u64)))
    });
    let total = src
        .map(|x| (x % 3, x))
        .reduce_by_key(|a, b| a + b)
        .values()
        .fold(0, |a, b| a + b)
        .unwrap();
    assert_eq!(total, (0..30).sum::<u64>());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn a_task_failing_every_attempt_fails_the_job_with_its_id() {
    let ctx = Context::new(ContextConfig {
        workers: Some(2),
        task_attempts: 2,
    })
    .unwrap();
    ctx.set_batch(7);
    let src = ctx.source("broken", 2, |p, _| {
        if p == 1 {
            Err(TaskError::Source("gone".into()))
        } else {
            Ok(Box::new(0..3u32))
        }
    });
    let err = src
        .map(|x| (x, 1))
        .reduce_by_key(|a, b| a + b)
        .collect()
        .unwrap_err();
    assert_eq!(
        err,
        JobError::TaskFailed {
            task: TaskId {
                batch: 7,
                stage: 0,
                partition: 1
            },
            attempts: 2,
            cause: TaskError::Source("gone".into())
        }
    );
}

#[test]
fn panics_in_user_code_are_task_failures() {
    let ctx = Context::new(ContextConfig {
        workers: Some(1),
        task_attempts: 3,
    })
    .unwrap();
    let tries = Arc::new(AtomicUsize::new(0));
    let t = tries.clone();
    let r = ctx.parallelize(vec![1, 2, 3], 1).unwrap().map(move |x| {
        if x == 2 && t.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("transient bug");
        }
        x
    });
    assert_eq!(r.collect().unwrap(), vec![1, 2, 3]);
    let always = ctx
        .parallelize(vec![1], 1)
        .unwrap()
        .map(|_: i32| -> i32 { panic!("always") });
    match always.collect() {
        Err(JobError::TaskFailed {
            attempts: 3,
            cause: TaskError::Panicked(m),
            ..
        }) => assert_eq!(m, "always"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn task_ids_are_deterministic_per_batch_stage_and_partition() {
    let run = || {
        let ctx = ctx();
        ctx.set_batch(42);
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let s = seen.clone();
        let a = ctx
            .parallelize((0..100u32).collect(), 3)
            .unwrap()
            .map(|x| (x % 5, x));
        let b = a
            .reduce_by_key(|x, y| x + y)
            .map(|(k, v)| (k % 2, v))
            .group_by_key_with(Arc::new(HashPartitioner::new(2)));
        b.foreach_partition(move |tc, it| {
            s.lock().unwrap().insert((tc.task_id(), it.count()));
            Ok(())
        })
        .unwrap();
        let v = seen.lock().unwrap().clone();
        v
    };
    let first = run();
    assert_eq!(first, run());
    let ids: Vec<TaskId> = first.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        vec![
            TaskId {
                batch: 42,
                stage: 2,
                partition: 0
            },
            TaskId {
                batch: 42,
                stage: 2,
                partition: 1
            }
        ]
    );
}

#[test]
fn cache_and_shuffle_outputs_are_reused_across_jobs() {
    let ctx = ctx();
    let computed = Arc::new(AtomicUsize::new(0));
    let c = computed.clone();
    let src = ctx.source("counted", 4, move |p, _| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new((0..5u32).map(move |i| (i, p as u32))))
    });
    let cached = src.cache();
    assert_eq!(cached.count().unwrap(), 20);
    assert_eq!(cached.count().unwrap(), 20);
    assert_eq!(
        computed.load(Ordering::SeqCst),
        4,
        "cached partitions are computed once"
    );

    computed.store(0, Ordering::SeqCst);
    let reduced = src.reduce_by_key(|a, b| a + b);
    assert_eq!(reduced.count().unwrap(), 5);
    assert_eq!(reduced.collect().unwrap().len(), 5);
    assert_eq!(
        computed.load(Ordering::SeqCst),
        4,
        "map outputs of a shuffle are kept, as Spark skips stages"
    );
}

#[test]
fn co_partitioned_inputs_are_joined_without_a_shuffle() {
    let ctx = ctx();
    let p = Arc::new(HashPartitioner::new(3));
    let a = ctx
        .parallelize((0..50u32).map(|i| (i % 7, i)).collect(), 2)
        .unwrap()
        .partition_by(p.clone());
    let b = ctx
        .parallelize((0..30u32).map(|i| (i % 5, i)).collect(), 4)
        .unwrap()
        .reduce_by_key_with(p.clone(), |x, y| x + y);
    let joined = a.join(&b);
    let debug = joined.to_debug_string();
    // Exactly two shuffles (the partition_by and the reduce_by_key), none added by the join.
    assert_eq!(debug.matches("+-").count(), 2, "{debug}");
    assert_eq!(
        a.partition_by(p).id(),
        a.id(),
        "partition_by on an already-partitioned RDD is a no-op"
    );
    assert_eq!(
        joined.count().unwrap(),
        50 - (0..50).filter(|i| i % 7 >= 5).count() as u64
    );
}

#[test]
fn empty_and_skewed_inputs_work() {
    let ctx = ctx();
    let e = ctx.empty::<(u8, u8)>();
    assert_eq!(e.count().unwrap(), 0);
    assert_eq!(e.reduce_by_key(|a, _| a).collect().unwrap(), vec![]);
    assert_eq!(e.first().unwrap(), None);
    let u = e
        .union(&ctx.parallelize(vec![(1, 2)], 3).unwrap())
        .union(&e);
    assert_eq!(u.collect().unwrap(), vec![(1, 2)]);
    let skew = ctx
        .parallelize(vec![9u8; 1000], 4)
        .unwrap()
        .sort_by(|x| *x, true, 3)
        .unwrap();
    assert_eq!(skew.collect().unwrap(), vec![9u8; 1000]);
}
