//! A rolling restart: each of three `sluiced` in turn gets SIGTERM (controlled shutdown: it hands
//! its leaderships to other in-sync replicas before closing its listener), exits cleanly and is
//! started again, while an idempotent `acks=all` producer writes to an RF=3 topic. No delivery
//! fails, every acknowledged record is in the log exactly once, and each node reports that it
//! handed every leadership over instead of leaving its partitions to be failed over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_client::{Acks, Admin, ClientConfig, NewTopic, Producer, ProducerConfig};
use sluice_client::{Consumer, ConsumerConfig, ProducerRecord};
use sluice_tests::{wait_partition, wait_until_async, Cluster};

const TOPIC: &str = "events";
const PARTITIONS: i32 = 3;
const DEADLINE: Duration = Duration::from_secs(30);
const PROGRESS: usize = 100;

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(1);
    c.retry_backoff = Duration::from_millis(50);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_hands_leadership_over_and_loses_nothing() {
    let mut cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let all = cluster.running_addrs();
    let admin = Admin::connect(client_config(&bootstrap))
        .await
        .expect("admin");
    let mut topic = NewTopic::new(TOPIC, PARTITIONS);
    topic.replication_factor = 3;
    admin.create_topic(&topic).await.expect("create topic");
    for p in 0..PARTITIONS {
        wait_partition(&all, TOPIC, p, DEADLINE, "a leader and a full ISR", |v| {
            v.leader > 0 && v.isr.len() == 3
        })
        .await;
    }

    let mut config = ProducerConfig::new(&bootstrap);
    config.client = client_config(&bootstrap);
    config.acks = Acks::All;
    config.idempotence = true;
    config.delivery_timeout = Duration::from_secs(60);
    // One batch in flight per partition. With several, a leader change can make the client
    // library resend an earlier batch (answered NOT_LEADER_OR_FOLLOWER by the resigning leader,
    // yet replicated) after later ones were accepted by the new leader; once it is older than the
    // broker's cache of recent batches it is answered OUT_OF_ORDER_SEQUENCE_NUMBER until the
    // delivery timeout. Kafka's producer never sends a later batch of a partition before an
    // earlier one is resolved; Sluice's client does not yet hold them back (reported).
    config.max_in_flight = 1;
    let producer = Arc::new(Producer::new(config).await.expect("producer"));
    let acked: Arc<Mutex<BTreeMap<u64, (i32, i64)>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (producer, acked, failed, stop) = (
            producer.clone(),
            acked.clone(),
            failed.clone(),
            stop.clone(),
        );
        async move {
            let inflight = Arc::new(tokio::sync::Semaphore::new(200));
            let mut tasks = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let permit = inflight.clone().acquire_owned().await.expect("permit");
                let value = format!("e{i}");
                let key = format!("k{}", i % 11);
                let delivery = producer
                    .send(ProducerRecord::new(TOPIC, value.as_bytes()).with_key(key.as_bytes()))
                    .await
                    .expect("send");
                let (acked, failed) = (acked.clone(), failed.clone());
                tasks.push(tokio::spawn(async move {
                    match delivery.await {
                        Ok(meta) => {
                            acked
                                .lock()
                                .expect("lock")
                                .insert(i, (meta.partition, meta.offset));
                        }
                        Err(e) => failed.lock().expect("lock").push(format!("e{i}: {e}")),
                    }
                    drop(permit);
                }));
                i += 1;
            }
            producer.flush().await;
            for t in tasks {
                t.await.expect("delivery task");
            }
        }
    });

    let acks = || acked.lock().expect("lock").len();
    for id in cluster.ids() {
        let before = acks();
        wait_until_async(DEADLINE, "acknowledgements", || async {
            acks() >= before + PROGRESS
        })
        .await;
        let status = tokio::task::block_in_place(|| cluster.node_mut(id).shutdown());
        assert!(status.success(), "node {id} exited with {status}");
        let log = cluster.node(id).log();
        assert!(
            log.contains("controlled shutdown: leaderships handed over"),
            "node {id} stopped without handing its leaderships over:\n{log}"
        );
        let before = acks();
        wait_until_async(DEADLINE, "acknowledgements with a node stopped", || async {
            acks() >= before + PROGRESS
        })
        .await;
        tokio::task::block_in_place(|| cluster.node_mut(id).restart());
        for p in 0..PARTITIONS {
            wait_partition(
                &all,
                TOPIC,
                p,
                DEADLINE,
                "the restarted node in the ISR",
                |v| v.leader > 0 && v.isr.len() == 3,
            )
            .await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let failed = failed.lock().expect("lock").clone();
    assert!(failed.is_empty(), "deliveries failed: {failed:?}");
    let acked = acked.lock().expect("lock").clone();

    let mut until: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, offset) in acked.values() {
        let end = until.entry(*p).or_default();
        *end = (*end).max(offset + 1);
    }
    let mut config = ConsumerConfig::new(&bootstrap);
    config.client = client_config(&bootstrap);
    let consumer = Consumer::new(config).await.expect("consumer");
    let mut log: BTreeMap<(i32, i64), Vec<u8>> = BTreeMap::new();
    for (&p, &end) in &until {
        for r in consumer.read_range(TOPIC, p, 0, end).await.expect("read") {
            log.insert(
                (p, r.offset),
                r.value.map(|v| v.to_vec()).unwrap_or_default(),
            );
        }
    }
    for (i, at) in &acked {
        assert_eq!(
            log.get(at).map(Vec::as_slice),
            Some(format!("e{i}").as_bytes()),
            "acknowledged e{i} is not at {at:?}"
        );
    }
    assert_eq!(
        log.len(),
        acked.len(),
        "records stored twice or never acknowledged"
    );
}
