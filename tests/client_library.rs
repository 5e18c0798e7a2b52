//! The client library against a real `sluiced`: idempotent produce over several partitions, consume
//! with `poll`, exact `read_range`, admin offsets, and transparent reconnection when the broker
//! restarts between sends.

use std::time::Duration;

use sluice_client::partitioner::partition_for_key;
use sluice_client::{
    Admin, ClientConfig, ConsumeError, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, SeekTo,
};
use sluice_tests::Broker;

fn producer_config(broker: &Broker) -> ProducerConfig {
    let mut c = ProducerConfig::new(&broker.bootstrap());
    c.linger = Duration::from_millis(2);
    c.batch_size = 64 * 1024;
    c.delivery_timeout = Duration::from_secs(60);
    c
}

fn consumer_config(broker: &Broker) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(&broker.bootstrap());
    c.fetch_max_wait = Duration::from_millis(50);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_and_ranges_round_trip() {
    let broker = Broker::start();
    let admin = Admin::connect(ClientConfig::new(&broker.bootstrap()))
        .await
        .unwrap();
    admin.create_topic(&NewTopic::new("lib", 4)).await.unwrap();

    let producer = Producer::new(producer_config(&broker)).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..5000u32 {
        let key = format!("k{}", i % 101);
        let value = format!("value-{i}");
        let d = producer
            .send(ProducerRecord::new("lib", value.as_bytes()).with_key(key.as_bytes()))
            .await
            .unwrap();
        deliveries.push((key, d));
    }
    producer.close().await.unwrap();
    let mut per_partition = [0i64; 4];
    for (key, d) in deliveries {
        let m = d.await.unwrap();
        assert_eq!(m.partition, partition_for_key(key.as_bytes(), 4));
        per_partition[m.partition as usize] += 1;
    }
    for p in 0..4 {
        assert_eq!(
            admin.latest_offset("lib", p).await.unwrap(),
            per_partition[p as usize]
        );
        assert_eq!(admin.earliest_offset("lib", p).await.unwrap(), 0);
    }

    let mut consumer = Consumer::new(consumer_config(&broker)).await.unwrap();
    let parts: Vec<(String, i32)> = (0..4).map(|p| ("lib".to_string(), p)).collect();
    consumer.assign(&parts).await.unwrap();
    for p in 0..4 {
        consumer.seek("lib", p, SeekTo::Beginning).await.unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 5000 && std::time::Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(500)).await.unwrap() {
            assert!(
                seen.insert(r.value.clone().unwrap()),
                "duplicate at {}/{}",
                r.partition,
                r.offset
            );
        }
    }
    assert_eq!(seen.len(), 5000);
    assert!(consumer.at_end());

    let biggest = (0..4).max_by_key(|&p| per_partition[p]).unwrap() as i32;
    let end = per_partition[biggest as usize];
    let range = consumer
        .read_range("lib", biggest, 10, end - 10)
        .await
        .unwrap();
    assert_eq!(range.len() as i64, end - 20);
    assert!(range
        .iter()
        .enumerate()
        .all(|(i, r)| r.offset == 10 + i as i64));

    let d = admin.describe_topic("lib").await.unwrap();
    assert_eq!(d.partitions.len(), 4);
    assert_eq!(d.partitions[biggest as usize].end_offset, Some(end));
}

/// Polls until `n` records arrived (or 30 s passed), failing on any error.
async fn poll_records(consumer: &mut Consumer, n: usize) -> Vec<(i32, i64)> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < n && std::time::Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            got.push((r.partition, r.offset));
        }
    }
    got
}

