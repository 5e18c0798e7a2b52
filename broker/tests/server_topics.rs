//! Topic administration through an in-process broker: CreateTopics validation with messages,
//! Metadata (auto-create off by default, on when configured), DeleteTopics removing the files,
//! Describe/AlterConfigs by Kafka name, and topics surviving a restart.

mod server_support;

use server_support::*;
use sluice_protocol::wire::messages::alter_configs::{
    AlterConfigsRequest, AlterConfigsResource, AlterableConfig,
};
use sluice_protocol::wire::messages::delete_topics::DeleteTopicsRequest;
use sluice_protocol::wire::messages::describe_configs::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use sluice_protocol::wire::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use sluice_protocol::wire::{ErrorCode, Request, Response};

async fn create(
    conn: &mut Conn,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> (i16, Option<String>) {
    let Response::CreateTopics(response) = conn
        .call(4, create_topic_request(name, partitions, configs))
        .await
    else {
        panic!("create topics")
    };
    let t = &response.topics[0];
    (t.error_code, t.error_message.clone())
}

async fn metadata(
    conn: &mut Conn,
    topics: Option<&[&str]>,
    allow_auto_create: bool,
) -> Vec<(String, i16, usize)> {
    let Response::Metadata(response) = conn
        .call(
            8,
            Request::Metadata(MetadataRequest {
                topics: topics.map(|names| {
                    names
                        .iter()
                        .map(|n| MetadataRequestTopic {
                            name: n.to_string(),
                        })
                        .collect()
                }),
                allow_auto_topic_creation: allow_auto_create,
                ..Default::default()
            }),
        )
        .await
    else {
        panic!("metadata")
    };
    assert_eq!(response.brokers.len(), 1);
    response
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.error_code, t.partitions.len()))
        .collect()
}

#[tokio::test]
async fn create_topics_validates_with_messages() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    assert_eq!(
        create(&mut conn, "orders", 3, &[("cleanup.policy", "compact")])
            .await
            .0,
        0
    );
    /// (name, partitions, configs, expected error, text the message must contain)
    type Case<'a> = (&'a str, i32, &'a [(&'a str, &'a str)], ErrorCode, &'a str);
    let cases: &[Case] = &[
        (
            "orders",
            1,
            &[],
            ErrorCode::TOPIC_ALREADY_EXISTS,
            "already exists",
        ),
        (
            "bad/name",
            1,
            &[],
            ErrorCode::INVALID_TOPIC_EXCEPTION,
            "'/'",
        ),
        ("..", 1, &[], ErrorCode::INVALID_TOPIC_EXCEPTION, ".."),
        (
            "zero",
            0,
            &[],
            ErrorCode::INVALID_PARTITIONS,
            "partition count",
        ),
        (
            "cfg",
            1,
            &[("retention.ms", "soon")],
            ErrorCode::INVALID_CONFIG,
            "retention.ms",
        ),
        (
            "cfg",
            1,
            &[("no.such.config", "1")],
            ErrorCode::INVALID_CONFIG,
            "no.such.config",
        ),
    ];
    for (name, partitions, configs, code, needle) in cases {
        let (got, message) = create(&mut conn, name, *partitions, configs).await;
        assert_eq!(got, code.as_i16(), "{name}: {message:?}");
        let message = message.unwrap_or_default();
        assert!(message.contains(needle), "{name}: {message}");
    }
    let topics = metadata(&mut conn, None, false).await;
    assert_eq!(topics, vec![("orders".to_string(), 0, 3)]);
    broker.stop().await;
}

#[tokio::test]
async fn metadata_auto_creates_only_when_enabled() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let topics = metadata(&mut conn, Some(&["ghost"]), true).await;
    assert_eq!(
        topics,
        vec![(
            "ghost".to_string(),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.as_i16(),
            0
        )]
    );
    broker.stop().await;

    let broker = TestBroker::start_with(|c| {
        c.auto_create_topics = true;
        c.num_partitions = 2;
    })
    .await;
    let mut conn = broker.connect().await;
    let topics = metadata(&mut conn, Some(&["ghost"]), false).await;
    assert_eq!(
        topics[0].1,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.as_i16(),
        "client said no"
    );
    let topics = metadata(&mut conn, Some(&["ghost", "bad name"]), true).await;
    assert_eq!(topics[0], ("ghost".to_string(), 0, 2));
    assert_eq!(topics[1].1, ErrorCode::INVALID_TOPIC_EXCEPTION.as_i16());
    broker.stop().await;
}

