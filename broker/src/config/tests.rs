use super::*;
use clap::Parser;

fn flags(args: &[&str]) -> Flags {
    let mut argv = vec!["sluiced"];
    argv.extend_from_slice(args);
    Flags::try_parse_from(argv).expect("flags parse")
}

fn merged(args: &[&str], file: &str) -> Result<BrokerConfig, ConfigError> {
    let config = BrokerConfig::merge(flags(args), FileConfig::parse(file).expect("toml"))?;
    config.validate()?;
    Ok(config)
}

#[test]
fn defaults_serve_a_newcomer() {
    let config = merged(&[], "").expect("valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:9092");
    assert_eq!(config.data_dir, PathBuf::from("./sluice-data"));
    assert_eq!(config.node_id, 0);
    assert!(!config.auto_create_topics);
    assert_eq!(config.socket_request_max_bytes, 100 * 1024 * 1024);
}

#[test]
fn flags_override_the_file() {
    let file = r#"
        listen = "127.0.0.1:7000"
        node_id = 3
        data_dir = "/tmp/from-file"
        [topic_defaults]
        "retention.ms" = "1000"
        "segment.bytes" = "2048"
    "#;
    let config = merged(
        &[
            "--listen",
            "127.0.0.1:0",
            "--topic-default",
            "retention.ms=5",
        ],
        file,
    )
    .expect("valid");
    assert_eq!(config.listen.port(), 0);
    assert_eq!(config.node_id, 3);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));
    assert_eq!(config.topic_defaults["retention.ms"], "5");
    assert_eq!(config.topic_defaults["segment.bytes"], "2048");
}

#[test]
fn unknown_file_keys_are_rejected_with_position() {
    let err = FileConfig::parse("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").expect_err("typo");
    assert!(err.contains("listen_port"), "{err}");
}

#[test]
fn invalid_values_name_the_setting() {
    let cases: &[(&[&str], &str)] = &[
        (&["--listen", "nonsense"], "listen"),
        (&["--node-id=-1"], "node-id"),
        (&["--max-connections", "0"], "max-connections"),
        (
            &["--socket-request-max-bytes", "10"],
            "socket-request-max-bytes",
        ),
        (&["--advertised-listener", "host:0"], "advertised-listener"),
        (&["--advertised-listener", "host"], "advertised-listener"),
        (&["--num-partitions", "0"], "num-partitions"),
        (
            &["--connections-max-idle-ms", "1"],
            "connections-max-idle-ms",
        ),
        (&["--topic-default", "novalue"], "topic-default"),
        (&["--topic-default", "retention.ms=soon"], "topic-default"),
        (&["--topic-default", "no.such.config=1"], "topic-default"),
        (&["--peers", "1@h:1"], "peer-listen"),
        (
            &["--peers", "1@h:1,2@h:2", "--peer-listen", "127.0.0.1:0"],
            "peers",
        ),
        (&["--peers", "x@h:1"], "peers"),
        (&["--peer-listen", "127.0.0.1:9093"], "peer-listen"),
        (
            &["--peers", "0@h:1", "--peer-listen", "127.0.0.1:0"],
            "peer-listen",
        ),
        (
            &["--peers", "0@h:1,5000@h:2", "--peer-listen", "127.0.0.1:9"],
            "peers",
        ),
    ];
    for (args, field) in cases {
        let err = merged(args, "").expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with(&format!("invalid config: {field} ")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn cluster_settings_parse() {
    let config = merged(
        &[
            "--node-id",
            "2",
            "--peer-listen",
            "127.0.0.1:9102",
            "--peers",
            "1@localhost:9101, 2@localhost:9102,3@localhost:9103",
        ],
        "",
    )
    .expect("valid");
    assert_eq!(config.peers.len(), 3);
    assert_eq!(config.peers[1].node_id, 2);
    assert_eq!(config.peers[1].addr, "localhost:9102");
}

#[test]
fn advertised_address_prefers_the_setting() {
    let mut config = BrokerConfig::for_data_dir("/tmp/x");
    let bound: SocketAddr = "0.0.0.0:4000".parse().expect("addr");
    assert_eq!(config.advertised(bound), ("127.0.0.1".to_string(), 4000));
    config.advertised_listener = Some("kafka.example:9092".to_string());
    assert_eq!(
        config.advertised(bound),
        ("kafka.example".to_string(), 9092)
    );
}

#[test]
fn kafka_property_names_are_accepted_in_the_file() {
    let file = r#"
        "broker.id" = 7
        "num.partitions" = 4
        "auto.create.topics.enable" = true
        "socket.request.max.bytes" = 2048
    "#;
    let config = merged(&[], file).expect("valid");
    assert_eq!(config.node_id, 7);
    assert_eq!(config.num_partitions, 4);
    assert!(config.auto_create_topics);
    assert_eq!(config.socket_request_max_bytes, 2048);
}
