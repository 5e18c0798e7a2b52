//! [`LogOffsetsLog`]: the offsets log on the broker's partition logs — the internal topic
//! `__consumer_offsets`, created on first start with `cleanup.policy=compact` (so only the latest
//! commit per group/topic/partition is kept) and the broker's other topic defaults.
//!
//! A commit appends one batch to the page cache, then waits for the group-commit fdatasync covering
//! it (shared with every other commit in flight), so the coordinator acknowledges a commit only once
//! it is durable; start-up reads every partition from its log start.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::log::error::LogError;
use crate::log::manager::LogManager;
use crate::log::partition::{Durability, Partition};

use super::offsets_batch;
use super::offsets_log::{BoxFuture, OffsetsLog, OffsetsLogError, OffsetsRecord};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes read per call while loading (whole batches; a larger batch still comes back whole).
const LOAD_READ_BYTES: usize = 4 * 1024 * 1024;

/// `__consumer_offsets` on the partition logs.
#[derive(Debug)]
pub struct LogOffsetsLog {
    partitions: Vec<Arc<Partition>>,
}

impl LogOffsetsLog {
    /// Opens (creating if missing) the `n_partitions` partitions of `__consumer_offsets`.
    pub fn open(logs: &LogManager, n_partitions: i32) -> Result<LogOffsetsLog, LogError> {
        let props = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        let config = logs
            .defaults()
            .with_overrides(&props)
            .map_err(|e| LogError::from(std::io::Error::other(e.to_string())))?;
        let mut partitions = Vec::new();
        for p in 0..n_partitions.max(1) {
            let partition = match logs.partition(OFFSETS_TOPIC, p) {
                Some(existing) => existing,
                None => {
                    tracing::info!(partition = p, "creating {OFFSETS_TOPIC}");
                    logs.create_partition(OFFSETS_TOPIC, p, config.clone())?
                }
            };
            partitions.push(partition);
        }
        Ok(LogOffsetsLog { partitions })
    }

    fn partition(&self, partition: i32) -> Result<&Arc<Partition>, OffsetsLogError> {
        usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .ok_or_else(|| {
                OffsetsLogError::Storage(format!("{OFFSETS_TOPIC} has no partition {partition}"))
            })
    }
}

impl OffsetsLog for LogOffsetsLog {
    fn n_partitions(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'_, Result<i64, OffsetsLogError>> {
        Box::pin(async move {
            let p = self.partition(partition)?.clone();
            let batch = batch_now(&records)?;
            let info = p
                .append(batch, 0, Durability::PageCache)
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
            let p = self.partition(partition)?.clone();
            p.wait_durable(target)
                .await
                .map_err(|e| OffsetsLogError::Storage(e.to_string()))
        })
    }

    fn read_all(
        &self,
        partition: i32,
    ) -> BoxFuture<'_, Result<Vec<OffsetsRecord>, OffsetsLogError>> {
        Box::pin(async move {
            let p = self.partition(partition)?.clone();
            read_partition(&p, partition)
        })
    }
}

/// `records` as one batch stamped with the current time.
pub fn batch_now(records: &[OffsetsRecord]) -> Result<bytes::Bytes, OffsetsLogError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    offsets_batch::to_batch(records, now).map_err(|e| OffsetsLogError::Storage(e.to_string()))
}

