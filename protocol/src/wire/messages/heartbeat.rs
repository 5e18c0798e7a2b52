//! Heartbeat (api key 12), versions 0-3: field lists and version gates from Kafka's
//! `HeartbeatRequest.json` / `HeartbeatResponse.json`.

wire_struct! {
    /// HeartbeatRequest, versions 0-3.
    pub struct HeartbeatRequest {
        /// The group id.
        group_id: String => ..,
        /// The generation of the group.
        generation_id: i32 => ..,
        /// The member ID.
        member_id: String => ..,
        /// The unique identifier of the consumer instance provided by end user.
        group_instance_id: Option<String> => 3..,
    }
}

wire_struct! {
    /// HeartbeatResponse, versions 0-3.
    pub struct HeartbeatResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
    }
}
