//! Fetch: whole stored batches from each requested partition, up to the high watermark, within
//! the request's `max_bytes` and each partition's `partition_max_bytes`, waiting up to
//! `max_wait_ms` for `min_bytes` by waking on append notifications (never by polling).
//!
//! Budget (KIP-74): the first non-empty partition may return one batch larger than the budget
//! so a consumer can always make progress; later partitions only fit what the budget allows.
//! Record bytes never pass through the broker's memory: large reads are ranges of the segment
//! files, which the response carries as placeholders ([`FileParts`]) and the connection's writer
//! sends with `sendfile`; small reads are `Bytes` written with a vectored write.
//!
//! Offsets below the log start or above the high watermark are OFFSET_OUT_OF_RANGE; a fetch at
//! the high watermark is an empty answer (the long-poll case). Fetch sessions (KIP-227) are not
//! offered: responses carry session id 0, which tells clients to keep sending full requests.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select_all;
use sluice_protocol::wire::messages::fetch::{
    FetchRequest, FetchResponse, FetchableTopicResponse, PartitionData,
};
use sluice_protocol::wire::{ErrorCode, Records, Response};
use tokio::sync::watch;

use super::log_error_code;
use crate::log::SendChunk;
use crate::server::broker::Broker;
use crate::server::connection::FileParts;
use crate::server::dispatch::{Handlers, Outcome};
use crate::server::limits::{FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};

/// One pass over the requested partitions.
struct FetchPass {
    response: FetchResponse,
    /// The file ranges behind the response's record placeholders.
    files: FileParts,
    bytes: usize,
    has_error: bool,
}

impl Handlers {
    pub(crate) fn fetch(&self, req: FetchRequest) -> Outcome {
        if req.session_id != 0 {
            return Outcome::Respond(Response::Fetch(FetchResponse {
                error_code: ErrorCode::FETCH_SESSION_ID_NOT_FOUND.as_i16(),
                ..Default::default()
            }));
        }
        let broker = Arc::clone(&self.broker);
        let min_bytes = usize::try_from(req.min_bytes.max(0)).unwrap_or(0);
        let wait = Duration::from_millis(
            u64::try_from(req.max_wait_ms.max(0))
                .unwrap_or(0)
                .min(FETCH_WAIT_MS_MAX),
        );
        // The wait starts now, not when the writer gets to this reply.
        let deadline = tokio::time::Instant::now() + wait;
        let pass = read_pass(&broker, &req);
        if pass.has_error || pass.bytes >= min_bytes.max(1) || wait.is_zero() {
            return Outcome::RespondFiles(Response::Fetch(pass.response), pass.files);
        }
        Outcome::LaterFiles(Box::pin(async move {
            let pass = long_poll(&broker, &req, min_bytes, deadline).await;
            (Response::Fetch(pass.response), pass.files)
        }))
    }
}

/// Waits for appends until `min_bytes` are available, `deadline` passes or the broker shuts down.
async fn long_poll(
    broker: &Broker,
    req: &FetchRequest,
    min_bytes: usize,
    deadline: tokio::time::Instant,
) -> FetchPass {
    loop {
        // Subscribe before reading, so an append between the read and the wait is not missed.
        let mut watches = subscribe(broker, req);
        let pass = read_pass(broker, req);
        let expired = tokio::time::Instant::now() >= deadline;
        if pass.has_error || pass.bytes >= min_bytes.max(1) || expired || watches.is_empty() {
            return pass;
        }
        let appended = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = appended => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = broker.shutdown_token().cancelled() => return pass,
        }
    }
}

fn subscribe(broker: &Broker, req: &FetchRequest) -> Vec<watch::Receiver<i64>> {
    let mut watches = Vec::new();
    for topic in &req.topics {
        for partition in &topic.partitions {
            if let Some(mut watch) = broker.subscribe(&topic.topic, partition.partition) {
                watch.borrow_and_update();
                watches.push(watch);
            }
        }
    }
    watches
}