#[tokio::test]
async fn delete_topics_removes_files_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut conn = broker.connect().await;
    create(&mut conn, "gone", 2, &[]).await;
    create(&mut conn, "kept", 1, &[]).await;
    produce(&mut conn, "gone", 0, 1, batch(3, Default::default(), 0)).await;
    let logs = dir.path().join("logs");
    assert!(logs.join("gone-0").exists() && logs.join("gone-1").exists());
    let Response::DeleteTopics(response) = conn
        .call(
            3,
            Request::DeleteTopics(DeleteTopicsRequest {
                topic_names: vec!["gone".to_string(), "never".to_string()],
                timeout_ms: 10_000,
            }),
        )
        .await
    else {
        panic!("delete")
    };
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(
        response.responses[1].error_code,
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.as_i16()
    );
    assert!(!logs.join("gone-0").exists() && !logs.join("gone-1").exists());
    broker.stop().await;

    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut conn = broker.connect().await;
    assert_eq!(
        metadata(&mut conn, None, false).await,
        vec![("kept".to_string(), 0, 1)]
    );
    // The name is free again, and the new topic starts empty.
    create(&mut conn, "gone", 1, &[]).await;
    assert_eq!(
        produce(&mut conn, "gone", 0, 1, batch(1, Default::default(), 0)).await,
        (0, 0)
    );
    broker.stop().await;
}

#[tokio::test]
async fn topic_configs_are_described_and_altered_by_kafka_name() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create(&mut conn, "conf", 1, &[("retention.ms", "1000")]).await;
    let describe = || {
        Request::DescribeConfigs(DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: 2,
                resource_name: "conf".to_string(),
                configuration_keys: None,
            }],
            include_synonyms: false,
        })
    };
    let Response::DescribeConfigs(response) = conn.call(1, describe()).await else {
        panic!("describe")
    };
    let configs = &response.results[0].configs;
    let get = |name: &str| configs.iter().find(|c| c.name == name).expect(name).clone();
    assert_eq!(get("retention.ms").value.as_deref(), Some("1000"));
    assert_eq!(get("retention.ms").config_source, 1);
    assert_eq!(get("cleanup.policy").config_source, 5);

    let alter = |value: &str| {
        Request::AlterConfigs(AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: 2,
                resource_name: "conf".to_string(),
                configs: vec![AlterableConfig {
                    name: "segment.bytes".to_string(),
                    value: Some(value.to_string()),
                }],
            }],
            validate_only: false,
        })
    };
    let Response::AlterConfigs(response) = conn.call(1, alter("nope")).await else {
        panic!()
    };
    assert_eq!(
        response.responses[0].error_code,
        ErrorCode::INVALID_CONFIG.as_i16()
    );
    let Response::AlterConfigs(response) = conn.call(1, alter("1048576")).await else {
        panic!()
    };
    assert_eq!(response.responses[0].error_code, 0);
    let Response::DescribeConfigs(response) = conn.call(1, describe()).await else {
        panic!()
    };
    let configs = &response.results[0].configs;
    let get = |name: &str| configs.iter().find(|c| c.name == name).expect(name).clone();
    assert_eq!(get("segment.bytes").value.as_deref(), Some("1048576"));
    // AlterConfigs replaces the whole override set: retention.ms is back to the default.
    assert_eq!(get("retention.ms").config_source, 5);
    broker.stop().await;
}

#[tokio::test]
async fn an_offline_partition_is_reported_and_the_others_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut conn = broker.connect().await;
    create(&mut conn, "half", 2, &[]).await;
    broker.stop().await;
    // Damage partition 0's small config file: the log opens that partition offline.
    std::fs::write(dir.path().join("logs/half-0/log-config"), b"garbage").expect("damage");

    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut conn = broker.connect().await;
    let Response::Metadata(response) = conn
        .call(
            8,
            Request::Metadata(MetadataRequest {
                topics: None,
                ..Default::default()
            }),
        )
        .await
    else {
        panic!("metadata")
    };
    let partitions = &response.topics[0].partitions;
    assert_eq!(
        partitions[0].error_code,
        ErrorCode::KAFKA_STORAGE_ERROR.as_i16()
    );
    assert_eq!(partitions[0].offline_replicas, vec![0]);
    assert_eq!(partitions[1].error_code, 0);
    let (code, _) = produce(&mut conn, "half", 0, 1, batch(1, Default::default(), 0)).await;
    assert_eq!(code, ErrorCode::KAFKA_STORAGE_ERROR.as_i16());
    assert_eq!(
        produce(&mut conn, "half", 1, 1, batch(1, Default::default(), 0)).await,
        (0, 0)
    );
    broker.stop().await;
}

#[tokio::test]
async fn a_failed_creation_rolls_back_only_what_it_made() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    // A partition the registry does not know (as the group coordinator's internal topic is).
    let foreign = broker
        .broker
        .logs()
        .create_partition("clash", 1, sluice_broker::log::LogConfig::default())
        .expect("foreign partition");
    let (code, message) = create(&mut conn, "clash", 2, &[]).await;
    assert_eq!(code, ErrorCode::KAFKA_STORAGE_ERROR.as_i16(), "{message:?}");
    assert!(
        broker.broker.logs().partition("clash", 0).is_none(),
        "its own partition undone"
    );
    let still = broker
        .broker
        .logs()
        .partition("clash", 1)
        .expect("foreign partition kept");
    assert!(std::sync::Arc::ptr_eq(&still, &foreign));
    assert!(
        metadata(&mut conn, None, false).await.is_empty(),
        "not registered"
    );

    let (code, message) = create(&mut conn, "__consumer_offsets", 1, &[]).await;
    assert_eq!(code, ErrorCode::INVALID_REQUEST.as_i16(), "{message:?}");
    broker.stop().await;
}
