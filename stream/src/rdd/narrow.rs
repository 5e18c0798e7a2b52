//! Sources and narrow transformations: each output partition needs at most a bounded set of parent
//! partitions, so they run in the same task as their parent, fused as iterator adapters.

use super::{Data, Dependency, Lineage, Node, PartIter, Rdd};
use crate::context::Context;
use crate::error::{JobError, TaskError};
use crate::hash::SplitMix64;
use crate::limits::PARTITIONS_MAX;
use crate::partitioner::PartitionerIdentity;
use crate::task::TaskContext;
use std::sync::{Arc, Mutex};

type SourceFn<T> = dyn Fn(usize, &TaskContext) -> Result<PartIter<T>, TaskError> + Send + Sync;

/// A source computed by a function per partition (parallelized collections, log ranges, tests).
struct SourceNode<T> {
    id: u64,
    name: &'static str,
    n: usize,
    f: Arc<SourceFn<T>>,
}

impl<T: Data> Lineage for SourceNode<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn num_partitions(&self) -> usize {
        self.n
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
}

impl<T: Data> Node<T> for SourceNode<T> {
    fn compute(&self, partition: usize, tc: &TaskContext) -> Result<PartIter<T>, TaskError> {
        (self.f)(partition, tc)
    }
}

impl Context {
    /// Distributes a local collection over `slices` partitions (Spark's `parallelize`): contiguous
    /// slices of as equal a size as possible.
    pub fn parallelize<T: Data>(&self, data: Vec<T>, slices: usize) -> Result<Rdd<T>, JobError> {
        check_partitions(slices)?;
        let len = data.len();
        let mut parts: Vec<Vec<T>> = Vec::with_capacity(slices);
        let mut it = data.into_iter();
        for i in 0..slices {
            let start = i * len / slices;
            let end = (i + 1) * len / slices;
            parts.push(it.by_ref().take(end - start).collect());
        }
        let parts = Arc::new(parts);
        Ok(self.source("parallelize", slices, move |p, _| {
            let parts = parts.clone();
            let n = parts[p].len();
            Ok(Box::new((0..n).map(move |i| parts[p][i].clone())))
        }))
    }

    /// An RDD whose partition `p` is computed by `f(p, task)`. This is how sources are built: the
    /// function is called again when a task is retried, so it must be deterministic.
    pub fn source<T: Data>(
        &self,
        name: &'static str,
        partitions: usize,
        f: impl Fn(usize, &TaskContext) -> Result<PartIter<T>, TaskError> + Send + Sync + 'static,
    ) -> Rdd<T> {
        let node = SourceNode {
            id: self.new_rdd_id(),
            name,
            n: partitions,
            f: Arc::new(f),
        };
        Rdd::from_node(self.clone(), Arc::new(node))
    }

    /// An RDD with no partitions.
    pub fn empty<T: Data>(&self) -> Rdd<T> {
        self.source("empty", 0, |_, _| Ok(Box::new(std::iter::empty())))
    }
}

pub(crate) fn check_partitions(n: usize) -> Result<(), JobError> {
    if n == 0 || n > PARTITIONS_MAX {
        return Err(JobError::InvalidArgument(format!(
            "partition count must be in 1..={PARTITIONS_MAX}, got {n}"
        )));
    }
    Ok(())
}

type PartFn<T, U> = dyn Fn(usize, &TaskContext, PartIter<T>) -> PartIter<U> + Send + Sync;

/// The one narrow one-parent node: `map`, `filter`, `flat_map`, `map_partitions`, `sample`,
/// `map_values` are all a function from the parent partition's iterator to this one's.
pub(crate) struct MapPartitionsNode<T, U> {
    id: u64,
    name: &'static str,
    parent: Rdd<T>,
    f: Arc<PartFn<T, U>>,
    preserves_partitioning: bool,
}

impl<T: Data, U: Data> Lineage for MapPartitionsNode<T, U> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn num_partitions(&self) -> usize {
        self.parent.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.parent.lineage())]
    }
}

impl<T: Data, U: Data> Node<U> for MapPartitionsNode<T, U> {
    fn compute(&self, partition: usize, tc: &TaskContext) -> Result<PartIter<U>, TaskError> {
        let input = self.parent.node.compute(partition, tc)?;
        Ok((self.f)(partition, tc, input))
    }
    fn partitioner(&self) -> Option<PartitionerIdentity> {
        if self.preserves_partitioning {
            self.parent.partitioner()
        } else {
            None
        }
    }
}