fn read_pass(broker: &Broker, req: &FetchRequest) -> FetchPass {
    let mut budget = usize::try_from(req.max_bytes.max(0))
        .unwrap_or(0)
        .min(FETCH_RESPONSE_BYTES_MAX);
    let mut bytes = 0;
    let mut has_error = false;
    let mut files = FileParts::new();
    let mut responses = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for fetch in &topic.partitions {
            let mut data = PartitionData {
                partition_index: fetch.partition,
                error_code: ErrorCode::NONE.as_i16(),
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                aborted_transactions: None,
                preferred_read_replica: -1,
                records: Records::new(),
            };
            let log = match broker.serving(&topic.topic, fetch.partition) {
                Ok(log) => log,
                Err(code) => {
                    data.error_code = code.as_i16();
                    has_error = true;
                    partitions.push(data);
                    continue;
                }
            };
            let offsets = broker
                .high_watermark(&log)
                .and_then(|hw| Ok((hw, log.log_start_offset()?)));
            let (high_watermark, log_start) = match offsets {
                Ok(offsets) => offsets,
                Err(err) => {
                    data.error_code = log_error_code(&err).as_i16();
                    has_error = true;
                    partitions.push(data);
                    continue;
                }
            };
            data.high_watermark = high_watermark;
            data.last_stable_offset = high_watermark;
            data.log_start_offset = log_start;
            // Out of range above means past the log's end: between the high watermark and the
            // end (a new leader's HW catching up) the answer is empty, as in Kafka.
            if fetch.fetch_offset < log_start
                || fetch.fetch_offset > broker.fetchable_end(&log, high_watermark)
            {
                data.error_code = ErrorCode::OFFSET_OUT_OF_RANGE.as_i16();
                has_error = true;
            } else if fetch.fetch_offset < high_watermark && budget > 0 {
                let limit = usize::try_from(fetch.partition_max_bytes.max(0))
                    .unwrap_or(0)
                    .min(budget);
                match log.read_for_send(fetch.fetch_offset, limit.max(1), high_watermark) {
                    Ok(read) => {
                        let got = read.bytes;
                        // Only the first non-empty partition may exceed the budget (KIP-74).
                        if bytes == 0 || got <= limit {
                            match records(read.chunks, &mut files) {
                                Ok(records) => {
                                    bytes += got;
                                    budget = budget.saturating_sub(got);
                                    data.records = records;
                                }
                                Err(err) => {
                                    data.error_code = ErrorCode::KAFKA_STORAGE_ERROR.as_i16();
                                    has_error = true;
                                    tracing::error!(
                                        topic = topic.topic,
                                        partition = fetch.partition,
                                        "read failed: {err}"
                                    );
                                }
                            }
                        }
                    }
                    Err(err) => {
                        data.error_code = log_error_code(&err).as_i16();
                        has_error = true;
                        if data.error_code == ErrorCode::KAFKA_STORAGE_ERROR.as_i16() {
                            tracing::error!(
                                topic = topic.topic,
                                partition = fetch.partition,
                                "read failed: {err}"
                            );
                        }
                    }
                }
            }
            partitions.push(data);
        }
        responses.push(FetchableTopicResponse {
            topic: topic.topic.clone(),
            partitions,
        });
    }
    FetchPass {
        response: FetchResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE.as_i16(),
            session_id: 0,
            responses,
        },
        files,
        bytes,
        has_error,
    }
}

/// A partition's record data: bytes by reference, file ranges as placeholders added to `files`.
fn records(chunks: Vec<SendChunk>, files: &mut FileParts) -> std::io::Result<Records> {
    let mut records = Records::new();
    for chunk in chunks {
        match chunk {
            SendChunk::Bytes(bytes) => records.push(bytes),
            SendChunk::File(range) => files.push(range, &mut records)?,
        }
    }
    Ok(records)
}
