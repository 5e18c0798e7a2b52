//! LeaveGroup (api key 13), versions 0-2: field lists and version gates from Kafka's
//! `LeaveGroupRequest.json` / `LeaveGroupResponse.json`.

wire_struct! {
    /// LeaveGroupRequest, versions 0-2.
    pub struct LeaveGroupRequest {
        /// The ID of the group to leave.
        group_id: String => ..,
        /// The member ID to remove from the group.
        member_id: String => ..,
    }
}

wire_struct! {
    /// LeaveGroupResponse, versions 0-2.
    pub struct LeaveGroupResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
    }
}
