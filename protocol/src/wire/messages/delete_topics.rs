//! DeleteTopics (api key 20), versions 1-3: field lists and version gates from Kafka's
//! `DeleteTopicsRequest.json` / `DeleteTopicsResponse.json`.

wire_struct! {
    /// DeleteTopicsRequest, versions 1-3.
    pub struct DeleteTopicsRequest {
        /// The names of the topics to delete.
        topic_names: Vec<String> => ..,
        /// The length of time in milliseconds to wait for the deletions to complete.
        timeout_ms: i32 => ..,
    }
}

wire_struct! {
    /// DeleteTopicsResponse, versions 1-3.
    pub struct DeleteTopicsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The results for each topic we tried to delete.
        responses: Vec<DeletableTopicResult> => ..,
    }
}

wire_struct! {
    /// The results for each topic we tried to delete.
    pub struct DeletableTopicResult {
        /// The topic name.
        name: String => ..,
        /// The deletion error, or 0 if the deletion succeeded.
        error_code: i16 => ..,
    }
}
