//! decode(encode(x)) == x for arbitrary values of the hottest messages at every supported
//! version: edge integers, empty vs null, non-ASCII strings, many partitions. Fields a version
//! lacks are reset to their defaults before comparing, since they are not on the wire.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sluice_protocol::wire::messages::{fetch, join_group, metadata, offset_commit, produce};
use sluice_protocol::wire::{
    decode_request, decode_response, decode_response_frame, encode_request, encode_response,
    limits::FRAME_BYTES_MAX, split_frame, ApiKey, Records, Request, RequestHeader, Response,
    ResponseFrame,
};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{0,12}|\\PC{0,6}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..600).prop_map(Bytes::from)
}

fn produce_request() -> impl Strategy<Value = produce::ProduceRequest> {
    let partition = (any::<i32>(), proptest::option::of(blob()))
        .prop_map(|(index, records)| produce::PartitionProduceData { index, records });
    let topic =
        (text(), proptest::collection::vec(partition, 0..4)).prop_map(|(name, partition_data)| {
            produce::TopicProduceData {
                name,
                partition_data,
            }
        });
    (
        opt_text(),
        any::<i16>(),
        any::<i32>(),
        proptest::collection::vec(topic, 0..4),
    )
        .prop_map(
            |(transactional_id, acks, timeout_ms, topic_data)| produce::ProduceRequest {
                transactional_id,
                acks,
                timeout_ms,
                topic_data,
            },
        )
}

fn fetch_response() -> impl Strategy<Value = fetch::FetchResponse> {
    let aborted = (any::<i64>(), any::<i64>()).prop_map(|(producer_id, first_offset)| {
        fetch::AbortedTransaction {
            producer_id,
            first_offset,
        }
    });
    let partition = (
        (
            any::<i32>(),
            any::<i16>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        ),
        proptest::option::of(proptest::collection::vec(aborted, 0..3)),
        any::<i32>(),
        proptest::collection::vec(blob(), 0..3),
    )
        .prop_map(
            |((pi, ec, hw, lso, lss), aborted, prr, chunks)| fetch::PartitionData {
                partition_index: pi,
                error_code: ec,
                high_watermark: hw,
                last_stable_offset: lso,
                log_start_offset: lss,
                aborted_transactions: aborted,
                preferred_read_replica: prr,
                records: Records::from_chunks(chunks),
            },
        );
    let topic = (text(), proptest::collection::vec(partition, 0..4))
        .prop_map(|(topic, partitions)| fetch::FetchableTopicResponse { topic, partitions });
    (
        any::<i32>(),
        any::<i16>(),
        any::<i32>(),
        proptest::collection::vec(topic, 0..4),
    )
        .prop_map(|(throttle_time_ms, error_code, session_id, responses)| {
            fetch::FetchResponse {
                throttle_time_ms,
                error_code,
                session_id,
                responses,
            }
        })
}

fn metadata_response() -> impl Strategy<Value = metadata::MetadataResponse> {
    let broker =
        (any::<i32>(), text(), any::<i32>(), opt_text()).prop_map(|(node_id, host, port, rack)| {
            metadata::MetadataResponseBroker {
                node_id,
                host,
                port,
                rack,
            }
        });
    let ints = || proptest::collection::vec(any::<i32>(), 0..4);
    let partition = (
        (any::<i16>(), any::<i32>(), any::<i32>(), any::<i32>()),
        ints(),
        ints(),
        ints(),
    )
        .prop_map(
            |((error_code, partition_index, leader_id, leader_epoch), r, i, o)| {
                metadata::MetadataResponsePartition {
                    error_code,
                    partition_index,
                    leader_id,
                    leader_epoch,
                    replica_nodes: r,
                    isr_nodes: i,
                    offline_replicas: o,
                }
            },
        );
    let topic = (
        any::<i16>(),
        text(),
        any::<bool>(),
        proptest::collection::vec(partition, 0..4),
        any::<i32>(),
    )
        .prop_map(|(error_code, name, is_internal, partitions, ops)| {
            metadata::MetadataResponseTopic {
                error_code,
                name,
                is_internal,
                partitions,
                topic_authorized_operations: ops,
            }
        });
    (
        any::<i32>(),
        proptest::collection::vec(broker, 0..3),
        opt_text(),
        any::<i32>(),
        proptest::collection::vec(topic, 0..3),
        any::<i32>(),
    )
        .prop_map(
            |(throttle, brokers, cluster_id, controller_id, topics, ops)| {
                metadata::MetadataResponse {
                    throttle_time_ms: throttle,
                    brokers,
                    cluster_id,
                    controller_id,
                    topics,
                    cluster_authorized_operations: ops,
                }
            },
        )
}

