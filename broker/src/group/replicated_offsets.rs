//! [`ReplicatedOffsetsLog`]: committed offsets in a cluster. `__consumer_offsets` is then an
//! ordinary replicated topic of one partition (`cleanup.policy=compact`), and the group
//! coordinator runs on that partition's leader, as in Kafka: a commit is appended through the
//! [`LeaderReplica`] and acknowledged once the high watermark covers it, i.e. once every in-sync
//! replica holds it durably. A new leader loads the partition from its own replica, so committed
//! offsets survive the loss of the coordinator's broker.

use std::sync::Arc;
use std::time::Duration;

use crate::replication::replica::LeaderReplica;

use super::log_offsets::{batch_now, read_partition};
use super::offsets_log::{BoxFuture, OffsetsLog, OffsetsLogError, OffsetsRecord};

/// How often a commit waiting for the high watermark checks that this node still leads.
const LEADERSHIP_CHECK_INTERVAL: Duration = Duration::from_millis(200);

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

    fn not_leader() -> OffsetsLogError {
        OffsetsLogError::Storage("this broker no longer leads the offsets partition".into())
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
            // acks=1 here; `wait_durable` waits for the high watermark, which counts only
            // offsets every in-sync replica has made durable.
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
            let mut hw = self.leader.subscribe_high_watermark();
            loop {
                if *hw.borrow_and_update() >= target {
                    return Ok(());
                }
                if self.leader.is_resigned() {
                    return Err(Self::not_leader());
                }
                // A timeout only means another look at the leadership.
                let waited = tokio::time::timeout(LEADERSHIP_CHECK_INTERVAL, hw.changed()).await;
                if let Ok(Err(_)) = waited {
                    return Err(Self::not_leader());
                }
            }
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
