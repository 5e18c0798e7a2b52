//! A network partition isolating a partition leader (which also started the metadata Raft).
//! Every broker-to-broker link goes through a fault-injecting proxy inside the test; cutting the
//! leader's links leaves it running and reachable by clients, but alone. It must not acknowledge
//! a single `acks=all` write; the majority elects a new leader that does; after healing, the old
//! leader truncates what it wrote alone, rejoins the ISR, and all replicas agree byte for byte.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_client::{Acks, Admin, ClientConfig, NewTopic, Producer, ProducerConfig};
use sluice_client::{Consumer, ConsumerConfig, ProducerRecord};
use sluice_tests::{wait_partition, Cluster};

const TOPIC: &str = "ledger";
const DEADLINE: Duration = Duration::from_secs(30);

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = Duration::from_secs(2);
    c.connect_timeout = Duration::from_secs(1);
    c.retry_backoff = Duration::from_millis(50);
    c
}

fn producer_config(bootstrap: &str, delivery_timeout: Duration) -> ProducerConfig {
    let mut config = ProducerConfig::new(bootstrap);
    config.client = client_config(bootstrap);
    config.acks = Acks::All;
    config.idempotence = true;
    config.delivery_timeout = delivery_timeout;
    config
}

/// Sends `values` to partition 0 and returns each one's outcome (offset, or the error).
async fn send_all(producer: &Producer, values: &[String]) -> Vec<Result<i64, String>> {
    let mut deliveries = Vec::new();
    for v in values {
        let d = producer
            .send(ProducerRecord::new(TOPIC, v.as_bytes()).with_partition(0))
            .await
            .expect("send");
        deliveries.push(d);
    }
    let mut out = Vec::new();
    for d in deliveries {
        out.push(d.await.map(|m| m.offset).map_err(|e| e.to_string()));
    }
    out
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_leader_cannot_acknowledge_and_rejoins_without_divergence() {
    let mut cluster = Cluster::builder().proxied().start();
    let bootstrap = cluster.bootstrap();
    let admin = Admin::connect(client_config(&bootstrap))
        .await
        .expect("admin");
    let mut topic = NewTopic::new(TOPIC, 1);
    topic.replication_factor = 3;
    admin.create_topic(&topic).await.expect("create topic");
    let all = cluster.running_addrs();
    let before = wait_partition(&all, TOPIC, 0, DEADLINE, "a leader and full ISR", |v| {
        v.leader > 0 && v.isr.len() == 3
    })
    .await;
    let isolated = before.leader;

    // Committed before the partition.
    let producer = Producer::new(producer_config(&bootstrap, Duration::from_secs(30)))
        .await
        .expect("producer");
    let first = values("a", 200);
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    for (v, r) in first.iter().zip(send_all(&producer, &first).await) {
        acked.insert(v.clone(), r.expect("acks=all before the partition"));
    }
    producer.close().await.expect("close");

    cluster.isolate(isolated);
    // A client that can only reach the isolated leader: it still believes it leads, appends, and
    // must not acknowledge (the followers never fetch, so the high watermark cannot move).
    let alone = cluster.node(isolated).bootstrap();
    let lonely = Producer::new(producer_config(&alone, Duration::from_secs(5)))
        .await
        .expect("producer on the isolated leader");
    let lost = values("x", 20);
    let lonely_outcomes = send_all(&lonely, &lost).await;
    for (v, r) in lost.iter().zip(&lonely_outcomes) {
        assert!(r.is_err(), "the isolated leader acknowledged {v} at {r:?}");
    }
    drop(lonely);

    // The majority side elects a new leader and takes acks=all writes.
    let majority: Vec<i32> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != isolated)
        .collect();
    let majority_bootstrap = cluster.bootstrap_of(&majority);
    let majority_addrs = cluster.addrs_of(&majority);
    let during = wait_partition(
        &majority_addrs,
        TOPIC,
        0,
        DEADLINE,
        "a new leader on the majority side",
        |v| v.leader > 0 && v.leader != isolated && !v.isr.contains(&isolated),
    )
    .await;
    assert!(during.leader_epoch > before.leader_epoch);
    let producer = Producer::new(producer_config(
        &majority_bootstrap,
        Duration::from_secs(30),
    ))
    .await
    .expect("producer");
    let second = values("b", 200);
    for (v, r) in second.iter().zip(send_all(&producer, &second).await) {
        acked.insert(v.clone(), r.expect("acks=all on the majority side"));
    }
    producer.close().await.expect("close");

    cluster.heal();
    wait_partition(
        &majority_addrs,
        TOPIC,
        0,
        DEADLINE,
        "the healed node back in the ISR",
        |v| v.isr.len() == 3,
    )
    .await;
    // One more committed write with the full ISR, so the healed node has fetched past the point
    // where its divergent tail was.
    let producer = Producer::new(producer_config(&bootstrap, Duration::from_secs(30)))
        .await
        .expect("producer");
    let third = values("c", 50);
    for (v, r) in third.iter().zip(send_all(&producer, &third).await) {
        acked.insert(v.clone(), r.expect("acks=all after healing"));
    }
    producer.close().await.expect("close");

    let end = acked.values().max().copied().expect("acks") + 1;
    let mut config = ConsumerConfig::new(&bootstrap);
    config.client = client_config(&bootstrap);
    let consumer = Consumer::new(config).await.expect("consumer");
    let log: BTreeMap<i64, Vec<u8>> = consumer
        .read_range(TOPIC, 0, 0, end)
        .await
        .expect("read")
        .into_iter()
        .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()))
        .collect();
    for (v, offset) in &acked {
        assert_eq!(
            log.get(offset).map(Vec::as_slice),
            Some(v.as_bytes()),
            "{v} lost"
        );
    }
    assert_eq!(
        log.len(),
        acked.len(),
        "the log holds unacknowledged records"
    );
    for v in &lost {
        assert!(
            !log.values().any(|stored| stored == v.as_bytes()),
            "{v}, written only to the isolated leader, became visible"
        );
    }

    tokio::task::block_in_place(|| cluster.kill_all());
    let replicas: Vec<Vec<(i64, Vec<u8>)>> = cluster
        .ids()
        .iter()
        .map(|&id| {
            cluster
                .stored_batches(id, TOPIC, 0)
                .into_iter()
                .filter(|(base, _)| *base < end)
                .collect()
        })
        .collect();
    for (i, other) in replicas.iter().enumerate().skip(1) {
        assert_eq!(
            &replicas[0],
            other,
            "replica {} diverges from replica 1",
            i + 1
        );
    }
}
