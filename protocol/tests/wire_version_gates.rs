//! The classic version traps, spelled out byte by byte so a reader sees each gate: fields that
//! appear, disappear or move between versions. (The captures prove every field of every version;
//! these tests say what the traps are.)

use sluice_protocol::wire::messages::{
    describe_configs, fetch, join_group, leave_group, list_offsets, metadata, offset_commit,
    produce,
};
use sluice_protocol::wire::{Codec, Reader, Records};

fn enc<T: Codec>(msg: &T, version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out, version).expect("encodes");
    let back = T::decode(&mut Reader::new(out.clone().into()), version).expect("decodes");
    let mut again = Vec::new();
    back.encode(&mut again, version).expect("re-encodes");
    assert_eq!(again, out, "decode(encode(x)) changed at v{version}");
    out
}

/// Concatenates big-endian fields.
macro_rules! be {
    ($($v:expr),* $(,)?) => {{
        let mut v: Vec<u8> = Vec::new();
        $( v.extend_from_slice(&$v.to_be_bytes()); )*
        v
    }};
}

fn s(text: &str) -> Vec<u8> {
    let mut v = be!(text.len() as i16);
    v.extend_from_slice(text.as_bytes());
    v
}

#[test]
fn metadata_response_gains_fields_at_1_2_3_5_7_8() {
    let partition = metadata::MetadataResponsePartition {
        error_code: 0,
        partition_index: 0,
        leader_id: 1,
        leader_epoch: 9,
        replica_nodes: vec![1],
        isr_nodes: vec![1],
        offline_replicas: vec![],
    };
    let resp = metadata::MetadataResponse {
        controller_id: 1,
        topics: vec![metadata::MetadataResponseTopic {
            name: "t".into(),
            partitions: vec![partition],
            ..Default::default()
        }],
        ..Default::default()
    };
    let topic_head = [be!(0i16), s("t"), be!(0u8 /* is_internal, v1+ */, 1i32)].concat();
    let part_v1 = be!(0i16, 0i32, 1i32, 1i32, 1i32, 1i32, 1i32);
    // v1: brokers, controller_id (new in v1), topics.
    let v1 = [be!(0i32, 1i32, 1i32), topic_head.clone(), part_v1.clone()].concat();
    assert_eq!(enc(&resp, 1), v1);
    // v2: cluster_id (nullable string) between brokers and controller_id.
    let v2 = [
        be!(0i32, -1i16, 1i32, 1i32),
        topic_head.clone(),
        part_v1.clone(),
    ]
    .concat();
    assert_eq!(enc(&resp, 2), v2);
    // v3: throttle_time_ms first.
    assert_eq!(enc(&resp, 3), [be!(0i32), v2.clone()].concat());
    // v5: offline_replicas after isr_nodes.
    let part_v5 = [part_v1.clone(), be!(0i32)].concat();
    let v5 = [
        be!(0i32, 0i32, -1i16, 1i32, 1i32),
        topic_head.clone(),
        part_v5,
    ]
    .concat();
    assert_eq!(enc(&resp, 5), v5);
    // v7: leader_epoch after leader_id.
    let part_v7 = be!(0i16, 0i32, 1i32, 9i32, 1i32, 1i32, 1i32, 1i32, 0i32);
    let v7 = [
        be!(0i32, 0i32, -1i16, 1i32, 1i32),
        topic_head.clone(),
        part_v7.clone(),
    ]
    .concat();
    assert_eq!(enc(&resp, 7), v7);
    // v8: topic and cluster authorized operations (default i32::MIN).
    let v8 = [
        be!(0i32, 0i32, -1i16, 1i32, 1i32),
        topic_head,
        part_v7,
        be!(i32::MIN, i32::MIN),
    ]
    .concat();
    assert_eq!(enc(&resp, 8), v8);
}

