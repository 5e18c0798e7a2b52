//! Fetch (api key 1), versions 4-11: field lists and version gates from Kafka's
//! `FetchRequest.json` / `FetchResponse.json`.

use crate::wire::primitives::Records;

wire_struct! {
    /// FetchRequest, versions 4-11.
    pub struct FetchRequest {
        /// The broker ID of the follower, of -1 if this request is from a consumer.
        replica_id: i32 = -1 => ..,
        /// The maximum time in milliseconds to wait for the response.
        max_wait_ms: i32 => ..,
        /// The minimum bytes to accumulate in the response.
        min_bytes: i32 => ..,
        /// The maximum bytes to fetch. See KIP-74 for cases where this limit may not be honored.
        max_bytes: i32 = 0x7fffffff => ..,
        /// This setting controls the visibility of transactional records. Using READ_UNCOMMITTED
        /// (isolation_level = 0) makes all records visible. With READ_COMMITTED (isolation_level =
        /// 1), non-transactional and COMMITTED transactional records are visible. To be more
        /// concrete, READ_COMMITTED returns all data from offsets smaller than the current LSO
        /// (last stable offset), and enables the inclusion of the list of aborted transactions in
        /// the result, which allows consumers to discard ABORTED transactional records.
        isolation_level: i8 => ..,
        /// The fetch session ID.
        session_id: i32 => 7..,
        /// The fetch session epoch, which is used for ordering requests in a session.
        session_epoch: i32 = -1 => 7..,
        /// The topics to fetch.
        topics: Vec<FetchTopic> => ..,
        /// In an incremental fetch request, the partitions to remove.
        forgotten_topics_data: Vec<ForgottenTopic> => 7..,
        /// Rack ID of the consumer making this request.
        rack_id: String => 11..,
    }
}

wire_struct! {
    /// The topics to fetch.
    pub struct FetchTopic {
        /// The name of the topic to fetch.
        topic: String => ..,
        /// The partitions to fetch.
        partitions: Vec<FetchPartition> => ..,
    }
}

wire_struct! {
    /// The partitions to fetch.
    pub struct FetchPartition {
        /// The partition index.
        partition: i32 => ..,
        /// The current leader epoch of the partition.
        current_leader_epoch: i32 = -1 => 9..,
        /// The message offset.
        fetch_offset: i64 => ..,
        /// The earliest available offset of the follower replica. The field is only used when the
        /// request is sent by the follower.
        log_start_offset: i64 = -1 => 5..,
        /// The maximum bytes to fetch from this partition. See KIP-74 for cases where this limit
        /// may not be honored.
        partition_max_bytes: i32 => ..,
    }
}

wire_struct! {
    /// In an incremental fetch request, the partitions to remove.
    pub struct ForgottenTopic {
        /// The topic name.
        topic: String => 7..,
        /// The partitions indexes to forget.
        partitions: Vec<i32> => 7..,
    }
}

wire_struct! {
    /// FetchResponse, versions 4-11.
    pub struct FetchResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The top level response error code.
        error_code: i16 => 7..,
        /// The fetch session ID, or 0 if this is not part of a fetch session.
        session_id: i32 => 7..,
        /// The response topics.
        responses: Vec<FetchableTopicResponse> => ..,
    }
}

wire_struct! {
    /// The response topics.
    pub struct FetchableTopicResponse {
        /// The topic name.
        topic: String => ..,
        /// The topic partitions.
        partitions: Vec<PartitionData> => ..,
    }
}

wire_struct! {
    /// The topic partitions.
    pub struct PartitionData {
        /// The partition index.
        partition_index: i32 => ..,
        /// The error code, or 0 if there was no fetch error.
        error_code: i16 => ..,
        /// The current high water mark.
        high_watermark: i64 => ..,
        /// The last stable offset (or LSO) of the partition. This is the last offset such that the
        /// state of all transactional records prior to this offset have been decided (ABORTED or
        /// COMMITTED).
        last_stable_offset: i64 = -1 => ..,
        /// The current log start offset.
        log_start_offset: i64 = -1 => 5..,
        /// The aborted transactions.
        aborted_transactions: Option<Vec<AbortedTransaction>> => ..,
        /// The preferred read replica for the consumer to use on its next fetch request.
        preferred_read_replica: i32 = -1 => 11..,
        /// The record data.
        records: Records => ..,
    }
}

wire_struct! {
    /// The aborted transactions.
    pub struct AbortedTransaction {
        /// The producer id associated with the aborted transaction.
        producer_id: i64 => ..,
        /// The first offset in the aborted transaction.
        first_offset: i64 => ..,
    }
}
