//! Whole-dataset reshaping: `sort_by` (range partitioning chosen from a key sample, then a sort per
//! partition), `distinct` and `repartition`.

use super::narrow::check_partitions;
use super::shuffle::ShuffleMode;
use super::{Data, Key, Rdd};
use crate::error::JobError;
use crate::hash::{hash_key, SplitMix64};
use crate::limits::SORT_SAMPLE_KEYS_PER_PARTITION_MAX;
use crate::partitioner::{ModPartitioner, RangePartitioner};
use crate::scheduler::run_job;
use std::sync::Arc;

impl<T: Data> Rdd<T> {
    /// Sorts by the key `f` computes, into `partitions` range partitions: collecting the result
    /// gives a globally sorted sequence (stable within equal keys of one input partition).
    ///
    /// Like Spark's `sortBy`, this runs a small sampling job immediately to choose the range bounds.
    pub fn sort_by<K: Data + Ord>(
        &self,
        f: impl Fn(&T) -> K + Send + Sync + 'static,
        ascending: bool,
        partitions: usize,
    ) -> Result<Rdd<T>, JobError> {
        check_partitions(partitions)?;
        let keyed = self.key_by(f);
        let all: Vec<usize> = (0..keyed.num_partitions()).collect();
        // Reservoir-sample keys of every partition, deterministically.
        let samples = run_job(&keyed, &all, |tc, it| {
            let mut rng = SplitMix64::new(tc.partition() as u64);
            let mut reservoir: Vec<K> = Vec::new();
            for (seen, (k, _)) in it.enumerate() {
                if reservoir.len() < SORT_SAMPLE_KEYS_PER_PARTITION_MAX {
                    reservoir.push(k);
                } else {
                    let j = (rng.next_u64() % (seen as u64 + 1)) as usize;
                    if j < SORT_SAMPLE_KEYS_PER_PARTITION_MAX {
                        reservoir[j] = k;
                    }
                }
            }
            Ok(reservoir)
        })?;
        let mut sample: Vec<K> = samples.into_iter().flatten().collect();
        sample.sort();
        let mut bounds = Vec::with_capacity(partitions.saturating_sub(1));
        if !sample.is_empty() {
            for i in 1..partitions {
                let b = sample[(i * sample.len() / partitions).min(sample.len() - 1)].clone();
                if bounds.last() != Some(&b) {
                    bounds.push(b);
                }
            }
        }
        let partitioner = Arc::new(RangePartitioner { bounds, ascending });
        let shuffled = keyed.shuffle(partitioner, ShuffleMode::Plain(Arc::new(|v| v)));
        Ok(shuffled.map_partitions(move |it| {
            let mut v: Vec<(K, T)> = it.collect();
            if ascending {
                v.sort_by(|a, b| a.0.cmp(&b.0));
            } else {
                v.sort_by(|a, b| b.0.cmp(&a.0));
            }
            v.into_iter().map(|(_, x)| x)
        }))
    }

    /// Redistributes the elements evenly over `partitions` partitions with a shuffle: each input
    /// partition deals its elements round-robin, starting at a position derived from its index.
    pub fn repartition(&self, partitions: usize) -> Result<Rdd<T>, JobError> {
        check_partitions(partitions)?;
        let tagged = self.map_partitions_with_index(move |p, it| {
            let start = (hash_key(&p) % partitions as u64) as usize;
            it.enumerate()
                .map(move |(i, x)| ((start + i) % partitions, x))
        });
        Ok(tagged
            .shuffle(
                Arc::new(ModPartitioner { n: partitions }),
                ShuffleMode::Plain(Arc::new(|v| v)),
            )
            .values())
    }
}

impl<T: Key> Rdd<T> {
    /// The distinct elements.
    pub fn distinct(&self) -> Rdd<T> {
        self.map(|x| (x, ())).reduce_by_key(|_, _| ()).keys()
    }
}
