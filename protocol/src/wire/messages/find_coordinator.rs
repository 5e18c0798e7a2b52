//! FindCoordinator (api key 10), versions 0-2: field lists and version gates from Kafka's
//! `FindCoordinatorRequest.json` / `FindCoordinatorResponse.json`.

wire_struct! {
    /// FindCoordinatorRequest, versions 0-2.
    pub struct FindCoordinatorRequest {
        /// The coordinator key.
        key: String => ..,
        /// The coordinator key type. (group, transaction, share).
        key_type: i8 => 1..,
    }
}

wire_struct! {
    /// FindCoordinatorResponse, versions 0-2.
    pub struct FindCoordinatorResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
        /// The error code, or 0 if there was no error.
        error_code: i16 => ..,
        /// The error message, or null if there was no error.
        error_message: Option<String> => 1..,
        /// The node id.
        node_id: i32 => ..,
        /// The host name.
        host: String => ..,
        /// The port.
        port: i32 => ..,
    }
}
