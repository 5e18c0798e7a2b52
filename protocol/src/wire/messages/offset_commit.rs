//! OffsetCommit (api key 8), versions 2-7: field lists and version gates from Kafka's
//! `OffsetCommitRequest.json` / `OffsetCommitResponse.json`.

wire_struct! {
    /// OffsetCommitRequest, versions 2-7.
    pub struct OffsetCommitRequest {
        /// The unique group identifier.
        group_id: String => ..,
        /// The generation of the group if using the classic group protocol or the member epoch if
        /// using the consumer protocol.
        generation_id: i32 = -1 => ..,
        /// The member ID assigned by the group coordinator.
        member_id: String => ..,
        /// The unique identifier of the consumer instance provided by end user.
        group_instance_id: Option<String> => 7..,
        /// The time period in ms to retain the offset.
        retention_time_ms: i64 = -1 => ..=4,
        /// The topics to commit offsets for.
        topics: Vec<OffsetCommitRequestTopic> => ..,
    }
}

wire_struct! {
    /// The topics to commit offsets for.
    pub struct OffsetCommitRequestTopic {
        /// The topic name.
        name: String => ..,
        /// Each partition to commit offsets for.
        partitions: Vec<OffsetCommitRequestPartition> => ..,
    }
}

wire_struct! {
    /// Each partition to commit offsets for.
    pub struct OffsetCommitRequestPartition {
        /// The partition index.
        partition_index: i32 => ..,
        /// The message offset to be committed.
        committed_offset: i64 => ..,
        /// The leader epoch of this partition.
        committed_leader_epoch: i32 = -1 => 6..,
        /// Any associated metadata the client wants to keep.
        committed_metadata: Option<String> => ..,
    }
}

wire_struct! {
    /// OffsetCommitResponse, versions 2-7.
    pub struct OffsetCommitResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 3..,
        /// The responses for each topic.
        topics: Vec<OffsetCommitResponseTopic> => ..,
    }
}

wire_struct! {
    /// The responses for each topic.
    pub struct OffsetCommitResponseTopic {
        /// The topic name.
        name: String => ..,
        /// The responses for each partition in the topic.
        partitions: Vec<OffsetCommitResponsePartition> => ..,
    }
}

wire_struct! {
    /// The responses for each partition in the topic.
    pub struct OffsetCommitResponsePartition {
        /// The partition index.
        partition_index: i32 => ..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
    }
}
