//! The hash shuffle: the map side buckets each parent partition by the partitioner (combining
//! values per key first when an aggregator is given: map-side combine), and the reduce side merges
//! bucket `r` of every map output into output partition `r`.
//!
//! Map outputs live in the shuffle dependency itself, so they are freed with the RDD that owns it,
//! and are reused by later jobs over the same lineage (Spark's skipped stages).

use super::pair::Aggregator;
use super::{Data, Dependency, Key, Lineage, Node, PartIter, Rdd, ShuffleStage};
use crate::error::TaskError;
use crate::hash::FxHashMap;
use crate::partitioner::{Partitioner, PartitionerIdentity};
use crate::task::TaskContext;
use std::sync::{Arc, Mutex};

/// One map task's output: one bucket per reduce partition.
type MapOutput<K, C> = Arc<Vec<Vec<(K, C)>>>;

type MapCombineFn<K, V, C> =
    dyn Fn(PartIter<(K, V)>, &dyn Partitioner<K>) -> Vec<Vec<(K, C)>> + Send + Sync;
type ReduceMergeFn<K, C> = dyn Fn(&[MapOutput<K, C>], usize) -> PartIter<(K, C)> + Send + Sync;

/// How values become shuffled values.
pub(crate) enum ShuffleMode<K, V, C> {
    /// Combine per key on both sides (built by [`ShuffleMode::combine`], where keys are hashable).
    Combine {
        map_side: Arc<MapCombineFn<K, V, C>>,
        reduce_side: Arc<ReduceMergeFn<K, C>>,
    },
    /// Move every record as is, converting the value (identity for `partition_by`).
    Plain(Arc<dyn Fn(V) -> C + Send + Sync>),
}

impl<K: Key, V: Data, C: Data> ShuffleMode<K, V, C> {
    /// Map-side and reduce-side combining by hash with `agg`.
    pub(crate) fn combine(agg: Aggregator<V, C>) -> ShuffleMode<K, V, C> {
        let a = agg.clone();
        let map_side = move |input: PartIter<(K, V)>, partitioner: &dyn Partitioner<K>| {
            let n = partitioner.num_partitions();
            let mut maps: Vec<FxHashMap<K, Option<C>>> =
                (0..n).map(|_| FxHashMap::default()).collect();
            for (k, v) in input {
                let b = partitioner.partition(&k);
                let slot = maps[b].entry(k).or_insert(None);
                *slot = Some(match slot.take() {
                    Some(c) => (a.merge_value)(c, v),
                    None => (a.create_combiner)(v),
                });
            }
            maps.into_iter()
                .map(|m| {
                    m.into_iter()
                        .filter_map(|(k, c)| c.map(|c| (k, c)))
                        .collect()
                })
                .collect()
        };
        let reduce_side =
            move |outputs: &[MapOutput<K, C>], partition: usize| -> PartIter<(K, C)> {
                let mut merged: FxHashMap<K, Option<C>> = FxHashMap::default();
                for out in outputs {
                    for (k, c) in &out[partition] {
                        let slot = merged.entry(k.clone()).or_insert(None);
                        *slot = Some(match slot.take() {
                            Some(acc) => (agg.merge_combiners)(acc, c.clone()),
                            None => c.clone(),
                        });
                    }
                }
                Box::new(merged.into_iter().filter_map(|(k, c)| c.map(|c| (k, c))))
            };
        ShuffleMode::Combine {
            map_side: Arc::new(map_side),
            reduce_side: Arc::new(reduce_side),
        }
    }
}

pub(crate) struct ShuffleDep<K, V, C> {
    id: u64,
    parent: Rdd<(K, V)>,
    partitioner: Arc<dyn Partitioner<K>>,
    mode: ShuffleMode<K, V, C>,
    outputs: Mutex<Vec<Option<MapOutput<K, C>>>>,
}

fn poisoned() -> TaskError {
    TaskError::Panicked("a task panicked while holding shuffle state".into())
}

impl<K: Data, V: Data, C: Data> ShuffleDep<K, V, C> {
    fn output(&self, map: usize) -> Result<Option<MapOutput<K, C>>, TaskError> {
        Ok(self.outputs.lock().map_err(|_| poisoned())?[map].clone())
    }

