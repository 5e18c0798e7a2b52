//! InitProducerId (api key 22), versions 0-1: field lists and version gates from Kafka's
//! `InitProducerIdRequest.json` / `InitProducerIdResponse.json`.

wire_struct! {
    /// InitProducerIdRequest, versions 0-1.
    pub struct InitProducerIdRequest {
        /// The transactional id, or null if the producer is not transactional.
        transactional_id: Option<String> => ..,
        /// The time in ms to wait before aborting idle transactions sent by this producer. This is
        /// only relevant if a TransactionalId has been defined.
        transaction_timeout_ms: i32 => ..,
    }
}

wire_struct! {
    /// InitProducerIdResponse, versions 0-1.
    pub struct InitProducerIdResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The current producer id.
        producer_id: i64 = -1 => ..,
        /// The current epoch associated with the producer id.
        producer_epoch: i16 => ..,
    }
}
