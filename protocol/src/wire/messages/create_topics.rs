//! CreateTopics (api key 19), versions 2-4: field lists and version gates from Kafka's
//! `CreateTopicsRequest.json` / `CreateTopicsResponse.json`.

wire_struct! {
    /// CreateTopicsRequest, versions 2-4.
    pub struct CreateTopicsRequest {
        /// The topics to create.
        topics: Vec<CreatableTopic> => ..,
        /// How long to wait in milliseconds before timing out the request.
        timeout_ms: i32 = 60000 => ..,
        /// If true, check that the topics can be created as specified, but don't create anything.
        validate_only: bool => ..,
    }
}

wire_struct! {
    /// The topics to create.
    pub struct CreatableTopic {
        /// The topic name.
        name: String => ..,
        /// The number of partitions to create in the topic, or -1 if we are either specifying a
        /// manual partition assignment or using the default partitions.
        num_partitions: i32 => ..,
        /// The number of replicas to create for each partition in the topic, or -1 if we are either
        /// specifying a manual partition assignment or using the default replication factor.
        replication_factor: i16 => ..,
        /// The manual partition assignment, or the empty array if we are using automatic
        /// assignment.
        assignments: Vec<CreatableReplicaAssignment> => ..,
        /// The custom topic configurations to set.
        configs: Vec<CreatableTopicConfig> => ..,
    }
}

wire_struct! {
    /// The manual partition assignment, or the empty array if we are using automatic assignment.
    pub struct CreatableReplicaAssignment {
        /// The partition index.
        partition_index: i32 => ..,
        /// The brokers to place the partition on.
        broker_ids: Vec<i32> => ..,
    }
}

wire_struct! {
    /// The custom topic configurations to set.
    pub struct CreatableTopicConfig {
        /// The configuration name.
        name: String => ..,
        /// The configuration value.
        value: Option<String> => ..,
    }
}

wire_struct! {
    /// CreateTopicsResponse, versions 2-4.
    pub struct CreateTopicsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// Results for each topic we tried to create.
        topics: Vec<CreatableTopicResult> => ..,
    }
}

wire_struct! {
    /// Results for each topic we tried to create.
    pub struct CreatableTopicResult {
        /// The topic name.
        name: String => ..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The error message, or null if there was no error.
        error_message: Option<String> => ..,
    }
}
