//! Consumer groups against real `sluiced` processes, driven by real clients: confluent-kafka
//! (librdkafka) and kafka-python consumers sharing a group, the survivor taking over a killed
//! member's partitions, committed offsets surviving a broker restart, and a Sluice CLI group
//! coexisting with a librdkafka group.
//!
//! The broker runs with a short `group.initial.rebalance.delay.ms` and a low
//! `group.min.session.timeout.ms`, so each test takes seconds, not minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_tests::{bin_path, python, run, wait_until, Broker};

const SESSION_MS: u64 = 3000;

fn broker() -> Broker {
    Broker::builder()
        .arg("--group-config=group.initial.rebalance.delay.ms=300")
        .arg("--group-config=group.min.session.timeout.ms=1000")
        .start()
}

fn sluice(broker: &Broker, args: &[&str], stdin: &[u8]) -> String {
    let out = run(
        Command::new(bin_path("sluice"))
            .arg("--brokers")
            .arg(broker.bootstrap())
            .args(args),
        stdin,
        Duration::from_secs(60),
    );
    out.assert_success(&format!("sluice {args:?}"));
    out.stdout_text()
}

fn create_topic(broker: &Broker, topic: &str, partitions: u32) {
    sluice(
        broker,
        &[
            "topic",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ],
        b"",
    );
}

