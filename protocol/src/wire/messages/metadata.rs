//! Metadata (api key 3), versions 1-8: field lists and version gates from Kafka's
//! `MetadataRequest.json` / `MetadataResponse.json`.

wire_struct! {
    /// MetadataRequest, versions 1-8.
    pub struct MetadataRequest {
        /// The topics to fetch metadata for.
        topics: Option<Vec<MetadataRequestTopic>> => ..,
        /// If this is true, the broker may auto-create topics that we requested which do not
        /// already exist, if it is configured to do so.
        allow_auto_topic_creation: bool = true => 4..,
        /// Whether to include cluster authorized operations.
        include_cluster_authorized_operations: bool => 8..,
        /// Whether to include topic authorized operations.
        include_topic_authorized_operations: bool => 8..,
    }
}

wire_struct! {
    /// The topics to fetch metadata for.
    pub struct MetadataRequestTopic {
        /// The topic name.
        name: String => ..,
    }
}

wire_struct! {
    /// MetadataResponse, versions 1-8.
    pub struct MetadataResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 3..,
        /// A list of brokers present in the cluster.
        brokers: Vec<MetadataResponseBroker> => ..,
        /// The cluster ID that responding broker belongs to.
        cluster_id: Option<String> => 2..,
        /// The ID of the controller broker.
        controller_id: i32 = -1 => ..,
        /// Each topic in the response.
        topics: Vec<MetadataResponseTopic> => ..,
        /// 32-bit bitfield to represent authorized operations for this cluster.
        cluster_authorized_operations: i32 = -2147483648 => 8..,
    }
}

wire_struct! {
    /// A list of brokers present in the cluster.
    pub struct MetadataResponseBroker {
        /// The broker ID.
        node_id: i32 => ..,
        /// The broker hostname.
        host: String => ..,
        /// The broker port.
        port: i32 => ..,
        /// The rack of the broker, or null if it has not been assigned to a rack.
        rack: Option<String> => ..,
    }
}

wire_struct! {
    /// Each topic in the response.
    pub struct MetadataResponseTopic {
        /// The topic error, or 0 if there was no error.
        error_code: i16 => ..,
        /// The topic name. Null for non-existing topics queried by ID. This is never null when
        /// ErrorCode is zero. One of Name and TopicId is always populated.
        name: String => ..,
        /// True if the topic is internal.
        is_internal: bool => ..,
        /// Each partition in the topic.
        partitions: Vec<MetadataResponsePartition> => ..,
        /// 32-bit bitfield to represent authorized operations for this topic.
        topic_authorized_operations: i32 = -2147483648 => 8..,
    }
}

wire_struct! {
    /// Each partition in the topic.
    pub struct MetadataResponsePartition {
        /// The partition error, or 0 if there was no error.
        error_code: i16 => ..,
        /// The partition index.
        partition_index: i32 => ..,
        /// The ID of the leader broker.
        leader_id: i32 => ..,
        /// The leader epoch of this partition.
        leader_epoch: i32 = -1 => 7..,
        /// The set of all nodes that host this partition.
        replica_nodes: Vec<i32> => ..,
        /// The set of nodes that are in sync with the leader for this partition.
        isr_nodes: Vec<i32> => ..,
        /// The set of offline replicas of this partition.
        offline_replicas: Vec<i32> => 5..,
    }
}
