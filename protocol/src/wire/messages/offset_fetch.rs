//! OffsetFetch (api key 9), versions 1-5: field lists and version gates from Kafka's
//! `OffsetFetchRequest.json` / `OffsetFetchResponse.json`.

wire_struct! {
    /// OffsetFetchRequest, versions 1-5.
    pub struct OffsetFetchRequest {
        /// The group to fetch offsets for.
        group_id: String => ..,
        /// Each topic we would like to fetch offsets for, or null to fetch offsets for all topics.
        topics: Option<Vec<OffsetFetchRequestTopic>> => ..,
    }
}

wire_struct! {
    /// Each topic we would like to fetch offsets for, or null to fetch offsets for all topics.
    pub struct OffsetFetchRequestTopic {
        /// The topic name.
        name: String => ..,
        /// The partition indexes we would like to fetch offsets for.
        partition_indexes: Vec<i32> => ..,
    }
}

wire_struct! {
    /// OffsetFetchResponse, versions 1-5.
    pub struct OffsetFetchResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 3..,
        /// The responses per topic.
        topics: Vec<OffsetFetchResponseTopic> => ..,
        /// The top-level error code, or 0 if there was no error.
        error_code: i16 => 2..,
    }
}

wire_struct! {
    /// The responses per topic.
    pub struct OffsetFetchResponseTopic {
        /// The topic name.
        name: String => ..,
        /// The responses per partition.
        partitions: Vec<OffsetFetchResponsePartition> => ..,
    }
}

wire_struct! {
    /// The responses per partition.
    pub struct OffsetFetchResponsePartition {
        /// The partition index.
        partition_index: i32 => ..,
        /// The committed message offset.
        committed_offset: i64 => ..,
        /// The leader epoch.
        committed_leader_epoch: i32 = -1 => 5..,
        /// The partition metadata.
        metadata: Option<String> => ..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
    }
}
