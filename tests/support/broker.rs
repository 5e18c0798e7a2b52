//! A real `sluiced` process for a test: temp data dir, ephemeral port, killed on drop.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use crate::clients::{is_executable, workspace_root};

/// How long a broker may take to print its listening line (recovery of a big log in a debug
/// build included).
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd broker may take to drain and exit.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// The line `sluiced` prints on stdout once it accepts connections.
const LISTENING_PREFIX: &str = "sluiced listening on ";
/// Lines of each run's log printed when a test fails (`SLUICE_TEST_LOG_LINES` overrides).
const LOG_TAIL_LINES: usize = 40;

/// Path of a workspace binary (`sluiced`, `sluice`) built next to the running test executable.
/// Panics with the build command when it is missing or older than its sources.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os("SLUICE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> -> target/<profile>
            exe.parent()
                .and_then(Path::parent)
                .expect("test executable inside target/<profile>/deps")
                .to_path_buf()
        }
    };
    let path = dir.join(name);
    let build = format!("cargo build --bin {name} (cargo test --workspace builds it)");
    assert!(
        is_executable(&path),
        "{} is not built; run {build}",
        path.display()
    );
    let newest = newest_dependency(&dir, name).or_else(|| newest_source(name));
    if let (Some(built), Some(source)) = (mtime(&path), newest) {
        assert!(
            built >= source,
            "{} is older than the sources; run {build}",
            path.display()
        );
    }
    path
}

fn mtime(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|meta| meta.modified()).ok()
}

/// The newest of the files cargo's dep-info (`<dir>/<name>.d`) says the binary was built from:
/// exact, so a change to a `#[cfg(test)]` module (which cargo rightly does not relink the binary
/// for) is not mistaken for a stale binary. Paths with spaces are escaped as `\ ` there.
fn newest_dependency(dir: &Path, name: &str) -> Option<SystemTime> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.d"))).ok()?;
    let (_, deps) = text.lines().next()?.split_once(": ")?;
    let unescaped = deps.replace("\\ ", "\u{0}");
    unescaped
        .split(' ')
        .filter(|p| !p.is_empty())
        .filter_map(|p| mtime(Path::new(&p.replace('\u{0}', " "))))
        .max()
}

/// The newest source file the binary `name` is built from (its crate and the crates it uses):
/// the fallback when cargo's dep-info is missing.
fn newest_source(name: &str) -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                if let Some(time) = mtime(&path) {
                    *newest = (*newest).max(Some(time));
                }
            }
        }
    }
    let crates: &[&str] = match name {
        "sluiced" => &["broker/src", "protocol/src"],
        "sluice" => &["client/src", "protocol/src"],
        _ => &[],
    };
    let mut newest = None;
    for crate_dir in crates {
        walk(&workspace_root().join(crate_dir), &mut newest);
    }
    newest
}

/// Options for a [`Broker`]; [`Broker::start`] uses the defaults.
#[derive(Debug, Default)]
pub struct BrokerBuilder {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
}

impl BrokerBuilder {
    /// Adds a command-line argument for `sluiced` (after `--listen` and `--data-dir`).
    pub fn arg(mut self, arg: impl Into<String>) -> BrokerBuilder {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable (e.g. `RUST_LOG`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> BrokerBuilder {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Uses `dir` as the data dir instead of a fresh temp dir (the caller keeps it alive).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> BrokerBuilder {
        self.data_dir = Some(dir.into());
        self
    }

    /// Starts the broker and waits for it to listen; panics (with its log) if it does not.
    pub fn start(self) -> Broker {
        let temp = tempfile::Builder::new()
            .prefix("sluice-test-")
            .tempdir()
            .expect("temp dir");
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.path().join("data"));
        let mut broker = Broker {
            child: None,
            addr: None,
            data_dir,
            temp,
            builder: self,
            starts: 0,
        };
        broker.spawn("127.0.0.1:0".to_string());
        broker
    }
}

/// A running `sluiced` (see the crate doc). Dropping it kills the process.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    addr: Option<SocketAddr>,
    data_dir: PathBuf,
    temp: tempfile::TempDir,
    builder: BrokerBuilder,
    starts: u32,
}

impl Broker {
    /// A broker with default settings on an ephemeral port and a fresh data dir.
    pub fn start() -> Broker {
        BrokerBuilder::default().start()
    }

    /// Options before starting.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("broker has listened")
    }

    /// `127.0.0.1:PORT`, for a client's bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    /// Its data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_path(&self) -> PathBuf {
        self.temp
            .path()
            .join(format!("sluiced-{}.log", self.starts))
    }

    /// The broker's log (stderr) of its current or last run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self, listen: String) {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let mut command = Command::new(bin_path("sluiced"));
        command
            .arg("--listen")
            .arg(&listen)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.builder.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .envs(self.builder.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = command.spawn().expect("spawn sluiced");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let (found, listening) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(addr) = line.trim().strip_prefix(LISTENING_PREFIX) {
                    let _ = found.send(addr.to_string());
                    break;
                }
                line.clear();
            }
            // Keep draining so the broker never blocks on a full stdout pipe.
            let _ = std::io::copy(&mut lines.into_inner().take(u64::MAX), &mut std::io::sink());
        });
        let end = Instant::now() + START_DEADLINE;
        loop {
            match listening.recv_timeout(Duration::from_millis(50)) {
                Ok(addr) => {
                    self.addr = Some(addr.parse().expect("listening address"));
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => {
                    if let Some(status) = self.try_status() {
                        panic!(
                            "sluiced exited ({status}) before listening\n--- log ---\n{}",
                            self.log()
                        );
                    }
                }
                Err(_) => {
                    let status = self.try_status();
                    self.kill9();
                    panic!(
                        "sluiced did not print its listening line within {START_DEADLINE:?} \
                         (status {status:?})\n--- log ---\n{}",
                        self.log()
                    );
                }
            }
        }
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same data dir and the same port (after `kill9` or
    /// `shutdown`; kills it first if it still runs).
    pub fn restart(&mut self) {
        self.kill9();
        let listen = self.addr().to_string();
        // The port was ours a moment ago; another process grabbing it in between is rare but
        // possible, so a failed bind is retried briefly before giving up.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.spawn(listen.clone())
            })) {
                Ok(()) => return,
                Err(panic) if Instant::now() >= end => std::panic::resume_unwind(panic),
                Err(_) => {
                    self.kill9();
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    pub fn shutdown(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker is running");
        // SAFETY: kill(2) with a pid we spawned and have not reaped; no memory is involved.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let end = Instant::now() + SHUTDOWN_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sluiced did not exit within {SHUTDOWN_DEADLINE:?} of SIGTERM\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            // Every run's tail, oldest first: a failure often starts in a run that has ended
            // (a node stopped mid-test). SLUICE_TEST_LOG_LINES widens the tail.
            let lines = std::env::var("SLUICE_TEST_LOG_LINES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(LOG_TAIL_LINES);
            for run in 1..=self.starts {
                let path = self.temp.path().join(format!("sluiced-{run}.log"));
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(lines).collect();
                eprintln!(
                    "--- sluiced log tail, run {run} of {} ({}) ---",
                    self.starts,
                    self.data_dir.display()
                );
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}
