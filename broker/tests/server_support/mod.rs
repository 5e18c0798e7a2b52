//! In-process broker for the `server_*` tests: a `Server` on 127.0.0.1:0 with a temp data dir,
//! driven by a tiny raw Kafka connection built on `sluice_protocol::wire`.
#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_broker::config::BrokerConfig;
use sluice_broker::server::Server;
use sluice_protocol::record::{BatchOptions, RecordBatchBuilder};
use sluice_protocol::wire::messages::create_topics::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use sluice_protocol::wire::messages::fetch::{FetchPartition, FetchRequest, FetchTopic};
use sluice_protocol::wire::messages::produce::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use sluice_protocol::wire::{self, ApiKey, Request, RequestHeader, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every wait in these tests is bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running in-process broker; `stop` shuts it down cleanly, drop aborts it.
pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: std::sync::Arc<sluice_broker::server::Broker>,
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), sluice_broker::server::ServerError>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        TestBroker::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut broker = TestBroker::start_in(dir.path(), tweak).await;
        broker._dir = Some(dir);
        broker
    }

    pub async fn start_in(data_dir: &Path, tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let mut config = BrokerConfig::for_data_dir(data_dir);
        tweak(&mut config);
        let server = Server::open(config).await.expect("server opens");
        let addr = server.local_addr();
        let broker = server.broker().clone();
        let shutdown = server.shutdown_token();
        let task = tokio::spawn(server.run());
        TestBroker {
            addr,
            broker,
            data_dir: data_dir.to_path_buf(),
            shutdown,
            task: Some(task),
            _dir: None,
        }
    }

    /// Graceful shutdown; returns the data dir's owner so the caller can reopen it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("shutdown within the deadline")
                .expect("server task")
                .expect("clean shutdown");
        }
        self._dir.take()
    }

    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A raw Kafka connection.
pub struct Conn {
    pub stream: TcpStream,
    next_correlation_id: i32,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            next_correlation_id: 1,
        }
    }

    /// Sends a request; returns its correlation id.
    pub async fn send(&mut self, version: i16, request: &Request) -> i32 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader {
            api_key: request.api_key().as_i16(),
            api_version: version,
            correlation_id,
            client_id: Some("server-test".to_string()),
        };
        let mut out = BytesMut::new();
        wire::encode_request(&header, request, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
        correlation_id
    }

    /// Reads the next response frame: (correlation id, body).
    pub async fn recv_raw(&mut self) -> (i32, Bytes) {
        let read = async {
            let size = self.stream.read_i32().await.expect("response size");
            let mut body = vec![0u8; usize::try_from(size).expect("size")];
            self.stream.read_exact(&mut body).await.expect("body");
            wire::decode_response_frame(Bytes::from(body)).expect("frame")
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("response within the deadline")
    }

    pub async fn recv(&mut self, api_key: ApiKey, version: i16) -> (i32, Response) {
        let (correlation_id, body) = self.recv_raw().await;
        let response = wire::decode_response(api_key, version, body).expect("decode response");
        (correlation_id, response)
    }

    pub async fn call(&mut self, version: i16, request: Request) -> Response {
        let api_key = request.api_key();
        let sent = self.send(version, &request).await;
        let (got, response) = self.recv(api_key, version).await;
        assert_eq!(got, sent, "correlation id");
        response
    }
}

pub fn create_topic_request(name: &str, partitions: i32, configs: &[(&str, &str)]) -> Request {
    Request::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                })
                .collect(),
        }],
        timeout_ms: 10_000,
        validate_only: false,
    })
}

/// Creates a topic and asserts success.
pub async fn create_topic(conn: &mut Conn, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let Response::CreateTopics(response) = conn
        .call(4, create_topic_request(name, partitions, configs))
        .await
    else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0]);
}

/// A batch of `n` records `key-i` / `value-i` (plus `extra` value bytes).
pub fn batch(n: usize, options: BatchOptions, extra: usize) -> Bytes {
    let mut builder = RecordBatchBuilder::new(options);
    let now = now_ms();
    for i in 0..n {
        let value = format!("value-{i}-{}", "x".repeat(extra));
        builder
            .append(
                now,
                Some(format!("key-{i}").as_bytes()),
                Some(value.as_bytes()),
                &[("h", Some(b"v"))],
            )
            .expect("append");
    }
    builder.finish().expect("finish")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

pub fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> Request {
    Request::Produce(ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.to_string(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
            }],
        }],
    })
}

/// Produces and returns (error code, base offset).
pub async fn produce(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> (i16, i64) {
    let Response::Produce(response) = conn
        .call(7, produce_request(topic, partition, acks, records))
        .await
    else {
        panic!("not a Produce response")
    };
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> Request {
    Request::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes,
        max_bytes: 50 * 1024 * 1024,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.to_string(),
            partitions: vec![FetchPartition {
                partition,
                current_leader_epoch: -1,
                fetch_offset: offset,
                log_start_offset: -1,
                partition_max_bytes: 1024 * 1024,
            }],
        }],
        forgotten_topics_data: Vec::new(),
        rack_id: String::new(),
    })
}
