//! Whole-cluster crash: three `sluiced` processes take idempotent `acks=all` writes, then all
//! three are SIGKILLed at once and started again on the same data dirs. Every acknowledged record
//! is still there at its offset, exactly once, the metadata (topic, replicas) survived in the
//! metadata Raft log, and the restarted cluster takes new writes.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_client::{Acks, Admin, ClientConfig, NewTopic, Producer, ProducerConfig};
use sluice_client::{Consumer, ConsumerConfig, ProducerRecord};
use sluice_tests::{wait_partition, Cluster};

const TOPIC: &str = "payments";
const DEADLINE: Duration = Duration::from_secs(30);
const RECORDS: u64 = 2_000;

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(1);
    c.retry_backoff = Duration::from_millis(50);
    c
}

async fn produce(bootstrap: &str, from: u64, to: u64) -> BTreeMap<u64, (i32, i64)> {
    let mut config = ProducerConfig::new(bootstrap);
    config.client = client_config(bootstrap);
    config.acks = Acks::All;
    config.idempotence = true;
    config.delivery_timeout = Duration::from_secs(60);
    let producer = Producer::new(config).await.expect("producer");
    let mut deliveries = Vec::new();
    for i in from..to {
        let value = format!("p{i}");
        let key = format!("k{}", i % 17);
        let delivery = producer
            .send(ProducerRecord::new(TOPIC, value.as_bytes()).with_key(key.as_bytes()))
            .await
            .expect("send");
        deliveries.push((i, delivery));
    }
    let mut acked = BTreeMap::new();
    for (i, delivery) in deliveries {
        let meta = delivery.await.expect("acks=all delivery");
        acked.insert(i, (meta.partition, meta.offset));
    }
    producer.close().await.expect("close");
    acked
}

/// Reads every partition up to `until` (exclusive), waiting for the high watermark to get there.
async fn read_all(bootstrap: &str, until: &BTreeMap<i32, i64>) -> BTreeMap<(i32, i64), Vec<u8>> {
    let mut config = ConsumerConfig::new(bootstrap);
    config.client = client_config(bootstrap);
    let consumer = Consumer::new(config).await.expect("consumer");
    let mut out = BTreeMap::new();
    for (&p, &end) in until {
        let records = consumer
            .read_range(TOPIC, p, 0, end)
            .await
            .expect("read partition");
        for r in records {
            out.insert(
                (p, r.offset),
                r.value.map(|v| v.to_vec()).unwrap_or_default(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_cluster_crash_keeps_every_acknowledged_record() {
    let mut cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let admin = Admin::connect(client_config(&bootstrap))
        .await
        .expect("admin");
    let mut topic = NewTopic::new(TOPIC, 3);
    topic.replication_factor = 3;
    admin.create_topic(&topic).await.expect("create topic");
    let all = cluster.running_addrs();
    for p in 0..3 {
        wait_partition(&all, TOPIC, p, DEADLINE, "a leader and a full ISR", |v| {
            v.leader > 0 && v.isr.len() == 3
        })
        .await;
    }
    let acked = produce(&bootstrap, 0, RECORDS).await;

    tokio::task::block_in_place(|| {
        cluster.kill_all();
        for id in cluster.ids() {
            cluster.node_mut(id).restart();
        }
    });
    let all = cluster.running_addrs();
    for p in 0..3 {
        wait_partition(
            &all,
            TOPIC,
            p,
            DEADLINE,
            "a leader after the restart",
            |v| v.leader > 0,
        )
        .await;
    }
    let mut until: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in acked.values() {
        let end = until.entry(*partition).or_default();
        *end = (*end).max(offset + 1);
    }
    let log = read_all(&bootstrap, &until).await;
    for (i, (partition, offset)) in &acked {
        assert_eq!(
            log.get(&(*partition, *offset)).map(Vec::as_slice),
            Some(format!("p{i}").as_bytes()),
            "acknowledged p{i} is not at {partition}/{offset} after the restart"
        );
    }
    assert_eq!(
        log.len(),
        acked.len(),
        "the log holds records nobody acknowledged"
    );

    // The restarted cluster takes writes again, after the ones it kept.
    let more = produce(&bootstrap, RECORDS, RECORDS + 100).await;
    for (partition, offset) in more.values() {
        assert!(
            !log.contains_key(&(*partition, *offset)),
            "a new write reused offset {partition}/{offset}"
        );
    }
}