fn offset_commit_request() -> impl Strategy<Value = offset_commit::OffsetCommitRequest> {
    let partition = (any::<i32>(), any::<i64>(), any::<i32>(), opt_text()).prop_map(
        |(partition_index, committed_offset, committed_leader_epoch, committed_metadata)| {
            offset_commit::OffsetCommitRequestPartition {
                partition_index,
                committed_offset,
                committed_leader_epoch,
                committed_metadata,
            }
        },
    );
    let topic =
        (text(), proptest::collection::vec(partition, 0..4)).prop_map(|(name, partitions)| {
            offset_commit::OffsetCommitRequestTopic { name, partitions }
        });
    (
        text(),
        any::<i32>(),
        text(),
        opt_text(),
        any::<i64>(),
        proptest::collection::vec(topic, 0..3),
    )
        .prop_map(
            |(group_id, generation_id, member_id, gi, retention, topics)| {
                offset_commit::OffsetCommitRequest {
                    group_id,
                    generation_id,
                    member_id,
                    group_instance_id: gi,
                    retention_time_ms: retention,
                    topics,
                }
            },
        )
}

fn join_group_request() -> impl Strategy<Value = join_group::JoinGroupRequest> {
    let protocol = (text(), blob())
        .prop_map(|(name, metadata)| join_group::JoinGroupRequestProtocol { name, metadata });
    (
        (text(), any::<i32>(), any::<i32>(), text()),
        opt_text(),
        text(),
        proptest::collection::vec(protocol, 0..3),
    )
        .prop_map(
            |((group_id, st, rt, member_id), gi, protocol_type, protocols)| {
                join_group::JoinGroupRequest {
                    group_id,
                    session_timeout_ms: st,
                    rebalance_timeout_ms: rt,
                    member_id,
                    group_instance_id: gi,
                    protocol_type,
                    protocols,
                }
            },
        )
}

/// Encodes at `version`, decodes, and returns what came back.
fn request_round_trip(request: &Request, version: i16) -> Request {
    let header = RequestHeader {
        api_key: request.api_key().as_i16(),
        api_version: version,
        correlation_id: 77,
        client_id: Some("roundtrip".into()),
    };
    let mut buf = BytesMut::new();
    encode_request(&header, request, &mut buf).expect("encodes");
    let frame = split_frame(&mut buf, FRAME_BYTES_MAX)
        .expect("valid")
        .expect("complete");
    let (back_header, back) = decode_request(frame).expect("decodes");
    assert_eq!(back_header, header);
    back
}

fn response_round_trip(response: &Response, version: i16) -> Response {
    let mut frame = ResponseFrame::new();
    encode_response(9, version, response, &mut frame).expect("encodes");
    let mut buf = BytesMut::from(&frame.to_bytes()[..]);
    let body = split_frame(&mut buf, FRAME_BYTES_MAX)
        .expect("valid")
        .expect("complete");
    let (correlation_id, body) = decode_response_frame(body).expect("header");
    assert_eq!(correlation_id, 9);
    decode_response(response.api_key(), version, body).expect("decodes")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn produce_requests_round_trip(req in produce_request(), version in 3i16..=7) {
        // Every ProduceRequest field exists in every supported version.
        let request = Request::Produce(req);
        prop_assert_eq!(request_round_trip(&request, version), request);
    }

    #[test]
    fn fetch_responses_round_trip(mut resp in fetch_response(), version in 4i16..=11) {
        let back = response_round_trip(&Response::Fetch(resp.clone()), version);
        if version < 7 {
            resp.error_code = 0;
            resp.session_id = 0;
        }
        for p in resp.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if version < 5 {
                p.log_start_offset = -1;
            }
            if version < 11 {
                p.preferred_read_replica = -1;
            }
        }
        prop_assert_eq!(back, Response::Fetch(resp));
    }

    #[test]
    fn metadata_responses_round_trip(mut resp in metadata_response(), version in 1i16..=8) {
        let back = response_round_trip(&Response::Metadata(resp.clone()), version);
        if version < 2 {
            resp.cluster_id = None;
        }
        if version < 3 {
            resp.throttle_time_ms = 0;
        }
        if version < 8 {
            resp.cluster_authorized_operations = i32::MIN;
        }
        for t in &mut resp.topics {
            if version < 8 {
                t.topic_authorized_operations = i32::MIN;
            }
            for p in &mut t.partitions {
                if version < 5 {
                    p.offline_replicas.clear();
                }
                if version < 7 {
                    p.leader_epoch = -1;
                }
            }
        }
        prop_assert_eq!(back, Response::Metadata(resp));
    }

    #[test]
    fn offset_commit_requests_round_trip(mut req in offset_commit_request(), version in 2i16..=7) {
        let back = request_round_trip(&Request::OffsetCommit(req.clone()), version);
        if version > 4 {
            req.retention_time_ms = -1;
        }
        if version < 7 {
            req.group_instance_id = None;
        }
        for p in req.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if version < 6 {
                p.committed_leader_epoch = -1;
            }
        }
        prop_assert_eq!(back, Request::OffsetCommit(req));
    }

    #[test]
    fn join_group_requests_round_trip(mut req in join_group_request(), version in 2i16..=5) {
        let back = request_round_trip(&Request::JoinGroup(req.clone()), version);
        if version < 5 {
            req.group_instance_id = None;
        }
        prop_assert_eq!(back, Request::JoinGroup(req));
    }
}

#[test]
fn api_key_of_every_variant_matches() {
    assert_eq!(
        Request::Produce(Default::default()).api_key(),
        ApiKey::Produce
    );
    assert_eq!(
        Response::Metadata(Default::default()).api_key(),
        ApiKey::Metadata
    );
}
