//! What `sluice produce` writes (keys, unicode values, headers, gzip batches: the venv has no lz4
//! module for kafka-python) is read back identically by kafka-python, the other independent Kafka
//! client implementation.

use std::process::Command;
use std::time::Duration;

use sluice_tests::{bin_path, python, run, Broker};

const DEADLINE: Duration = Duration::from_secs(120);

/// One record as the reader prints it: key, value, headers.
type Row = (String, String, Vec<(String, String)>);

/// A group-less kafka-python consumer printing one JSON array [key, value, headers] per record.
const READER: &str = r#"
import json, sys
from kafka import KafkaConsumer, TopicPartition
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=20000)
tp = TopicPartition(topic, 0)
c.assign([tp])
c.seek_to_beginning(tp)
out = []
for m in c:
    out.append([m.key.decode(), m.value.decode(), [[k, v.decode()] for k, v in m.headers]])
    if len(out) == n:
        break
c.close()
print(json.dumps(out))
"#;

#[test]
fn kafka_python_reads_what_sluice_produced() {
    let broker = Broker::start();
    let mut cmd = Command::new(bin_path("sluice"));
    cmd.args([
        "topic",
        "create",
        "to-python",
        "--brokers",
        &broker.bootstrap(),
    ]);
    run(&mut cmd, b"", DEADLINE).assert_success("topic create");

    let lines: Vec<(String, String)> = (0..50)
        .map(|i| (format!("k{i}"), format!("valeur\t{i} ✓ {}", "x".repeat(i))))
        .collect();
    let input: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let mut cmd = Command::new(bin_path("sluice"));
    cmd.args([
        "produce",
        "to-python",
        "-K",
        "=",
        "-H",
        "h=1",
        "--compression",
        "gzip",
    ])
    .args(["--brokers", &broker.bootstrap()]);
    run(&mut cmd, input.as_bytes(), DEADLINE).assert_success("sluice produce");

    let mut cmd = Command::new(python());
    cmd.args(["-c", READER, &broker.bootstrap(), "to-python", "50"]);
    let out = run(&mut cmd, b"", DEADLINE);
    out.assert_success("kafka-python consumer");
    let got: Vec<Row> = serde_json::from_slice(&out.stdout).expect("kafka-python printed JSON");
    let want: Vec<Row> = lines
        .into_iter()
        .map(|(k, v)| (k, v, vec![("h".to_string(), "1".to_string())]))
        .collect();
    assert_eq!(got, want);
}
