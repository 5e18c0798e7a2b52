//! `Rdd<T>`: an immutable, partitioned, lazily computed dataset with lineage.
//!
//! An RDD is a handle on a lineage node: how many partitions it has, how to compute one partition
//! (from its parents' partitions or from a source), its dependencies (narrow: each partition needs a
//! bounded set of parent partitions; shuffle: needs every parent partition), and optionally the
//! partitioner its data is laid out by. Transformations build new nodes and compute nothing; actions
//! (`collect`, `count`, `foreach_partition`, ...) hand the lineage to the scheduler, which cuts it into
//! stages at shuffle dependencies and runs one task per partition on the context's worker pool.
//!
//! Partitions are computed as boxed iterators, so chains of narrow operations are fused into one
//! pass with no intermediate collections. Lost or failed work is recomputed from lineage.

mod actions;
mod narrow;
pub use narrow::union_all;
mod pair;
mod shuffle;
mod sort;

use crate::context::Context;
use crate::error::TaskError;
use crate::partitioner::PartitionerIdentity;
use crate::task::TaskContext;
use std::fmt::Write as _;
use std::hash::Hash;
use std::sync::Arc;

pub use pair::{Aggregator, Groups};

/// Element types an RDD can hold: cloneable (partitions may be recomputed and cached copies handed
/// out) and shareable between worker threads.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

/// Key types of key-value operations.
pub trait Key: Data + Hash + Eq {}
impl<T: Data + Hash + Eq> Key for T {}

/// A partition's elements, computed lazily.
pub type PartIter<T> = Box<dyn Iterator<Item = T>>;

/// The type-erased view of a lineage node the scheduler walks.
pub(crate) trait Lineage: Send + Sync {
    fn id(&self) -> u64;
    fn name(&self) -> &'static str;
    fn num_partitions(&self) -> usize;
    fn dependencies(&self) -> Vec<Dependency>;
}

/// A lineage node that computes elements of type `T`.
pub(crate) trait Node<T>: Lineage {
    fn compute(&self, partition: usize, tc: &TaskContext) -> Result<PartIter<T>, TaskError>;
    fn partitioner(&self) -> Option<PartitionerIdentity> {
        None
    }
}

/// An edge of the lineage graph.
#[derive(Clone)]
pub(crate) enum Dependency {
    /// Each child partition depends on a bounded set of parent partitions: same stage.
    Narrow(Arc<dyn Lineage>),
    /// Each child partition depends on all parent partitions: a stage boundary.
    Shuffle(Arc<dyn ShuffleStage>),
}

/// The type-erased map side of a shuffle, run by the scheduler as a stage.
pub(crate) trait ShuffleStage: Send + Sync {
    fn shuffle_id(&self) -> u64;
    fn parent(&self) -> Arc<dyn Lineage>;
    fn num_maps(&self) -> usize;
    /// Map partitions whose output is not yet stored.
    fn missing_maps(&self) -> Vec<usize>;
    /// Computes parent partition `map` and stores its bucketed (and combined) output.
    fn run_map_task(&self, map: usize, tc: &TaskContext) -> Result<(), TaskError>;
}

/// An immutable, partitioned, lazily computed dataset. Cloning is cheap (a shared handle).
pub struct Rdd<T> {
    pub(crate) node: Arc<dyn Node<T>>,
    pub(crate) ctx: Context,
}

impl<T> Clone for Rdd<T> {
    fn clone(&self) -> Self {
        Rdd {
            node: self.node.clone(),
            ctx: self.ctx.clone(),
        }
    }
}

impl<T: Data> std::fmt::Debug for Rdd<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rdd[{}]({}, {} partitions)",
            self.id(),
            self.node.name(),
            self.num_partitions()
        )
    }
}

impl<T: Data> Rdd<T> {
    pub(crate) fn from_node(ctx: Context, node: Arc<dyn Node<T>>) -> Rdd<T> {
        Rdd { node, ctx }
    }

    /// This RDD's id, unique within its context.
    pub fn id(&self) -> u64 {
        self.node.id()
    }

    /// The number of partitions (= tasks of the stage computing it).
    pub fn num_partitions(&self) -> usize {
        self.node.num_partitions()
    }

    /// The context this RDD belongs to.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The partitioner this RDD's data is laid out by, if known.
    pub fn partitioner(&self) -> Option<PartitionerIdentity> {
        self.node.partitioner()
    }

    /// Computes one partition directly on the calling thread, outside the scheduler (tests and
    /// driver-side helpers). Shuffle parents are computed as needed.
    pub fn compute_partition(
        &self,
        partition: usize,
        tc: &TaskContext,
    ) -> Result<Vec<T>, TaskError> {
        Ok(self.node.compute(partition, tc)?.collect())
    }

    pub(crate) fn lineage(&self) -> Arc<dyn Lineage> {
        // Trait upcasting from `dyn Node<T>` to its supertrait.
        self.node.clone()
    }

    /// The lineage as an indented tree, like Spark's `toDebugString`: `+-` marks a shuffle.
    pub fn to_debug_string(&self) -> String {
        fn walk(node: &Arc<dyn Lineage>, depth: usize, shuffle: bool, out: &mut String) {
            let _ = writeln!(
                out,
                "{}{}({}) [{}] {} partitions",
                "  ".repeat(depth),
                if shuffle { "+-" } else { "" },
                node.name(),
                node.id(),
                node.num_partitions()
            );
            for dep in node.dependencies() {
                match dep {
                    Dependency::Narrow(p) => walk(&p, depth + 1, false, out),
                    Dependency::Shuffle(s) => walk(&s.parent(), depth + 1, true, out),
                }
            }
        }
        let mut out = String::new();
        walk(&self.lineage(), 0, false, &mut out);
        out
    }
}
