//! Consumer groups on a cluster, through the `sluice` CLI: every node names the same group
//! coordinator, so a group consumed once through one broker and again through another resumes
//! from the offsets it committed, and `sluice cluster status` reports every node.

use std::process::Command;
use std::time::Duration;

use sluice_tests::{bin_path, run, wait_partition, wait_until, Cluster, Output};

const TOPIC: &str = "clicks";
const DEADLINE: Duration = Duration::from_secs(60);

fn sluice(brokers: &str, args: &[&str], stdin: &[u8]) -> Output {
    let out = run(
        Command::new(bin_path("sluice"))
            .arg("--brokers")
            .arg(brokers)
            .args(args),
        stdin,
        DEADLINE,
    );
    assert_eq!(
        out.code,
        Some(0),
        "sluice {args:?} failed: {}\n{}",
        out.stderr,
        out.stdout_text()
    );
    out
}

/// Consumes `TOPIC` as group `g` through `brokers` to the end; asserts it got exactly the lines
/// `c<from>`..`c<to>` (in any order across partitions).
fn consume_group_expecting(brokers: &str, from: usize, to: usize, what: &str) {
    let out = sluice(
        brokers,
        &[
            "consume",
            TOPIC,
            "--group",
            "g",
            "--from-beginning",
            "--exit-at-end",
        ],
        b"",
    );
    let mut got: Vec<String> = out.stdout_text().lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = (from..to).map(|i| format!("c{i}")).collect();
    want.sort();
    assert_eq!(got, want, "{what}: {}", out.stderr);
}

fn lines(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .map(|i| format!("c{i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_through_any_broker_and_after_its_coordinator_dies() {
    let mut cluster = Cluster::builder()
        .arg("--group-config=group.initial.rebalance.delay.ms=0")
        .start();
    let [one, two, three] = [1, 2, 3].map(|id| cluster.node(id).bootstrap());
    tokio::task::block_in_place(|| {
        sluice(
            &one,
            &[
                "topic",
                "create",
                TOPIC,
                "--partitions",
                "2",
                "--replicas",
                "3",
            ],
            b"",
        )
    });
    let all = cluster.running_addrs();
    for p in 0..2 {
        wait_partition(&all, TOPIC, p, DEADLINE, "a leader and a full ISR", |v| {
            v.leader > 0 && v.isr.len() == 3
        })
        .await;
    }
    tokio::task::block_in_place(|| {
        sluice(&two, &["produce", TOPIC, "--acks", "all"], &lines(0, 100));
        consume_group_expecting(&three, 0, 100, "the first read of the group");
        sluice(&one, &["produce", TOPIC, "--acks", "all"], &lines(100, 150));
        // Through another broker: the same coordinator, so only what was not consumed yet.
        consume_group_expecting(&two, 100, 150, "the group through another broker");

        let status = sluice(&one, &["cluster", "status", "--json"], b"").stdout_text();
        let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
        let nodes = status["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 3, "{status}");
        assert!(
            nodes
                .iter()
                .all(|n| n["alive"] == true && n["answering"] == true),
            "{status}"
        );
        let controller = status["controller"].as_i64().expect("a controller");
        assert!((1..=3).contains(&controller), "{status}");
        // The topic's two and the replicated __consumer_offsets partition.
        assert_eq!(status["partitions"], 3, "{status}");
        // The enforced default for a replicated topic, not the single-node default of 1.
        let described = sluice(&two, &["topic", "describe", TOPIC], b"").stdout_text();
        assert!(
            described
                .lines()
                .any(|l| l.trim() == "min.insync.replicas=2"),
            "{described}"
        );
        // AlterConfigs goes through the metadata log and reaches every replica's partition logs.
        sluice(
            &one,
            &["topic", "alter", TOPIC, "--config", "retention.ms=123456"],
            b"",
        );
        let described = sluice(&three, &["topic", "describe", TOPIC], b"").stdout_text();
        assert!(
            described.lines().any(|l| l.trim() == "retention.ms=123456"),
            "{described}"
        );
        wait_until(
            DEADLINE,
            "every replica to store the altered config",
            || {
                [1, 2, 3].iter().all(|&id| {
                    let file = cluster
                        .node(id)
                        .data_dir()
                        .join("logs")
                        .join(format!("{TOPIC}-0"))
                        .join("log-config");
                    std::fs::read(file)
                        .is_ok_and(|b| String::from_utf8_lossy(&b).contains("retention.ms=123456"))
                })
            },
        );
        // Internal topics are listed only on request, as with rpk.
        let listed = sluice(&one, &["topic", "list"], b"").stdout_text();
        assert_eq!(listed.lines().collect::<Vec<_>>(), vec![TOPIC], "{listed}");
        let with_internal = sluice(&one, &["topic", "list", "--internal"], b"").stdout_text();
        assert!(
            with_internal.lines().any(|l| l == "__consumer_offsets"),
            "{with_internal}"
        );
    });

    // SIGKILL the group coordinator (the offsets partition's leader): the group's committed
    // offsets must come back with the new leader, on another broker.
    let coordinator = wait_partition(
        &all,
        "__consumer_offsets",
        0,
        DEADLINE,
        "the offsets partition led with a full ISR",
        |v| v.leader > 0 && v.isr.len() == 3,
    )
    .await
    .leader;
    cluster.node_mut(coordinator).kill9();
    let survivors: Vec<i32> = [1, 2, 3]
        .into_iter()
        .filter(|&id| id != coordinator)
        .collect();
    let live = cluster.bootstrap_of(&survivors);
    let live_addrs = cluster.addrs_of(&survivors);
    wait_partition(
        &live_addrs,
        "__consumer_offsets",
        0,
        DEADLINE,
        "a new leader of the offsets partition",
        |v| v.leader > 0 && v.leader != coordinator,
    )
    .await;
    tokio::task::block_in_place(|| {
        sluice(
            &live,
            &["produce", TOPIC, "--acks", "all"],
            &lines(150, 180),
        );
        consume_group_expecting(
            &live,
            150,
            180,
            "the group resumes from its commits after its coordinator died",
        );
    });
}
