//! Three real `sluiced` processes; an idempotent `acks=all` producer (Sluice's client library)
//! writes continuously and records every acknowledgement while a consumer reads along, and the
//! partition's leader is SIGKILLed, repeatedly, and restarted. Afterwards every acknowledged
//! record is in the log exactly once at its acknowledged offset, every record the consumer saw is
//! still there, and all three replicas hold byte-identical logs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_client::{Acks, Admin, ClientConfig, NewTopic, Producer, ProducerConfig};
use sluice_client::{Consumer, ConsumerConfig, ProducerRecord};
use sluice_tests::{partition_view, wait_partition, wait_until_async, Cluster};

const TOPIC: &str = "orders";
const DEADLINE: Duration = Duration::from_secs(30);
/// Leader kills per run: each is a failover, a restart and a catch-up.
const ROUNDS: usize = 3;
/// Acknowledgements to wait for between events, so every phase really produces.
const PROGRESS: usize = 100;

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(1);
    c.retry_backoff = Duration::from_millis(50);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_records_survive_repeated_leader_kills() {
    let mut cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let admin = Admin::connect(client_config(&bootstrap))
        .await
        .expect("admin");
    let mut topic = NewTopic::new(TOPIC, 1);
    topic.replication_factor = 3;
    admin.create_topic(&topic).await.expect("create topic");
    let all = cluster.running_addrs();
    wait_partition(&all, TOPIC, 0, DEADLINE, "a leader and a full ISR", |v| {
        v.leader > 0 && v.isr.len() == 3
    })
    .await;

    let mut config = ProducerConfig::new(&bootstrap);
    config.client = client_config(&bootstrap);
    config.acks = Acks::All;
    config.idempotence = true;
    config.linger = Duration::from_millis(2);
    config.delivery_timeout = Duration::from_secs(60);
    let producer = Arc::new(Producer::new(config).await.expect("producer"));
    // value index -> acknowledged offset
    let acked: Arc<Mutex<BTreeMap<u64, i64>>> = Arc::default();
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
                let value = format!("v{i}");
                let delivery = producer
                    .send(ProducerRecord::new(TOPIC, value.as_bytes()).with_partition(0))
                    .await
                    .expect("send");
                let (acked, failed) = (acked.clone(), failed.clone());
                tasks.push(tokio::spawn(async move {
                    match delivery.await {
                        Ok(meta) => {
                            acked.lock().expect("lock").insert(i, meta.offset);
                        }
                        Err(e) => failed.lock().expect("lock").push(format!("v{i}: {e}")),
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
    // offset -> value, everything a consumer was ever served
    let seen: Arc<Mutex<BTreeMap<i64, Vec<u8>>>> = Arc::default();
    let reader = tokio::spawn({
        let (seen, stop, bootstrap) = (seen.clone(), stop.clone(), bootstrap.clone());
        async move {
            let mut config = ConsumerConfig::new(&bootstrap);
            config.client = client_config(&bootstrap);
            config.fetch_max_wait = Duration::from_millis(100);
            let mut consumer = Consumer::new(config).await.expect("consumer");
            consumer
                .assign(&[(TOPIC.to_string(), 0)])
                .await
                .expect("assign");
            while !stop.load(Ordering::SeqCst) {
                // Errors while a leader is down are expected; the next poll retries.
                if let Ok(records) = consumer.poll(Duration::from_millis(200)).await {
                    let mut seen = seen.lock().expect("lock");
                    for r in records {
                        let value = r.value.map(|v| v.to_vec()).unwrap_or_default();
                        if let Some(before) = seen.insert(r.offset, value.clone()) {
                            assert_eq!(
                                before, value,
                                "offset {} was served twice, differently",
                                r.offset
                            );
                        }
                    }
                }
            }
        }
    });

    let acks = || acked.lock().expect("lock").len();
    for round in 0..ROUNDS {
        let before = acks();
        wait_until_async(DEADLINE, "acknowledgements before the kill", || async {
            acks() >= before + PROGRESS
        })
        .await;
        let leader = wait_partition(&all, TOPIC, 0, DEADLINE, "a leader", |v| v.leader > 0)
            .await
            .leader;
        eprintln!(
            "round {round}: killing leader {leader} after {} acks",
            acks()
        );
        tokio::task::block_in_place(|| cluster.node_mut(leader).kill9());
        let before = acks();
        wait_until_async(DEADLINE, "acknowledgements after failover", || async {
            acks() >= before + PROGRESS
        })
        .await;
        let view = partition_view(&cluster.running_addrs(), TOPIC, 0).await;
        eprintln!("round {round}: failed over to {view:?}");
        tokio::task::block_in_place(|| cluster.node_mut(leader).restart());
        wait_partition(
            &all,
            TOPIC,
            0,
            DEADLINE,
            "the restarted node back in the ISR",
            |v| v.isr.len() == 3,
        )
        .await;
    }
    let before = acks();
    wait_until_async(DEADLINE, "acknowledgements with the full ISR", || async {
        acks() >= before + PROGRESS
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    reader.await.expect("reader");
    let failed = failed.lock().expect("lock").clone();
    assert!(failed.is_empty(), "deliveries failed: {failed:?}");
    let acked = acked.lock().expect("lock").clone();

    // The final log, as a consumer reads it.
    let high_watermark = acked.values().max().copied().expect("acks") + 1;
    let mut config = ConsumerConfig::new(&bootstrap);
    config.client = client_config(&bootstrap);
    let consumer = Consumer::new(config).await.expect("consumer");
    let records = consumer
        .read_range(TOPIC, 0, 0, high_watermark)
        .await
        .expect("read the log");
    let log: BTreeMap<i64, Vec<u8>> = records
        .into_iter()
        .map(|r| (r.offset, r.value.map(|v| v.to_vec()).unwrap_or_default()))
        .collect();
    let mut copies: BTreeMap<&[u8], usize> = BTreeMap::new();
    for value in log.values() {
        *copies.entry(value.as_slice()).or_default() += 1;
    }
    for (i, offset) in &acked {
        let value = format!("v{i}");
        assert_eq!(
            log.get(offset).map(Vec::as_slice),
            Some(value.as_bytes()),
            "acknowledged {value} is not at its offset {offset}"
        );
        assert_eq!(
            copies.get(value.as_bytes()),
            Some(&1),
            "{value} is not stored exactly once"
        );
    }
    let seen = seen.lock().expect("lock").clone();
    for (offset, value) in &seen {
        if *offset < high_watermark {
            assert_eq!(
                log.get(offset),
                Some(value),
                "a consumer read offset {offset}, now gone"
            );
        }
    }
    eprintln!(
        "{} acknowledged, {} in the log, {} seen by the consumer",
        acked.len(),
        log.len(),
        seen.len()
    );

    // Every replica holds the same committed log, byte for byte.
    tokio::task::block_in_place(|| cluster.kill_all());
    let replicas: Vec<Vec<(i64, Vec<u8>)>> = cluster
        .ids()
        .iter()
        .map(|&id| cluster.stored_batches(id, TOPIC, 0))
        .collect();
    let end_of = |batches: &[(i64, Vec<u8>)]| -> i64 {
        batches
            .iter()
            .filter(|(base, _)| *base < high_watermark)
            .count() as i64
    };
    let first = &replicas[0];
    for (i, other) in replicas.iter().enumerate().skip(1) {
        let n = end_of(first).min(end_of(other)) as usize;
        assert_eq!(
            end_of(first),
            end_of(other),
            "replica {} holds another committed prefix",
            i + 1
        );
        assert_eq!(
            &first[..n],
            &other[..n],
            "replica {} diverges from replica 1",
            i + 1
        );
    }
}
