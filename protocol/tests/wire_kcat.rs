//! librdkafka (through kcat) decodes the responses Sluice's encoders write. A minimal in-process
//! responder built only from `wire` (ApiVersions with the KIP-511 downgrade, Metadata, Produce,
//! ListOffsets, Fetch over an in-memory log) serves real `kcat -L`, `kcat -P` and `kcat -C`: the
//! listing names our topic and broker, produced records land intact, and consuming returns them
//! in order. kcat is a required test tool (`apt-get install -y kcat`; CI installs it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sluice_protocol::record::{BatchIter, RecordBatch};
use sluice_protocol::wire::messages::{fetch, list_offsets, metadata, produce};
use sluice_protocol::wire::{
    api_versions_response, check_frame, decode_request, encode_response, limits::FRAME_BYTES_MAX,
    ApiKey, ErrorCode, Records, Request, Response, ResponseFrame, WireError,
};

const TOPIC: &str = "wire";

/// The in-memory log of the one partition: stored batches (offsets stamped) and the next offset.
#[derive(Default)]
struct Log {
    batches: Vec<(i64, i64, Bytes)>, // (base offset, last offset, batch)
    next_offset: i64,
}

struct Responder {
    port: u16,
    log: Mutex<Log>,
    appended: Condvar,
}

impl Responder {
    fn start() -> Arc<Responder> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let responder = Arc::new(Responder {
            port,
            log: Mutex::new(Log::default()),
            appended: Condvar::new(),
        });
        let r = Arc::clone(&responder);
        // The accept thread ends with the test process.
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let r = Arc::clone(&r);
                thread::spawn(move || r.serve(conn));
            }
        });
        responder
    }

    fn serve(&self, mut conn: TcpStream) {
        let mut buf = BytesMut::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match check_frame(&buf, FRAME_BYTES_MAX) {
                Ok(len) => {
                    let _ = buf.split_to(4);
                    let frame = buf.split_to(len).freeze();
                    let Some(reply) = self.answer(frame) else {
                        continue;
                    };
                    for part in reply.parts() {
                        if conn.write_all(part).is_err() {
                            return;
                        }
                    }
                }
                Err(WireError::Incomplete { .. }) => match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
                Err(e) => panic!("bad frame from kcat: {e}"),
            }
        }
    }

    fn answer(&self, frame: Bytes) -> Option<ResponseFrame> {
        let mut out = ResponseFrame::new();
        let (header, request) = match decode_request(frame) {
            Ok(decoded) => decoded,
            Err(WireError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                ..
            }) => {
                let answer = api_versions_response(ErrorCode::UNSUPPORTED_VERSION);
                encode_response(correlation_id, 0, &answer.into(), &mut out).expect("encode");
                return Some(out);
            }
            Err(e) => panic!("kcat sent a request Sluice cannot decode: {e}"),
        };
        let response = match &request {
            Request::ApiVersions(_) => api_versions_response(ErrorCode::NONE).into(),
            Request::Metadata(_) => self.metadata(),
            Request::Produce(p) if p.acks == 0 => return None,
            Request::Produce(p) => self.produce(p),
            Request::ListOffsets(l) => self.list_offsets(l),
            Request::Fetch(f) => self.fetch(f),
            other => other.error_response(ErrorCode::INVALID_REQUEST),
        };
        encode_response(
            header.correlation_id,
            header.api_version,
            &response,
            &mut out,
        )
        .expect("encode");
        Some(out)
    }

    fn metadata(&self) -> Response {
        metadata::MetadataResponse {
            brokers: vec![metadata::MetadataResponseBroker {
                node_id: 0,
                host: "127.0.0.1".into(),
                port: i32::from(self.port),
                rack: None,
            }],
            cluster_id: Some("wire-test".into()),
            controller_id: 0,
            topics: vec![metadata::MetadataResponseTopic {
                name: TOPIC.into(),
                partitions: vec![metadata::MetadataResponsePartition {
                    leader_id: 0,
                    leader_epoch: 0,
                    replica_nodes: vec![0],
                    isr_nodes: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
        .into()
    }

    fn produce(&self, p: &produce::ProduceRequest) -> Response {
        let mut log = self.log.lock().expect("log");
        let mut responses = Vec::new();
        for t in &p.topic_data {
            let mut parts = Vec::new();
            for part in &t.partition_data {
                let base = log.next_offset;
                for batch in BatchIter::new(part.records.clone().unwrap_or_default()) {
                    let batch = batch.expect("kcat sent a valid batch");
                    let mut bytes = BytesMut::from(&batch.as_bytes()[..]);
                    bytes[..8].copy_from_slice(&log.next_offset.to_be_bytes());
                    let last = log.next_offset + i64::from(batch.header().last_offset_delta);
                    let first = log.next_offset;
                    log.batches.push((first, last, bytes.freeze()));
                    log.next_offset = last + 1;
                }
                parts.push(produce::PartitionProduceResponse {
                    index: part.index,
                    error_code: 0,
                    base_offset: base,
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                });
            }
            responses.push(produce::TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: parts,
            });
        }
        self.appended.notify_all();
        produce::ProduceResponse {
            responses,
            throttle_time_ms: 0,
        }
        .into()
    }

    fn list_offsets(&self, l: &list_offsets::ListOffsetsRequest) -> Response {
        let end = self.log.lock().expect("log").next_offset;
        list_offsets::ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: l
                .topics
                .iter()
                .map(|t| list_offsets::ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| list_offsets::ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: 0,
                            timestamp: -1,
                            offset: if p.timestamp == -2 { 0 } else { end },
                            leader_epoch: 0,
                        })
                        .collect(),
                })
                .collect(),
        }
        .into()
    }

    fn fetch(&self, f: &fetch::FetchRequest) -> Response {
        let offset = f
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .map_or(0, |p| p.fetch_offset);
        // Long poll: wait for an append up to max_wait_ms (bounded), as a broker does.
        let wait = Duration::from_millis(u64::try_from(f.max_wait_ms.clamp(0, 500)).unwrap_or(0));
        let log = self.log.lock().expect("log");
        let (log, _) = self
            .appended
            .wait_timeout_while(log, wait, |log| log.next_offset <= offset)
            .expect("log");
        let chunks: Vec<Bytes> = log
            .batches
            .iter()
            .filter(|(_, last, _)| *last >= offset)
            .map(|(_, _, b)| b.clone())
            .collect();
        let end = log.next_offset;
        fetch::FetchResponse {
            responses: f
                .topics
                .iter()
                .map(|t| fetch::FetchableTopicResponse {
                    topic: t.topic.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| fetch::PartitionData {
                            partition_index: p.partition,
                            high_watermark: end,
                            last_stable_offset: end,
                            log_start_offset: 0,
                            records: Records::from_chunks(chunks.clone()),
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
        .into()
    }
}

/// Kills the child on drop (test failure or panic included).
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs kcat with `args` and `stdin`, failing the test if it has not exited within the deadline.
fn kcat(args: &[&str], stdin: &str) -> Output {
    let child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("kcat is required for this test (apt-get install -y kcat): {e}")
        });
    let mut guard = ChildGuard(Some(child));
    let child = guard.0.as_mut().expect("child");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "kcat {args:?} did not finish in 30 s"
        );
        thread::sleep(Duration::from_millis(20));
    }
    guard
        .0
        .take()
        .expect("child")
        .wait_with_output()
        .expect("output")
}

