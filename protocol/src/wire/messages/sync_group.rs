//! SyncGroup (api key 14), versions 0-3: field lists and version gates from Kafka's
//! `SyncGroupRequest.json` / `SyncGroupResponse.json`.

use bytes::Bytes;

wire_struct! {
    /// SyncGroupRequest, versions 0-3.
    pub struct SyncGroupRequest {
        /// The unique group identifier.
        group_id: String => ..,
        /// The generation of the group.
        generation_id: i32 => ..,
        /// The member ID assigned by the group.
        member_id: String => ..,
        /// The unique identifier of the consumer instance provided by end user.
        group_instance_id: Option<String> => 3..,
        /// Each assignment.
        assignments: Vec<SyncGroupRequestAssignment> => ..,
    }
}

wire_struct! {
    /// Each assignment.
    pub struct SyncGroupRequestAssignment {
        /// The ID of the member to assign.
        member_id: String => ..,
        /// The member assignment.
        assignment: Bytes => ..,
    }
}

wire_struct! {
    /// SyncGroupResponse, versions 0-3.
    pub struct SyncGroupResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The member assignment.
        assignment: Bytes => ..,
    }
}
