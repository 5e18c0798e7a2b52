//! [`Request::error_response`]: the response that fails every part of a request with one error
//! code, as Kafka's `getErrorResponse` builds it (per-partition / per-topic / per-group errors
//! where the API has them, "unknown" sentinels such as offset -1 elsewhere).
//!
//! For a broker that decoded a request it cannot serve (coordinator not ready, storage offline,
//! not the leader): the client gets a well-formed answer it knows how to retry.

use super::api_versions_response;
use super::error_code::ErrorCode;
use super::messages::*;
use super::primitives::Records;

impl Request {
    /// A response to this request in which everything failed with `code`.
    pub fn error_response(&self, code: ErrorCode) -> Response {
        let error_code = code.as_i16();
        match self {
            Request::Produce(r) => Response::Produce(produce::ProduceResponse {
                responses: r
                    .topic_data
                    .iter()
                    .map(|t| produce::TopicProduceResponse {
                        name: t.name.clone(),
                        partition_responses: t
                            .partition_data
                            .iter()
                            .map(|p| produce::PartitionProduceResponse {
                                index: p.index,
                                error_code,
                                base_offset: -1,
                                log_append_time_ms: -1,
                                log_start_offset: -1,
                            })
                            .collect(),
                    })
                    .collect(),
                throttle_time_ms: 0,
            }),
            Request::Fetch(r) => Response::Fetch(fetch::FetchResponse {
                throttle_time_ms: 0,
                error_code,
                session_id: 0,
                responses: r
                    .topics
                    .iter()
                    .map(|t| fetch::FetchableTopicResponse {
                        topic: t.topic.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| fetch::PartitionData {
                                partition_index: p.partition,
                                error_code,
                                high_watermark: -1,
                                last_stable_offset: -1,
                                log_start_offset: -1,
                                aborted_transactions: None,
                                preferred_read_replica: -1,
                                records: Records::new(),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            Request::ListOffsets(r) => Response::ListOffsets(list_offsets::ListOffsetsResponse {
                throttle_time_ms: 0,
                topics: r
                    .topics
                    .iter()
                    .map(|t| list_offsets::ListOffsetsTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| list_offsets::ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                error_code,
                                timestamp: -1,
                                offset: -1,
                                leader_epoch: -1,
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            Request::Metadata(r) => Response::Metadata(metadata::MetadataResponse {
                topics: r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| metadata::MetadataResponseTopic {
                        error_code,
                        name: t.name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            Request::OffsetCommit(r) => {
                Response::OffsetCommit(offset_commit::OffsetCommitResponse {
                    throttle_time_ms: 0,
                    topics: r
                        .topics
                        .iter()
                        .map(|t| offset_commit::OffsetCommitResponseTopic {
                            name: t.name.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| offset_commit::OffsetCommitResponsePartition {
                                    partition_index: p.partition_index,
                                    error_code,
                                })
                                .collect(),
                        })
                        .collect(),
                })
            }
            Request::OffsetFetch(r) => Response::OffsetFetch(offset_fetch::OffsetFetchResponse {
                throttle_time_ms: 0,
                error_code,
                topics: r
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| offset_fetch::OffsetFetchResponseTopic {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|&i| offset_fetch::OffsetFetchResponsePartition {
                                partition_index: i,
                                committed_offset: -1,
                                committed_leader_epoch: -1,
                                metadata: Some(String::new()),
                                error_code,
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            Request::FindCoordinator(_) => {
                Response::FindCoordinator(find_coordinator::FindCoordinatorResponse {
                    throttle_time_ms: 0,
                    error_code,
                    error_message: Some(code.message().to_owned()),
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                })
            }
            Request::JoinGroup(_) => Response::JoinGroup(join_group::JoinGroupResponse {
                error_code,
                generation_id: -1,
                ..Default::default()
            }),
            Request::Heartbeat(_) => Response::Heartbeat(heartbeat::HeartbeatResponse {
                throttle_time_ms: 0,
                error_code,
            }),
            Request::LeaveGroup(_) => Response::LeaveGroup(leave_group::LeaveGroupResponse {
                throttle_time_ms: 0,
                error_code,
            }),
            Request::SyncGroup(_) => Response::SyncGroup(sync_group::SyncGroupResponse {
                error_code,
                ..Default::default()
            }),
            Request::DescribeGroups(r) => {
                Response::DescribeGroups(describe_groups::DescribeGroupsResponse {
                    throttle_time_ms: 0,
                    groups: r
                        .groups
                        .iter()
                        .map(|g| describe_groups::DescribedGroup {
                            error_code,
                            group_id: g.clone(),
                            ..Default::default()
                        })
                        .collect(),
                })
            }
            Request::ListGroups(_) => Response::ListGroups(list_groups::ListGroupsResponse {
                throttle_time_ms: 0,
                error_code,
                groups: Vec::new(),
            }),
            Request::ApiVersions(_) => Response::ApiVersions(api_versions_response(code)),
            Request::CreateTopics(r) => {
                Response::CreateTopics(create_topics::CreateTopicsResponse {
                    throttle_time_ms: 0,
                    topics: r
                        .topics
                        .iter()
                        .map(|t| create_topics::CreatableTopicResult {
                            name: t.name.clone(),
                            error_code,
                            error_message: None,
                        })
                        .collect(),
                })
            }
            Request::DeleteTopics(r) => {
                Response::DeleteTopics(delete_topics::DeleteTopicsResponse {
                    throttle_time_ms: 0,
                    responses: r
                        .topic_names
                        .iter()
                        .map(|name| delete_topics::DeletableTopicResult {
                            name: name.clone(),
                            error_code,
                        })
                        .collect(),
                })
            }
            Request::DeleteRecords(r) => {
                Response::DeleteRecords(delete_records::DeleteRecordsResponse {
                    throttle_time_ms: 0,
                    topics: r
                        .topics
                        .iter()
                        .map(|t| delete_records::DeleteRecordsTopicResult {
                            name: t.name.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| delete_records::DeleteRecordsPartitionResult {
                                    partition_index: p.partition_index,
                                    low_watermark: -1,
                                    error_code,
                                })
                                .collect(),
                        })
                        .collect(),
                })
            }
            Request::InitProducerId(_) => {
                Response::InitProducerId(init_producer_id::InitProducerIdResponse {
                    throttle_time_ms: 0,
                    error_code,
                    producer_id: -1,
                    producer_epoch: -1,
                })
            }
            Request::DescribeConfigs(r) => {
                Response::DescribeConfigs(describe_configs::DescribeConfigsResponse {
                    throttle_time_ms: 0,
                    results: r
                        .resources
                        .iter()
                        .map(|res| describe_configs::DescribeConfigsResult {
                            error_code,
                            error_message: None,
                            resource_type: res.resource_type,
                            resource_name: res.resource_name.clone(),
                            configs: Vec::new(),
                        })
                        .collect(),
                })
            }
            Request::AlterConfigs(r) => {
                Response::AlterConfigs(alter_configs::AlterConfigsResponse {
                    throttle_time_ms: 0,
                    responses: r
                        .resources
                        .iter()
                        .map(|res| alter_configs::AlterConfigsResourceResponse {
                            error_code,
                            error_message: None,
                            resource_type: res.resource_type,
                            resource_name: res.resource_name.clone(),
                        })
                        .collect(),
                })
            }
            Request::DeleteGroups(r) => {
                Response::DeleteGroups(delete_groups::DeleteGroupsResponse {
                    throttle_time_ms: 0,
                    results: r
                        .groups_names
                        .iter()
                        .map(|g| delete_groups::DeletableGroupResult {
                            group_id: g.clone(),
                            error_code,
                        })
                        .collect(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::wire::{encode_response, ApiKey, ResponseFrame, SUPPORTED_VERSIONS};

    #[test]
    fn every_partition_of_a_produce_request_gets_the_error() {
        let request = Request::Produce(produce::ProduceRequest {
            topic_data: vec![produce::TopicProduceData {
                name: "t".into(),
                partition_data: vec![
                    produce::PartitionProduceData {
                        index: 0,
                        records: Some(Bytes::new()),
                    },
                    produce::PartitionProduceData {
                        index: 4,
                        records: None,
                    },
                ],
            }],
            ..Default::default()
        });
        let Response::Produce(resp) = request.error_response(ErrorCode::NOT_LEADER_OR_FOLLOWER)
        else {
            panic!("wrong response type");
        };
        let parts = &resp.responses[0].partition_responses;
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].index, 4);
        assert!(parts
            .iter()
            .all(|p| p.error_code == 6 && p.base_offset == -1));
    }

    #[test]
    fn error_responses_exist_and_encode_for_every_api_and_version() {
        for &(key, min, max) in SUPPORTED_VERSIONS {
            let request = default_request(key);
            let response = request.error_response(ErrorCode::UNKNOWN_SERVER_ERROR);
            assert_eq!(response.api_key(), key);
            for v in min..=max {
                let mut frame = ResponseFrame::new();
                encode_response(1, v, &response, &mut frame).expect("encodes");
            }
        }
    }

    fn default_request(key: ApiKey) -> Request {
        match key {
            ApiKey::Produce => Request::Produce(Default::default()),
            ApiKey::Fetch => Request::Fetch(Default::default()),
            ApiKey::ListOffsets => Request::ListOffsets(Default::default()),
            ApiKey::Metadata => Request::Metadata(Default::default()),
            ApiKey::OffsetCommit => Request::OffsetCommit(Default::default()),
            ApiKey::OffsetFetch => Request::OffsetFetch(Default::default()),
            ApiKey::FindCoordinator => Request::FindCoordinator(Default::default()),
            ApiKey::JoinGroup => Request::JoinGroup(Default::default()),
            ApiKey::Heartbeat => Request::Heartbeat(Default::default()),
            ApiKey::LeaveGroup => Request::LeaveGroup(Default::default()),
            ApiKey::SyncGroup => Request::SyncGroup(Default::default()),
            ApiKey::DescribeGroups => Request::DescribeGroups(Default::default()),
            ApiKey::ListGroups => Request::ListGroups(Default::default()),
            ApiKey::ApiVersions => Request::ApiVersions(Default::default()),
            ApiKey::CreateTopics => Request::CreateTopics(Default::default()),
            ApiKey::DeleteTopics => Request::DeleteTopics(Default::default()),
            ApiKey::DeleteRecords => Request::DeleteRecords(Default::default()),
            ApiKey::InitProducerId => Request::InitProducerId(Default::default()),
            ApiKey::DescribeConfigs => Request::DescribeConfigs(Default::default()),
            ApiKey::AlterConfigs => Request::AlterConfigs(Default::default()),
            ApiKey::DeleteGroups => Request::DeleteGroups(Default::default()),
        }
    }
}
