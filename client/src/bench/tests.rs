//! End-to-end checks of the bench against the client's in-process fake broker (real TCP on
//! 127.0.0.1): every record sent is counted exactly once on each side, and failures are counted,
//! not hidden. Figures are not asserted: this checks the bookkeeping, not the speed.

#[path = "../../tests/support/fake_broker.rs"]
mod fake_broker;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fake_broker::FakeBroker;

use super::*;

fn settings(broker: &FakeBroker, workload: Workload, topic: &str) -> Settings {
    let mut s = Settings::new(workload, &broker.addr);
    s.topic = topic.to_string();
    s.partitions = 2;
    s.producers = 2;
    s.consumers = 2;
    s.message_size = 100;
    s.batch_size = 50;
    s.warmup = Duration::ZERO;
    s.stop = Stop::Count(1_030);
    s.request_timeout = Duration::from_secs(10);
    s
}

#[tokio::test]
async fn raw_produce_then_consume_counts_every_record_once() {
    let broker = FakeBroker::start().await;
    let live = Arc::new(Live::default());
    let report = run(settings(&broker, Workload::Produce, "t"), live.clone())
        .await
        .unwrap();
    let p = report.produce.as_ref().unwrap();
    assert_eq!(p.records, 1_030);
    assert_eq!(p.bytes, 103_000);
    assert!(
        p.wire_bytes > p.bytes,
        "batch framing is counted on the wire"
    );
    assert_eq!(
        p.batches, 22,
        "each producer sends 515 records: 10 full batches and one of 15"
    );
    assert_eq!(p.latency.unwrap().count, 22);
    assert!(!report.has_failures(), "{}", report.table());
    assert_eq!(broker.end_offset("t", 0) + broker.end_offset("t", 1), 1_030);
    assert_eq!(live.produced.load(Ordering::Relaxed), 1_030);

    let mut c = settings(&broker, Workload::Consume, "t");
    c.stop = Stop::AtEnd;
    let report = run(c, Arc::new(Live::default())).await.unwrap();
    let side = report.consume.as_ref().unwrap();
    assert_eq!((side.records, side.bytes), (1_030, 103_000));
    assert!(!report.has_failures(), "{}", report.table());
    let json = report.to_json();
    assert_eq!(json["settings"]["partitions"], 2);
    assert_eq!(json["consume"]["records"], 1_030);
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn e2e_measures_produce_to_consume_latency_for_every_record() {
    let broker = FakeBroker::start().await;
    for api in [Api::Raw, Api::Library] {
        let topic = format!("e2e-{}", api.name());
        let mut s = settings(&broker, Workload::E2e, &topic);
        s.api = api;
        let report = run(s, Arc::new(Live::default())).await.unwrap();
        let (p, c) = (
            report.produce.as_ref().unwrap(),
            report.consume.as_ref().unwrap(),
        );
        assert_eq!(p.records, 1_030, "{api:?}: {}", report.table());
        assert_eq!(c.records, 1_030, "{api:?}: {}", report.table());
        assert_eq!(report.e2e_latency.unwrap().count, 1_030);
        assert!(!report.has_failures(), "{}", report.table());
        let table = report.table();
        assert!(table.contains("produce to consume"), "{table}");
        assert!(table.contains("batch round trip"), "{table}");
    }
}

#[tokio::test]
async fn consume_with_a_count_stops_there_and_refuses_more_than_stored() {
    let broker = FakeBroker::start().await;
    run(
        settings(&broker, Workload::Produce, "c"),
        Arc::new(Live::default()),
    )
    .await
    .unwrap();
    let mut s = settings(&broker, Workload::Consume, "c");
    s.stop = Stop::Count(500);
    s.consumers = 1;
    let report = run(s.clone(), Arc::new(Live::default())).await.unwrap();
    let got = report.consume.unwrap().records;
    assert!((500..=1_030).contains(&got), "{got}");
    s.stop = Stop::Count(5_000);
    let e = run(s, Arc::new(Live::default())).await.unwrap_err();
    assert!(e.to_string().contains("holds only 1030"), "{e}");
}

#[tokio::test]
async fn a_missing_topic_is_created_for_produce_but_not_for_consume() {
    let broker = FakeBroker::start().await;
    let e = run(
        settings(&broker, Workload::Consume, "none"),
        Arc::new(Live::default()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, BenchError::NothingToConsume(_)), "{e}");
    let mut s = settings(&broker, Workload::Produce, "made");
    s.partitions = 3;
    s.stop = Stop::Duration(Duration::from_millis(200));
    let report = run(s, Arc::new(Live::default())).await.unwrap();
    assert_eq!(report.partitions, 3);
    let p = report.produce.unwrap();
    let stored: i64 = (0..3).map(|i| broker.end_offset("made", i)).sum();
    assert_eq!(p.records + p.warmup_records, stored as u64);
}

#[tokio::test]
async fn failed_produce_requests_are_counted_and_make_the_run_fail() {
    let broker = FakeBroker::start().await;
    broker.create_topic("f", 2);
    broker.state.lock().unwrap().fail_produce_after_append = 3;
    let mut s = settings(&broker, Workload::Produce, "f");
    s.producers = 1;
    s.in_flight = 1;
    let report = run(s, Arc::new(Live::default())).await.unwrap();
    let p = report.produce.as_ref().unwrap();
    assert_eq!(
        p.failed_records, 150,
        "3 batches of 50 answered NOT_LEADER_OR_FOLLOWER"
    );
    assert_eq!(p.failed_requests, 3);
    assert_eq!(p.records, 1_030 - 150);
    assert!(report.has_failures());
    let table = report.table();
    assert!(table.contains("NOT_LEADER_OR_FOLLOWER"), "{table}");
    assert!(
        table.contains("150 record(s) and 3 request(s) failed"),
        "{table}"
    );
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error_before_any_traffic() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut s = Settings::new(Workload::Produce, &addr);
    s.request_timeout = Duration::from_secs(2);
    let e = run(s, Arc::new(Live::default())).await.unwrap_err();
    assert!(matches!(e, BenchError::Client(_)), "{e}");
}
