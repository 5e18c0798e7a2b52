//! A tiny in-process broker speaking just enough Kafka (ApiVersions, Metadata, InitProducerId,
//! Produce, Fetch, ListOffsets, CreateTopics) over real TCP on 127.0.0.1, keeping batches in
//! memory, so the client library is tested end to end without `sluiced`. It can inject failures:
//! answer produce requests NOT_LEADER_OR_FOLLOWER after appending (a lost acknowledgement), to
//! check that idempotent retries leave no duplicates.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use sluice_protocol::record::{set_base_offset, BatchIter};
use sluice_protocol::wire::messages::{
    create_topics as wc, delete_topics as wdt, describe_configs as wd, fetch as wf,
    init_producer_id as wi, list_offsets as wl, metadata as wm, produce as wp,
};
use sluice_protocol::wire::{
    api_versions_response, decode_request, encode_response, split_frame, ErrorCode, Records,
    Request, Response, ResponseFrame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Partition {
    /// (base offset, last offset, max timestamp, batch bytes with offsets stamped)
    batches: Vec<(i64, i64, i64, Bytes)>,
    end: i64,
    /// Last appended (producer id, base sequence) -> base offset, for deduplication.
    sequences: HashMap<(i64, i32), i64>,
    /// Producer id -> the base sequence its next batch must carry, as a real broker checks.
    next_sequence: HashMap<i64, i32>,
}

#[derive(Default)]
pub struct State {
    topics: HashMap<String, Vec<Partition>>,
    /// Every broker of the fake cluster: (node id, address).
    brokers: Vec<(i32, String)>,
    /// The node leading each partition (default: node 0).
    pub leaders: HashMap<(String, i32), i32>,
    /// Produce requests to answer NOT_LEADER_OR_FOLLOWER after appending.
    pub fail_produce_after_append: u32,
    /// Produce requests seen.
    pub produce_requests: u32,
    /// Batches refused OUT_OF_ORDER_SEQUENCE_NUMBER (a gap in an idempotent producer's
    /// sequence: its batches reached the broker out of order).
    pub out_of_order: u32,
}

/// The fake broker; dropping it stops it and closes its connections.
pub struct FakeBroker {
    pub addr: String,
    pub node_id: i32,
    pub state: Arc<Mutex<State>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl FakeBroker {
    pub async fn start() -> FakeBroker {
        Self::cluster(1).await.pop().unwrap()
    }

    /// `n` brokers (node ids 0..n) sharing one in-memory log, as if perfectly replicated.
    pub async fn cluster(n: i32) -> Vec<FakeBroker> {
        let state: Arc<Mutex<State>> = Arc::default();
        let mut listeners = Vec::new();
        for node_id in 0..n {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            state.lock().unwrap().brokers.push((node_id, addr.clone()));
            listeners.push((node_id, addr, listener));
        }
        let mut out = Vec::new();
        for (node_id, addr, listener) in listeners {
            let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
            let (st, ts) = (state.clone(), tasks.clone());
            let accept = tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    let conn = tokio::spawn(serve(s, st.clone(), node_id));
                    ts.lock().unwrap().push(conn);
                }
            });
            tasks.lock().unwrap().push(accept);
            out.push(FakeBroker {
                addr,
                node_id,
                state: state.clone(),
                tasks,
            });
        }
        out
    }

    /// Makes `node` the leader of `topic`/`partition`.
    pub fn set_leader(&self, topic: &str, partition: i32, node: i32) {
        let mut s = self.state.lock().unwrap();
        s.leaders.insert((topic.to_string(), partition), node);
    }

    pub fn create_topic(&self, name: &str, partitions: usize) {
        let mut s = self.state.lock().unwrap();
        s.topics.insert(
            name.to_string(),
            (0..partitions).map(|_| Partition::default()).collect(),
        );
    }

    /// Grows `name` to `total` partitions, keeping what the existing ones hold.
    pub fn add_partitions(&self, name: &str, total: usize) {
        let mut s = self.state.lock().unwrap();
        if let Some(parts) = s.topics.get_mut(name) {
            parts.resize_with(total, Partition::default);
        }
    }

    /// Record count stored in a partition.
    pub fn end_offset(&self, topic: &str, partition: usize) -> i64 {
        self.state.lock().unwrap().topics[topic][partition].end
    }
}