/// Produces `values` with keys so they spread over the partitions.
fn produce(broker: &Broker, topic: &str, values: &[String]) {
    let mut input = String::new();
    for v in values {
        input.push_str(&format!("{v}:{v}\n"));
    }
    sluice(
        broker,
        &["produce", topic, "--key-separator", ":", "--acks", "all"],
        input.as_bytes(),
    );
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// A long-running client process whose stdout lines are collected; killed on drop.
struct Proc {
    name: String,
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(name: &str, command: &mut Command) -> Proc {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        for (pipe, sink) in [
            (
                Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
                lines.clone(),
            ),
            (
                Box::new(child.stderr.take().expect("stderr")),
                stderr.clone(),
            ),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Proc {
            name: name.to_string(),
            child: Some(child),
            lines,
            stderr,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Partitions of the latest `ASSIGNED` line, if any.
    fn assignment(&self) -> Option<BTreeSet<i32>> {
        let lines = self.lines();
        let last = lines.iter().rev().find(|l| l.starts_with("ASSIGNED"))?;
        Some(
            last.trim_start_matches("ASSIGNED")
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect(),
        )
    }

    /// Values of the `REC partition offset value` lines.
    fn records(&self) -> Vec<(i32, i64, String)> {
        self.lines()
            .iter()
            .filter_map(|l| {
                let mut parts = l.strip_prefix("REC ")?.splitn(3, ' ');
                Some((
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.to_string(),
                ))
            })
            .collect()
    }

    fn describe(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr ---\n{}",
            self.name,
            self.lines().join("\n"),
            self.name,
            self.stderr.lock().unwrap().join("\n")
        )
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for a clean exit (the client was asked to stop).
    fn wait_exit(&mut self, deadline: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let end = std::time::Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "{} exited with {status}\n{}",
                    self.name,
                    self.describe()
                );
                self.child = None;
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "{} did not exit\n{}",
                self.name,
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A consumer in Python: prints `ASSIGNED p,p`, `REVOKED`, and `REC partition offset value` per
/// record; commits synchronously after every batch; exits cleanly (closing, so leaving the group)
/// once the stop file exists.
const CONFLUENT_CONSUMER: &str = r#"
import os, sys
from confluent_kafka import Consumer
bootstrap, group, topic, stop, session_ms = sys.argv[1:6]
c = Consumer({
    "bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": int(session_ms),
    "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest", "enable.auto.commit": False,
    "partition.assignment.strategy": "range", "check.crcs": True,
})
def assigned(consumer, partitions):
    print("ASSIGNED " + ",".join(str(p.partition) for p in partitions), flush=True)
def revoked(consumer, partitions):
    print("REVOKED", flush=True)
c.subscribe([topic], on_assign=assigned, on_revoke=revoked)
while not os.path.exists(stop):
    msgs = c.consume(num_messages=200, timeout=0.2)
    for m in msgs:
        if m.error():
            print("ERROR", m.error(), file=sys.stderr, flush=True)
            continue
        print("REC %d %d %s" % (m.partition(), m.offset(), m.value().decode()), flush=True)
    if msgs:
        c.commit(asynchronous=False)
c.close()
print("CLOSED", flush=True)
"#;

const KAFKA_PYTHON_CONSUMER: &str = r#"
import os, sys
from kafka import KafkaConsumer, ConsumerRebalanceListener
bootstrap, group, topic, stop, session_ms = sys.argv[1:6]
c = KafkaConsumer(
    bootstrap_servers=bootstrap, group_id=group, session_timeout_ms=int(session_ms),
    heartbeat_interval_ms=300, auto_offset_reset="earliest", enable_auto_commit=False,
)
class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        print("REVOKED", flush=True)
    def on_partitions_assigned(self, assigned):
        print("ASSIGNED " + ",".join(str(p.partition) for p in assigned), flush=True)
c.subscribe([topic], listener=Listener())
while not os.path.exists(stop):
    batches = c.poll(timeout_ms=200)
    n = 0
    for tp, msgs in batches.items():
        for m in msgs:
            print("REC %d %d %s" % (m.partition, m.offset, m.value.decode()), flush=True)
            n += 1
    if n:
        c.commit()
c.close()
print("CLOSED", flush=True)
"#;

/// Starts a Python consumer; returns it and its stop file.
fn python_consumer(
    dir: &Path,
    script: &str,
    name: &str,
    broker: &Broker,
    group: &str,
    topic: &str,
) -> (Proc, PathBuf) {
    let script_path = dir.join(format!("{name}.py"));
    std::fs::write(&script_path, script).expect("write script");
    let stop = dir.join(format!("{name}.stop"));
    let proc = Proc::spawn(
        name,
        Command::new(python())
            .arg(&script_path)
            .arg(broker.bootstrap())
            .arg(group)
            .arg(topic)
            .arg(&stop)
            .arg(SESSION_MS.to_string()),
    );
    (proc, stop)
}

fn all_values(procs: &[&Proc]) -> Vec<String> {
    procs
        .iter()
        .flat_map(|p| p.records().into_iter().map(|(_, _, v)| v))
        .collect()
}

/// Two consumers of one group split 4 partitions 2/2 and together read every record exactly once;
/// when one is killed the other takes all four; committed offsets survive a broker restart.
fn group_split_takeover_and_restart(script: &str, label: &str) {
    let mut broker = broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = format!("{label}-orders");
    let group = format!("{label}-group");
    create_topic(&broker, &topic, 4);

    let (mut a, _stop_a) = python_consumer(
        dir.path(),
        script,
        &format!("{label}-a"),
        &broker,
        &group,
        &topic,
    );
    let (b, stop_b) = python_consumer(
        dir.path(),
        script,
        &format!("{label}-b"),
        &broker,
        &group,
        &topic,
    );
    wait_until(
        Duration::from_secs(40),
        "both consumers hold two partitions",
        || {
            a.assignment().is_some_and(|s| s.len() == 2)
                && b.assignment().is_some_and(|s| s.len() == 2)
        },
    );
    let (sa, sb) = (
        a.assignment().unwrap_or_default(),
        b.assignment().unwrap_or_default(),
    );
    assert!(
        sa.is_disjoint(&sb),
        "overlapping assignments {sa:?} {sb:?}\n{}\n{}",
        a.describe(),
        b.describe()
    );

    let first = values("first", 400);
    produce(&broker, &topic, &first);
    wait_until(Duration::from_secs(40), "every record consumed", || {
        all_values(&[&a, &b]).len() >= first.len()
    });
    let mut got = all_values(&[&a, &b]);
    got.sort();
    let mut want = first.clone();
    want.sort();
    assert_eq!(
        got,
        want,
        "every record exactly once\n{}\n{}",
        a.describe(),
        b.describe()
    );
    for (p, _, _) in a.records() {
        assert!(sa.contains(&p), "a read partition {p} it does not own");
    }

    // Kill one member: the survivor takes all four partitions after the session timeout.
    a.kill9();
    wait_until(
        Duration::from_secs(40),
        "the survivor owns all four partitions",
        || b.assignment().is_some_and(|s| s.len() == 4),
    );
    let second = values("second", 100);
    produce(&broker, &topic, &second);
    wait_until(
        Duration::from_secs(40),
        "the survivor reads the new records",
        || {
            let seen: BTreeSet<String> = b.records().into_iter().map(|(_, _, v)| v).collect();
            second.iter().all(|v| seen.contains(v))
        },
    );

    // Stop the survivor cleanly (its commits are synchronous), restart the broker with kill -9.
    std::fs::write(&stop_b, b"").expect("stop file");
    let mut b = b;
    b.wait_exit(Duration::from_secs(30));
    broker.kill9();
    broker.restart();
    let third = values("third", 50);
    produce(&broker, &topic, &third);
    let (c, stop_c) = python_consumer(
        dir.path(),
        script,
        &format!("{label}-c"),
        &broker,
        &group,
        &topic,
    );
    wait_until(
        Duration::from_secs(40),
        "the new member reads what was produced after the restart",
        || c.records().len() >= third.len(),
    );
    // Give a wrongly reset consumer the chance to show older records before judging.
    std::fs::write(&stop_c, b"").expect("stop file");
    let mut c = c;
    c.wait_exit(Duration::from_secs(30));
    let mut got: Vec<String> = c.records().into_iter().map(|(_, _, v)| v).collect();
    got.sort();
    let mut want = third.clone();
    want.sort();
    assert_eq!(
        got,
        want,
        "resumed from the committed offsets\n{}",
        c.describe()
    );
}

#[test]
fn confluent_kafka_group_splits_takes_over_and_resumes_after_restart() {
    group_split_takeover_and_restart(CONFLUENT_CONSUMER, "rdk");
}

#[test]
fn kafka_python_group_splits_takes_over_and_resumes_after_restart() {
    group_split_takeover_and_restart(KAFKA_PYTHON_CONSUMER, "kpy");
}

/// `sluice consume --group` resumes where the group left off; `sluice group` lists, describes,
/// resets and deletes; a librdkafka group on another group id runs alongside, unaffected.
#[test]
fn sluice_cli_group_coexists_with_a_librdkafka_group() {
    let broker = broker();
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = "shared";
    create_topic(&broker, topic, 3);
    let records = values("r", 30);
    produce(&broker, topic, &records);

    let (rdk, stop) = python_consumer(
        dir.path(),
        CONFLUENT_CONSUMER,
        "rdk-side",
        &broker,
        "rdk-side",
        topic,
    );

    let consume = |count: usize| -> Vec<String> {
        let out = sluice(
            &broker,
            &[
                "consume",
                topic,
                "--group",
                "cli-side",
                "--from-beginning",
                "--count",
                &count.to_string(),
            ],
            b"",
        );
        out.lines().map(str::to_string).collect()
    };
    let part1 = consume(10);
    let part2 = consume(20);
    assert_eq!(part1.len(), 10);
    assert_eq!(part2.len(), 20);
    let mut seen: Vec<String> = part1.iter().chain(&part2).cloned().collect();
    seen.sort();
    let mut want = records.clone();
    want.sort();
    assert_eq!(seen, want, "the second run resumed exactly after the first");

    wait_until(
        Duration::from_secs(40),
        "the librdkafka group read everything too",
        || rdk.records().len() >= records.len(),
    );
    let mut rdk_values: Vec<String> = rdk.records().into_iter().map(|(_, _, v)| v).collect();
    rdk_values.sort();
    assert_eq!(rdk_values, want, "{}", rdk.describe());

    let list = sluice(&broker, &["group", "list"], b"");
    assert!(
        list.lines().any(|l| l == "cli-side") && list.lines().any(|l| l == "rdk-side"),
        "{list}"
    );
    let table = sluice(&broker, &["group", "describe", "cli-side"], b"");
    assert!(table.contains("STATE Empty"), "{table}");
    let lags: BTreeMap<String, String> = table
        .lines()
        .filter(|l| l.starts_with(topic))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[1].to_string(), cols[4].to_string())
        })
        .collect();
    assert_eq!(lags.len(), 3, "{table}");
    assert!(lags.values().all(|lag| lag == "0"), "{table}");
    let rdk_table = sluice(&broker, &["group", "describe", "rdk-side"], b"");
    assert!(rdk_table.contains("STATE Stable"), "{rdk_table}");

    // Reset is refused while the group has members, allowed once empty.
    let refused = run(
        Command::new(bin_path("sluice")).args([
            "--brokers",
            &broker.bootstrap(),
            "group",
            "reset",
            "rdk-side",
            "--topic",
            topic,
            "--to",
            "earliest",
        ]),
        b"",
        Duration::from_secs(30),
    );
    assert_ne!(refused.code, Some(0), "reset of a live group must fail");
    sluice(
        &broker,
        &[
            "group", "reset", "cli-side", "--topic", topic, "--to", "earliest",
        ],
        b"",
    );
    let again = consume(30);
    let mut again_sorted = again.clone();
    again_sorted.sort();
    assert_eq!(
        again_sorted, want,
        "after the reset the group reads from the start"
    );

    sluice(&broker, &["group", "delete", "cli-side"], b"");
    let list = sluice(&broker, &["group", "list"], b"");
    assert!(!list.lines().any(|l| l == "cli-side"), "{list}");
    std::fs::write(&stop, b"").expect("stop file");
    let mut rdk = rdk;
    rdk.wait_exit(Duration::from_secs(30));
}

/// The Sluice library's `GroupConsumer`: two members split four partitions, read every record once
/// between them, commit; when one closes the other takes everything and reads only new records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_library_group_consumers_split_commit_and_take_over() {
    use sluice_client::group::{GroupConsumer, GroupConsumerConfig, OffsetReset};

    let broker = broker();
    let topic = "lib-orders";
    create_topic(&broker, topic, 4);
    let first = values("lib", 200);
    produce(&broker, topic, &first);

    let member = || async {
        let mut config = GroupConsumerConfig::new(&broker.bootstrap(), "lib-group");
        config.group.session_timeout = Duration::from_millis(SESSION_MS);
        config.group.heartbeat_interval = Duration::from_millis(300);
        config.group.rebalance_timeout = Duration::from_secs(10);
        config.auto_offset_reset = OffsetReset::Earliest;
        let mut c = GroupConsumer::new(config).await.expect("group consumer");
        c.subscribe(&[topic]);
        c
    };
    let (mut a, mut b) = (member().await, member().await);
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(seen.len() >= first.len() && a.assignment().len() == 2 && b.assignment().len() == 2) {
        assert!(
            std::time::Instant::now() < deadline,
            "no 2/2 split: {:?} {:?}, {} records",
            a.assignment(),
            b.assignment(),
            seen.len()
        );
        let (ra, rb) = tokio::join!(
            a.poll(Duration::from_millis(200)),
            b.poll(Duration::from_millis(200))
        );
        for r in ra.expect("poll a").into_iter().chain(rb.expect("poll b")) {
            seen.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (
        a.assignment().iter().cloned().collect(),
        b.assignment().iter().cloned().collect(),
    );
    assert!(sa.is_disjoint(&sb), "{sa:?} {sb:?}");
    seen.sort();
    let mut want = first.clone();
    want.sort();
    // A rebalance during start-up may hand a partition over before it was committed: at least
    // once, and every record present.
    seen.dedup();
    assert_eq!(seen, want);
    a.commit_sync().await.expect("commit a");
    b.commit_sync().await.expect("commit b");
    a.close().await.expect("close a");

    let mut after: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while b.assignment().len() != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "takeover: {:?}",
            b.assignment()
        );
        for r in b.poll(Duration::from_millis(200)).await.expect("poll b") {
            after
                .push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    assert!(
        after.is_empty(),
        "everything was committed, nothing to read again: {after:?}"
    );
    let second = values("lib-second", 40);
    produce(&broker, topic, &second);
    while after.len() < second.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "takeover: {:?}, {} records",
            b.assignment(),
            after.len()
        );
        for r in b.poll(Duration::from_millis(200)).await.expect("poll b") {
            after
                .push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    after.sort();
    let mut want = second.clone();
    want.sort();
    assert_eq!(
        after, want,
        "only the new records, each once: the old ones were committed"
    );
    b.close().await.expect("close b");
}

/// A static member (`group.instance.id`) printing `ASSIGNED` / `REVOKED`; runs until killed.
const CONFLUENT_STATIC_MEMBER: &str = r#"
import sys
from confluent_kafka import Consumer
bootstrap, group, topic, instance, session_ms = sys.argv[1:6]
c = Consumer({
    "bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": instance,
    "session.timeout.ms": int(session_ms), "heartbeat.interval.ms": 300,
    "partition.assignment.strategy": "range",
})
def assigned(consumer, partitions):
    print("ASSIGNED " + ",".join(str(p.partition) for p in partitions), flush=True)
def revoked(consumer, partitions):
    print("REVOKED", flush=True)
c.subscribe([topic], on_assign=assigned, on_revoke=revoked)
while True:
    c.poll(0.1)
"#;

/// A static member that restarts within its session timeout takes its partitions back without a
/// rebalance: the other member is never revoked.
#[test]
fn librdkafka_static_member_restart_keeps_its_partitions_without_rebalance() {
    let broker = broker();
    let dir = tempfile::tempdir().expect("temp dir");
    create_topic(&broker, "static-orders", 4);
    let script = dir.path().join("static.py");
    std::fs::write(&script, CONFLUENT_STATIC_MEMBER).expect("write script");
    let member = |instance: &str| {
        Proc::spawn(
            instance,
            Command::new(python())
                .arg(&script)
                .arg(broker.bootstrap())
                .arg("static-group")
                .arg("static-orders")
                .arg(instance)
                .arg("10000"),
        )
    };
    let a = member("instance-a");
    let mut b = member("instance-b");
    wait_until(
        Duration::from_secs(40),
        "both static members hold two partitions",
        || {
            a.assignment().is_some_and(|s| s.len() == 2)
                && b.assignment().is_some_and(|s| s.len() == 2)
        },
    );
    let (a_before, b_before) = (a.lines(), b.assignment());
    b.kill9();
    let b2 = member("instance-b");
    wait_until(
        Duration::from_secs(30),
        "the restarted member gets its partitions back",
        || b2.assignment().is_some(),
    );
    assert_eq!(
        b2.assignment(),
        b_before,
        "same partitions as before the restart\n{}",
        b2.describe()
    );
    assert_eq!(
        a.lines(),
        a_before,
        "the other member saw no rebalance\n{}",
        a.describe()
    );
}
