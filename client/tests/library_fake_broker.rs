//! The client library end to end against an in-process fake broker (`support/fake_broker.rs`):
//! produce, consume, ranges, seeks, idempotent retries, compression and errors.

mod support;

use std::time::Duration;

use sluice_client::partitioner::partition_for_key;
use sluice_client::{
    Acks, Admin, ClientConfig, ClientError, CompressionType, ConsumeError, Consumer,
    ConsumerConfig, NewTopic, ProduceError, Producer, ProducerConfig, ProducerRecord, SeekTo,
};
use support::fake_broker::FakeBroker;

fn producer_config(addr: &str) -> ProducerConfig {
    let mut c = ProducerConfig::new(addr);
    c.linger = Duration::from_millis(2);
    c.batch_size = 16 * 1024;
    c.client.retry_backoff = Duration::from_millis(5);
    c
}

fn consumer_config(addr: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(addr);
    c.fetch_max_wait = Duration::from_millis(20);
    c.max_partition_fetch_bytes = 4096;
    c
}

/// Polls until `n` records arrived or the deadline passed.
async fn poll_n(consumer: &mut Consumer, n: usize) -> Vec<sluice_client::ConsumerRecord> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && std::time::Instant::now() < deadline {
        out.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

#[tokio::test]
async fn keyed_records_land_by_murmur2_and_read_back_identically() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 4);
    let producer = Producer::new(producer_config(&broker.addr)).await.unwrap();
    let mut deliveries = Vec::new();
    let headers = [("source", Some(&b"test"[..])), ("empty", None)];
    for i in 0..500 {
        let key = format!("key-{}", i % 37);
        let value = format!("value\t{i} ünïcode");
        let record = ProducerRecord::new("t", value.as_bytes())
            .with_key(key.as_bytes())
            .with_headers(&headers);
        let delivery = producer.send(record).await.unwrap();
        deliveries.push((key, value, delivery));
    }
    producer.flush().await;
    let mut expected = Vec::new();
    for (key, value, d) in deliveries {
        let m = d.await.unwrap();
        assert_eq!(m.partition, partition_for_key(key.as_bytes(), 4));
        expected.push((m.partition, m.offset, key, value));
    }
    producer.close().await.unwrap();

    let mut consumer = Consumer::new(consumer_config(&broker.addr)).await.unwrap();
    let parts: Vec<(String, i32)> = (0..4).map(|p| ("t".to_string(), p)).collect();
    consumer.assign(&parts).await.unwrap();
    for p in 0..4 {
        consumer.seek("t", p, SeekTo::Beginning).await.unwrap();
    }
    let records = poll_n(&mut consumer, 500).await;
    assert_eq!(records.len(), 500);
    let mut got: Vec<(i32, i64, String, String)> = records
        .iter()
        .map(|r| {
            assert_eq!(r.headers.len(), 2);
            assert_eq!(r.headers[0].key, "source");
            assert_eq!(r.headers[0].value.as_deref(), Some(&b"test"[..]));
            assert_eq!(r.headers[1].value, None);
            (
                r.partition,
                r.offset,
                String::from_utf8(r.key.as_ref().unwrap().to_vec()).unwrap(),
                String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap(),
            )
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert!(consumer.at_end());
    assert_eq!(consumer.lag("t", 0), Some(0));
}

#[tokio::test]
async fn lost_acknowledgements_are_retried_without_duplicates_or_reordering() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 1);
    broker.state.lock().unwrap().fail_produce_after_append = 3;
    let producer = Producer::new(producer_config(&broker.addr)).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let v = format!("{i:05}");
        deliveries.push(
            producer
                .send(ProducerRecord::new("t", v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    producer.close().await.unwrap();
    for (i, d) in deliveries.into_iter().enumerate() {
        assert_eq!(d.await.unwrap().offset, i as i64);
    }
    assert_eq!(broker.end_offset("t", 0), 300, "no duplicates");
    assert!(broker.state.lock().unwrap().produce_requests > 3);

    let consumer = Consumer::new(consumer_config(&broker.addr)).await.unwrap();
    let records = consumer.read_range("t", 0, 0, 300).await.unwrap();
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..300).map(|i| format!("{i:05}")).collect();
    assert_eq!(values, want, "in order");
}

/// Many small batches pipelined five deep per partition on a multi-threaded runtime: they must
/// reach the broker in sequence order (a task per request would let them overtake each other,
/// and the broker would refuse the early arrivals as OUT_OF_ORDER_SEQUENCE_NUMBER).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_batches_reach_the_broker_in_sequence_order() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 2);
    let mut config = producer_config(&broker.addr);
    config.linger = Duration::ZERO;
    config.batch_size = 512;
    let producer = Producer::new(config).await.unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20_000 {
        let v = format!("{i:06}");
        let record = ProducerRecord::new("t", v.as_bytes()).with_partition(i % 2);
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.close().await.unwrap();
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = d.await.unwrap();
        assert_eq!(
            (m.partition, m.offset),
            ((i % 2) as i32, i as i64 / 2),
            "record {i}, {} refused",
            broker.state.lock().unwrap().out_of_order
        );
    }
    let state = broker.state.lock().unwrap();
    assert_eq!(state.out_of_order, 0, "batches overtook each other");
    assert!(state.produce_requests > 100, "the test needs many requests");
}

