//! InitProducerId: a fresh producer id (epoch 0) for an idempotent producer, from the persistent
//! allocator. Transactional ids are refused: Sluice does not implement transactions.

use std::sync::Arc;

use sluice_protocol::wire::messages::init_producer_id::{
    InitProducerIdRequest, InitProducerIdResponse,
};
use sluice_protocol::wire::ErrorCode;

use super::topics::blocking;
use crate::server::dispatch::Handlers;

impl Handlers {
    pub(crate) async fn init_producer_id(
        &self,
        req: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let error = |code: ErrorCode| InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: code.as_i16(),
            producer_id: -1,
            producer_epoch: -1,
        };
        if req
            .transactional_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
        {
            tracing::warn!(
                "InitProducerId with a transactional id refused: transactions are not supported"
            );
            return error(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        }
        let allocator = Arc::clone(self.broker.producer_ids());
        let allocated = blocking(move || allocator.allocate()).await;
        // In a cluster every broker allocates: make the id unique across them.
        let allocated = match (self.broker.cluster(), allocated) {
            (Some(cluster), Ok(Ok(local))) => {
                match super::replicated::cluster_producer_id(local, cluster.node_id()) {
                    Some(id) => Ok(Ok(id)),
                    None => {
                        tracing::error!("producer ids exhausted");
                        return error(ErrorCode::UNKNOWN_SERVER_ERROR);
                    }
                }
            }
            (_, other) => other,
        };
        match allocated {
            Ok(Ok(producer_id)) => InitProducerIdResponse {
                throttle_time_ms: 0,
                error_code: ErrorCode::NONE.as_i16(),
                producer_id,
                producer_epoch: 0,
            },
            Ok(Err(err)) => {
                tracing::error!("producer id allocation failed: {err}");
                error(ErrorCode::KAFKA_STORAGE_ERROR)
            }
            Err((code, message)) => {
                tracing::error!("producer id allocation failed: {message}");
                error(code)
            }
        }
    }
}
