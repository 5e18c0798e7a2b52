//! Produce: validate each partition's batches, append them with the request's durability, answer
//! per partition.
//!
//! `acks=0` appends and answers nothing; `acks=1` answers once the batches are in the log (page
//! cache); `acks=-1`/all answers once the group-commit fdatasync covering them is done (on a single
//! node the in-sync replica set is this broker). Every partition of a request is appended at once,
//! in request order, before the handler returns; the wait for the fsync is a deferred reply, so the
//! connection goes on reading and pipelined produce requests share one group commit. Idempotent producers are checked by the log
//! (duplicate → the original offsets, gap → OUT_OF_ORDER_SEQUENCE_NUMBER, stale epoch →
//! INVALID_PRODUCER_EPOCH).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_protocol::wire::messages::produce::{
    PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
};
use sluice_protocol::wire::{ErrorCode, Response};

use super::log_error_code;
use super::records::check_produce_records;
use crate::log::Durability;
use crate::server::broker::Broker;
use crate::server::dispatch::{Handlers, Outcome};

/// The broker's wall clock in Unix milliseconds (timestamps are wall-clock by Kafka's definition).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One partition's append in progress.
type PendingAppend = Pin<Box<dyn Future<Output = PartitionProduceResponse> + Send>>;

impl Handlers {
    pub(crate) async fn produce(&self, req: ProduceRequest) -> Outcome {
        let acks = req.acks;
        let refusal = if !matches!(acks, -1..=1) {
            Some(ErrorCode::INVALID_REQUIRED_ACKS)
        } else if req.transactional_id.is_some() {
            Some(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        } else {
            None
        };
        let durability = if acks == -1 {
            Durability::Durable
        } else {
            Durability::PageCache
        };
        let now = now_ms();
        let timeout_ms = u64::try_from(req.timeout_ms.max(0)).unwrap_or(0);
        let mut names = Vec::with_capacity(req.topic_data.len());
        let mut appends: Vec<PendingAppend> = Vec::new();
        for topic in req.topic_data {
            names.push((topic.name.clone(), topic.partition_data.len()));
            for partition in topic.partition_data {
                let index = partition.index;
                appends.push(match refusal {
                    Some(code) => Box::pin(std::future::ready(error_partition(index, code))),
                    None => Box::pin(produce_partition(
                        Arc::clone(&self.broker),
                        topic.name.clone(),
                        index,
                        partition.records,
                        durability,
                        now,
                        timeout_ms,
                    )),
                });
            }
        }
        // One poll runs every append's synchronous part (validation, the write to the log) now,
        // in request order; what is left is waiting for the group-commit fsync, which is deferred
        // so that the connection reads on and the next requests share the same fsync.
        let mut results: Vec<Option<PartitionProduceResponse>> = vec![None; appends.len()];
        std::future::poll_fn(|cx| {
            for (append, result) in appends.iter_mut().zip(results.iter_mut()) {
                if let Poll::Ready(response) = append.as_mut().poll(cx) {
                    *result = Some(response);
                }
            }
            Poll::Ready(())
        })
        .await;
        if acks == 0 {
            // The records are in the log; nobody waits for an answer.
            return Outcome::Silent;
        }
        let respond = move |results: Vec<PartitionProduceResponse>| {
            let mut results = results.into_iter();
            Response::Produce(ProduceResponse {
                responses: names
                    .into_iter()
                    .map(|(name, count)| TopicProduceResponse {
                        name,
                        partition_responses: results.by_ref().take(count).collect(),
                    })
                    .collect(),
                throttle_time_ms: 0,
            })
        };
        if results.iter().all(Option::is_some) {
            return Outcome::Respond(respond(results.into_iter().flatten().collect()));
        }
        Outcome::Later(Box::pin(async move {
            let mut done = Vec::with_capacity(results.len());
            for (append, result) in appends.into_iter().zip(results) {
                done.push(match result {
                    Some(response) => response,
                    None => append.await,
                });
            }
            respond(done)
        }))
    }
}

async fn produce_partition(
    broker: Arc<Broker>,
    topic: String,
    index: i32,
    records: Option<Bytes>,
    durability: Durability,
    now: i64,
    timeout_ms: u64,
) -> PartitionProduceResponse {
    let topic = topic.as_str();
    let partition = match broker.serving(topic, index) {
        Ok(partition) => partition,
        Err(code) => return error_partition(index, code),
    };
    let config = match partition.config() {
        Ok(config) => config,
        Err(err) => return error_partition(index, log_error_code(&err)),
    };
    let checked = match check_produce_records(records, &config, now) {
        Ok(checked) => checked,
        Err((code, message)) => {
            tracing::debug!(topic, partition = index, "produce refused: {message}");
            return error_partition(index, code);
        }
    };
    if let Some(cluster) = broker.cluster() {
        let acks_all = durability == Durability::Durable;
        return super::replicated::produce(cluster, topic, index, checked, acks_all, timeout_ms)
            .await;
    }
    let epoch = broker.leader_epoch(topic, index);
    match partition.append(checked, epoch, durability).await {
        Ok(info) => PartitionProduceResponse {
            index,
            error_code: ErrorCode::NONE.as_i16(),
            base_offset: info.base_offset,
            log_append_time_ms: info.log_append_time,
            log_start_offset: info.log_start_offset,
        },
        Err(err) => {
            let code = log_error_code(&err);
            if code == ErrorCode::KAFKA_STORAGE_ERROR {
                tracing::error!(topic, partition = index, "append failed: {err}");
            } else {
                tracing::debug!(topic, partition = index, "append refused: {err}");
            }
            error_partition(index, code)
        }
    }
}

pub(super) fn error_partition(index: i32, code: ErrorCode) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code.as_i16(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
    }
}
