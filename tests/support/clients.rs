//! Real Kafka clients (kcat, Python with confluent-kafka and kafka-python) and running commands
//! with a deadline.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (where `Cargo.toml` and `tests/` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `kcat` executable; panics with the install command when it is missing.
pub fn kcat() -> PathBuf {
    find_on_path("kcat").unwrap_or_else(|| {
        panic!(
            "kcat is not installed; install it with `apt-get install -y kcat` \
             (.ci/run does this in CI)"
        )
    })
}

/// The Python interpreter of a venv with confluent-kafka and kafka-python: `$SLUICE_PYTHON`, else
/// `/opt/sluice-venv/bin/python`, else `.ci/venv/bin/python`; panics with the install commands.
pub fn python() -> PathBuf {
    let candidates = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("/opt/sluice-venv/bin/python"),
            workspace_root().join(".ci/venv/bin/python"),
        ]);
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "no Python venv with the Kafka clients found; create one with \
         `python3 -m venv .ci/venv && .ci/venv/bin/pip install confluent-kafka kafka-python` \
         or point SLUICE_PYTHON at an interpreter that has them (.ci/run does this in CI)"
    )
}

/// Path of a script in `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    workspace_root().join("tests/python").join(name)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A background process (a client script, a load generator) killed and reaped on drop, also when
/// the test panics.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A finished command's status and output.
#[derive(Debug)]
pub struct Output {
    /// Exit code, `None` if killed by a signal.
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Stdout lossily decoded.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with both streams unless the command exited 0.
    pub fn assert_success(&self, what: &str) -> &Output {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout_text(),
            self.stderr
        );
        self
    }
}

/// Runs `command` with `stdin` as its input; kills it and panics if it runs past `deadline`.
pub fn run(command: &mut Command, stdin: &[u8], deadline: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {description}: {err}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit without reading everything; that shows in its status instead.
        let _ = input.write_all(&data);
    });
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let end = Instant::now() + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                panic!(
                    "{description} did not finish within {deadline:?}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
        }
    };
    let _ = writer.join();
    Output {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    }
}

/// `true` if `path` exists and is executable by someone.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
