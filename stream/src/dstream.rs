//! DStreams: a stream as a sequence of RDDs, one per micro-batch, and the graph that computes them.
//!
//! A [`StreamGraph`] holds the DStreams in creation order (which is a topological order: a DStream
//! is created from existing ones) and the output operations. Running batch `b` ticks every DStream
//! in order, each computing its RDD for `b` from its parents' (lazy, so cheap), stateful ones
//! updating their state, then runs the outputs, which are the jobs. A DStream may have no RDD for a
//! batch (a window between slides); its children then have none either and outputs skip it.
//!
//! Stateful DStreams (`update_state_by_key`, `map_with_state`, event-time windows) can snapshot and
//! restore their state, which the streaming driver stores per batch in the broker.

mod stateful;
mod window;

use crate::context::Context;
use crate::error::{JobError, StreamError};
use crate::partitioner::{HashPartitioner, Partitioner};
use crate::rdd::{union_all, Data, Key, Rdd};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use stateful::{MapWithStateDStream, StateSpec};
pub use window::{InverseFn, KeepFn};

/// The batch being computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Sequence number of the batch within the job, from 0.
    pub id: u64,
    /// The batch time (epoch milliseconds, a multiple of the batch interval).
    pub time_ms: i64,
    /// The last batch of a graceful stop: event-time windows close every open window.
    pub is_final: bool,
}

/// State a DStream carries across batches, saved after every batch.
pub(crate) trait Snapshot: Send + Sync {
    fn snapshot(&self) -> Result<Vec<u8>, StreamError>;
    fn restore(&self, bytes: &[u8]) -> Result<(), StreamError>;
    /// Late records dropped so far (event-time windows).
    fn late_dropped(&self) -> u64 {
        0
    }
}

pub(crate) trait GraphNode: Send + Sync {
    fn tick(&self, batch: &Batch) -> Result<(), StreamError>;
    fn stateful(&self) -> Option<Arc<dyn Snapshot>>;
}

type ComputeFn<T> = dyn Fn(&Batch) -> Result<Option<Rdd<T>>, StreamError> + Send + Sync;

pub(crate) struct StreamNode<T> {
    name: &'static str,
    current: Mutex<Option<Rdd<T>>>,
    compute: Box<ComputeFn<T>>,
    state: Option<Arc<dyn Snapshot>>,
}

pub(crate) fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // A panic while holding one of these locks leaves only a replaceable value behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Data> GraphNode for StreamNode<T> {
    fn tick(&self, batch: &Batch) -> Result<(), StreamError> {
        tracing::trace!(node = self.name, batch = batch.id, "computing");
        let rdd = (self.compute)(batch)?;
        *lock(&self.current) = rdd;
        Ok(())
    }
    fn stateful(&self) -> Option<Arc<dyn Snapshot>> {
        self.state.clone()
    }
}

type OutputFn = dyn Fn(&Batch) -> Result<(), StreamError> + Send + Sync;

struct GraphInner {
    ctx: Context,
    batch_interval_ms: u64,
    nodes: Mutex<Vec<Arc<dyn GraphNode>>>,
    outputs: Mutex<Vec<(&'static str, Arc<OutputFn>)>>,
    printed: AtomicU64,
    /// Where `to_topic` writes: set by the `StreamingContext` owning the graph.
    sinks: Mutex<Option<Arc<crate::topic_sink::SinkEnv>>>,
}

/// The DStreams and outputs of one streaming job.
#[derive(Clone)]
pub struct StreamGraph {
    inner: Arc<GraphInner>,
}

impl std::fmt::Debug for StreamGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamGraph")
            .field("batch_interval_ms", &self.inner.batch_interval_ms)
            .field("nodes", &lock(&self.inner.nodes).len())
            .finish()
    }
}

/// A stream of RDDs, one per batch. Cloning is cheap.
pub struct DStream<T> {
    node: Arc<StreamNode<T>>,
    graph: StreamGraph,
}

impl<T> Clone for DStream<T> {
    fn clone(&self) -> Self {
        DStream {
            node: self.node.clone(),
            graph: self.graph.clone(),
        }
    }
}

impl StreamGraph {
    /// An empty graph over `ctx` with the given batch interval.
    pub fn new(ctx: Context, batch_interval_ms: u64) -> Result<StreamGraph, StreamError> {
        if batch_interval_ms == 0 {
            return Err(StreamError::Config("batch interval must be > 0 ms".into()));
        }
        Ok(StreamGraph {
            inner: Arc::new(GraphInner {
                ctx,
                batch_interval_ms,
                nodes: Mutex::new(Vec::new()),
                outputs: Mutex::new(Vec::new()),
                printed: AtomicU64::new(0),
                sinks: Mutex::new(None),
            }),
        })
    }

