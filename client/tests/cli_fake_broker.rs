//! The `sluice` binary run as a user would, against the in-process fake broker: topic commands,
//! produce from stdin, consume with formats, and one-line errors with a non-zero exit.

mod support;

use std::process::Stdio;

use support::fake_broker::FakeBroker;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn sluice(broker: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_BROKERS", broker)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("sluice did not finish within 30 s")
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[tokio::test]
async fn topic_commands() {
    let b = FakeBroker::start().await;
    let r = sluice(
        &b.addr,
        &["topic", "create", "orders", "--partitions", "3"],
        b"",
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("created topic orders"), "{}", r.stderr);
    let r = sluice(&b.addr, &["topic", "list"], b"").await;
    assert_eq!(r.stdout, "orders\n");
    let r = sluice(&b.addr, &["topic", "describe", "orders"], b"").await;
    assert!(r.ok, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "topic orders (3 partitions)");
    assert!(
        lines[1].starts_with("PARTITION  LEADER  REPLICAS  ISR  START  END"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("0          0       0         0    0      0"),
        "{}",
        lines[2]
    );
    assert!(r.stdout.contains("retention.ms=604800000"), "{}", r.stdout);
    let r = sluice(&b.addr, &["topic", "create", "orders"], b"").await;
    assert!(!r.ok);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("TOPIC_ALREADY_EXISTS"), "{}", r.stderr);
    let r = sluice(&b.addr, &["topic", "delete", "orders"], b"").await;
    assert!(r.ok, "{}", r.stderr);
    let r = sluice(&b.addr, &["topic", "list"], b"").await;
    assert_eq!(r.stdout, "");
}

#[tokio::test]
async fn produce_then_consume_with_formats() {
    let b = FakeBroker::start().await;
    b.create_topic("t", 1);
    let input = "k1:hello\tworld\nk2:ünïcödé: yes\nno key here\n";
    let r = sluice(
        &b.addr,
        &[
            "produce",
            "t",
            "--key-separator",
            ":",
            "--header",
            "src=cli",
            "-H",
            "n=1",
        ],
        input.as_bytes(),
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    // stderr is a pipe here: the summary alone, no progress bar.
    assert_eq!(r.stderr, "3 of 3 record(s) acknowledged by t\n");

    let r = sluice(
        &b.addr,
        &["consume", "t", "--from-beginning", "--exit-at-end"],
        b"",
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stderr, "", "no progress output into a pipe");
    assert_eq!(r.stdout, "hello\tworld\nünïcödé: yes\nno key here\n");

    let fmt = "%k|%v|%h|%t|%p|%o\\n";
    let r = sluice(
        &b.addr,
        &["consume", "t", "-o", "start", "-e", "--format", fmt],
        b"",
    )
    .await;
    assert_eq!(
        r.stdout,
        "k1|hello\tworld|src=cli,n=1|t|0|0\nk2|ünïcödé: yes|src=cli,n=1|t|0|1\n|no key here|src=cli,n=1|t|0|2\n"
    );

    let r = sluice(
        &b.addr,
        &["consume", "t", "--offset", "1", "--count", "1", "--json"],
        b"",
    )
    .await;
    assert!(r.ok, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["key"], "k2");
    assert_eq!(v["value"], "ünïcödé: yes");
    assert_eq!(v["offset"], 1);
    assert_eq!(v["headers"][0]["key"], "src");

    let r = sluice(&b.addr, &["consume", "t", "--offset", "-1", "-e"], b"").await;
    assert_eq!(r.stdout, "no key here\n");
    let r = sluice(&b.addr, &["consume", "t", "-e"], b"").await;
    assert_eq!(r.stdout, "", "the default start is the end");
}

#[tokio::test]
async fn errors_are_one_line_with_a_non_zero_exit() {
    let b = FakeBroker::start().await;
    let r = sluice(&b.addr, &["consume", "nope", "-e"], b"").await;
    assert!(!r.ok);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("sluice: "), "{}", r.stderr);
    assert!(r.stderr.contains("unknown topic nope"), "{}", r.stderr);

    let r = sluice(&b.addr, &["produce", "nope"], b"x\n").await;
    assert!(!r.ok);
    assert!(r.stderr.contains("unknown topic nope"), "{}", r.stderr);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap().to_string();
    drop(listener);
    let r = sluice(&dead, &["topic", "list", "--timeout-ms", "2000"], b"").await;
    assert!(!r.ok);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);

    let r = sluice(&b.addr, &["consume", "t", "--format", "%x"], b"").await;
    assert!(!r.ok);
    assert!(r.stderr.contains("unknown placeholder %x"), "{}", r.stderr);
}

/// Regression: with `--acks 0` the deliveries resolved when the records were queued to the
/// connection's writer, so `sluice produce` could exit before writing them and lose them.
#[tokio::test]
async fn acks_zero_records_are_on_the_wire_before_produce_exits() {
    let b = FakeBroker::start().await;
    b.create_topic("t", 1);
    let input: String = (0..2000).map(|i| format!("{i}\n")).collect();
    let r = sluice(&b.addr, &["produce", "t", "--acks", "0"], input.as_bytes()).await;
    assert!(r.ok, "{}", r.stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while b.end_offset("t", 0) < 2000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(b.end_offset("t", 0), 2000);
}
