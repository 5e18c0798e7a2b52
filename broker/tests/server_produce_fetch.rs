//! Produce and Fetch through an in-process broker: byte-identical batches back, long-poll woken
//! by an append, OFFSET_OUT_OF_RANGE, MESSAGE_TOO_LARGE, corrupt batches refused, idempotent
//! producer duplicates and gaps, ListOffsets, and data surviving a clean restart.

mod server_support;

use bytes::Bytes;
use server_support::*;
use sluice_protocol::record::{BatchIter, BatchOptions};
use sluice_protocol::wire::messages::init_producer_id::InitProducerIdRequest;
use sluice_protocol::wire::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use sluice_protocol::wire::{ApiKey, ErrorCode, Request, Response};

async fn fetch(conn: &mut Conn, topic: &str, offset: i64, wait_ms: i32) -> (i16, i64, Vec<Bytes>) {
    let Response::Fetch(response) = conn
        .call(11, fetch_request(topic, 0, offset, wait_ms, 1))
        .await
    else {
        panic!("not a Fetch response")
    };
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.high_watermark, p.records.chunks().to_vec())
}

fn concat(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.to_vec()).collect()
}

#[tokio::test]
async fn fetched_batches_are_the_produced_bytes() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "t", 1, &[]).await;
    let first = batch(10, BatchOptions::default(), 100);
    let second = batch(5, BatchOptions::default(), 3000);
    assert_eq!(produce(&mut conn, "t", 0, -1, first.clone()).await, (0, 0));
    assert_eq!(produce(&mut conn, "t", 0, 1, second.clone()).await, (0, 10));
    let (code, hw, chunks) = fetch(&mut conn, "t", 0, 0).await;
    assert_eq!((code, hw), (0, 15));
    let served = concat(&chunks);
    let mut batches = BatchIter::new(Bytes::from(served));
    let a = batches.next().expect("first").expect("valid");
    let b = batches.next().expect("second").expect("valid");
    // Identical but for the stamped base offset and leader epoch (bytes 0..8, 12..16).
    assert_eq!(a.as_bytes()[16..], first[16..]);
    assert_eq!(a.base_offset(), 0);
    assert_eq!(b.as_bytes()[16..], second[16..]);
    assert_eq!(b.base_offset(), 10);
    // A fetch from inside the second batch returns that whole batch.
    let (_, _, chunks) = fetch(&mut conn, "t", 12, 0).await;
    let mut batches = BatchIter::new(Bytes::from(concat(&chunks)));
    assert_eq!(
        batches.next().expect("batch").expect("valid").base_offset(),
        10
    );
    broker.stop().await;
}

#[tokio::test]
async fn long_poll_wakes_on_append() {
    let broker = TestBroker::start().await;
    let mut consumer = broker.connect().await;
    let mut producer = broker.connect().await;
    create_topic(&mut producer, "poll", 1, &[]).await;
    // Waits up to 30 s (the cap) at the end of the log...
    let sent = consumer
        .send(11, &fetch_request("poll", 0, 0, 30_000, 1))
        .await;
    produce(
        &mut producer,
        "poll",
        0,
        1,
        batch(1, BatchOptions::default(), 0),
    )
    .await;
    // ...but the append wakes it: the answer (with the record) is well within the deadline.
    let (got, response) = consumer.recv(ApiKey::Fetch, 11).await;
    assert_eq!(got, sent);
    let Response::Fetch(response) = response else {
        panic!("fetch")
    };
    assert!(!response.responses[0].partitions[0].records.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn out_of_range_and_unknown_partitions_are_errors() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "r", 1, &[]).await;
    produce(&mut conn, "r", 0, 1, batch(2, BatchOptions::default(), 0)).await;
    let (code, hw, _) = fetch(&mut conn, "r", 3, 0).await;
    assert_eq!((code, hw), (ErrorCode::OFFSET_OUT_OF_RANGE.as_i16(), 2));
    let (code, _, chunks) = fetch(&mut conn, "r", 2, 0).await;
    assert_eq!(code, 0);
    assert!(chunks.is_empty());
    let (code, _, _) = fetch(&mut conn, "nope", 0, 0).await;
    assert_eq!(code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.as_i16());
    let (code, _) = produce(
        &mut conn,
        "nope",
        0,
        1,
        batch(1, BatchOptions::default(), 0),
    )
    .await;
    assert_eq!(code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.as_i16());
    broker.stop().await;
}