    /// The execution context.
    pub fn context(&self) -> &Context {
        &self.inner.ctx
    }

    /// The batch interval in milliseconds.
    pub fn batch_interval_ms(&self) -> u64 {
        self.inner.batch_interval_ms
    }

    pub(crate) fn add<T: Data>(
        &self,
        name: &'static str,
        state: Option<Arc<dyn Snapshot>>,
        compute: impl Fn(&Batch) -> Result<Option<Rdd<T>>, StreamError> + Send + Sync + 'static,
    ) -> DStream<T> {
        let node = Arc::new(StreamNode {
            name,
            current: Mutex::new(None),
            compute: Box::new(compute),
            state,
        });
        lock(&self.inner.nodes).push(node.clone());
        DStream {
            node,
            graph: self.clone(),
        }
    }

    /// An input DStream whose RDD for each batch `f` makes (sources are built on this).
    pub fn input_stream<T: Data>(
        &self,
        f: impl Fn(&Batch) -> Result<Rdd<T>, StreamError> + Send + Sync + 'static,
    ) -> DStream<T> {
        self.add("input", None, move |b| f(b).map(Some))
    }

    /// An input DStream handing out one queued collection per batch (empty once the queue is
    /// drained), split into `partitions` partitions: Spark's `queueStream`, for tests and demos.
    pub fn queue_stream<T: Data>(&self, batches: Vec<Vec<T>>, partitions: usize) -> DStream<T> {
        let queue = Mutex::new(VecDeque::from(batches));
        let ctx = self.inner.ctx.clone();
        self.input_stream(move |_| {
            let next = lock(&queue).pop_front().unwrap_or_default();
            Ok(ctx.parallelize(next, partitions)?)
        })
    }

    pub(crate) fn add_output(
        &self,
        name: &'static str,
        f: impl Fn(&Batch) -> Result<(), StreamError> + Send + Sync + 'static,
    ) {
        lock(&self.inner.outputs).push((name, Arc::new(f)));
    }

    /// Computes batch `batch`: ticks every DStream in creation order, then runs every output.
    pub fn run_batch(&self, batch: &Batch) -> Result<(), StreamError> {
        self.inner.ctx.set_batch(batch.id);
        let nodes: Vec<Arc<dyn GraphNode>> = lock(&self.inner.nodes).clone();
        for node in &nodes {
            node.tick(batch)?;
        }
        let outputs: Vec<(&'static str, Arc<OutputFn>)> = lock(&self.inner.outputs).clone();
        for (name, out) in &outputs {
            tracing::trace!(output = name, batch = batch.id, "running output");
            out(batch)?;
        }
        Ok(())
    }

    pub(crate) fn set_sink_env(&self, env: Arc<crate::topic_sink::SinkEnv>) {
        *lock(&self.inner.sinks) = Some(env);
    }

    pub(crate) fn sink_env(&self) -> Option<Arc<crate::topic_sink::SinkEnv>> {
        lock(&self.inner.sinks).clone()
    }

    /// The stateful DStreams, in creation order (their index names their snapshots).
    pub(crate) fn stateful_nodes(&self) -> Vec<Arc<dyn Snapshot>> {
        lock(&self.inner.nodes)
            .iter()
            .filter_map(|n| n.stateful())
            .collect()
    }

    /// Snapshots of every stateful DStream, in creation order.
    pub fn snapshot_state(&self) -> Result<Vec<Vec<u8>>, StreamError> {
        self.stateful_nodes().iter().map(|s| s.snapshot()).collect()
    }

    /// Restores the stateful DStreams from snapshots taken by [`StreamGraph::snapshot_state`] of
    /// the same graph.
    pub fn restore_state(&self, snapshots: &[Vec<u8>]) -> Result<(), StreamError> {
        let nodes = self.stateful_nodes();
        if nodes.len() != snapshots.len() {
            return Err(StreamError::Progress(format!(
                "the job has {} stateful streams but the snapshot has {}: was the job's code changed?",
                nodes.len(),
                snapshots.len()
            )));
        }
        nodes
            .iter()
            .zip(snapshots)
            .try_for_each(|(n, s)| n.restore(s))
    }

    /// Late records dropped so far by every event-time window.
    pub fn late_dropped(&self) -> u64 {
        self.stateful_nodes().iter().map(|s| s.late_dropped()).sum()
    }
}

impl<T: Data> DStream<T> {
    /// The RDD of the batch being computed (after this DStream was ticked), if any.
    pub fn current(&self) -> Option<Rdd<T>> {
        lock(&self.node.current).clone()
    }

    /// The graph.
    pub fn graph(&self) -> &StreamGraph {
        &self.graph
    }

