//! The daemon's life cycle as an operator sees it: a config file with flags overriding it,
//! refusal to start on an invalid config or a data dir in use (non-zero exit, a message naming the
//! problem), SIGTERM shutting down cleanly (exit 0, clean restart without recovery), data kept.

use std::process::Command;
use std::time::Duration;

use sluice_tests::{bin_path, kcat, run, Broker};

const DEADLINE: Duration = Duration::from_secs(60);

fn kcat_json(broker: &Broker, args: &[&str]) -> serde_json::Value {
    let out = run(
        Command::new(kcat())
            .args(["-b", &broker.bootstrap()])
            .args(args),
        b"",
        DEADLINE,
    );
    out.assert_success("kcat");
    serde_json::from_slice(&out.stdout).expect("kcat json")
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sluiced.toml");
    std::fs::write(
        &file,
        "auto_create_topics = true\nnum_partitions = 2\n\n[topic_defaults]\n\"retention.ms\" = \"3600000\"\n",
    )
    .expect("config file");
    let broker = Broker::builder()
        .arg("--config")
        .arg(file.display().to_string())
        .arg("--num-partitions")
        .arg("3")
        .start();
    run(
        Command::new(kcat()).args(["-b", &broker.bootstrap(), "-P", "-t", "fromfile"]),
        b"x\n",
        DEADLINE,
    )
    .assert_success("kcat -P");
    let meta = kcat_json(&broker, &["-L", "-J", "-t", "fromfile"]);
    let partitions = meta["topics"][0]["partitions"].as_array().map(Vec::len);
    assert_eq!(partitions, Some(3), "the flag beat the file's 2: {meta}");
}

#[test]
fn invalid_settings_refuse_to_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, "listen_port = 1\n").expect("file");
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec!["--max-connections".into(), "0".into()],
            "max-connections",
        ),
        (
            vec!["--advertised-listener".into(), "nohost".into()],
            "advertised-listener",
        ),
        (
            vec!["--topic-default".into(), "retention.ms=soon".into()],
            "retention.ms",
        ),
        (
            vec!["--config".into(), bad_file.display().to_string()],
            "listen_port",
        ),
    ];
    for (args, needle) in cases {
        let data = dir.path().join("data");
        let out = run(
            Command::new(bin_path("sluiced"))
                .args(["--listen", "127.0.0.1:0", "--data-dir"])
                .arg(&data)
                .args(&args),
            b"",
            DEADLINE,
        );
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(!data.exists(), "{args:?}: the data dir was touched");
    }
}

#[test]
fn a_second_broker_on_the_same_data_dir_refuses_to_start() {
    let broker = Broker::start();
    let out = run(
        Command::new(bin_path("sluiced"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(broker.data_dir()),
        b"",
        DEADLINE,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("in use by another sluiced process"),
        "{}",
        out.stderr
    );
    // The first one is unharmed.
    kcat_json(&broker, &["-L", "-J"]);
}

#[test]
fn a_port_in_use_refuses_to_start_before_touching_data() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        Command::new(bin_path("sluiced"))
            .args(["--listen", &broker.bootstrap(), "--data-dir"])
            .arg(dir.path().join("data")),
        b"",
        DEADLINE,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("cannot listen on"), "{}", out.stderr);
    assert!(
        !dir.path().join("data/cluster.json").exists(),
        "data was written"
    );
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_the_data() {
    let mut broker = Broker::builder().arg("--auto-create-topics").start();
    run(
        Command::new(kcat()).args(["-b", &broker.bootstrap(), "-P", "-t", "kept", "-p", "0"]),
        b"one\ntwo\nthree\n",
        DEADLINE,
    )
    .assert_success("kcat -P");
    let status = broker.shutdown();
    assert!(status.success(), "exit status {status}\n{}", broker.log());
    let log = broker.log();
    assert!(log.contains("clean shutdown"), "{log}");
    broker.restart();
    // A clean shutdown means no recovery scan at the next start.
    assert!(!broker.log().contains("clean=false"), "{}", broker.log());
    let out = run(
        Command::new(kcat()).args([
            "-b",
            &broker.bootstrap(),
            "-C",
            "-t",
            "kept",
            "-e",
            "-f",
            "%s\\n",
        ]),
        b"",
        DEADLINE,
    );
    out.assert_success("kcat -C");
    assert_eq!(out.stdout_text(), "one\ntwo\nthree\n");
}
