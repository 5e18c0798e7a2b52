//! ListOffsets (earliest = -2, latest = -1, or the first offset whose timestamp is at least T)
//! and DeleteRecords (advance the log start offset).

use sluice_protocol::wire::messages::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult,
};
use sluice_protocol::wire::messages::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use sluice_protocol::wire::ErrorCode;

use super::log_error_code;
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
        let mut topics = Vec::with_capacity(req.topics.len());
        for topic in req.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in topic.partitions {
                let mut result = DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark: -1,
                    error_code: ErrorCode::NONE.as_i16(),
                };
                if self.broker.cluster().is_some() {
                    // Followers would keep the records, and a failover would bring them back:
                    // refused until the log start offset is replicated.
                    result.error_code = ErrorCode::POLICY_VIOLATION.as_i16();
                    partitions.push(result);
                    continue;
                }
                match self.broker.serving(&topic.name, p.partition_index) {
                    Err(code) => result.error_code = code.as_i16(),
                    Ok(log) => {
                        let deleted = self.broker.high_watermark(&log).and_then(|hw| {
                            let offset = if p.offset == -1 { hw } else { p.offset };
                            if offset < 0 || offset > hw {
                                return Ok(Err(ErrorCode::OFFSET_OUT_OF_RANGE));
                            }
                            log.delete_records_before(offset).map(Ok)
                        });
                        match deleted {
                            Ok(Ok(start)) => result.low_watermark = start,
                            Ok(Err(code)) => result.error_code = code.as_i16(),
                            Err(err) => result.error_code = log_error_code(&err).as_i16(),
                        }
                    }
                }
                partitions.push(result);
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
}