    /// The execution context.
    pub fn context(&self) -> &Context {
        &self.graph.inner.ctx
    }

    /// Applies an RDD-to-RDD function to every batch (Spark's `transform`): any RDD operation,
    /// e.g. a join with a static RDD.
    pub fn transform<U: Data>(
        &self,
        f: impl Fn(&Rdd<T>) -> Result<Rdd<U>, JobError> + Send + Sync + 'static,
    ) -> DStream<U> {
        let parent = self.clone();
        self.graph
            .add("transform", None, move |_| match parent.current() {
                Some(r) => Ok(Some(f(&r)?)),
                None => Ok(None),
            })
    }

    /// Like [`DStream::transform`], also given the batch.
    pub fn transform_with_batch<U: Data>(
        &self,
        f: impl Fn(&Rdd<T>, &Batch) -> Result<Rdd<U>, JobError> + Send + Sync + 'static,
    ) -> DStream<U> {
        let parent = self.clone();
        self.graph
            .add("transform", None, move |b| match parent.current() {
                Some(r) => Ok(Some(f(&r, b)?)),
                None => Ok(None),
            })
    }

    fn lift<U: Data>(
        &self,
        name: &'static str,
        f: impl Fn(&Rdd<T>) -> Rdd<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        let parent = self.clone();
        self.graph
            .add(name, None, move |_| Ok(parent.current().map(|r| f(&r))))
    }

    /// `map` on every batch.
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> DStream<U> {
        let f = Arc::new(f);
        self.lift("map", move |r| {
            let f = f.clone();
            r.map(move |x| f(x))
        })
    }

    /// `filter` on every batch.
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DStream<T> {
        let f = Arc::new(f);
        self.lift("filter", move |r| {
            let f = f.clone();
            r.filter(move |x| f(x))
        })
    }

    /// `flat_map` on every batch.
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> DStream<U>
    where
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: 'static,
    {
        let f = Arc::new(f);
        self.lift("flat_map", move |r| {
            let f = f.clone();
            r.flat_map(move |x| f(x))
        })
    }

    /// `map_partitions` on every batch.
    pub fn map_partitions<U: Data, I>(
        &self,
        f: impl Fn(crate::rdd::PartIter<T>) -> I + Send + Sync + 'static,
    ) -> DStream<U>
    where
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: 'static,
    {
        let f = Arc::new(f);
        self.lift("map_partitions", move |r| {
            let f = f.clone();
            r.map_partitions(move |it| f(it))
        })
    }

    /// The batches of both streams, unioned per batch.
    pub fn union(&self, other: &DStream<T>) -> DStream<T> {
        let (a, b) = (self.clone(), other.clone());
        let ctx = self.context().clone();
        self.graph.add("union", None, move |_| {
            Ok(match (a.current(), b.current()) {
                (Some(x), Some(y)) => Some(union_all(&ctx, vec![x, y])),
                (x, y) => x.or(y),
            })
        })
    }

    /// `sample` on every batch (the seed is mixed with the batch id, so batches differ but a re-run
    /// batch samples the same elements).
    pub fn sample(&self, with_replacement: bool, fraction: f64, seed: u64) -> DStream<T> {
        self.transform_with_batch(move |r, b| {
            r.sample(
                with_replacement,
                fraction,
                seed ^ b.id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            )
        })
    }

    /// `repartition` on every batch.
    pub fn repartition(&self, partitions: usize) -> DStream<T> {
        self.transform(move |r| r.repartition(partitions))
    }

    /// The number of elements of each batch, as a one-element RDD.
    pub fn count(&self) -> DStream<u64> {
        self.transform(|r| {
            let n = r.count()?;
            r.context().parallelize(vec![n], 1)
        })
    }

    /// Runs `f` on each batch's RDD (at least once per batch: a batch re-run after a crash runs it
    /// again, so `f` should use the batch id for idempotence).
    pub fn foreach_rdd(
        &self,
        f: impl Fn(&Rdd<T>, &Batch) -> Result<(), JobError> + Send + Sync + 'static,
    ) {
        let me = self.clone();
        self.graph.add_output("foreach_rdd", move |b| {
            if let Some(r) = me.current() {
                f(&r, b)?;
            }
            Ok(())
        });
    }

