//! Real Kafka clients against a three-node cluster: `kcat -L` sees every broker, and an
//! `acks=all` idempotent librdkafka producer (confluent-kafka, `tests/python/acked_producer.py`)
//! keeps writing while the leader of a partition is SIGKILLed and restarted, twice. Afterwards
//! kcat reads back every acknowledged record exactly once at its acknowledged offset. Then an
//! AdminClient DeleteRecords on one partition and `sluice topic trim-prefix` on the other, and a
//! SIGKILL of the first one's leader: the cluster serves exactly the records past the offsets.

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

    // DeleteRecords through the leader of partition 0: answered once every in-sync replica has
    // dropped the records, so the next leader, after a SIGKILL of this one, does not serve them.
    let in_p0: Vec<i64> = records.keys().filter(|k| k.0 == 0).map(|k| k.1).collect();
    let cut = in_p0.iter().copied().max().expect("records in partition 0") / 2 + 1;
    let script = format!(
        "from confluent_kafka import TopicPartition\n\
         from confluent_kafka.admin import AdminClient\n\
         a = AdminClient({{'bootstrap.servers': '{bootstrap}'}})\n\
         f = a.delete_records([TopicPartition('{TOPIC}', 0, {cut})], operation_timeout=30)\n\
         for x in f.values():\n    print('deleted', x.result(60).low_watermark)\n"
    );
    let out = tokio::task::block_in_place(|| {
        run(Command::new(python()).args(["-c", &script]), b"", DEADLINE)
    });
    out.assert_success("AdminClient.delete_records");
    assert_eq!(
        out.stdout_text().trim(),
        format!("deleted {cut}"),
        "the low watermark is the requested offset"
    );
    // And through `sluice topic trim-prefix` on partition 1 (sent to its leader).
    let in_p1: Vec<i64> = records.keys().filter(|k| k.0 == 1).map(|k| k.1).collect();
    let cut1 = in_p1.iter().copied().max().expect("records in partition 1") / 3 + 1;
    let out = tokio::task::block_in_place(|| {
        run(
            Command::new(bin_path("sluice")).args([
                "--brokers",
                &bootstrap,
                "topic",
                "trim-prefix",
                TOPIC,
                "--offset",
                &cut1.to_string(),
                "-p",
                "1",
            ]),
            b"",
            DEADLINE,
        )
    });
    out.assert_success("sluice topic trim-prefix");
    assert!(
        out.stdout_text().contains(&format!("1          {cut1}")),
        "{}",
        out.stdout_text()
    );
    let leader = partition_view(&cluster.running_addrs(), TOPIC, 0)
        .await
        .expect("a view of the partition")
        .leader;
    cluster.node_mut(leader).kill9();
    let others: Vec<String> = cluster.running_addrs();
    wait_partition(&others, TOPIC, 0, DEADLINE, "a new leader", |v| {
        v.leader > 0 && v.leader != leader
    })
    .await;
    let survivors = others.join(",");
    let after = tokio::task::block_in_place(|| consume_all(&survivors, TOPIC));
    let expected: std::collections::BTreeMap<(i32, i64), String> = records
        .iter()
        .filter(|(k, _)| (k.0 != 0 || k.1 >= cut) && (k.0 != 1 || k.1 >= cut1))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    assert_eq!(
        after.len(),
        expected.len(),
        "after the failover: exactly the records past {cut} in partition 0 and {cut1} in 1"
    );
    assert!(after == expected, "the records read back differ");
}
