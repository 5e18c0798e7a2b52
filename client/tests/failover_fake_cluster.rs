//! Leader changes and broker loss, against a fake two-broker cluster sharing one log: the producer
//! and the consumer follow the leader through NOT_LEADER_OR_FOLLOWER and lost connections without
//! the caller noticing, and nothing is lost or duplicated.

mod support;

use std::time::Duration;

use sluice_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, SeekTo};
use support::fake_broker::FakeBroker;

fn producer_config(bootstrap: &str) -> ProducerConfig {
    let mut c = ProducerConfig::new(bootstrap);
    c.linger = Duration::from_millis(1);
    c.client.retry_backoff = Duration::from_millis(5);
    c.client.connect_timeout = Duration::from_secs(2);
    c.delivery_timeout = Duration::from_secs(20);
    c
}

async fn send_range(producer: &Producer, range: std::ops::Range<u32>) {
    let mut last = None;
    for i in range {
        let v = format!("{i:04}");
        last = Some(
            producer
                .send(ProducerRecord::new("t", v.as_bytes()))
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    last.unwrap().await.unwrap();
}

async fn poll_until(consumer: &mut Consumer, n: usize) -> Vec<sluice_client::ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while got.len() < n && std::time::Instant::now() < deadline {
        got.extend(consumer.poll(Duration::from_millis(100)).await.unwrap());
    }
    got
}

fn values(records: &[sluice_client::ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn producer_and_consumer_follow_the_leader() {
    let mut brokers = FakeBroker::cluster(2).await;
    brokers[0].create_topic("t", 1);
    let bootstrap = format!("{},{}", brokers[0].addr, brokers[1].addr);
    let producer = Producer::new(producer_config(&bootstrap)).await.unwrap();
    let mut cc = ConsumerConfig::new(&bootstrap);
    cc.fetch_max_wait = Duration::from_millis(10);
    cc.client.retry_backoff = Duration::from_millis(5);
    let mut consumer = Consumer::new(cc).await.unwrap();
    consumer.assign(&[("t".to_string(), 0)]).await.unwrap();
    consumer.seek("t", 0, SeekTo::Beginning).await.unwrap();

    send_range(&producer, 0..100).await;

    // Leadership moves to node 1: node 0 now answers NOT_LEADER_OR_FOLLOWER.
    brokers[0].set_leader("t", 0, 1);
    send_range(&producer, 100..200).await;
    let mut got = poll_until(&mut consumer, 200).await;
    assert_eq!(got.len(), 200);

    // Node 1 dies after leadership moves back to node 0: connections to it are lost.
    brokers[1].set_leader("t", 0, 0);
    let dead = brokers.pop().unwrap();
    drop(dead);
    send_range(&producer, 200..300).await;
    producer.close().await.unwrap();
    assert_eq!(brokers[0].end_offset("t", 0), 300, "no duplicates");

    got.extend(poll_until(&mut consumer, 100).await);
    let want: Vec<String> = (0..300).map(|i| format!("{i:04}")).collect();
    assert_eq!(values(&got), want, "every record once, in order");
}
