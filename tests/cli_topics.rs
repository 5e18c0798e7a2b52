//! The `sluice` CLI against a real `sluiced`, as a user runs it: topic administration, produce with
//! each acks level, consume options, and one-line errors with a non-zero exit.

use std::process::Command;
use std::time::Duration;

use sluice_tests::{bin_path, run, Broker, Output};

const DEADLINE: Duration = Duration::from_secs(60);

fn sluice(broker: &Broker, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin_path("sluice"));
    cmd.args(args).env("SLUICE_BROKERS", broker.bootstrap());
    run(&mut cmd, stdin, DEADLINE)
}

#[test]
fn topics_are_created_described_listed_and_deleted() {
    let broker = Broker::start();
    sluice(
        &broker,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        b"",
    )
    .assert_success("topic create");
    let out = sluice(&broker, &["topic", "list"], b"");
    out.assert_success("topic list");
    assert!(
        out.stdout_text().lines().any(|l| l == "orders"),
        "{}",
        out.stdout_text()
    );

    sluice(
        &broker,
        &["produce", "orders", "--partition", "2"],
        b"a\nb\nc\n",
    )
    .assert_success("produce");
    let out = sluice(&broker, &["topic", "describe", "orders"], b"");
    out.assert_success("topic describe");
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "topic orders (3 partitions)");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        ["PARTITION", "LEADER", "REPLICAS", "ISR", "START", "END"]
    );
    let row2: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(row2[0], "2");
    assert_eq!(
        (row2[4], row2[5]),
        ("0", "3"),
        "partition 2 holds the 3 records: {text}"
    );
    assert!(text.contains("retention.ms=3600000"), "{text}");

    let out = sluice(&broker, &["topic", "describe", "orders", "--json"], b"");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["partitions"][2]["end_offset"], 3);

    let out = sluice(&broker, &["topic", "create", "orders"], b"");
    assert_ne!(out.code, Some(0));
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("TOPIC_ALREADY_EXISTS"),
        "{}",
        out.stderr
    );

    sluice(&broker, &["topic", "delete", "orders"], b"").assert_success("topic delete");
    let out = sluice(&broker, &["topic", "list"], b"");
    assert!(!out.stdout_text().lines().any(|l| l == "orders"));
}

#[test]
fn every_acks_level_delivers_and_consume_options_select_records() {
    let broker = Broker::start();
    sluice(&broker, &["topic", "create", "t", "--partitions", "1"], b"").assert_success("create");
    for acks in ["all", "1", "0"] {
        let lines: String = (0..100).map(|i| format!("{acks}-{i}\n")).collect();
        let out = sluice(&broker, &["produce", "t", "--acks", acks], lines.as_bytes());
        out.assert_success("produce");
        assert!(
            out.stderr.contains("100 of 100 record(s) acknowledged"),
            "{}",
            out.stderr
        );
    }
    // acks=0 is fire and forget: wait until the broker has all 300.
    sluice_tests::wait_until(DEADLINE, "300 records stored", || {
        let out = sluice(
            &broker,
            &["consume", "t", "-o", "start", "-e", "--format", "%o\\n"],
            b"",
        );
        out.stdout_text().lines().count() == 300
    });
    let out = sluice(
        &broker,
        &["consume", "t", "--offset", "150", "--count", "2"],
        b"",
    );
    assert_eq!(out.stdout_text(), "1-50\n1-51\n");
    let out = sluice(&broker, &["consume", "t", "--offset", "-2", "-e"], b"");
    assert_eq!(out.stdout_text(), "0-98\n0-99\n");
    let out = sluice(
        &broker,
        &["consume", "t", "--offset", "@0", "--count", "1", "--json"],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["offset"], 0);
    assert_eq!(v["value"], "all-0");
    assert_eq!(v["topic"], "t");
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    let broker = Broker::start();
    let out = sluice(&broker, &["consume", "missing", "-e"], b"");
    assert_ne!(out.code, Some(0));
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown topic missing"),
        "{}",
        out.stderr
    );

    let out = sluice(&broker, &["produce", "missing"], b"x\n");
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("unknown topic missing"),
        "{}",
        out.stderr
    );

    let out = sluice(
        &broker,
        &["topic", "create", "bad", "--config", "retention.ms=soon"],
        b"",
    );
    assert_ne!(out.code, Some(0));
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("INVALID_CONFIG"), "{}", out.stderr);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut cmd = Command::new(bin_path("sluice"));
    cmd.args(["topic", "list", "--brokers", &dead]);
    let out = run(&mut cmd, b"", DEADLINE);
    assert_ne!(out.code, Some(0));
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
}

