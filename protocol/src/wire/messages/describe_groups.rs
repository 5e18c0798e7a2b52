//! DescribeGroups (api key 15), versions 0-4: field lists and version gates from Kafka's
//! `DescribeGroupsRequest.json` / `DescribeGroupsResponse.json`.

use bytes::Bytes;

wire_struct! {
    /// DescribeGroupsRequest, versions 0-4.
    pub struct DescribeGroupsRequest {
        /// The names of the groups to describe.
        groups: Vec<String> => ..,
        /// Whether to include authorized operations.
        include_authorized_operations: bool => 3..,
    }
}

wire_struct! {
    /// DescribeGroupsResponse, versions 0-4.
    pub struct DescribeGroupsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
        /// Each described group.
        groups: Vec<DescribedGroup> => ..,
    }
}

wire_struct! {
    /// Each described group.
    pub struct DescribedGroup {
        /// The describe error, or 0 if there was no error.
        error_code: i16 => ..,
        /// The group ID string.
        group_id: String => ..,
        /// The group state string, or the empty string.
        group_state: String => ..,
        /// The group protocol type, or the empty string.
        protocol_type: String => ..,
        /// The group protocol data, or the empty string.
        protocol_data: String => ..,
        /// The group members.
        members: Vec<DescribedGroupMember> => ..,
        /// 32-bit bitfield to represent authorized operations for this group.
        authorized_operations: i32 = -2147483648 => 3..,
    }
}

wire_struct! {
    /// The group members.
    pub struct DescribedGroupMember {
        /// The member id.
        member_id: String => ..,
        /// The unique identifier of the consumer instance provided by end user.
        group_instance_id: Option<String> => 4..,
        /// The client ID used in the member's latest join group request.
        client_id: String => ..,
        /// The client host.
        client_host: String => ..,
        /// The metadata corresponding to the current group protocol in use.
        member_metadata: Bytes => ..,
        /// The current assignment provided by the group leader.
        member_assignment: Bytes => ..,
    }
}
