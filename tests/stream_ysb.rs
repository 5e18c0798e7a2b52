//! The Yahoo Streaming Benchmark end to end against a real `sluiced`: `ysb generate`, `ysb run`
//! until idle, `ysb check`; then the same with the job SIGKILLed at random moments several times and
//! restarted, after which `ysb check` must still pass (nothing lost, nothing counted twice).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_tests::{run, workspace_root, Broker};

const DEADLINE: Duration = Duration::from_secs(180);

/// The `ysb` example next to this test's profile dir, built first if missing or stale (a
/// `cargo test -p sluice-tests` run does not build the stream crate's examples by itself).
fn ysb() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples/ysb");
    BUILT.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        // `--workspace` resolves features as `cargo test --workspace` does (the broker's
        // dev-dependency turns on tokio's `test-util`), so after that command this build is a
        // no-op; `-p sluice-stream` would compile tokio and everything above it a second time.
        cmd.current_dir(workspace_root())
            .args(["build", "--workspace", "--example", "ysb"]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        run(&mut cmd, b"", Duration::from_secs(900)).assert_success("cargo build --example ysb");
    });
    path
}

/// Kills the job if the test ends before it does.
struct JobGuard(Child);

impl Drop for JobGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn generate(broker: &Broker, topic: &str, events: u64) {
    run(
        Command::new(ysb())
            .args([
                "generate",
                "--brokers",
                &broker.bootstrap(),
                "--topic",
                topic,
            ])
            .args([
                "--events",
                &events.to_string(),
                "--event-spacing-us",
                "400",
                "--partitions",
                "3",
            ]),
        b"",
        DEADLINE,
    )
    .assert_success("ysb generate");
}

fn run_args(broker: &Broker, input: &str, output: &str, job: &str, batch_ms: &str) -> Vec<String> {
    [
        "run",
        "--brokers",
        &broker.bootstrap(),
        "--input",
        input,
        "--output",
        output,
        "--job-id",
        job,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        [
            "--batch-ms",
            batch_ms,
            "--max-records-per-partition",
            "1500",
        ]
        .iter()
        .map(|s| s.to_string()),
    )
    .collect()
}

fn run_to_idle(broker: &Broker, input: &str, output: &str, job: &str) -> String {
    let out = run(
        Command::new(ysb())
            .args(run_args(broker, input, output, job, "100"))
            .args(["--stop-when-idle", "1500"]),
        b"",
        DEADLINE,
    );
    out.assert_success("ysb run");
    out.stderr
}

fn check(broker: &Broker, input: &str, output: &str) -> String {
    let out = run(
        Command::new(ysb()).args([
            "check",
            "--brokers",
            &broker.bootstrap(),
            "--input",
            input,
            "--output",
            output,
        ]),
        b"",
        DEADLINE,
    );
    out.assert_success("ysb check");
    out.stdout_text()
}

#[test]
fn ysb_generate_run_check() {
    let broker = Broker::start();
    generate(&broker, "ad-events", 60_000);
    let log = run_to_idle(&broker, "ad-events", "campaign-counts", "ysb-plain");
    assert!(log.contains("0 late records dropped"), "{log}");
    let verdict = check(&broker, "ad-events", "campaign-counts");
    assert!(verdict.contains("ysb check: OK"), "{verdict}");
    // 60k events 400 us apart span 24 s of event time: at least 3 windows per campaign.
    let results: u64 = verdict
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(results >= 300, "{verdict}");
}

#[test]
fn ysb_survives_sigkill_at_random_moments() {
    let broker = Broker::start();
    generate(&broker, "ad-events", 90_000);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("kill schedule seed {seed}");
    let mut x = seed;
    let (mut reruns, mut skipped) = (0, 0);
    for round in 0..4 {
        let mut child = Command::new(ysb())
            // 20 ms batches keep the job busy back to back, so most kills land inside a batch.
            .args(run_args(
                &broker,
                "ad-events",
                "campaign-counts",
                "ysb-kill",
                "20",
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ysb run");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut guard = JobGuard(child);
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Let a random number of batches complete (1..=6), then SIGKILL mid-flight.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let batches = 1 + (x % 6) as usize;
        let start = Instant::now();
        let mut seen = 0;
        while seen < batches && start.elapsed() < DEADLINE {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    reruns += usize::from(line.contains("re-run after restart"));
                    skipped += usize::from(line.contains("will be skipped"));
                    seen += usize::from(line.contains(" records ["));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("ysb run exited early in round {round}")
                }
            }
        }
        assert!(
            seen >= batches,
            "round {round}: only {seen} batches in {DEADLINE:?}"
        );
        // A random extra delay inside the next batch (0-90 ms), so the kill lands mid-batch.
        std::thread::sleep(Duration::from_millis((x >> 20) % 90));
        // `Child::kill` is SIGKILL on Unix: no chance to flush or commit anything.
        guard.0.kill().expect("kill -9 the job");
        let _ = guard.0.wait();
    }
    let log = run_to_idle(&broker, "ad-events", "campaign-counts", "ysb-kill");
    assert!(log.contains("0 late records dropped"), "{log}");
    reruns += log.matches("re-run after restart").count();
    skipped += log.matches("will be skipped").count();
    let verdict = check(&broker, "ad-events", "campaign-counts");
    assert!(verdict.contains("ysb check: OK"), "{verdict}");
    eprintln!(
        "{reruns} batches re-run after a kill, {skipped} of them found output to skip; {verdict}"
    );
}