#[test]
fn topic_alter_sets_and_removes_configs_keeping_the_others() {
    let broker = Broker::start();
    sluice(
        &broker,
        &[
            "topic",
            "create",
            "cfg",
            "-c",
            "retention.ms=3600000",
            "-c",
            "cleanup.policy=compact",
        ],
        b"",
    )
    .assert_success("topic create");
    sluice(
        &broker,
        &[
            "topic",
            "alter",
            "cfg",
            "--config",
            "segment.bytes=1048576",
            "--delete-config",
            "cleanup.policy",
        ],
        b"",
    )
    .assert_success("topic alter");
    let out = sluice(&broker, &["topic", "describe", "cfg", "--json"], b"");
    out.assert_success("topic describe");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["configs"]["retention.ms"], "3600000", "kept: {v}");
    assert_eq!(v["configs"]["segment.bytes"], "1048576", "set: {v}");
    assert_eq!(
        v["configs"]["cleanup.policy"], "delete",
        "back to the default: {v}"
    );

    let out = sluice(&broker, &["topic", "alter", "cfg"], b"");
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
}

/// Every record value of one partition of topic `t`, a line each.
fn read_partition(broker: &Broker, partition: i32) -> String {
    let partition = partition.to_string();
    let args = ["consume", "t", "-p", &partition, "-o", "start", "-e"];
    sluice(broker, &args, b"").stdout_text()
}

#[test]
fn trim_prefix_deletes_records_before_an_offset_per_partition() {
    let broker = Broker::start();
    sluice(&broker, &["topic", "create", "t", "--partitions", "2"], b"").assert_success("create");
    for p in ["0", "1"] {
        let lines: String = (0..10).map(|i| format!("p{p}-{i}\n")).collect();
        sluice(
            &broker,
            &["produce", "t", "--partition", p],
            lines.as_bytes(),
        )
        .assert_success("produce");
    }
    let out = sluice(
        &broker,
        &["topic", "trim-prefix", "t", "--offset", "4", "-p", "0"],
        b"",
    );
    out.assert_success("trim-prefix");
    let rows: Vec<Vec<String>> = out
        .stdout_text()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(rows[1], ["0", "4", "-"], "{}", out.stdout_text());
    let out = read_partition(&broker, 0);
    assert_eq!(out, "p0-4\np0-5\np0-6\np0-7\np0-8\np0-9\n");
    // Partition 1 is untouched; `end` (Kafka's -1) empties a partition.
    let out = read_partition(&broker, 1);
    assert_eq!(out.lines().count(), 10);
    sluice(
        &broker,
        &["topic", "delete-records", "t", "--offset", "end", "-p", "1"],
        b"",
    )
    .assert_success("delete-records");
    assert_eq!(read_partition(&broker, 1), "");

    // Past the end: that partition keeps its records, the error is shown, the exit is non-zero.
    let out = sluice(
        &broker,
        &["topic", "trim-prefix", "t", "--offset", "50"],
        b"",
    );
    assert_ne!(out.code, Some(0));
    assert!(
        out.stdout_text().contains("OFFSET_OUT_OF_RANGE"),
        "{}",
        out.stdout_text()
    );
    assert!(out.stderr.contains("kept their records"), "{}", out.stderr);
    let out = sluice(&broker, &["topic", "describe", "t", "--json"], b"");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let starts: Vec<i64> = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["start_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(starts, [4, 10]);
}