    /// Prints the first `n` elements of every batch to stdout, as Spark's `print()`.
    pub fn print(&self, n: usize)
    where
        T: std::fmt::Debug,
    {
        let me = self.clone();
        let graph = self.graph.clone();
        self.graph.add_output("print", move |b| {
            if let Some(r) = me.current() {
                let first = r.take(n + 1)?;
                let mut out = format!("-------------------------------------------\nTime: {} ms\n-------------------------------------------\n", b.time_ms);
                for x in first.iter().take(n) {
                    out.push_str(&format!("{x:?}\n"));
                }
                if first.len() > n {
                    out.push_str("...\n");
                }
                println!("{out}");
                graph.inner.printed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
}

impl<T: Key> DStream<T> {
    /// The distinct elements of every batch.
    pub fn distinct(&self) -> DStream<T> {
        self.lift("distinct", |r| r.distinct())
    }

    /// Counts each distinct element of every batch (Spark's `countByValue`).
    pub fn count_by_value(&self) -> DStream<(T, u64)> {
        self.map(|x| (x, 1u64)).reduce_by_key(|a, b| a + b)
    }
}

impl<K: Key, V: Data> DStream<(K, V)> {
    fn hash(&self, partitions: Option<usize>) -> Arc<dyn Partitioner<K>> {
        Arc::new(HashPartitioner::new(
            partitions.unwrap_or_else(|| self.context().workers()),
        ))
    }

    /// `map_values` on every batch.
    pub fn map_values<U: Data>(
        &self,
        f: impl Fn(V) -> U + Send + Sync + 'static,
    ) -> DStream<(K, U)> {
        let f = Arc::new(f);
        self.lift("map_values", move |r| {
            let f = f.clone();
            r.map_values(move |x| f(x))
        })
    }

    /// `reduce_by_key` on every batch, into as many partitions as there are workers.
    pub fn reduce_by_key(&self, f: impl Fn(V, V) -> V + Send + Sync + 'static) -> DStream<(K, V)> {
        let p = self.hash(None);
        let f = Arc::new(f);
        self.lift("reduce_by_key", move |r| {
            let f = f.clone();
            r.reduce_by_key_with(p.clone(), move |a, b| f(a, b))
        })
    }

    /// `flat_map_values` on every batch.
    pub fn flat_map_values<U: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> DStream<(K, U)>
    where
        I: IntoIterator<Item = U> + 'static,
        I::IntoIter: 'static,
    {
        let f = Arc::new(f);
        self.lift("flat_map_values", move |r| {
            let f = f.clone();
            r.flat_map_values(move |x| f(x))
        })
    }

    /// `aggregate_by_key` on every batch.
    pub fn aggregate_by_key<U: Data>(
        &self,
        zero: U,
        seq_op: impl Fn(U, V) -> U + Send + Sync + 'static,
        comb_op: impl Fn(U, U) -> U + Send + Sync + 'static,
    ) -> DStream<(K, U)> {
        let (seq, comb) = (Arc::new(seq_op), Arc::new(comb_op));
        self.lift("aggregate_by_key", move |r| {
            let (seq, comb) = (seq.clone(), comb.clone());
            r.aggregate_by_key(zero.clone(), move |a, v| seq(a, v), move |a, b| comb(a, b))
        })
    }

    /// `group_by_key` on every batch.
    pub fn group_by_key(&self) -> DStream<(K, Vec<V>)> {
        let p = self.hash(None);
        self.lift("group_by_key", move |r| r.group_by_key_with(p.clone()))
    }

    /// Counts each key's elements per batch.
    pub fn count_by_key(&self) -> DStream<(K, u64)> {
        self.map_values(|_| 1u64).reduce_by_key(|a, b| a + b)
    }

    /// Joins each batch with the other stream's batch of the same time.
    pub fn join<W: Data>(&self, other: &DStream<(K, W)>) -> DStream<(K, (V, W))> {
        let (a, b) = (self.clone(), other.clone());
        self.graph.add("join", None, move |_| {
            Ok(match (a.current(), b.current()) {
                (Some(x), Some(y)) => Some(x.join(&y)),
                _ => None,
            })
        })
    }

    /// Left outer join of each batch with the other stream's batch of the same time.
    pub fn left_outer_join<W: Data>(
        &self,
        other: &DStream<(K, W)>,
    ) -> DStream<(K, (V, Option<W>))> {
        let (a, b) = (self.clone(), other.clone());
        let ctx = self.context().clone();
        self.graph.add("left_outer_join", None, move |_| {
            Ok(match (a.current(), b.current()) {
                (Some(x), Some(y)) => Some(x.left_outer_join(&y)),
                (Some(x), None) => Some(x.left_outer_join(&ctx.empty::<(K, W)>())),
                _ => None,
            })
        })
    }

    /// Cogroups each batch with the other stream's batch of the same time.
    pub fn cogroup<W: Data>(
        &self,
        other: &DStream<(K, W)>,
    ) -> DStream<(K, crate::rdd::Groups<V, W>)> {
        let (a, b) = (self.clone(), other.clone());
        self.graph.add("cogroup", None, move |_| {
            Ok(match (a.current(), b.current()) {
                (Some(x), Some(y)) => Some(x.cogroup(&y)),
                _ => None,
            })
        })
    }
}
