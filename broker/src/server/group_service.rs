//! The seam for the group coordinator: the server routes every group API (FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//! DescribeGroups, DeleteGroups) to one [`GroupService`].
//!
//! ```text
//! trait GroupService: Send + Sync {
//!     fn handle<'a>(&'a self, header: &'a RequestHeader, request: Request) -> GroupFuture<'a>;
//! }
//! Broker::set_group_service(Arc<dyn GroupService>)
//! ```
//!
//! `handle` receives the decoded request (one of the group variants of [`Request`]) with its
//! header (api version, client id) and returns the matching [`Response`] variant, encoded by the
//! server at the request's version. Until the `broker::group` coordinator is installed, the
//! broker answers with [`Unavailable`]: COORDINATOR_NOT_AVAILABLE everywhere, which clients treat
//! as "retry later" (librdkafka with manually assigned partitions keeps fetching meanwhile).

use std::future::Future;
use std::pin::Pin;

use sluice_protocol::wire::messages::{
    delete_groups, describe_groups, find_coordinator, heartbeat, join_group, leave_group,
    list_groups, offset_commit, offset_fetch, sync_group,
};
use sluice_protocol::wire::{ErrorCode, Request, RequestHeader, Response};

/// The future a [`GroupService`] returns.
pub type GroupFuture<'a> = Pin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// Answers the group APIs (see the module doc).
pub trait GroupService: Send + Sync + 'static {
    /// Handles one group request; returns the response variant for the same API.
    fn handle<'a>(&'a self, header: &'a RequestHeader, request: Request) -> GroupFuture<'a>;
}

/// Whether `request` is one of the group APIs routed to the [`GroupService`].
pub fn is_group_request(request: &Request) -> bool {
    matches!(
        request,
        Request::FindCoordinator(_)
            | Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::OffsetCommit(_)
            | Request::OffsetFetch(_)
            | Request::ListGroups(_)
            | Request::DescribeGroups(_)
            | Request::DeleteGroups(_)
    )
}

/// A cluster node that is not the group coordinator (it does not lead `__consumer_offsets`):
/// NOT_COORDINATOR, which sends clients back to FindCoordinator; ListGroups lists no group, since
/// clients ask every broker and merge the answers.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotCoordinator;

impl GroupService for NotCoordinator {
    fn handle<'a>(&'a self, _header: &'a RequestHeader, request: Request) -> GroupFuture<'a> {
        Box::pin(async move {
            match request {
                Request::ListGroups(_) => Response::ListGroups(Default::default()),
                other => error_response(other, ErrorCode::NOT_COORDINATOR),
            }
        })
    }
}

/// The stand-in until a coordinator is installed: every group API answers
/// COORDINATOR_NOT_AVAILABLE (per partition or per group where the response has no top-level
/// error).
#[derive(Debug, Default, Clone, Copy)]
pub struct Unavailable;

impl GroupService for Unavailable {
    fn handle<'a>(&'a self, _header: &'a RequestHeader, request: Request) -> GroupFuture<'a> {
        Box::pin(async move { unavailable_response(request) })
    }
}

/// The COORDINATOR_NOT_AVAILABLE answer to a group request (`None` for other APIs).
pub fn unavailable_response(request: Request) -> Response {
    error_response(request, ErrorCode::COORDINATOR_NOT_AVAILABLE)
}

/// The answer to a group request refused with `error` everywhere it can be said.
pub fn error_response(request: Request, error: ErrorCode) -> Response {
    let code = error.as_i16();
    match request {
        Request::FindCoordinator(_) => {
            Response::FindCoordinator(find_coordinator::FindCoordinatorResponse {
                error_code: code,
                error_message: Some(error.message().to_string()),
                node_id: -1,
                ..Default::default()
            })
        }
        Request::JoinGroup(_) => Response::JoinGroup(join_group::JoinGroupResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::SyncGroup(_) => Response::SyncGroup(sync_group::SyncGroupResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::Heartbeat(_) => Response::Heartbeat(heartbeat::HeartbeatResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::LeaveGroup(_) => Response::LeaveGroup(leave_group::LeaveGroupResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::OffsetCommit(req) => Response::OffsetCommit(offset_commit::OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: req
                .topics
                .into_iter()
                .map(|t| offset_commit::OffsetCommitResponseTopic {
                    name: t.name,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| offset_commit::OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: code,
                        })
                        .collect(),
                })
                .collect(),
        }),
        Request::OffsetFetch(req) => Response::OffsetFetch(offset_fetch::OffsetFetchResponse {
            throttle_time_ms: 0,
            error_code: code,
            topics: req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| offset_fetch::OffsetFetchResponseTopic {
                    name: t.name,
                    partitions: t
                        .partition_indexes
                        .into_iter()
                        .map(|index| offset_fetch::OffsetFetchResponsePartition {
                            partition_index: index,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: None,
                            error_code: code,
                        })
                        .collect(),
                })
                .collect(),
        }),
        Request::ListGroups(_) => Response::ListGroups(list_groups::ListGroupsResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::DescribeGroups(req) => {
            Response::DescribeGroups(describe_groups::DescribeGroupsResponse {
                throttle_time_ms: 0,
                groups: req
                    .groups
                    .into_iter()
                    .map(|group_id| describe_groups::DescribedGroup {
                        error_code: code,
                        group_id,
                        ..Default::default()
                    })
                    .collect(),
            })
        }
        Request::DeleteGroups(req) => Response::DeleteGroups(delete_groups::DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: req
                .groups_names
                .into_iter()
                .map(|group_id| delete_groups::DeletableGroupResult {
                    group_id,
                    error_code: code,
                })
                .collect(),
        }),
        other => unreachable_group(other),
    }
}

/// Programmer error: only group requests are routed here (see [`is_group_request`]). Rather than
/// panic in a release build, answer a ListGroups error, which the dispatcher refuses as an API
/// mismatch (closing that one connection).
fn unreachable_group(request: Request) -> Response {
    debug_assert!(false, "not a group request: {:?}", request.api_key());
    Response::ListGroups(list_groups::ListGroupsResponse {
        error_code: ErrorCode::UNKNOWN_SERVER_ERROR.as_i16(),
        ..Default::default()
    })
}
