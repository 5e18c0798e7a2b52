//! ListOffsets (api key 2), versions 1-5: field lists and version gates from Kafka's
//! `ListOffsetsRequest.json` / `ListOffsetsResponse.json`.

wire_struct! {
    /// ListOffsetsRequest, versions 1-5.
    pub struct ListOffsetsRequest {
        /// The broker ID of the requester, or -1 if this request is being made by a normal
        /// consumer.
        replica_id: i32 => ..,
        /// This setting controls the visibility of transactional records. Using READ_UNCOMMITTED
        /// (isolation_level = 0) makes all records visible. With READ_COMMITTED (isolation_level =
        /// 1), non-transactional and COMMITTED transactional records are visible. To be more
        /// concrete, READ_COMMITTED returns all data from offsets smaller than the current LSO
        /// (last stable offset), and enables the inclusion of the list of aborted transactions in
        /// the result, which allows consumers to discard ABORTED transactional records.
        isolation_level: i8 => 2..,
        /// Each topic in the request.
        topics: Vec<ListOffsetsTopic> => ..,
    }
}

wire_struct! {
    /// Each topic in the request.
    pub struct ListOffsetsTopic {
        /// The topic name.
        name: String => ..,
        /// Each partition in the request.
        partitions: Vec<ListOffsetsPartition> => ..,
    }
}

wire_struct! {
    /// Each partition in the request.
    pub struct ListOffsetsPartition {
        /// The partition index.
        partition_index: i32 => ..,
        /// The current leader epoch.
        current_leader_epoch: i32 = -1 => 4..,
        /// The current timestamp.
        timestamp: i64 => ..,
    }
}

wire_struct! {
    /// ListOffsetsResponse, versions 1-5.
    pub struct ListOffsetsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 2..,
        /// Each topic in the response.
        topics: Vec<ListOffsetsTopicResponse> => ..,
    }
}

wire_struct! {
    /// Each topic in the response.
    pub struct ListOffsetsTopicResponse {
        /// The topic name.
        name: String => ..,
        /// Each partition in the response.
        partitions: Vec<ListOffsetsPartitionResponse> => ..,
    }
}

wire_struct! {
    /// Each partition in the response.
    pub struct ListOffsetsPartitionResponse {
        /// The partition index.
        partition_index: i32 => ..,
        /// The partition error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The timestamp associated with the returned offset.
        timestamp: i64 = -1 => ..,
        /// The returned offset.
        offset: i64 = -1 => ..,
        /// The leader epoch associated with the returned offset.
        leader_epoch: i32 = -1 => 4..,
    }
}
