//! ListGroups (api key 16), versions 0-2: field lists and version gates from Kafka's
//! `ListGroupsRequest.json` / `ListGroupsResponse.json`.

wire_struct! {
    /// ListGroupsRequest, versions 0-2.
    pub struct ListGroupsRequest {

    }
}

wire_struct! {
    /// ListGroupsResponse, versions 0-2.
    pub struct ListGroupsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// Each group in the response.
        groups: Vec<ListedGroup> => ..,
    }
}

wire_struct! {
    /// Each group in the response.
    pub struct ListedGroup {
        /// The group ID.
        group_id: String => ..,
        /// The group protocol type.
        protocol_type: String => ..,
    }
}
