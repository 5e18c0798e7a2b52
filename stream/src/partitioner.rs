//! Partitioners: which output partition a key goes to in a shuffle.
//!
//! Two RDDs partitioned by partitioners with the same [`PartitionerIdentity`] hold each key in the
//! same partition index, so joining or cogrouping them needs no shuffle (a narrow dependency).

use crate::hash::hash_key;
use std::hash::Hash;
use std::sync::Arc;

/// What makes two partitioners place keys identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionerIdentity {
    /// [`HashPartitioner`] with this many partitions.
    Hash(usize),
}

/// Maps keys to partition indices in `0..num_partitions()`.
pub trait Partitioner<K>: Send + Sync {
    /// The number of output partitions.
    fn num_partitions(&self) -> usize;
    /// The partition of `key`; always `< num_partitions()`.
    fn partition(&self, key: &K) -> usize;
    /// Identity for co-partitioning checks; `None` when it equals no other partitioner.
    fn identity(&self) -> Option<PartitionerIdentity> {
        None
    }
}

/// Spark's default: a key's (deterministic, well-mixed) hash modulo the partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashPartitioner {
    n: usize,
}

impl HashPartitioner {
    /// A hash partitioner over `n` partitions (at least 1; 0 is treated as 1).
    pub fn new(n: usize) -> HashPartitioner {
        HashPartitioner { n: n.max(1) }
    }
}

impl<K: Hash> Partitioner<K> for HashPartitioner {
    fn num_partitions(&self) -> usize {
        self.n
    }
    fn partition(&self, key: &K) -> usize {
        (hash_key(key) % self.n as u64) as usize
    }
    fn identity(&self) -> Option<PartitionerIdentity> {
        Some(PartitionerIdentity::Hash(self.n))
    }
}

/// Routes `usize` keys to `key % n`; used by `repartition`, where the key is already a target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModPartitioner {
    pub(crate) n: usize,
}

impl Partitioner<usize> for ModPartitioner {
    fn num_partitions(&self) -> usize {
        self.n
    }
    fn partition(&self, key: &usize) -> usize {
        key % self.n
    }
}

/// Range partitioning for `sort_by`: partition `i` holds keys between `bounds[i-1]` and `bounds[i]`.
pub(crate) struct RangePartitioner<K> {
    pub(crate) bounds: Vec<K>,
    pub(crate) ascending: bool,
}

impl<K: Ord + Send + Sync> Partitioner<K> for RangePartitioner<K> {
    fn num_partitions(&self) -> usize {
        self.bounds.len() + 1
    }
    fn partition(&self, key: &K) -> usize {
        // The first bound >= key; keys equal to a bound go to the lower partition.
        let i = self.bounds.partition_point(|b| b < key);
        if self.ascending {
            i
        } else {
            self.bounds.len() - i
        }
    }
}

/// A shared partitioner.
pub type SharedPartitioner<K> = Arc<dyn Partitioner<K>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_partitioner_orders_keys() {
        let p = RangePartitioner {
            bounds: vec![10, 20],
            ascending: true,
        };
        assert_eq!(p.partition(&5), 0);
        assert_eq!(p.partition(&10), 0);
        assert_eq!(p.partition(&11), 1);
        assert_eq!(p.partition(&25), 2);
        let d = RangePartitioner {
            bounds: vec![10, 20],
            ascending: false,
        };
        assert_eq!(d.partition(&25), 0);
        assert_eq!(d.partition(&5), 2);
    }

    #[test]
    fn hash_partitioner_is_in_range() {
        let p = HashPartitioner::new(7);
        for k in 0..1000u64 {
            assert!(Partitioner::<u64>::partition(&p, &k) < 7);
        }
        assert_eq!(HashPartitioner::new(0).n, 1);
    }
}
