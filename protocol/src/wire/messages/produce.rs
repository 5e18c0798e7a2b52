//! Produce (api key 0), versions 3-7: field lists and version gates from Kafka's
//! `ProduceRequest.json` / `ProduceResponse.json`.
//!
//! With `acks = 0` the broker sends no response at all (the client does not wait for one).
//! `records` is a zero-copy slice of the request frame holding one or more RecordBatch v2.

use bytes::Bytes;

wire_struct! {
    /// ProduceRequest, versions 3-7.
    pub struct ProduceRequest {
        /// The transactional ID, or null if the producer is not transactional.
        transactional_id: Option<String> => ..,
        /// The number of acknowledgments the producer requires the leader to have received before
        /// considering a request complete. Allowed values: 0 for no acknowledgments, 1 for only the
        /// leader and -1 for the full ISR.
        acks: i16 => ..,
        /// The timeout to await a response in milliseconds.
        timeout_ms: i32 => ..,
        /// Each topic to produce to.
        topic_data: Vec<TopicProduceData> => ..,
    }
}

wire_struct! {
    /// Each topic to produce to.
    pub struct TopicProduceData {
        /// The topic name.
        name: String => ..,
        /// Each partition to produce to.
        partition_data: Vec<PartitionProduceData> => ..,
    }
}

wire_struct! {
    /// Each partition to produce to.
    pub struct PartitionProduceData {
        /// The partition index.
        index: i32 => ..,
        /// The record data to be produced.
        records: Option<Bytes> => ..,
    }
}

wire_struct! {
    /// ProduceResponse, versions 3-7.
    pub struct ProduceResponse {
        /// Each produce response.
        responses: Vec<TopicProduceResponse> => ..,
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
    }
}

wire_struct! {
    /// Each produce response.
    pub struct TopicProduceResponse {
        /// The topic name.
        name: String => ..,
        /// Each partition that we produced to within the topic.
        partition_responses: Vec<PartitionProduceResponse> => ..,
    }
}

wire_struct! {
    /// Each partition that we produced to within the topic.
    pub struct PartitionProduceResponse {
        /// The partition index.
        index: i32 => ..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The base offset.
        base_offset: i64 => ..,
        /// The timestamp returned by broker after appending the messages. If CreateTime is used for
        /// the topic, the timestamp will be -1. If LogAppendTime is used for the topic, the
        /// timestamp will be the broker local time when the messages are appended.
        log_append_time_ms: i64 = -1 => ..,
        /// The log start offset.
        log_start_offset: i64 = -1 => 5..,
    }
}
