//! A topic deleted while one of its replicas was down, then created again under the same name:
//! the returning broker ends with exactly the new topic's records, none of the old one's (they
//! would pass for the new topic's at the same offsets). Replicas are stamped with their topic's
//! id (a leftover of another incarnation is replaced), and a follower's fetch names the id (the
//! leader refuses a replica of another incarnation).

use std::process::Command;
use std::time::Duration;

use sluice_tests::{bin_path, run, wait_partition, wait_until, Cluster, Output};

const TOPIC: &str = "reborn";
const DEADLINE: Duration = Duration::from_secs(60);

fn sluice(bootstrap: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin_path("sluice"));
    cmd.arg("--brokers").arg(bootstrap).args(args);
    run(&mut cmd, stdin, DEADLINE)
}

/// Produces `{prefix}-0` .. `{prefix}-{n-1}` with acks=all.
fn produce(bootstrap: &str, prefix: &str, n: usize) {
    let lines: String = (0..n).map(|i| format!("{prefix}-{i}\n")).collect();
    sluice(
        bootstrap,
        &["produce", TOPIC, "--acks", "all"],
        lines.as_bytes(),
    )
    .assert_success(&format!("produce the {prefix} records"));
}

async fn wait_full_isr(cluster: &Cluster) {
    wait_partition(
        &cluster.running_addrs(),
        TOPIC,
        0,
        DEADLINE,
        "a leader and a full ISR",
        |v| v.leader > 0 && v.isr.len() == 3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_of_a_deleted_topic_is_not_reused_for_a_new_one_of_the_same_name() {
    let mut cluster = Cluster::start();
    let bootstrap = cluster.bootstrap();
    let create = [
        "topic",
        "create",
        TOPIC,
        "--partitions",
        "1",
        "--replicas",
        "3",
    ];
    tokio::task::block_in_place(|| {
        sluice(&bootstrap, &create, b"").assert_success("create");
    });
    wait_full_isr(&cluster).await;
    tokio::task::block_in_place(|| produce(&bootstrap, "old", 50));

    // Node 3 is down while the topic is deleted, and back before it is created again.
    cluster.node_mut(3).kill9();
    let survivors = cluster.bootstrap_of(&[1, 2]);
    tokio::task::block_in_place(|| {
        sluice(&survivors, &["topic", "delete", TOPIC], b"").assert_success("delete");
    });
    cluster.node_mut(3).restart();
    tokio::task::block_in_place(|| {
        wait_until(
            DEADLINE,
            "the topic created again on all three nodes",
            || sluice(&bootstrap, &create, b"").code == Some(0),
        )
    });
    wait_full_isr(&cluster).await;
    tokio::task::block_in_place(|| produce(&bootstrap, "new", 5));
    wait_full_isr(&cluster).await;

    // Node 3's replica holds exactly what the new topic holds.
    cluster.node_mut(3).kill9();
    let stored: Vec<u8> = cluster
        .stored_batches(3, TOPIC, 0)
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect();
    let text = String::from_utf8_lossy(&stored);
    assert!(
        !text.contains("old-"),
        "node 3 kept records of the deleted topic"
    );
    assert!(text.contains("new-4"), "node 3 lacks the new records");
}
