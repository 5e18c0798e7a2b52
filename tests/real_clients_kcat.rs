//! kcat (librdkafka 2.0 on Debian) against a real `sluiced`: list metadata, produce many keyed
//! lines, consume them back exactly, in order.

use std::process::Command;
use std::time::Duration;

use sluice_tests::{kcat, run, Broker};

const KCAT_DEADLINE: Duration = Duration::from_secs(60);

fn kcat_cmd(broker: &Broker) -> Command {
    let mut command = Command::new(kcat());
    command.arg("-b").arg(broker.bootstrap());
    command
}

#[test]
fn kcat_produces_and_consumes_keyed_lines_in_order() {
    let broker = Broker::builder().arg("--auto-create-topics").start();
    let lines: String = (0..5000)
        .map(|i| format!("key-{}:value {i} {}\n", i % 17, "x".repeat(i % 300)))
        .collect();

    run(
        kcat_cmd(&broker).args(["-P", "-t", "lines", "-K:", "-p", "0"]),
        lines.as_bytes(),
        KCAT_DEADLINE,
    )
    .assert_success("kcat -P");

    let out = run(
        kcat_cmd(&broker).args([
            "-C",
            "-t",
            "lines",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k:%s\n",
        ]),
        b"",
        KCAT_DEADLINE,
    );
    out.assert_success("kcat -C");
    let consumed = out.stdout_text();
    assert_eq!(consumed.lines().count(), 5000);
    assert!(
        consumed == lines,
        "consumed records differ from the produced lines"
    );

    // Offsets are dense from 0 and the keys survived as keys.
    let out = run(
        kcat_cmd(&broker).args(["-C", "-t", "lines", "-o", "4990", "-e", "-f", "%o %k\n"]),
        b"",
        KCAT_DEADLINE,
    );
    out.assert_success("kcat -C -o 4990");
    let expected: String = (4990..5000)
        .map(|i| format!("{i} key-{}\n", i % 17))
        .collect();
    assert_eq!(out.stdout_text(), expected);
}

#[test]
fn kcat_lists_the_broker_and_its_topics() {
    let broker = Broker::builder()
        .arg("--auto-create-topics")
        .arg("--num-partitions")
        .arg("3")
        .start();
    run(
        kcat_cmd(&broker).args(["-P", "-t", "listed"]),
        b"one\ntwo\n",
        KCAT_DEADLINE,
    )
    .assert_success("kcat -P");
    let out = run(kcat_cmd(&broker).args(["-L", "-J"]), b"", KCAT_DEADLINE);
    out.assert_success("kcat -L");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kcat -L -J json");
    let brokers = meta["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "{meta}");
    assert_eq!(
        brokers[0]["name"].as_str(),
        Some(broker.bootstrap().as_str())
    );
    assert_eq!(brokers[0]["id"], 0);
    let topic = meta["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["topic"] == "listed")
        .unwrap_or_else(|| panic!("topic listed missing from {meta}"));
    let partitions = topic["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!(p["leader"], 0);
        assert_eq!(p["replicas"].as_array().expect("replicas").len(), 1);
    }
}

#[test]
fn without_auto_create_an_unknown_topic_is_reported_not_created() {
    let broker = Broker::start();
    let out = run(
        kcat_cmd(&broker).args(["-L", "-J", "-t", "missing"]),
        b"",
        KCAT_DEADLINE,
    );
    out.assert_success("kcat -L -t missing");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let topic = &meta["topics"][0];
    assert_eq!(topic["topic"], "missing");
    assert!(
        topic["error"]
            .as_str()
            .unwrap_or("")
            .contains("Unknown topic"),
        "{meta}"
    );
    let out = run(kcat_cmd(&broker).args(["-L", "-J"]), b"", KCAT_DEADLINE);
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(meta["topics"].as_array().map(Vec::len), Some(0), "{meta}");
}

#[test]
fn compressed_batches_pass_through_every_codec() {
    let broker = Broker::builder().arg("--auto-create-topics").start();
    let mut expected = String::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let lines: String = (0..500).map(|i| format!("{codec}-{i}\n")).collect();
        run(
            kcat_cmd(&broker).args(["-P", "-t", "codecs", "-p", "0", "-z", codec]),
            lines.as_bytes(),
            KCAT_DEADLINE,
        )
        .assert_success(&format!("kcat -P -z {codec}"));
        expected.push_str(&lines);
    }
    let out = run(
        kcat_cmd(&broker)
            .args(["-C", "-t", "codecs", "-o", "beginning", "-e"])
            .args(["-X", "check.crcs=true", "-f", "%s\n"]),
        b"",
        KCAT_DEADLINE,
    );
    out.assert_success("kcat -C");
    assert!(
        out.stdout_text() == expected,
        "records differ after compression"
    );
}