#[tokio::test]
async fn bad_batches_are_refused_and_nothing_is_appended() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "v", 1, &[("max.message.bytes", "2000")]).await;
    let (code, _) = produce(
        &mut conn,
        "v",
        0,
        1,
        batch(10, BatchOptions::default(), 500),
    )
    .await;
    assert_eq!(code, ErrorCode::MESSAGE_TOO_LARGE.as_i16());
    let mut corrupt = batch(2, BatchOptions::default(), 0).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let (code, _) = produce(&mut conn, "v", 0, 1, Bytes::from(corrupt)).await;
    assert_eq!(code, ErrorCode::CORRUPT_MESSAGE.as_i16());
    let good = batch(2, BatchOptions::default(), 0);
    let truncated = good.slice(..good.len() - 5);
    let (code, _) = produce(&mut conn, "v", 0, 1, truncated).await;
    assert_eq!(code, ErrorCode::CORRUPT_MESSAGE.as_i16());
    let (code, _) = produce(&mut conn, "v", 0, 1, Bytes::new()).await;
    assert_eq!(code, ErrorCode::CORRUPT_MESSAGE.as_i16());
    let Response::Produce(response) = conn.call(7, produce_request("v", 0, 2, good.clone())).await
    else {
        panic!("produce")
    };
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ErrorCode::INVALID_REQUIRED_ACKS.as_i16()
    );
    // Nothing above was appended: the good batch lands at offset 0.
    assert_eq!(produce(&mut conn, "v", 0, 1, good).await, (0, 0));
    broker.stop().await;
}

#[tokio::test]
async fn idempotent_retries_are_deduplicated_and_gaps_refused() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "idem", 1, &[]).await;
    let Response::InitProducerId(init) = conn
        .call(
            1,
            Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
            }),
        )
        .await
    else {
        panic!("init")
    };
    assert_eq!(init.error_code, 0);
    let options = |seq| BatchOptions {
        producer_id: init.producer_id,
        producer_epoch: init.producer_epoch,
        base_sequence: seq,
        ..Default::default()
    };
    let first = batch(3, options(0), 0);
    assert_eq!(
        produce(&mut conn, "idem", 0, -1, first.clone()).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut conn, "idem", 0, -1, batch(2, options(3), 0)).await,
        (0, 3)
    );
    // The retry of the first batch is acknowledged with its original offset, not appended again.
    assert_eq!(produce(&mut conn, "idem", 0, -1, first).await, (0, 0));
    let (code, _) = produce(&mut conn, "idem", 0, -1, batch(1, options(9), 0)).await;
    assert_eq!(code, ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.as_i16());
    let (_, hw, _) = fetch(&mut conn, "idem", 0, 0).await;
    assert_eq!(hw, 5);
    broker.stop().await;
}

#[tokio::test]
async fn list_offsets_and_restart_keep_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "keep", 2, &[("retention.ms", "-1")]).await;
    for _ in 0..3 {
        produce(
            &mut conn,
            "keep",
            1,
            -1,
            batch(4, BatchOptions::default(), 10),
        )
        .await;
    }
    broker.stop().await;

    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut conn = broker.connect().await;
    let list = |timestamp| {
        Request::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: "keep".to_string(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 1,
                    current_leader_epoch: -1,
                    timestamp,
                }],
            }],
        })
    };
    for (timestamp, expected) in [(-2, 0), (-1, 12), (0, 0), (now_ms() + 3_600_000, -1)] {
        let Response::ListOffsets(response) = conn.call(5, list(timestamp)).await else {
            panic!("list offsets")
        };
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset),
            (0, expected),
            "timestamp {timestamp}"
        );
    }
    // Partition 0 stayed empty.
    let (code, hw, chunks) = fetch(&mut conn, "keep", 0, 0).await;
    assert_eq!((code, hw), (0, 0));
    assert!(chunks.is_empty());
    let Response::Fetch(response) = conn.call(11, fetch_request("keep", 1, 0, 0, 1)).await else {
        panic!("fetch")
    };
    assert_eq!(response.responses[0].partitions[0].high_watermark, 12);
    broker.stop().await;
}