#[test]
fn kcat_lists_produces_and_consumes_through_sluice_encoded_responses() {
    let responder = Responder::start();
    let broker = format!("127.0.0.1:{}", responder.port);

    let listing = kcat(&["-b", &broker, "-L"], "");
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.status.success(), "kcat -L failed: {listing:?}");
    assert!(
        text.contains(&format!("broker 0 at 127.0.0.1:{}", responder.port)),
        "{text}"
    );
    assert!(text.contains("topic \"wire\" with 1 partitions"), "{text}");

    let lines: Vec<String> = (0..50).map(|i| format!("key-{i}:value {i} ü")).collect();
    let input = lines.join("\n") + "\n";
    let produced = kcat(&["-b", &broker, "-P", "-t", TOPIC, "-K:"], &input);
    assert!(produced.status.success(), "kcat -P failed: {produced:?}");

    // The batches kcat produced arrived intact (CRC checked by RecordBatch::parse).
    let stored: Vec<(Option<Bytes>, Option<Bytes>)> = {
        let log = responder.log.lock().expect("log");
        log.batches
            .iter()
            .flat_map(|(_, _, b)| {
                let batch = RecordBatch::parse(b.clone()).expect("valid batch");
                batch
                    .records()
                    .expect("records")
                    .map(|r| {
                        let r = r.expect("record");
                        (r.key().cloned(), r.value().cloned())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(stored.len(), lines.len());
    assert_eq!(stored[7].0.as_deref(), Some(&b"key-7"[..]));

    let consumed = kcat(
        &[
            "-b",
            &broker,
            "-C",
            "-t",
            TOPIC,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k:%s\n",
        ],
        "",
    );
    assert!(consumed.status.success(), "kcat -C failed: {consumed:?}");
    let got: Vec<String> = String::from_utf8(consumed.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, lines);
}
