//! Python Kafka clients against a real `sluiced`: confluent-kafka (librdkafka 2.x) and
//! kafka-python, each round-tripping records byte for byte (the scripts in `tests/python/` do the
//! comparing and exit non-zero naming the first difference).

use std::process::Command;
use std::time::Duration;

use sluice_tests::{python, python_script, run, Broker};

const SCRIPT_DEADLINE: Duration = Duration::from_secs(240);

fn run_script(broker: &Broker, script: &str, topic: &str, records: u32, partitions: u32) -> String {
    let out = run(
        Command::new(python())
            .arg(python_script(script))
            .arg(broker.bootstrap())
            .arg(topic)
            .arg(records.to_string())
            .arg(partitions.to_string()),
        b"",
        SCRIPT_DEADLINE,
    );
    out.assert_success(script);
    out.stdout_text()
}

#[test]
fn confluent_kafka_round_trips_100k_records_with_keys_and_headers() {
    let broker = Broker::start();
    let summary = run_script(&broker, "confluent_roundtrip.py", "rt", 100_000, 4);
    let summary: serde_json::Value = serde_json::from_str(summary.trim()).expect("summary");
    assert_eq!(summary["records"], 100_000);
    let ends = summary["ends"].as_object().expect("ends");
    assert_eq!(ends.len(), 4, "every partition got records: {summary}");
}

#[test]
fn kafka_python_idempotent_producer_round_trips() {
    let broker = Broker::start();
    let summary = run_script(&broker, "kafka_python_roundtrip.py", "kp", 5_000, 3);
    let summary: serde_json::Value = serde_json::from_str(summary.trim()).expect("summary");
    assert_eq!(summary["records"], 5_000);
}