/// Every offsets record of `p` (partition `partition` of the topic) from its log start to its
/// log end, in offset order: how a coordinator loads, on one node or as a replicated leader.
pub fn read_partition(
    p: &Partition,
    partition: i32,
) -> Result<Vec<OffsetsRecord>, OffsetsLogError> {
    let storage = |e: LogError| OffsetsLogError::Storage(e.to_string());
    let mut offset = p.log_start_offset().map_err(storage)?;
    let end = p.log_end_offset().map_err(storage)?;
    let mut out = Vec::new();
    while offset < end {
        let read = p.read(offset, LOAD_READ_BYTES, end).map_err(storage)?;
        if read.chunks.is_empty() || read.next_offset <= offset {
            break;
        }
        for chunk in read.chunks {
            let records =
                offsets_batch::from_batches(chunk).map_err(|e| OffsetsLogError::Corrupt {
                    partition,
                    offset,
                    reason: e.to_string(),
                })?;
            out.extend(
                records
                    .into_iter()
                    .filter(|(o, _)| *o >= offset)
                    .map(|(_, r)| r),
            );
        }
        offset = read.next_offset;
    }
    Ok(out)
}

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorStartError {
    /// `__consumer_offsets` could not be opened or created.
    #[error("cannot open {OFFSETS_TOPIC}: {0}")]
    Open(#[from] LogError),
    /// Its records could not be read.
    #[error("cannot load committed offsets: {0}")]
    Load(#[from] OffsetsLogError),
}

/// Opens `__consumer_offsets` in `logs`, replays it and starts the coordinator: the one call the
/// broker makes at start-up (then [`GroupCoordinator::set_node`] once the listener is bound, and
/// [`GroupCoordinator::handle`] for every group request).
///
/// [`GroupCoordinator::set_node`]: super::coordinator::GroupCoordinator::set_node
/// [`GroupCoordinator::handle`]: super::coordinator::GroupCoordinator::handle
pub async fn start_coordinator(
    config: super::config::GroupConfig,
    logs: &LogManager,
) -> Result<super::coordinator::GroupCoordinator, CoordinatorStartError> {
    let log = Arc::new(LogOffsetsLog::open(
        logs,
        config.offsets_topic_num_partitions,
    )?);
    Ok(super::coordinator::GroupCoordinator::load(config, log).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::config::GroupConfig;
    use crate::group::coordinator::GroupCoordinator;
    use crate::group::types::{CommitIdentity, CommittedOffset, TopicPartition};
    use crate::log::clock::SystemClock;
    use crate::log::config::LogConfig;

    fn who() -> CommitIdentity {
        CommitIdentity {
            group_id: "g".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    #[tokio::test]
    async fn commits_survive_reopening_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let tp = |p| TopicPartition {
            topic: "orders".into(),
            partition: p,
        };
        let offset = |o| CommittedOffset {
            offset: o,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp_ms: 9,
        };
        {
            let logs =
                LogManager::open(dir.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
            let log = Arc::new(LogOffsetsLog::open(&logs, 2).unwrap());
            let c = GroupCoordinator::load(GroupConfig::default(), log)
                .await
                .unwrap();
            for round in 0..3 {
                let answers = c
                    .commit(
                        who(),
                        vec![(tp(0), offset(10 + round)), (tp(1), offset(20 + round))],
                    )
                    .await;
                assert!(
                    answers.iter().all(|(_, code)| code.as_i16() == 0),
                    "{answers:?}"
                );
            }
            // No clean shutdown: what was acknowledged is on disk already.
        }
        let logs =
            LogManager::open(dir.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        assert_eq!(
            logs.partition(OFFSETS_TOPIC, 0)
                .unwrap()
                .config()
                .unwrap()
                .to_props()
                .get("cleanup.policy")
                .map(String::as_str),
            Some("compact")
        );
        let log = Arc::new(LogOffsetsLog::open(&logs, 2).unwrap());
        let c = GroupCoordinator::load(GroupConfig::default(), log)
            .await
            .unwrap();
        assert_eq!(
            c.committed("g", None),
            vec![(tp(0), Some(offset(12))), (tp(1), Some(offset(22)))]
        );
        assert_eq!(c.delete("g").await.as_i16(), 0);
        drop(c);
        let log = Arc::new(LogOffsetsLog::open(&logs, 2).unwrap());
        let c = GroupCoordinator::load(GroupConfig::default(), log)
            .await
            .unwrap();
        assert!(c.list().is_empty(), "tombstones replayed");
    }
}