#[test]
fn fetch_request_gains_fields_at_4_5_7_9_11() {
    let req = fetch::FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 1000,
        isolation_level: 1,
        session_id: 0,
        session_epoch: -1,
        topics: vec![fetch::FetchTopic {
            topic: "t".into(),
            partitions: vec![fetch::FetchPartition {
                partition: 0,
                current_leader_epoch: 3,
                fetch_offset: 10,
                log_start_offset: -1,
                partition_max_bytes: 100,
            }],
        }],
        forgotten_topics_data: vec![],
        rack_id: "r".into(),
    };
    // v4: isolation_level after max_bytes.
    let head = be!(-1i32, 500i32, 1i32, 1000i32, 1i8);
    let topic = [be!(1i32), s("t"), be!(1i32)].concat();
    assert_eq!(
        enc(&req, 4),
        [head.clone(), topic.clone(), be!(0i32, 10i64, 100i32)].concat()
    );
    // v5: log_start_offset after fetch_offset.
    assert_eq!(
        enc(&req, 5),
        [head.clone(), topic.clone(), be!(0i32, 10i64, -1i64, 100i32)].concat()
    );
    // v7: session id and epoch before topics, forgotten topics after.
    let sessions = be!(0i32, -1i32);
    assert_eq!(
        enc(&req, 7),
        [
            head.clone(),
            sessions.clone(),
            topic.clone(),
            be!(0i32, 10i64, -1i64, 100i32, 0i32)
        ]
        .concat()
    );
    // v9: current_leader_epoch after partition; v11: rack_id at the end.
    let part_v9 = be!(0i32, 3i32, 10i64, -1i64, 100i32, 0i32);
    assert_eq!(
        enc(&req, 9),
        [
            head.clone(),
            sessions.clone(),
            topic.clone(),
            part_v9.clone()
        ]
        .concat()
    );
    assert_eq!(
        enc(&req, 11),
        [head, sessions, topic, part_v9, s("r")].concat()
    );
}

#[test]
fn fetch_response_gains_fields_at_5_7_11() {
    let resp = fetch::FetchResponse {
        responses: vec![fetch::FetchableTopicResponse {
            topic: "t".into(),
            partitions: vec![fetch::PartitionData {
                high_watermark: 5,
                last_stable_offset: 5,
                log_start_offset: 0,
                preferred_read_replica: -1,
                records: Records::from(bytes::Bytes::from_static(b"xy")),
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let topic = [be!(1i32), s("t"), be!(1i32)].concat();
    let records = [be!(2i32), b"xy".to_vec()].concat();
    // v4: throttle first, aborted_transactions (null) before records.
    let p4 = be!(0i32, 0i16, 5i64, 5i64, -1i32);
    assert_eq!(
        enc(&resp, 4),
        [be!(0i32), topic.clone(), p4, records.clone()].concat()
    );
    // v5: log_start_offset after last_stable_offset.
    let p5 = be!(0i32, 0i16, 5i64, 5i64, 0i64, -1i32);
    assert_eq!(
        enc(&resp, 5),
        [be!(0i32), topic.clone(), p5.clone(), records.clone()].concat()
    );
    // v7: error_code and session_id after throttle.
    assert_eq!(
        enc(&resp, 7),
        [
            be!(0i32, 0i16, 0i32),
            topic.clone(),
            p5.clone(),
            records.clone()
        ]
        .concat()
    );
    // v11: preferred_read_replica just before records.
    assert_eq!(
        enc(&resp, 11),
        [be!(0i32, 0i16, 0i32), topic, p5, be!(-1i32), records].concat()
    );
}

#[test]
fn produce_response_puts_throttle_last_and_gains_log_start_offset_at_5() {
    let resp = produce::ProduceResponse {
        responses: vec![produce::TopicProduceResponse {
            name: "t".into(),
            partition_responses: vec![produce::PartitionProduceResponse {
                index: 0,
                error_code: 0,
                base_offset: 7,
                log_append_time_ms: -1,
                log_start_offset: 2,
            }],
        }],
        throttle_time_ms: 9,
    };
    let topic = [be!(1i32), s("t"), be!(1i32)].concat();
    assert_eq!(
        enc(&resp, 4),
        [topic.clone(), be!(0i32, 0i16, 7i64, -1i64, 9i32)].concat()
    );
    assert_eq!(
        enc(&resp, 5),
        [topic, be!(0i32, 0i16, 7i64, -1i64, 2i64, 9i32)].concat()
    );
}

#[test]
fn list_offsets_v1_has_no_max_num_offsets_and_v4_adds_leader_epoch() {
    let req = list_offsets::ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![list_offsets::ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![list_offsets::ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: 4,
                timestamp: -2,
            }],
        }],
    };
    let topic = [be!(1i32), s("t"), be!(1i32)].concat();
    assert_eq!(
        enc(&req, 1),
        [be!(-1i32), topic.clone(), be!(0i32, -2i64)].concat()
    );
    // v2: isolation_level after replica_id.
    assert_eq!(
        enc(&req, 2),
        [be!(-1i32, 0i8), topic.clone(), be!(0i32, -2i64)].concat()
    );
    assert_eq!(
        enc(&req, 4),
        [be!(-1i32, 0i8), topic, be!(0i32, 4i32, -2i64)].concat()
    );
}

#[test]
fn join_group_v5_adds_group_instance_id_and_responses_lead_with_throttle() {
    let req = join_group::JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10,
        rebalance_timeout_ms: 20,
        member_id: String::new(),
        group_instance_id: Some("i".into()),
        protocol_type: "consumer".into(),
        protocols: vec![],
    };
    let head = [s("g"), be!(10i32, 20i32), s("")].concat();
    let tail = [s("consumer"), be!(0i32)].concat();
    assert_eq!(enc(&req, 4), [head.clone(), tail.clone()].concat());
    assert_eq!(enc(&req, 5), [head, s("i"), tail].concat());
    let resp = join_group::JoinGroupResponse {
        throttle_time_ms: 3,
        error_code: 79, // MEMBER_ID_REQUIRED, v4+
        generation_id: -1,
        member_id: "m".into(),
        ..Default::default()
    };
    assert_eq!(
        enc(&resp, 4),
        [be!(3i32, 79i16, -1i32), s(""), s(""), s("m"), be!(0i32)].concat()
    );
}

#[test]
fn offset_commit_has_retention_time_only_in_v2_to_v4() {
    let req = offset_commit::OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: "m".into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![],
    };
    let head = [s("g"), be!(1i32), s("m")].concat();
    assert_eq!(enc(&req, 4), [head.clone(), be!(-1i64, 0i32)].concat());
    assert_eq!(enc(&req, 5), [head.clone(), be!(0i32)].concat());
    // v7: group_instance_id after member_id.
    assert_eq!(enc(&req, 7), [head, be!(-1i16, 0i32)].concat());
}