#[tokio::test]
async fn fetch_budget_lets_the_first_batch_through_and_respects_the_rest() {
    use sluice_protocol::wire::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "budget", 2, &[]).await;
    let big = batch(4, BatchOptions::default(), 4000); // ~16 KB
    produce(&mut conn, "budget", 0, 1, big.clone()).await;
    produce(&mut conn, "budget", 1, 1, big.clone()).await;
    let partition = |index| FetchPartition {
        partition: index,
        current_leader_epoch: -1,
        fetch_offset: 0,
        log_start_offset: -1,
        partition_max_bytes: 1024,
    };
    let request = Request::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 2048,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: "budget".to_string(),
            partitions: vec![partition(0), partition(1)],
        }],
        forgotten_topics_data: Vec::new(),
        rack_id: String::new(),
    });
    let Response::Fetch(response) = conn.call(11, request).await else {
        panic!("fetch")
    };
    let partitions = &response.responses[0].partitions;
    // KIP-74: the first batch comes whole although it exceeds both limits, so the consumer
    // progresses; the second partition gets nothing once the budget is spent.
    assert_eq!(partitions[0].records.len(), big.len());
    assert!(partitions[1].records.is_empty());
    assert_eq!(partitions[1].high_watermark, 4);
    broker.stop().await;
}

#[tokio::test]
async fn fetch_returns_what_it_has_when_min_bytes_is_not_reached_by_max_wait() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "min", 1, &[]).await;
    let small = batch(1, BatchOptions::default(), 0);
    produce(&mut conn, "min", 0, 1, small.clone()).await;
    let Response::Fetch(response) = conn
        .call(11, fetch_request("min", 0, 0, 300, 1_000_000))
        .await
    else {
        panic!("fetch")
    };
    assert_eq!(
        response.responses[0].partitions[0].records.len(),
        small.len()
    );
    broker.stop().await;
}

#[tokio::test]
async fn timestamps_follow_the_topic_timestamp_type() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(
        &mut conn,
        "appended",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    create_topic(
        &mut conn,
        "strict",
        1,
        &[("message.timestamp.difference.max.ms", "60000")],
    )
    .await;

    let before = now_ms();
    let Response::Produce(response) = conn
        .call(
            7,
            produce_request("appended", 0, 1, batch(2, BatchOptions::default(), 0)),
        )
        .await
    else {
        panic!("produce")
    };
    let stamped = response.responses[0].partition_responses[0].log_append_time_ms;
    assert!(stamped >= before, "LogAppendTime {stamped} reported");
    let (_, _, chunks) = fetch(&mut conn, "appended", 0, 0).await;
    let mut batches = BatchIter::new(Bytes::from(concat(&chunks)));
    let served = batches
        .next()
        .expect("batch")
        .expect("valid CRC after stamping");
    assert_eq!(served.header().max_timestamp, stamped);

    // CreateTime topics refuse timestamps too far from the broker clock.
    let mut builder = sluice_protocol::record::RecordBatchBuilder::new(BatchOptions::default());
    builder
        .append(now_ms() - 3_600_000, None, Some(b"old"), &[])
        .expect("append");
    let old = builder.finish().expect("finish");
    let (code, _) = produce(&mut conn, "strict", 0, 1, old).await;
    assert_eq!(code, ErrorCode::INVALID_TIMESTAMP.as_i16());
    assert_eq!(
        produce(
            &mut conn,
            "strict",
            0,
            1,
            batch(1, BatchOptions::default(), 0)
        )
        .await,
        (0, 0)
    );
    broker.stop().await;
}

#[tokio::test]
async fn delete_records_moves_the_log_start() {
    use sluice_protocol::wire::messages::delete_records::{
        DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
    };
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "trim", 1, &[]).await;
    for _ in 0..5 {
        produce(
            &mut conn,
            "trim",
            0,
            1,
            batch(2, BatchOptions::default(), 0),
        )
        .await;
    }
    let delete = |offset| {
        Request::DeleteRecords(DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: "trim".to_string(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: 0,
                    offset,
                }],
            }],
            timeout_ms: 10_000,
        })
    };
    let Response::DeleteRecords(response) = conn.call(1, delete(99)).await else {
        panic!()
    };
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, ErrorCode::OFFSET_OUT_OF_RANGE.as_i16());
    let Response::DeleteRecords(response) = conn.call(1, delete(4)).await else {
        panic!()
    };
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 4));
    let (code, _, _) = fetch(&mut conn, "trim", 2, 0).await;
    assert_eq!(code, ErrorCode::OFFSET_OUT_OF_RANGE.as_i16());
    let (code, hw, chunks) = fetch(&mut conn, "trim", 4, 0).await;
    assert_eq!((code, hw), (0, 10));
    assert!(!chunks.is_empty());
    broker.stop().await;
}
