//! The message structs, one module per API, and the [`Request`] / [`Response`] enums with one
//! variant per API.
//!
//! Each module holds the request and response structs with Kafka's field names in snake_case,
//! declared with `wire_struct!` so the version gates are written once; nested arrays of structs
//! are their own structs named as in Kafka's JSON schema.
//!
//! Nullability follows the Rust type: a field nullable in any supported version is an `Option`
//! in all of them. Only OffsetFetch `topics` is nullable in some supported versions (2+) and not
//! others (1); a null there at v1 is accepted on decode and written as -1 on encode, so clients
//! should only send null (= all topics) at v2+.

pub mod alter_configs;
pub mod api_versions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use super::api_key::ApiKey;
use super::error::WireError;
use super::primitives::{Codec, Reader, WireWrite};

macro_rules! messages {
    ($( $variant:ident => $module:ident :: $req:ident, $resp:ident; )*) => {
        /// A decoded request body, one variant per API.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $(
                #[doc = concat!("A ", stringify!($variant), " request.")]
                $variant($module::$req),
            )*
        }

        /// A decoded response body, one variant per API.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Response {
            $(
                #[doc = concat!("A ", stringify!($variant), " response.")]
                $variant($module::$resp),
            )*
        }

        impl Request {
            /// The API this request belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( Request::$variant(_) => ApiKey::$variant, )*
                }
            }

            /// Reads the body of a request for `api_key` at `version`.
            pub fn decode_body(
                api_key: ApiKey,
                version: i16,
                r: &mut Reader,
            ) -> Result<Request, WireError> {
                Ok(match api_key {
                    $( ApiKey::$variant => Request::$variant($module::$req::decode(r, version)?), )*
                })
            }

            /// Writes the body at `version` (the caller checks the version is supported).
            pub fn encode_body<W: WireWrite>(&self, w: &mut W, version: i16) -> Result<(), WireError> {
                match self {
                    $( Request::$variant(m) => m.encode(w, version), )*
                }
            }
        }

        impl Response {
            /// The API this response belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( Response::$variant(_) => ApiKey::$variant, )*
                }
            }

            /// Reads the body of a response for `api_key` at `version`.
            pub fn decode_body(
                api_key: ApiKey,
                version: i16,
                r: &mut Reader,
            ) -> Result<Response, WireError> {
                Ok(match api_key {
                    $( ApiKey::$variant => Response::$variant($module::$resp::decode(r, version)?), )*
                })
            }

            /// Writes the body at `version` (the caller checks the version is supported).
            pub fn encode_body<W: WireWrite>(&self, w: &mut W, version: i16) -> Result<(), WireError> {
                match self {
                    $( Response::$variant(m) => m.encode(w, version), )*
                }
            }
        }

        $(
            impl From<$module::$req> for Request {
                fn from(m: $module::$req) -> Request {
                    Request::$variant(m)
                }
            }

            impl From<$module::$resp> for Response {
                fn from(m: $module::$resp) -> Response {
                    Response::$variant(m)
                }
            }
        )*
    };
}

messages! {
    Produce => produce::ProduceRequest, ProduceResponse;
    Fetch => fetch::FetchRequest, FetchResponse;
    ListOffsets => list_offsets::ListOffsetsRequest, ListOffsetsResponse;
    Metadata => metadata::MetadataRequest, MetadataResponse;
    OffsetCommit => offset_commit::OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch => offset_fetch::OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator => find_coordinator::FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup => join_group::JoinGroupRequest, JoinGroupResponse;
    Heartbeat => heartbeat::HeartbeatRequest, HeartbeatResponse;
    LeaveGroup => leave_group::LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup => sync_group::SyncGroupRequest, SyncGroupResponse;
    DescribeGroups => describe_groups::DescribeGroupsRequest, DescribeGroupsResponse;
    ListGroups => list_groups::ListGroupsRequest, ListGroupsResponse;
    ApiVersions => api_versions::ApiVersionsRequest, ApiVersionsResponse;
    CreateTopics => create_topics::CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics => delete_topics::DeleteTopicsRequest, DeleteTopicsResponse;
    DeleteRecords => delete_records::DeleteRecordsRequest, DeleteRecordsResponse;
    InitProducerId => init_producer_id::InitProducerIdRequest, InitProducerIdResponse;
    DescribeConfigs => describe_configs::DescribeConfigsRequest, DescribeConfigsResponse;
    AlterConfigs => alter_configs::AlterConfigsRequest, AlterConfigsResponse;
    DeleteGroups => delete_groups::DeleteGroupsRequest, DeleteGroupsResponse;
}