async fn serve(mut s: TcpStream, state: Arc<Mutex<State>>, node_id: i32) {
    let mut buf = BytesMut::with_capacity(1 << 16);
    loop {
        loop {
            match split_frame(&mut buf, 100 << 20) {
                Ok(Some(frame)) => {
                    let Ok((header, request)) = decode_request(frame) else {
                        return;
                    };
                    let acks0 = matches!(&request, Request::Produce(p) if p.acks == 0);
                    let response = handle(&state, node_id, request);
                    if acks0 {
                        continue;
                    }
                    let mut out = ResponseFrame::new();
                    encode_response(
                        header.correlation_id,
                        header.api_version,
                        &response,
                        &mut out,
                    )
                    .unwrap();
                    for part in out.parts() {
                        if s.write_all(part).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn leader(s: &State, topic: &str, partition: i32) -> i32 {
    s.leaders
        .get(&(topic.to_string(), partition))
        .copied()
        .unwrap_or(0)
}

fn handle(state: &Mutex<State>, node_id: i32, request: Request) -> Response {
    let mut s = state.lock().unwrap();
    match request {
        Request::ApiVersions(_) => Response::ApiVersions(api_versions_response(ErrorCode(0))),
        Request::Metadata(r) => {
            let names: Vec<String> = match r.topics {
                Some(ts) => ts.into_iter().map(|t| t.name).collect(),
                None => s.topics.keys().cloned().collect(),
            };
            let topics = names
                .into_iter()
                .map(|name| match s.topics.get(&name) {
                    Some(parts) => wm::MetadataResponseTopic {
                        name: name.clone(),
                        partitions: (0..parts.len() as i32)
                            .map(|i| wm::MetadataResponsePartition {
                                partition_index: i,
                                leader_id: leader(&s, &name, i),
                                replica_nodes: s.brokers.iter().map(|b| b.0).collect(),
                                isr_nodes: s.brokers.iter().map(|b| b.0).collect(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    None => wm::MetadataResponseTopic {
                        error_code: 3,
                        name,
                        ..Default::default()
                    },
                })
                .collect();
            Response::Metadata(wm::MetadataResponse {
                brokers: s
                    .brokers
                    .iter()
                    .map(|(id, addr)| {
                        let (host, port) = addr.rsplit_once(':').unwrap();
                        wm::MetadataResponseBroker {
                            node_id: *id,
                            host: host.to_string(),
                            port: port.parse().unwrap(),
                            rack: None,
                        }
                    })
                    .collect(),
                controller_id: 0,
                topics,
                ..Default::default()
            })
        }
        Request::InitProducerId(_) => Response::InitProducerId(wi::InitProducerIdResponse {
            producer_id: 1000,
            producer_epoch: 0,
            ..Default::default()
        }),
        Request::CreateTopics(r) => {
            let topics = r
                .topics
                .into_iter()
                .map(|t| {
                    let exists = s.topics.contains_key(&t.name);
                    if !exists {
                        s.topics.insert(
                            t.name.clone(),
                            (0..t.num_partitions)
                                .map(|_| Partition::default())
                                .collect(),
                        );
                    }
                    wc::CreatableTopicResult {
                        name: t.name,
                        error_code: if exists { 36 } else { 0 },
                        error_message: None,
                    }
                })
                .collect();
            Response::CreateTopics(wc::CreateTopicsResponse {
                topics,
                ..Default::default()
            })
        }
        Request::Produce(r) => {
            s.produce_requests += 1;
            let mut out_of_order = 0;
            let fail = s.fail_produce_after_append > 0;
            if fail {
                s.fail_produce_after_append -= 1;
            }
            let mut responses = Vec::new();
            for t in r.topic_data {
                let mut partition_responses = Vec::new();
                for p in t.partition_data {
                    if leader(&s, &t.name, p.index) != node_id {
                        partition_responses.push(wp::PartitionProduceResponse {
                            index: p.index,
                            error_code: 6,
                            ..Default::default()
                        });
                        continue;
                    }
                    let part = s
                        .topics
                        .get_mut(&t.name)
                        .and_then(|ps| ps.get_mut(p.index as usize));
                    let Some(part) = part else {
                        partition_responses.push(wp::PartitionProduceResponse {
                            index: p.index,
                            error_code: 3,
                            ..Default::default()
                        });
                        continue;
                    };
                    let mut base = -1;
                    let mut error_code = if fail { 6 } else { 0 };
                    for batch in BatchIter::new(p.records.unwrap_or_default()) {
                        let batch = batch.unwrap();
                        let h = *batch.header();
                        if h.producer_id >= 0 {
                            if let Some(&o) = part.sequences.get(&(h.producer_id, h.base_sequence))
                            {
                                base = o; // duplicate: answer with the original offset
                                continue;
                            }
                            let expected = part.next_sequence.get(&h.producer_id).copied();
                            if h.base_sequence != expected.unwrap_or(0) {
                                out_of_order += 1;
                                error_code = 45;
                                break;
                            }
                            part.next_sequence
                                .insert(h.producer_id, h.base_sequence + h.last_offset_delta + 1);
                        }
                        let mut bytes = BytesMut::from(&batch.as_bytes()[..]);
                        set_base_offset(&mut bytes, part.end).unwrap();
                        let n = i64::from(h.last_offset_delta) + 1;
                        if base < 0 {
                            base = part.end;
                        }
                        part.sequences
                            .insert((h.producer_id, h.base_sequence), part.end);
                        part.batches.push((
                            part.end,
                            part.end + n - 1,
                            h.max_timestamp,
                            bytes.freeze(),
                        ));
                        part.end += n;
                    }
                    partition_responses.push(wp::PartitionProduceResponse {
                        index: p.index,
                        error_code,
                        base_offset: if error_code == 45 { -1 } else { base },
                        log_append_time_ms: -1,
                        log_start_offset: 0,
                    });
                }
                responses.push(wp::TopicProduceResponse {
                    name: t.name,
                    partition_responses,
                });
            }
            s.out_of_order += out_of_order;
            Response::Produce(wp::ProduceResponse {
                responses,
                throttle_time_ms: 0,
            })
        }
        Request::Fetch(r) => {
            let mut responses = Vec::new();
            for t in r.topics {
                let mut partitions = Vec::new();
                for p in t.partitions {
                    let Some(part) = s
                        .topics
                        .get(&t.topic)
                        .and_then(|ps| ps.get(p.partition as usize))
                    else {
                        partitions.push(wf::PartitionData {
                            partition_index: p.partition,
                            error_code: 3,
                            ..Default::default()
                        });
                        continue;
                    };
                    if p.fetch_offset > part.end || p.fetch_offset < 0 {
                        partitions.push(wf::PartitionData {
                            partition_index: p.partition,
                            error_code: 1,
                            high_watermark: part.end,
                            log_start_offset: 0,
                            ..Default::default()
                        });
                        continue;
                    }
                    let mut chunks = Vec::new();
                    let mut size = 0;
                    for (_, last, _, bytes) in &part.batches {
                        if *last < p.fetch_offset {
                            continue;
                        }
                        if size > 0 && size + bytes.len() > p.partition_max_bytes as usize {
                            break;
                        }
                        size += bytes.len();
                        chunks.push(bytes.clone());
                    }
                    partitions.push(wf::PartitionData {
                        partition_index: p.partition,
                        high_watermark: part.end,
                        last_stable_offset: part.end,
                        log_start_offset: 0,
                        records: Records::from_chunks(chunks),
                        ..Default::default()
                    });
                }
                responses.push(wf::FetchableTopicResponse {
                    topic: t.topic,
                    partitions,
                });
            }
            Response::Fetch(wf::FetchResponse {
                responses,
                ..Default::default()
            })
        }
        Request::ListOffsets(r) => {
            let topics = r
                .topics
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .into_iter()
                        .map(|p| {
                            let part = &s.topics[&t.name][p.partition_index as usize];
                            let offset = match p.timestamp {
                                -2 => 0,
                                -1 => part.end,
                                ts => part.batches.iter().find(|b| b.2 >= ts).map_or(-1, |b| b.0),
                            };
                            wl::ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                offset,
                                ..Default::default()
                            }
                        })
                        .collect();
                    wl::ListOffsetsTopicResponse {
                        name: t.name,
                        partitions,
                    }
                })
                .collect();
            Response::ListOffsets(wl::ListOffsetsResponse {
                topics,
                ..Default::default()
            })
        }
        Request::DeleteTopics(r) => {
            let responses = r
                .topic_names
                .into_iter()
                .map(|name| {
                    let code = if s.topics.remove(&name).is_some() {
                        0
                    } else {
                        3
                    };
                    wdt::DeletableTopicResult {
                        name,
                        error_code: code,
                    }
                })
                .collect();
            Response::DeleteTopics(wdt::DeleteTopicsResponse {
                responses,
                ..Default::default()
            })
        }
        Request::DescribeConfigs(r) => {
            let results = r
                .resources
                .into_iter()
                .map(|res| wd::DescribeConfigsResult {
                    error_code: if s.topics.contains_key(&res.resource_name) {
                        0
                    } else {
                        3
                    },
                    resource_type: res.resource_type,
                    resource_name: res.resource_name,
                    configs: vec![wd::DescribeConfigsResourceResult {
                        name: "retention.ms".into(),
                        value: Some("604800000".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect();
            Response::DescribeConfigs(wd::DescribeConfigsResponse {
                results,
                ..Default::default()
            })
        }
        other => panic!("the fake broker does not handle {:?}", other.api_key()),
    }
}
