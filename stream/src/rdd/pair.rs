//! Key-value operations on `Rdd<(K, V)>`: aggregation by key through a combining shuffle, joins
//! through cogroup, and explicit partitioning.
//!
//! Operations that take no partitioner use a [`HashPartitioner`] over the parent's partition count
//! (for two-parent operations, the larger of the two), as Spark's default partitioner does when
//! `spark.default.parallelism` is unset. An input already hash-partitioned the same way is not
//! shuffled again: `update_state_by_key` relies on this to join state with each new batch without
//! moving the state.

use super::shuffle::ShuffleMode;
use super::{Data, Dependency, Key, Lineage, Node, PartIter, Rdd};
use crate::error::{JobError, TaskError};
use crate::hash::FxHashMap;
use crate::partitioner::{HashPartitioner, Partitioner, PartitionerIdentity};
use crate::task::TaskContext;
use std::collections::HashMap;
use std::sync::Arc;

/// How to combine values of one key: Spark's `Aggregator` (`createCombiner`, `mergeValue`,
/// `mergeCombiners`).
pub struct Aggregator<V, C> {
    /// Turns the first value of a key into a combiner.
    pub create_combiner: Arc<dyn Fn(V) -> C + Send + Sync>,
    /// Folds another value into a combiner (map side).
    pub merge_value: Arc<dyn Fn(C, V) -> C + Send + Sync>,
    /// Merges two combiners (reduce side).
    pub merge_combiners: Arc<dyn Fn(C, C) -> C + Send + Sync>,
}

impl<V, C> Clone for Aggregator<V, C> {
    fn clone(&self) -> Self {
        Aggregator {
            create_combiner: self.create_combiner.clone(),
            merge_value: self.merge_value.clone(),
            merge_combiners: self.merge_combiners.clone(),
        }
    }
}

impl<K: Key, V: Data> Rdd<(K, V)> {
    fn default_partitioner(&self) -> Arc<dyn Partitioner<K>> {
        Arc::new(HashPartitioner::new(self.num_partitions()))
    }

    /// Applies `f` to each value, keeping keys and partitioning.
    pub fn map_values<U: Data>(&self, f: impl Fn(V) -> U + Send + Sync + 'static) -> Rdd<(K, U)> {
        let f = Arc::new(f);
        self.with_partition_fn("map_values", true, move |_, _, it| {
            let f = f.clone();
            Box::new(it.map(move |(k, v)| (k, f(v))))
        })
    }

    /// Maps each value to zero or more values, keeping keys and partitioning.
    pub fn flat_map_values<U: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> Rdd<(K, U)>
    where
        I: IntoIterator<Item = U>,
        I: 'static,
        I::IntoIter: 'static,
    {
        let f = Arc::new(f);
        self.with_partition_fn("flat_map_values", true, move |_, _, it| {
            let f = f.clone();
            Box::new(it.flat_map(move |(k, v)| f(v).into_iter().map(move |u| (k.clone(), u))))
        })
    }

    /// The keys.
    pub fn keys(&self) -> Rdd<K> {
        self.map(|(k, _)| k)
    }

    /// The values.
    pub fn values(&self) -> Rdd<V> {
        self.map(|(_, v)| v)
    }

    /// Generic per-key aggregation with map-side combine (Spark's `combineByKey`).
    pub fn combine_by_key<C: Data>(
        &self,
        aggregator: Aggregator<V, C>,
        partitioner: Arc<dyn Partitioner<K>>,
    ) -> Rdd<(K, C)> {
        self.shuffle(partitioner, ShuffleMode::combine(aggregator))
    }

    /// Merges the values of each key with an associative, commutative `f`.
    pub fn reduce_by_key(&self, f: impl Fn(V, V) -> V + Send + Sync + 'static) -> Rdd<(K, V)> {
        self.reduce_by_key_with(self.default_partitioner(), f)
    }

