//! DeleteGroups (api key 42), versions 0-1: field lists and version gates from Kafka's
//! `DeleteGroupsRequest.json` / `DeleteGroupsResponse.json`.

wire_struct! {
    /// DeleteGroupsRequest, versions 0-1.
    pub struct DeleteGroupsRequest {
        /// The group names to delete.
        groups_names: Vec<String> => ..,
    }
}

wire_struct! {
    /// DeleteGroupsResponse, versions 0-1.
    pub struct DeleteGroupsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The deletion results.
        results: Vec<DeletableGroupResult> => ..,
    }
}

wire_struct! {
    /// The deletion results.
    pub struct DeletableGroupResult {
        /// The group id.
        group_id: String => ..,
        /// The deletion error, or 0 if the deletion succeeded.
        error_code: i16 => ..,
    }
}