#[tokio::test]
async fn read_range_returns_exactly_the_range() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 2);
    let producer = Producer::new(producer_config(&broker.addr)).await.unwrap();
    for i in 0..1000 {
        let v = i.to_string();
        producer
            .send(ProducerRecord::new("t", v.as_bytes()).with_partition(1))
            .await
            .unwrap();
    }
    producer.close().await.unwrap();
    let consumer = Consumer::new(consumer_config(&broker.addr)).await.unwrap();
    let r = consumer.read_range("t", 1, 123, 789).await.unwrap();
    assert_eq!(r.len(), 789 - 123);
    assert!(r
        .iter()
        .enumerate()
        .all(|(i, rec)| rec.offset == 123 + i as i64));
    assert_eq!(&r[0].value.as_ref().unwrap()[..], b"123");
    assert!(consumer.read_range("t", 1, 5, 5).await.unwrap().is_empty());
    let e = consumer.read_range("t", 1, 2000, 2001).await.unwrap_err();
    assert!(matches!(e, ConsumeError::OffsetOutOfRange { .. }), "{e}");
}

#[tokio::test]
async fn seeks_move_the_position() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 1);
    let producer = Producer::new(producer_config(&broker.addr)).await.unwrap();
    for i in 0..50i64 {
        let v = i.to_string();
        let r = ProducerRecord::new("t", v.as_bytes()).with_timestamp(1_000_000 + i);
        producer.send(r).await.unwrap();
        producer.flush().await; // one batch per record, so timestamps resolve to exact offsets
    }
    producer.close().await.unwrap();
    let mut consumer = Consumer::new(consumer_config(&broker.addr)).await.unwrap();
    consumer.assign(&[("t".to_string(), 0)]).await.unwrap();

    consumer.seek("t", 0, SeekTo::End).await.unwrap();
    assert_eq!(consumer.position("t", 0), Some(50));
    assert!(consumer.at_end());

    consumer.seek("t", 0, SeekTo::BeforeEnd(5)).await.unwrap();
    let r = poll_n(&mut consumer, 5).await;
    assert_eq!(
        r.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![45, 46, 47, 48, 49]
    );

    consumer
        .seek("t", 0, SeekTo::Timestamp(1_000_020))
        .await
        .unwrap();
    assert_eq!(consumer.position("t", 0), Some(20));
    consumer.seek("t", 0, SeekTo::Offset(48)).await.unwrap();
    let r = poll_n(&mut consumer, 2).await;
    assert_eq!(r[0].offset, 48);
    assert_eq!(r[0].timestamp, 1_000_048);
}

#[tokio::test]
async fn lz4_and_acks_zero_round_trip() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 1);
    let mut config = producer_config(&broker.addr);
    config.compression = CompressionType::Lz4;
    config.acks = Acks::None;
    config.idempotence = false;
    let producer = Producer::new(config).await.unwrap();
    let value = vec![b'a'; 1000];
    let mut last = None;
    for _ in 0..200 {
        last = Some(
            producer
                .send(ProducerRecord::new("t", &value))
                .await
                .unwrap(),
        );
    }
    producer.close().await.unwrap();
    assert_eq!(
        last.unwrap().await.unwrap().offset,
        -1,
        "acks=0 has no offsets"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while broker.end_offset("t", 0) < 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let consumer = Consumer::new(consumer_config(&broker.addr)).await.unwrap();
    let r = consumer.read_range("t", 0, 0, 200).await.unwrap();
    assert_eq!(r.len(), 200);
    assert!(r.iter().all(|r| r.value.as_deref() == Some(&value[..])));
}

#[tokio::test]
async fn a_small_buffer_applies_backpressure_and_still_delivers_everything() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 3);
    let mut config = producer_config(&broker.addr);
    config.batch_size = 4096;
    config.buffer_memory = 8192;
    let producer = Producer::new(config).await.unwrap();
    let value = vec![b'b'; 500];
    for _ in 0..300 {
        producer
            .send(ProducerRecord::new("t", &value))
            .await
            .unwrap();
    }
    producer.close().await.unwrap();
    let total: i64 = (0..3).map(|p| broker.end_offset("t", p)).sum();
    assert_eq!(total, 300);
}

