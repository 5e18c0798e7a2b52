//! Real Kafka clients against a three-node cluster: `kcat -L` sees every broker, and an
//! `acks=all` idempotent librdkafka producer (confluent-kafka, `tests/python/acked_producer.py`)
//! keeps writing while the leader of a partition is SIGKILLed and restarted, twice. Afterwards
//! kcat reads back every acknowledged record exactly once at its acknowledged offset.

use std::process::Command;
use std::time::Duration;

use sluice_tests::{
    assert_acked_present_once, bin_path, consume_all, kcat, partition_view, python, run,
    wait_partition, AckedProducer, Cluster,
};

const TOPIC: &str = "payments";
const PARTITIONS: i32 = 2;
const KILLS: usize = 2;
/// Acknowledgements to wait for between events, so every phase really produces.
const PROGRESS: usize = 300;
const DEADLINE: Duration = Duration::from_secs(60);

async fn wait_full_isr(cluster: &Cluster) {
    let all = cluster.running_addrs();
    for p in 0..PARTITIONS {
        wait_partition(&all, TOPIC, p, DEADLINE, "a leader and a full ISR", |v| {
            v.leader > 0 && v.isr.len() == 3
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_acks_all_survives_leader_kills_and_kcat_reads_it_back() {
    let mut cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    tokio::task::block_in_place(|| {
        run(
            Command::new(bin_path("sluice")).args([
                "--brokers",
                &bootstrap,
                "topic",
                "create",
                TOPIC,
                "--partitions",
                &PARTITIONS.to_string(),
                "--replicas",
                "3",
            ]),
            b"",
            DEADLINE,
        )
        .assert_success("sluice topic create");
    });
    wait_full_isr(&cluster).await;
    let listing = tokio::task::block_in_place(|| {
        run(
            Command::new(kcat()).args(["-b", &bootstrap, "-L"]),
            b"",
            DEADLINE,
        )
    });
    listing.assert_success("kcat -L");
    assert!(
        listing.stdout_text().contains("3 brokers:"),
        "kcat -L should list the three brokers:\n{}",
        listing.stdout_text()
    );

    let producer = AckedProducer::start(&bootstrap, TOPIC);

    let mut seen = 0;
    for kill in 0..KILLS {
        tokio::task::block_in_place(|| {
            producer.wait_acked(seen, PROGRESS, DEADLINE, "acknowledgements before a kill")
        });
        let leader = partition_view(&cluster.running_addrs(), TOPIC, 0)
            .await
            .expect("a view of the partition")
            .leader;
        cluster.node_mut(leader).kill9();
        seen = producer.acks().acked.len();
        eprintln!("kill {kill}: node {leader} SIGKILLed with {seen} records acknowledged");
        // The producer carries on through the new leader while the node is down.
        tokio::task::block_in_place(|| {
            producer.wait_acked(
                seen,
                PROGRESS,
                DEADLINE,
                "acknowledgements after the failover",
            )
        });
        cluster.node_mut(leader).restart();
        wait_full_isr(&cluster).await;
        seen = producer.acks().acked.len();
    }
    let acks = tokio::task::block_in_place(|| producer.finish());
    let records = tokio::task::block_in_place(|| consume_all(&bootstrap, TOPIC));
    assert_acked_present_once(&acks, &records);
    assert_eq!(
        records.len(),
        acks.acked.len(),
        "kcat read records nobody acknowledged"
    );

    // DeleteRecords is refused in a cluster (followers would keep the records and a failover
    // would bring them back), never half-applied on the leader alone.
    let script = format!(
        "from confluent_kafka import TopicPartition\n\
         from confluent_kafka.admin import AdminClient\n\
         a = AdminClient({{'bootstrap.servers': '{bootstrap}'}})\n\
         f = a.delete_records([TopicPartition('{TOPIC}', 0, 1)])\n\
         try:\n    [x.result(30) for x in f.values()]\n    print('deleted')\n\
         except Exception as e:\n    print('refused', e)\n"
    );
    let out = tokio::task::block_in_place(|| {
        run(Command::new(python()).args(["-c", &script]), b"", DEADLINE)
    });
    let text = out.stdout_text();
    assert!(
        text.starts_with("refused") && text.contains("POLICY_VIOLATION"),
        "{text}\n{}",
        out.stderr
    );
    let after = tokio::task::block_in_place(|| consume_all(&bootstrap, TOPIC));
    assert_eq!(
        after.len(),
        records.len(),
        "a refused DeleteRecords removed records"
    );
}
