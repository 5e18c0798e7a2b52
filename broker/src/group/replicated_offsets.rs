//! [`ReplicatedOffsetsLog`]: committed offsets in a cluster. `__consumer_offsets` is then an
//! ordinary replicated topic of one partition (`cleanup.policy=compact`), and the group
//! coordinator runs on that partition's leader, as in Kafka: a commit is appended through the
//! [`LeaderReplica`] and acknowledged as an acks=all write would be
//! ([`LeaderReplica::wait_committed`]): once every in-sync replica holds it durably, with at least
//! `min.insync.replicas` in sync. A new leader loads the partition from its own replica, so committed
//! offsets survive the loss of the coordinator's broker.

use std::sync::Arc;

use crate::replication::replica::LeaderReplica;

use super::log_offsets::{batch_now, read_partition};
use super::offsets_log::{BoxFuture, OffsetsLog, OffsetsLogError, OffsetsRecord};

/// The one partition of `__consumer_offsets`, through this node's leadership of it.
pub struct ReplicatedOffsetsLog {
    leader: Arc<LeaderReplica>,
}

impl ReplicatedOffsetsLog {
    /// Writes and reads through `leader` (this node leads `__consumer_offsets-0`).
    pub fn new(leader: Arc<LeaderReplica>) -> Self {
        Self { leader }
    }

    fn check_partition(partition: i32) -> Result<(), OffsetsLogError> {
        if partition == 0 {
            Ok(())
        } else {
            Err(OffsetsLogError::Storage(format!(
                "the replicated offsets topic has one partition, not {partition}"
            )))
        }
    }
}

impl OffsetsLog for ReplicatedOffsetsLog {
    fn n_partitions(&self) -> i32 {
        1
    }

    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'_, Result<i64, OffsetsLogError>> {
        Box::pin(async move {
            Self::check_partition(partition)?;
            let batch = batch_now(&records)?;
            // Not acks=all here: the coordinator waits in `wait_durable`, outside its commit
            // lock, so concurrent commits share the replication round trips.
            let info = self
                .leader
                .append(batch, false)
                .await
                .map_err(|e| OffsetsLogError::Storage(e.to_string()))?;
            Ok(info.last_offset + 1)
        })
    }

    fn wait_durable(
        &self,
        partition: i32,
        target: i64,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
        Box::pin(async move {
            Self::check_partition(partition)?;
            self.leader
                .wait_committed(target)
                .await
                .map_err(|e| OffsetsLogError::Storage(e.to_string()))
        })
    }

    fn read_all(
        &self,
        partition: i32,
    ) -> BoxFuture<'_, Result<Vec<OffsetsRecord>, OffsetsLogError>> {
        Box::pin(async move {
            Self::check_partition(partition)?;
            read_partition(self.leader.partition(), partition)
        })
    }
}
