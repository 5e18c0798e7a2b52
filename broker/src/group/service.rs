//! Plugging the coordinator into the server: [`GroupCoordinator`] implements the server's
//! [`GroupService`] seam, and [`install`] starts it on a broker (open `__consumer_offsets`, replay
//! it, advertise this node in FindCoordinator, route the group APIs to it).

use std::sync::Arc;

use sluice_protocol::wire::{Request, RequestHeader};

use super::config::GroupConfig;
use super::coordinator::{CoordinatorNode, GroupCoordinator};
use super::log_offsets::{start_coordinator, CoordinatorStartError};
use super::wire_api::ClientInfo;
use crate::server::broker::Broker;
use crate::server::group_service::{
    is_group_request, unavailable_response, GroupFuture, GroupService,
};

impl GroupService for GroupCoordinator {
    fn handle<'a>(&'a self, header: &'a RequestHeader, request: Request) -> GroupFuture<'a> {
        Box::pin(async move {
            let client = ClientInfo {
                api_version: header.api_version,
                client_id: header.client_id.clone().unwrap_or_default(),
                // The seam does not carry the peer address.
                client_host: String::new(),
            };
            if !is_group_request(&request) {
                return unavailable_response(request);
            }
            match GroupCoordinator::handle(self, &client, request).await {
                Some(response) => response,
                // Unreachable: `handle` answers every group API.
                None => unavailable_response(Request::ListGroups(Default::default())),
            }
        })
    }
}

/// Starts the group coordinator with `config` on `broker`'s logs and installs it as the broker's
/// group service. Call once the listener is bound (FindCoordinator advertises that address).
pub async fn install(
    broker: &Broker,
    config: GroupConfig,
) -> Result<GroupCoordinator, CoordinatorStartError> {
    let coordinator = start_coordinator(config, broker.logs()).await?;
    let (host, port) = broker.advertised();
    coordinator.set_node(CoordinatorNode {
        node_id: broker.node_id(),
        host,
        port,
    });
    broker.set_group_service(Arc::new(coordinator.clone()));
    tracing::info!("group coordinator running");
    Ok(coordinator)
}
