//! ListOffsets (earliest = -2, latest = -1, or the first offset whose timestamp is at least T)
//! and DeleteRecords (advance the log start offset; in a cluster, answered once the in-sync
//! replicas' log starts have followed).

use sluice_protocol::wire::messages::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult,
};
use sluice_protocol::wire::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use sluice_protocol::wire::ErrorCode;

use super::log_error_code;
use crate::replication::message::TopicPartition;
use crate::replication::replica::ReplicaAppendError;
use crate::server::dispatch::Handlers;

/// Kafka's special ListOffsets timestamps.
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;

impl Handlers {
    pub(crate) fn list_offsets(
        &self,
        _version: i16,
        req: ListOffsetsRequest,
    ) -> ListOffsetsResponse {
        let topics = req
            .topics
            .into_iter()
            .map(|topic| ListOffsetsTopicResponse {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        self.list_partition_offset(&topic.name, p.partition_index, p.timestamp)
                    })
                    .collect(),
                name: topic.name,
            })
            .collect();
        ListOffsetsResponse {
            throttle_time_ms: 0,
            topics,
        }
    }

    fn list_partition_offset(
        &self,
        topic: &str,
        index: i32,
        timestamp: i64,
    ) -> ListOffsetsPartitionResponse {
        let mut out = ListOffsetsPartitionResponse {
            partition_index: index,
            error_code: ErrorCode::NONE.as_i16(),
            timestamp: -1,
            offset: -1,
            leader_epoch: self.broker.leader_epoch(topic, index),
        };
        let log = match self.broker.serving(topic, index) {
            Ok(log) => log,
            Err(code) => {
                out.error_code = code.as_i16();
                return out;
            }
        };
        let high_watermark = match self.broker.high_watermark(&log) {
            Ok(hw) => hw,
            Err(err) => {
                out.error_code = log_error_code(&err).as_i16();
                return out;
            }
        };
        let found = match timestamp {
            EARLIEST_TIMESTAMP => log.log_start_offset().map(|offset| Some((offset, -1))),
            LATEST_TIMESTAMP => Ok(Some((high_watermark, -1))),
            ts if ts < 0 => {
                out.error_code = ErrorCode::INVALID_REQUEST.as_i16();
                return out;
            }
            ts => log
                .offset_for_timestamp(ts)
                .map(|found| found.filter(|(offset, _)| *offset < high_watermark)),
        };
        match found {
            Ok(Some((offset, timestamp))) => {
                out.offset = offset;
                out.timestamp = timestamp;
            }
            Ok(None) => {}
            Err(err) => out.error_code = log_error_code(&err).as_i16(),
        }
        out
    }

    pub(crate) async fn delete_records(&self, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
        // In a cluster, the answer waits for the in-sync replicas to drop the records, at most
        // the request's timeout (shared by all its partitions).
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
        let mut topics = Vec::with_capacity(req.topics.len());
        for topic in req.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in topic.partitions {
                let (low_watermark, code) = self
                    .delete_partition_records(&topic.name, p.partition_index, p.offset, deadline)
                    .await;
                partitions.push(DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark,
                    error_code: code.as_i16(),
                });
            }
            topics.push(DeleteRecordsTopicResult {
                name: topic.name,
                partitions,
            });
        }
        DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics,
        }
    }

    /// One partition of a DeleteRecords: moves the log start up to `offset` (-1: the high
    /// watermark) and returns the low watermark. In a cluster the leader then waits until every
    /// in-sync replica's log start has passed it (followers take the leader's log start from
    /// their fetches), so that no replica that can become leader still serves the records.
    async fn delete_partition_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        deadline: tokio::time::Instant,
    ) -> (i64, ErrorCode) {
        let log = match self.broker.serving(topic, partition) {
            Ok(log) => log,
            Err(code) => return (-1, code),
        };
        let hw = match self.broker.high_watermark(&log) {
            Ok(hw) => hw,
            Err(err) => return (-1, log_error_code(&err)),
        };
        let offset = if offset == -1 { hw } else { offset };
        if offset < 0 || offset > hw {
            return (-1, ErrorCode::OFFSET_OUT_OF_RANGE);
        }
        let start = match log.delete_records_before(offset).await {
            Ok(start) => start,
            Err(err) => return (-1, log_error_code(&err)),
        };
        let Some(cluster) = self.broker.cluster() else {
            return (start, ErrorCode::NONE);
        };
        let Some(leader) = cluster.leader(&TopicPartition::new(topic, partition)) else {
            return (-1, ErrorCode::NOT_LEADER_OR_FOLLOWER);
        };
        match tokio::time::timeout_at(deadline, leader.wait_low_watermark(offset)).await {
            Ok(Ok(low)) => (low, ErrorCode::NONE),
            Ok(Err(ReplicaAppendError::Replica(e))) => (-1, ErrorCode(e.code())),
            Ok(Err(ReplicaAppendError::Log(err))) => (-1, log_error_code(&err)),
            Err(_) => (-1, ErrorCode::REQUEST_TIMED_OUT),
        }
    }
}
