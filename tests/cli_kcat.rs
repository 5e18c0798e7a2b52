//! `sluice` and kcat (librdkafka) against a real `sluiced`, both ways: what one writes the other
//! reads back identically (keys, values with tabs and unicode, headers), and the same keys land in
//! the same partitions from `sluice produce` and from kcat with librdkafka's murmur2 partitioner.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use sluice_tests::{bin_path, kcat, run, Broker, Output};

const DEADLINE: Duration = Duration::from_secs(60);

fn sluice(broker: &Broker, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin_path("sluice"));
    cmd.args(args).env("SLUICE_BROKERS", broker.bootstrap());
    run(&mut cmd, stdin, DEADLINE)
}

fn kcat_run(broker: &Broker, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(kcat());
    cmd.arg("-b").arg(broker.bootstrap()).args(args);
    run(&mut cmd, stdin, DEADLINE)
}

fn create(broker: &Broker, topic: &str, partitions: &str) {
    sluice(
        broker,
        &["topic", "create", topic, "--partitions", partitions],
        b"",
    )
    .assert_success("sluice topic create");
}

/// Lines whose values hold tabs, unicode, the separator again, and an empty value.
const LINES: &[(&str, &str)] = &[
    ("k1", "plain value"),
    ("k2", "tab\there\tand there"),
    ("ключ", "ünïcödé ✓ 日本語"),
    ("k4", "colon: inside: value"),
    ("k5", ""),
];

fn input() -> String {
    LINES.iter().map(|(k, v)| format!("{k}:{v}\n")).collect()
}

#[test]
fn sluice_produce_is_read_back_identically_by_kcat() {
    let broker = Broker::start();
    create(&broker, "to-kcat", "1");
    let out = sluice(
        &broker,
        &[
            "produce",
            "to-kcat",
            "--key-separator",
            ":",
            "--header",
            "src=sluice",
            "-H",
            "n=1",
        ],
        input().as_bytes(),
    );
    out.assert_success("sluice produce");
    assert!(
        out.stderr.contains("5 of 5 record(s) acknowledged"),
        "{}",
        out.stderr
    );

    let out = kcat_run(
        &broker,
        &[
            "-C",
            "-t",
            "to-kcat",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k|%s|%h|%o\n",
        ],
        b"",
    );
    out.assert_success("kcat -C");
    let want: String = LINES
        .iter()
        .enumerate()
        .map(|(i, (k, v))| format!("{k}|{v}|src=sluice,n=1|{i}\n"))
        .collect();
    assert_eq!(out.stdout_text(), want);
}

#[test]
fn kcat_produce_is_read_back_identically_by_sluice() {
    let broker = Broker::start();
    create(&broker, "from-kcat", "1");
    kcat_run(
        &broker,
        &[
            "-P",
            "-t",
            "from-kcat",
            "-K",
            ":",
            "-H",
            "src=kcat",
            "-H",
            "n=2",
        ],
        input().as_bytes(),
    )
    .assert_success("kcat -P");

    let out = sluice(
        &broker,
        &[
            "consume",
            "from-kcat",
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "%k|%v|%h|%o\\n",
        ],
        b"",
    );
    out.assert_success("sluice consume");
    let want: String = LINES
        .iter()
        .enumerate()
        .map(|(i, (k, v))| format!("{k}|{v}|src=kcat,n=2|{i}\n"))
        .collect();
    assert_eq!(out.stdout_text(), want);

    // The default rendering is the value alone, one per line.
    let out = sluice(&broker, &["consume", "from-kcat", "-o", "start", "-e"], b"");
    let want: String = LINES.iter().map(|(_, v)| format!("{v}\n")).collect();
    assert_eq!(out.stdout_text(), want);
}

fn placement(broker: &Broker, topic: &str) -> BTreeMap<String, String> {
    let out = sluice(
        broker,
        &[
            "consume",
            topic,
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "%k %p\\n",
        ],
        b"",
    );
    out.assert_success("sluice consume");
    out.stdout_text()
        .lines()
        .map(|l| {
            let (k, p) = l.split_once(' ').expect("key and partition");
            (k.to_string(), p.to_string())
        })
        .collect()
}

#[test]
fn keys_land_in_the_same_partitions_as_with_librdkafka_murmur2() {
    let broker = Broker::start();
    create(&broker, "keys-sluice", "8");
    create(&broker, "keys-kcat", "8");
    let lines: String = (0..200).map(|i| format!("user-{i}:v{i}\n")).collect();
    sluice(
        &broker,
        &["produce", "keys-sluice", "-K", ":"],
        lines.as_bytes(),
    )
    .assert_success("sluice produce");
    kcat_run(
        &broker,
        &[
            "-P",
            "-t",
            "keys-kcat",
            "-K",
            ":",
            "-X",
            "partitioner=murmur2_random",
        ],
        lines.as_bytes(),
    )
    .assert_success("kcat -P");

    let ours = placement(&broker, "keys-sluice");
    let theirs = placement(&broker, "keys-kcat");
    assert_eq!(ours.len(), 200);
    assert_eq!(ours, theirs);
    for (key, partition) in &ours {
        let want = sluice_client::partitioner::partition_for_key(key.as_bytes(), 8);
        assert_eq!(partition, &want.to_string(), "key {key}");
    }
    let used: std::collections::BTreeSet<&String> = ours.values().collect();
    assert_eq!(used.len(), 8, "200 keys spread over every partition");
}

#[test]
fn compressed_batches_interoperate_both_ways() {
    let broker = Broker::start();
    for codec in ["lz4", "gzip"] {
        let topic = format!("z-sluice-{codec}");
        create(&broker, &topic, "1");
        sluice(
            &broker,
            &["produce", &topic, "-K", ":", "--compression", codec],
            input().as_bytes(),
        )
        .assert_success("sluice produce --compression");
        let out = kcat_run(
            &broker,
            &[
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k|%s\n",
            ],
            b"",
        );
        out.assert_success("kcat -C");
        let want: String = LINES.iter().map(|(k, v)| format!("{k}|{v}\n")).collect();
        assert_eq!(out.stdout_text(), want, "{codec} from sluice");

        let topic = format!("z-kcat-{codec}");
        create(&broker, &topic, "1");
        kcat_run(
            &broker,
            &["-P", "-t", &topic, "-K", ":", "-z", codec],
            input().as_bytes(),
        )
        .assert_success("kcat -P -z");
        let out = sluice(
            &broker,
            &[
                "consume", &topic, "-o", "start", "-e", "--format", "%k|%v\\n",
            ],
            b"",
        );
        out.assert_success("sluice consume");
        assert_eq!(out.stdout_text(), want, "{codec} from kcat");
    }
}