#[test]
fn leave_group_throttle_appears_first_at_v1() {
    let resp = leave_group::LeaveGroupResponse {
        throttle_time_ms: 5,
        error_code: 0,
    };
    assert_eq!(enc(&resp, 0), be!(0i16));
    assert_eq!(enc(&resp, 1), be!(5i32, 0i16));
}

/// DescribeConfigs v0 is not in Kafka 4's schema (nor kafka-python's), so no capture covers it:
/// from the Kafka 2.x schema, v0 has `is_default` where v1 has `config_source` and `synonyms`,
/// and the request gains `include_synonyms` at v1.
#[test]
fn describe_configs_v0_has_is_default_and_v1_config_source_and_synonyms() {
    let req = describe_configs::DescribeConfigsRequest {
        resources: vec![describe_configs::DescribeConfigsResource {
            resource_type: 2,
            resource_name: "t".into(),
            configuration_keys: None,
        }],
        include_synonyms: true,
    };
    let resource = [be!(1i32, 2i8), s("t"), be!(-1i32)].concat();
    assert_eq!(enc(&req, 0), resource);
    assert_eq!(enc(&req, 1), [resource, be!(1u8)].concat());

    let resp = describe_configs::DescribeConfigsResponse {
        throttle_time_ms: 0,
        results: vec![describe_configs::DescribeConfigsResult {
            error_code: 0,
            error_message: None,
            resource_type: 2,
            resource_name: "t".into(),
            configs: vec![describe_configs::DescribeConfigsResourceResult {
                name: "k".into(),
                value: Some("v".into()),
                read_only: false,
                is_default: true,
                config_source: 5,
                is_sensitive: false,
                synonyms: vec![],
            }],
        }],
    };
    let head = [
        be!(0i32, 1i32, 0i16, -1i16, 2i8),
        s("t"),
        be!(1i32),
        s("k"),
        s("v"),
    ]
    .concat();
    // v0: read_only, is_default, is_sensitive.
    assert_eq!(enc(&resp, 0), [head.clone(), be!(0u8, 1u8, 0u8)].concat());
    // v1: read_only, config_source, is_sensitive, synonyms.
    assert_eq!(enc(&resp, 1), [head, be!(0u8, 5i8, 0u8, 0i32)].concat());
}