impl<T: Data> Rdd<T> {
    pub(crate) fn with_partition_fn<U: Data>(
        &self,
        name: &'static str,
        preserves_partitioning: bool,
        f: impl Fn(usize, &TaskContext, PartIter<T>) -> PartIter<U> + Send + Sync + 'static,
    ) -> Rdd<U> {
        let node = MapPartitionsNode {
            id: self.ctx.new_rdd_id(),
            name,
            parent: self.clone(),
            f: Arc::new(f),
            preserves_partitioning,
        };
        Rdd::from_node(self.ctx.clone(), Arc::new(node))
    }

    /// Applies `f` to every element.
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Rdd<U> {
        let f = Arc::new(f);
        self.with_partition_fn("map", false, move |_, _, it| {
            let f = f.clone();
            Box::new(it.map(move |x| f(x)))
        })
    }

    /// Keeps the elements for which `f` is true (the partitioning is preserved).
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Rdd<T> {
        let f = Arc::new(f);
        self.with_partition_fn("filter", true, move |_, _, it| {
            let f = f.clone();
            Box::new(it.filter(move |x| f(x)))
        })
    }

    /// Maps every element to zero or more elements.
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> Rdd<U>
    where
        I: IntoIterator<Item = U>,
        I: 'static,
        I::IntoIter: 'static,
    {
        let f = Arc::new(f);
        self.with_partition_fn("flat_map", false, move |_, _, it| {
            let f = f.clone();
            Box::new(it.flat_map(move |x| f(x)))
        })
    }

    /// Transforms each partition's iterator as a whole (Spark's `mapPartitions`).
    pub fn map_partitions<U: Data, I>(
        &self,
        f: impl Fn(PartIter<T>) -> I + Send + Sync + 'static,
    ) -> Rdd<U>
    where
        I: IntoIterator<Item = U>,
        I: 'static,
        I::IntoIter: 'static,
    {
        self.with_partition_fn("map_partitions", false, move |_, _, it| {
            Box::new(f(it).into_iter())
        })
    }

    /// Like [`Rdd::map_partitions`], also given the partition index.
    pub fn map_partitions_with_index<U: Data, I>(
        &self,
        f: impl Fn(usize, PartIter<T>) -> I + Send + Sync + 'static,
    ) -> Rdd<U>
    where
        I: IntoIterator<Item = U>,
        I: 'static,
        I::IntoIter: 'static,
    {
        self.with_partition_fn("map_partitions_with_index", false, move |p, _, it| {
            Box::new(f(p, it).into_iter())
        })
    }

    /// A random sample: each element is kept with probability `fraction` (without replacement), or
    /// repeated a Poisson(`fraction`) number of times (with replacement). Deterministic for a seed:
    /// partition `p` draws from a generator seeded by `seed` and `p`, so a recomputed partition gives
    /// the same sample.
    pub fn sample(
        &self,
        with_replacement: bool,
        fraction: f64,
        seed: u64,
    ) -> Result<Rdd<T>, JobError> {
        if !(fraction >= 0.0 && fraction.is_finite()) || (!with_replacement && fraction > 1.0) {
            return Err(JobError::InvalidArgument(format!(
                "sample fraction must be in [0, 1] (or >= 0 with replacement), got {fraction}"
            )));
        }
        Ok(self.with_partition_fn("sample", true, move |p, _, it| {
            let mut rng = SplitMix64::new(seed ^ (p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if with_replacement {
                Box::new(it.flat_map(move |x| {
                    let k = poisson(&mut rng, fraction);
                    std::iter::repeat_n(x, k)
                }))
            } else {
                Box::new(it.filter(move |_| rng.next_f64() < fraction))
            }
        }))
    }

    /// The elements of both RDDs: this one's partitions followed by `other`'s.
    pub fn union(&self, other: &Rdd<T>) -> Rdd<T> {
        union_all(&self.ctx, vec![self.clone(), other.clone()])
    }

    /// Keeps computed partitions in memory once computed, so later jobs reuse them instead of
    /// recomputing the lineage (Spark's `cache()` at `MEMORY_ONLY`). A failed or dropped block is
    /// simply recomputed.
    pub fn cache(&self) -> Rdd<T> {
        let n = self.num_partitions();
        let node = CachedNode {
            id: self.ctx.new_rdd_id(),
            parent: self.clone(),
            blocks: Mutex::new(vec![None; n]),
        };
        Rdd::from_node(self.ctx.clone(), Arc::new(node))
    }

    /// Pairs each element with a key computed by `f` (Spark's `keyBy`).
    pub fn key_by<K: Data>(&self, f: impl Fn(&T) -> K + Send + Sync + 'static) -> Rdd<(K, T)> {
        self.map(move |x| (f(&x), x))
    }
}

/// Knuth's Poisson sampler; fine for the small means sampling uses.
fn poisson(rng: &mut SplitMix64, mean: f64) -> usize {
    if mean <= 0.0 {
        return 0;
    }
    let l = (-mean).exp();
    let mut k = 0usize;
    let mut p = 1.0;
    loop {
        p *= rng.next_f64();
        if p <= l || k > 1_000_000 {
            return k;
        }
        k += 1;
    }
}

/// The union of several RDDs: their partitions concatenated in order.
pub fn union_all<T: Data>(ctx: &Context, rdds: Vec<Rdd<T>>) -> Rdd<T> {
    let mut offsets = Vec::with_capacity(rdds.len());
    let mut total = 0;
    for r in &rdds {
        offsets.push(total);
        total += r.num_partitions();
    }
    let node = UnionNode {
        id: ctx.new_rdd_id(),
        parents: rdds,
        offsets,
        total,
    };
    Rdd::from_node(ctx.clone(), Arc::new(node))
}

struct UnionNode<T> {
    id: u64,
    parents: Vec<Rdd<T>>,
    offsets: Vec<usize>,
    total: usize,
}

impl<T: Data> Lineage for UnionNode<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        "union"
    }
    fn num_partitions(&self) -> usize {
        self.total
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.parents
            .iter()
            .map(|p| Dependency::Narrow(p.lineage()))
            .collect()
    }
}