    fn compute_map_output(
        &self,
        map: usize,
        tc: &TaskContext,
    ) -> Result<MapOutput<K, C>, TaskError> {
        let n = self.partitioner.num_partitions();
        let input = self.parent.node.compute(map, tc)?;
        let buckets: Vec<Vec<(K, C)>> = match &self.mode {
            ShuffleMode::Combine { map_side, .. } => map_side(input, self.partitioner.as_ref()),
            ShuffleMode::Plain(convert) => {
                let mut buckets: Vec<Vec<(K, C)>> = (0..n).map(|_| Vec::new()).collect();
                for (k, v) in input {
                    let b = self.partitioner.partition(&k);
                    buckets[b].push((k, convert(v)));
                }
                buckets
            }
        };
        let out = Arc::new(buckets);
        self.outputs.lock().map_err(|_| poisoned())?[map] = Some(out.clone());
        Ok(out)
    }
}

impl<K: Data, V: Data, C: Data> ShuffleStage for ShuffleDep<K, V, C> {
    fn shuffle_id(&self) -> u64 {
        self.id
    }
    fn parent(&self) -> Arc<dyn Lineage> {
        self.parent.lineage()
    }
    fn num_maps(&self) -> usize {
        self.parent.num_partitions()
    }
    fn missing_maps(&self) -> Vec<usize> {
        match self.outputs.lock() {
            Ok(o) => o
                .iter()
                .enumerate()
                .filter(|(_, x)| x.is_none())
                .map(|(i, _)| i)
                .collect(),
            Err(_) => (0..self.num_maps()).collect(),
        }
    }
    fn run_map_task(&self, map: usize, tc: &TaskContext) -> Result<(), TaskError> {
        self.compute_map_output(map, tc).map(|_| ())
    }
}

/// The reduce side of a shuffle: partition `r` holds bucket `r` of every map output.
pub(crate) struct ShuffledNode<K, V, C> {
    id: u64,
    dep: Arc<ShuffleDep<K, V, C>>,
}

impl<K: Data, V: Data, C: Data> Lineage for ShuffledNode<K, V, C> {
    fn id(&self) -> u64 {
        self.id
    }
    fn name(&self) -> &'static str {
        match self.dep.mode {
            ShuffleMode::Combine { .. } => "shuffled(combine)",
            ShuffleMode::Plain(_) => "shuffled",
        }
    }
    fn num_partitions(&self) -> usize {
        self.dep.partitioner.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Shuffle(self.dep.clone())]
    }
}

impl<K: Data, V: Data, C: Data> Node<(K, C)> for ShuffledNode<K, V, C> {
    fn compute(&self, partition: usize, tc: &TaskContext) -> Result<PartIter<(K, C)>, TaskError> {
        let maps = self.dep.num_maps();
        let mut outputs = Vec::with_capacity(maps);
        for m in 0..maps {
            // Normally the scheduler ran the map stage first; a missing output (computed outside
            // the scheduler, or lost) is recomputed from lineage here.
            let out = match self.dep.output(m)? {
                Some(o) => o,
                None => self.dep.compute_map_output(m, tc)?,
            };
            outputs.push(out);
        }
        match &self.dep.mode {
            ShuffleMode::Combine { reduce_side, .. } => Ok(reduce_side(&outputs, partition)),
            ShuffleMode::Plain(_) => Ok(Box::new(outputs.into_iter().flat_map(move |o| {
                let n = o[partition].len();
                (0..n).map(move |i| o[partition][i].clone())
            }))),
        }
    }
    fn partitioner(&self) -> Option<PartitionerIdentity> {
        self.dep.partitioner.identity()
    }
}

impl<K: Data, V: Data> Rdd<(K, V)> {
    /// Shuffles this RDD by `partitioner` in `mode`: the primitive under every wide operation.
    pub(crate) fn shuffle<C: Data>(
        &self,
        partitioner: Arc<dyn Partitioner<K>>,
        mode: ShuffleMode<K, V, C>,
    ) -> Rdd<(K, C)> {
        let maps = self.num_partitions();
        let dep = Arc::new(ShuffleDep {
            id: self.ctx.new_shuffle_id(),
            parent: self.clone(),
            partitioner,
            mode,
            outputs: Mutex::new(vec![None; maps]),
        });
        let node = ShuffledNode {
            id: self.ctx.new_rdd_id(),
            dep,
        };
        Rdd::from_node(self.ctx.clone(), Arc::new(node))
    }
}
