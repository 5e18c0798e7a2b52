//! DeleteRecords (api key 21), versions 0-1: field lists and version gates from Kafka's
//! `DeleteRecordsRequest.json` / `DeleteRecordsResponse.json`.

wire_struct! {
    /// DeleteRecordsRequest, versions 0-1.
    pub struct DeleteRecordsRequest {
        /// Each topic that we want to delete records from.
        topics: Vec<DeleteRecordsTopic> => ..,
        /// How long to wait for the deletion to complete, in milliseconds.
        timeout_ms: i32 => ..,
    }
}

wire_struct! {
    /// Each topic that we want to delete records from.
    pub struct DeleteRecordsTopic {
        /// The topic name.
        name: String => ..,
        /// Each partition that we want to delete records from.
        partitions: Vec<DeleteRecordsPartition> => ..,
    }
}

wire_struct! {
    /// Each partition that we want to delete records from.
    pub struct DeleteRecordsPartition {
        /// The partition index.
        partition_index: i32 => ..,
        /// The deletion offset. -1 means that records should be truncated to the high watermark.
        offset: i64 => ..,
    }
}

wire_struct! {
    /// DeleteRecordsResponse, versions 0-1.
    pub struct DeleteRecordsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// Each topic that we wanted to delete records from.
        topics: Vec<DeleteRecordsTopicResult> => ..,
    }
}

wire_struct! {
    /// Each topic that we wanted to delete records from.
    pub struct DeleteRecordsTopicResult {
        /// The topic name.
        name: String => ..,
        /// Each partition that we wanted to delete records from.
        partitions: Vec<DeleteRecordsPartitionResult> => ..,
    }
}

wire_struct! {
    /// Each partition that we wanted to delete records from.
    pub struct DeleteRecordsPartitionResult {
        /// The partition index.
        partition_index: i32 => ..,
        /// The partition low water mark.
        low_watermark: i64 => ..,
        /// The deletion error code, or 0 if the deletion succeeded.
        error_code: i16 => ..,
    }
}