impl<T: Data> Node<T> for UnionNode<T> {
    fn compute(&self, partition: usize, tc: &TaskContext) -> Result<PartIter<T>, TaskError> {
        // The last parent whose first partition is <= `partition`: an empty parent shares its
        // offset with the next one, so the last such parent is the one holding the partition.
        let i = self
            .offsets
            .partition_point(|&o| o <= partition)
            .saturating_sub(1);
        self.parents[i]
            .node
            .compute(partition - self.offsets[i], tc)
    }
}

struct CachedNode<T> {
    id: u64,
    parent: Rdd<T>,
    blocks: Mutex<Vec<Option<Arc<Vec<T>>>>>,
}

impl<T: Data> Lineage for CachedNode<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        "cache"
    }
    fn num_partitions(&self) -> usize {
        self.parent.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Narrow(self.parent.lineage())]
    }
}

impl<T: Data> Node<T> for CachedNode<T> {
    fn compute(&self, partition: usize, tc: &TaskContext) -> Result<PartIter<T>, TaskError> {
        let cached = self.blocks.lock().map_err(|_| poisoned())?[partition].clone();
        let block = match cached {
            Some(b) => b,
            None => {
                let b: Arc<Vec<T>> = Arc::new(self.parent.node.compute(partition, tc)?.collect());
                self.blocks.lock().map_err(|_| poisoned())?[partition] = Some(b.clone());
                b
            }
        };
        let n = block.len();
        Ok(Box::new((0..n).map(move |i| block[i].clone())))
    }
    fn partitioner(&self) -> Option<PartitionerIdentity> {
        self.parent.partitioner()
    }
}

fn poisoned() -> TaskError {
    TaskError::Panicked("a task panicked while holding the cache lock".into())
}

/// Partitions held in memory, with the partitioner they were laid out by: the result of
/// [`Rdd::materialize`], which cuts the lineage (Spark's local checkpoint).
struct MaterializedNode<T> {
    id: u64,
    parts: Arc<Vec<Vec<T>>>,
    partitioner: Option<PartitionerIdentity>,
}

impl<T: Data> Lineage for MaterializedNode<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        "materialized"
    }
    fn num_partitions(&self) -> usize {
        self.parts.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
}

impl<T: Data> Node<T> for MaterializedNode<T> {
    fn compute(&self, partition: usize, _: &TaskContext) -> Result<PartIter<T>, TaskError> {
        let parts = self.parts.clone();
        let n = parts[partition].len();
        Ok(Box::new((0..n).map(move |i| parts[partition][i].clone())))
    }
    fn partitioner(&self) -> Option<PartitionerIdentity> {
        self.partitioner
    }
}

impl Context {
    /// An RDD over partitions already in memory. `partitioner` claims how they are laid out: pass
    /// `Some` only if every key sits in the partition that partitioner would choose.
    pub fn from_partitions<T: Data>(
        &self,
        parts: Vec<Vec<T>>,
        partitioner: Option<PartitionerIdentity>,
    ) -> Rdd<T> {
        let node = MaterializedNode {
            id: self.new_rdd_id(),
            parts: Arc::new(parts),
            partitioner,
        };
        Rdd::from_node(self.clone(), Arc::new(node))
    }
}

impl<T: Data> Rdd<T> {
    /// Computes every partition now and returns an RDD over the results with no lineage (keeping
    /// the partitioner). Streaming state uses this each batch so lineage does not grow forever.
    pub fn materialize(&self) -> Result<Rdd<T>, JobError> {
        let parts = self.run_partitions(|_, it| Ok(it.collect::<Vec<T>>()))?;
        Ok(self.ctx.from_partitions(parts, self.partitioner()))
    }
}