#[tokio::test]
async fn errors_are_typed_and_say_what_to_do() {
    let broker = FakeBroker::start().await;
    let producer = Producer::new(producer_config(&broker.addr)).await.unwrap();
    let e = producer
        .send(ProducerRecord::new("missing", b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProduceError::Client(ClientError::UnknownTopic(_))),
        "{e}"
    );
    assert!(e.to_string().contains("sluice topic create"), "{e}");

    let admin = Admin::connect(ClientConfig::new(&broker.addr))
        .await
        .unwrap();
    admin.create_topic(&NewTopic::new("made", 2)).await.unwrap();
    let e = admin
        .create_topic(&NewTopic::new("made", 2))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TOPIC_ALREADY_EXISTS"), "{e}");
    let e = producer
        .send(ProducerRecord::new("made", b"x").with_partition(7))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no partition 7"), "{e}");
    producer.close().await.unwrap();
    assert!(matches!(
        producer.send(ProducerRecord::new("made", b"x")).await,
        Err(ProduceError::Closed)
    ));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut c = ClientConfig::new(&dead);
    c.connect_timeout = Duration::from_secs(2);
    let e = Admin::connect(c).await.unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn flush_waits_for_earlier_records_only_even_while_others_keep_sending() {
    let broker = FakeBroker::start().await;
    broker.create_topic("t", 2);
    let mut config = producer_config(&broker.addr);
    config.linger = Duration::from_secs(3600); // only flush (or full batches) sends
    let producer = std::sync::Arc::new(Producer::new(config).await.unwrap());
    let early = producer
        .send(ProducerRecord::new("t", b"early"))
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, s) = (producer.clone(), stop.clone());
    let busy = tokio::spawn(async move {
        let mut n = 0u64;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            p.send(ProducerRecord::new("t", b"busy")).await.unwrap();
            n += 1;
            tokio::task::yield_now().await;
        }
        n
    });
    tokio::time::timeout(Duration::from_secs(10), producer.flush())
        .await
        .expect("flush returns although another task keeps sending");
    assert_eq!(early.try_result().unwrap().unwrap().offset, 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = busy.await.unwrap();
    producer.close().await.unwrap();
    let total: i64 = (0..2).map(|p| broker.end_offset("t", p)).sum();
    assert_eq!(total as u64, n + 1, "close delivers everything accepted");
}

#[tokio::test]
async fn polling_a_deleted_topic_is_an_error_not_a_silent_wait() {
    let broker = FakeBroker::start().await;
    broker.create_topic("gone", 1);
    let mut consumer = Consumer::new(consumer_config(&broker.addr)).await.unwrap();
    consumer.assign(&[("gone".to_string(), 0)]).await.unwrap();
    consumer.seek("gone", 0, SeekTo::Beginning).await.unwrap();
    let admin = Admin::connect(ClientConfig::new(&broker.addr))
        .await
        .unwrap();
    admin.delete_topic("gone").await.unwrap();
    consumer.client().invalidate("gone");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let e = loop {
        match consumer.poll(Duration::from_millis(100)).await {
            Err(e) => break e,
            Ok(_) => assert!(
                std::time::Instant::now() < deadline,
                "no error after deletion"
            ),
        }
    };
    assert!(e.to_string().contains("unknown topic gone"), "{e}");
}

#[tokio::test]
async fn partitions_added_to_a_topic_are_picked_up_by_a_running_producer() {
    let broker = FakeBroker::start().await;
    broker.create_topic("grows", 1);
    let mut config = producer_config(&broker.addr);
    config.client.metadata_max_age = Duration::from_millis(50);
    let producer = Producer::new(config).await.unwrap();
    let first = producer
        .send(ProducerRecord::new("grows", b"before").with_partition(0))
        .await
        .unwrap();
    first.wait().await.unwrap();
    broker.add_partitions("grows", 2);
    // Until the producer's count goes stale, partition 1 is unknown to it: a typed error that
    // says so. Then it reads the count again and the record goes through.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match producer
            .send(ProducerRecord::new("grows", b"after").with_partition(1))
            .await
        {
            Ok(delivery) => {
                let meta = delivery.wait().await.unwrap();
                assert_eq!((meta.partition, meta.offset), (1, 0));
                break;
            }
            Err(ProduceError::Client(ClientError::UnknownPartition { partition: 1, .. })) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the new partition was never picked up"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    // Keyed records follow the new count too, once it is read again where a batch opens.
    broker.add_partitions("grows", 3);
    let key = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| {
            partition_for_key(k.as_bytes(), 3) == 2 && partition_for_key(k.as_bytes(), 2) != 2
        })
        .expect("a key for partition 2 of 3");
    let mut before_the_move = 0;
    loop {
        let delivery = producer
            .send(ProducerRecord::new("grows", b"keyed").with_key(key.as_bytes()))
            .await
            .unwrap();
        let landed = delivery.wait().await.unwrap().partition;
        if landed == 2 {
            break;
        }
        assert_eq!(
            landed,
            partition_for_key(key.as_bytes(), 2),
            "by the old count"
        );
        before_the_move += 1;
        assert!(
            std::time::Instant::now() < deadline + Duration::from_secs(10),
            "keyed records never moved to the new partition"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    producer.close().await.unwrap();
    let stored = broker.end_offset("grows", 0) + broker.end_offset("grows", 1);
    assert_eq!(stored, 2 + before_the_move);
    assert_eq!(broker.end_offset("grows", 2), 1);
}