    /// [`Rdd::reduce_by_key`] into the given partitioner's partitions.
    pub fn reduce_by_key_with(
        &self,
        partitioner: Arc<dyn Partitioner<K>>,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> Rdd<(K, V)> {
        let f = Arc::new(f);
        let g = f.clone();
        self.combine_by_key(
            Aggregator {
                create_combiner: Arc::new(|v| v),
                merge_value: f,
                merge_combiners: g,
            },
            partitioner,
        )
    }

    /// Aggregates the values of each key: `seq_op` folds values into an accumulator starting at
    /// `zero` (per key and per map partition), `comb_op` merges accumulators.
    pub fn aggregate_by_key<U: Data>(
        &self,
        zero: U,
        seq_op: impl Fn(U, V) -> U + Send + Sync + 'static,
        comb_op: impl Fn(U, U) -> U + Send + Sync + 'static,
    ) -> Rdd<(K, U)> {
        let seq = Arc::new(seq_op);
        let seq2 = seq.clone();
        self.combine_by_key(
            Aggregator {
                create_combiner: Arc::new(move |v| seq2(zero.clone(), v)),
                merge_value: seq,
                merge_combiners: Arc::new(comb_op),
            },
            self.default_partitioner(),
        )
    }

    /// Groups the values of each key (order within a group follows partition order).
    pub fn group_by_key(&self) -> Rdd<(K, Vec<V>)> {
        self.group_by_key_with(self.default_partitioner())
    }

    /// [`Rdd::group_by_key`] into the given partitioner's partitions.
    pub fn group_by_key_with(&self, partitioner: Arc<dyn Partitioner<K>>) -> Rdd<(K, Vec<V>)> {
        self.combine_by_key(
            Aggregator {
                create_combiner: Arc::new(|v| vec![v]),
                merge_value: Arc::new(|mut c: Vec<V>, v| {
                    c.push(v);
                    c
                }),
                merge_combiners: Arc::new(|mut a: Vec<V>, mut b: Vec<V>| {
                    a.append(&mut b);
                    a
                }),
            },
            partitioner,
        )
    }

    /// Counts the elements of each key (an action).
    pub fn count_by_key(&self) -> Result<HashMap<K, u64>, JobError> {
        Ok(self
            .map_values(|_| 1u64)
            .reduce_by_key(|a, b| a + b)
            .collect()?
            .into_iter()
            .collect())
    }

    /// Lays the data out by `partitioner`; returns `self` unchanged when already so partitioned.
    pub fn partition_by(&self, partitioner: Arc<dyn Partitioner<K>>) -> Rdd<(K, V)> {
        match (self.partitioner(), partitioner.identity()) {
            (Some(a), Some(b))
                if a == b && self.num_partitions() == partitioner.num_partitions() =>
            {
                self.clone()
            }
            _ => self.shuffle(partitioner, ShuffleMode::Plain(Arc::new(|v| v))),
        }
    }

    /// For each key in either RDD, the values from each side.
    pub fn cogroup<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, Groups<V, W>)> {
        let n = self.num_partitions().max(other.num_partitions());
        // Prefer an existing hash layout so that an already-partitioned side is not moved.
        let p: Arc<dyn Partitioner<K>> = match (self.partitioner(), other.partitioner()) {
            (Some(PartitionerIdentity::Hash(a)), _) => Arc::new(HashPartitioner::new(a)),
            (_, Some(PartitionerIdentity::Hash(b))) => Arc::new(HashPartitioner::new(b)),
            _ => Arc::new(HashPartitioner::new(n)),
        };
        self.cogroup_with(other, p)
    }

    /// [`Rdd::cogroup`] into the given partitioner's partitions.
    pub fn cogroup_with<W: Data>(
        &self,
        other: &Rdd<(K, W)>,
        partitioner: Arc<dyn Partitioner<K>>,
    ) -> Rdd<(K, Groups<V, W>)> {
        let left = self.partition_by(partitioner.clone());
        let right = other.partition_by(partitioner.clone());
        let node = CoGroupNode {
            id: self.ctx.new_rdd_id(),
            left,
            right,
            identity: partitioner.identity(),
        };
        Rdd::from_node(self.ctx.clone(), Arc::new(node))
    }

    /// Inner join: one `(k, (v, w))` per pair of matching values.
    pub fn join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, W))> {
        self.cogroup(other).flat_map_values(|(vs, ws)| {
            let mut out = Vec::with_capacity(vs.len() * ws.len());
            for v in &vs {
                for w in &ws {
                    out.push((v.clone(), w.clone()));
                }
            }
            out
        })
    }

    /// Left outer join: every left value, with each matching right value or `None`.
    pub fn left_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, Option<W>))> {
        self.cogroup(other).flat_map_values(|(vs, ws)| {
            let mut out = Vec::with_capacity(vs.len() * ws.len().max(1));
            for v in &vs {
                if ws.is_empty() {
                    out.push((v.clone(), None));
                }
                for w in &ws {
                    out.push((v.clone(), Some(w.clone())));
                }
            }
            out
        })
    }
}

/// Cogroup of two RDDs laid out by the same partitioner: a narrow dependency on both.
struct CoGroupNode<K, V, W> {
    id: u64,
    left: Rdd<(K, V)>,
    right: Rdd<(K, W)>,
    identity: Option<PartitionerIdentity>,
}

impl<K: Key, V: Data, W: Data> Lineage for CoGroupNode<K, V, W> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        "cogroup"
    }
    fn num_partitions(&self) -> usize {
        self.left.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![
            Dependency::Narrow(self.left.lineage()),
            Dependency::Narrow(self.right.lineage()),
        ]
    }
}

/// The values of one key from each side of a cogroup.
pub type Groups<V, W> = (Vec<V>, Vec<W>);

impl<K: Key, V: Data, W: Data> Node<(K, Groups<V, W>)> for CoGroupNode<K, V, W> {
    fn compute(
        &self,
        partition: usize,
        tc: &TaskContext,
    ) -> Result<PartIter<(K, Groups<V, W>)>, TaskError> {
        // Insertion order is kept in a side vector so that output order is deterministic.
        let mut index: FxHashMap<K, usize> = FxHashMap::default();
        let mut groups: Vec<(K, Groups<V, W>)> = Vec::new();
        for (k, v) in self.left.node.compute(partition, tc)? {
            let i = *index.entry(k.clone()).or_insert_with(|| {
                groups.push((k, (Vec::new(), Vec::new())));
                groups.len() - 1
            });
            groups[i].1 .0.push(v);
        }
        for (k, w) in self.right.node.compute(partition, tc)? {
            let i = *index.entry(k.clone()).or_insert_with(|| {
                groups.push((k, (Vec::new(), Vec::new())));
                groups.len() - 1
            });
            groups[i].1 .1.push(w);
        }
        Ok(Box::new(groups.into_iter()))
    }
    fn partitioner(&self) -> Option<PartitionerIdentity> {
        self.identity
    }
}
