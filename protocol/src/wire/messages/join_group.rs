//! JoinGroup (api key 11), versions 2-5: field lists and version gates from Kafka's
//! `JoinGroupRequest.json` / `JoinGroupResponse.json`.

use bytes::Bytes;

wire_struct! {
    /// JoinGroupRequest, versions 2-5.
    pub struct JoinGroupRequest {
        /// The group identifier.
        group_id: String => ..,
        /// The coordinator considers the consumer dead if it receives no heartbeat after this
        /// timeout in milliseconds.
        session_timeout_ms: i32 => ..,
        /// The maximum time in milliseconds that the coordinator will wait for each member to
        /// rejoin when rebalancing the group.
        rebalance_timeout_ms: i32 = -1 => ..,
        /// The member id assigned by the group coordinator.
        member_id: String => ..,
        /// The unique identifier of the consumer instance provided by end user.
        group_instance_id: Option<String> => 5..,
        /// The unique name the for class of protocols implemented by the group we want to join.
        protocol_type: String => ..,
        /// The list of protocols that the member supports.
        protocols: Vec<JoinGroupRequestProtocol> => ..,
    }
}

wire_struct! {
    /// The list of protocols that the member supports.
    pub struct JoinGroupRequestProtocol {
        /// The protocol name.
        name: String => ..,
        /// The protocol metadata.
        metadata: Bytes => ..,
    }
}

wire_struct! {
    /// JoinGroupResponse, versions 2-5.
    pub struct JoinGroupResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The generation ID of the group.
        generation_id: i32 = -1 => ..,
        /// The group protocol selected by the coordinator.
        protocol_name: String => ..,
        /// The leader of the group.
        leader: String => ..,
        /// The member ID assigned by the group coordinator.
        member_id: String => ..,
        /// The group members.
        members: Vec<JoinGroupResponseMember> => ..,
    }
}

wire_struct! {
    /// The group members.
    pub struct JoinGroupResponseMember {
        /// The group member ID.
        member_id: String => ..,
        /// The unique identifier of the consumer instance provided by end user.
        group_instance_id: Option<String> => 5..,
        /// The group member metadata.
        metadata: Bytes => ..,
    }
}