/// A consumer of `partitions` of topic `oor` whose partition 0 is sought past its end.
async fn consumer_past_the_end(
    broker: &Broker,
    reset: Option<OffsetReset>,
    partitions: &[(String, i32)],
) -> Consumer {
    let mut config = consumer_config(broker);
    config.auto_offset_reset = reset;
    let mut consumer = Consumer::new(config).await.unwrap();
    consumer.assign(partitions).await.unwrap();
    consumer.seek("oor", 0, SeekTo::Offset(500)).await.unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_out_of_range_is_reported_or_reset() {
    let broker = Broker::start();
    let admin = Admin::connect(ClientConfig::new(&broker.bootstrap()))
        .await
        .unwrap();
    admin.create_topic(&NewTopic::new("oor", 2)).await.unwrap();
    let producer = Producer::new(producer_config(&broker)).await.unwrap();
    let mut deliveries = Vec::new();
    for p in 0..2 {
        for i in 0..10u32 {
            let value = format!("v{i}");
            let record = ProducerRecord::new("oor", value.as_bytes()).with_partition(p);
            deliveries.push(producer.send(record).await.unwrap());
        }
    }
    producer.close().await.unwrap();
    for d in deliveries {
        d.await.unwrap();
    }
    let both = [("oor".to_string(), 0), ("oor".to_string(), 1)];

    // No reset policy: the error names the partition, the other partition's records still come,
    // and the failed partition waits for a seek.
    let mut consumer = consumer_past_the_end(&broker, None, &both).await;
    let mut records = Vec::new();
    let mut error = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (records.len() < 10 || error.is_none()) && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)).await {
            Ok(batch) => records.extend(batch.iter().map(|r| (r.partition, r.offset))),
            Err(e) => {
                assert!(error.is_none(), "second error: {e}");
                error = Some(e);
            }
        }
    }
    match error {
        Some(ConsumeError::OffsetOutOfRange {
            partition, offset, ..
        }) => assert_eq!((partition, offset), (0, 500)),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert_eq!(records, (0..10).map(|o| (1, o)).collect::<Vec<_>>());
    assert_eq!(consumer.position("oor", 0), Some(500));
    consumer.seek("oor", 0, SeekTo::Offset(4)).await.unwrap();
    let rest = poll_records(&mut consumer, 6).await;
    assert_eq!(rest, (4..10).map(|o| (0, o)).collect::<Vec<_>>());

    // auto.offset.reset=earliest: the position moves to the oldest record and reading goes on.
    let mut consumer =
        consumer_past_the_end(&broker, Some(OffsetReset::Earliest), &both[..1]).await;
    let got = poll_records(&mut consumer, 10).await;
    assert_eq!(got, (0..10).map(|o| (0, o)).collect::<Vec<_>>());

    // latest: it moves to the end and waits for new records.
    let mut consumer = consumer_past_the_end(&broker, Some(OffsetReset::Latest), &both[..1]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while consumer.position("oor", 0) != Some(10) {
        assert!(std::time::Instant::now() < deadline, "no reset to the end");
        assert!(consumer
            .poll(Duration::from_millis(100))
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_reconnects_after_a_broker_restart() {
    let mut broker = Broker::start();
    let admin = Admin::connect(ClientConfig::new(&broker.bootstrap()))
        .await
        .unwrap();
    admin
        .create_topic(&NewTopic::new("restart", 1))
        .await
        .unwrap();
    let producer = Producer::new(producer_config(&broker)).await.unwrap();
    for i in 0..100 {
        let v = format!("before-{i}");
        producer
            .send(ProducerRecord::new("restart", v.as_bytes()))
            .await
            .unwrap();
    }
    producer.flush().await;
    tokio::task::block_in_place(|| broker.restart());
    let mut last = None;
    for i in 0..100 {
        let v = format!("after-{i}");
        last = Some(
            producer
                .send(ProducerRecord::new("restart", v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    producer.close().await.unwrap();
    let m = last.unwrap().await.unwrap();
    assert_eq!(m.offset, 199);

    let consumer = Consumer::new(consumer_config(&broker)).await.unwrap();
    let records = consumer.read_range("restart", 0, 0, 200).await.unwrap();
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..100)
        .map(|i| format!("before-{i}"))
        .chain((0..100).map(|i| format!("after-{i}")))
        .collect();
    assert_eq!(values, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_described_and_altered() {
    let broker = Broker::start();
    let admin = Admin::connect(ClientConfig::new(&broker.bootstrap()))
        .await
        .unwrap();
    let mut topic = NewTopic::new("configured", 1);
    topic
        .configs
        .push(("retention.ms".into(), "3600000".into()));
    admin.create_topic(&topic).await.unwrap();
    let configs = admin.topic_configs("configured").await.unwrap();
    assert!(
        configs.contains(&("retention.ms".into(), "3600000".into())),
        "{configs:?}"
    );
    admin
        .alter_topic_configs("configured", &[("retention.ms".into(), "7200000".into())])
        .await
        .unwrap();
    let configs = admin.topic_configs("configured").await.unwrap();
    assert!(
        configs.contains(&("retention.ms".into(), "7200000".into())),
        "{configs:?}"
    );
    let e = admin
        .alter_topic_configs("configured", &[("retention.ms".into(), "soon".into())])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("INVALID_CONFIG"), "{e}");
    admin.delete_topic("configured").await.unwrap();
    let e = admin.describe_topic("configured").await.unwrap_err();
    assert!(e.to_string().contains("unknown topic configured"), "{e}");
}
