//! ApiVersions (api key 18), versions 0-2: field lists and version gates from Kafka's
//! `ApiVersionsRequest.json` / `ApiVersionsResponse.json`.

wire_struct! {
    /// ApiVersionsRequest, versions 0-2.
    pub struct ApiVersionsRequest {

    }
}

wire_struct! {
    /// ApiVersionsResponse, versions 0-2.
    pub struct ApiVersionsResponse {
        /// The top-level error code.
        error_code: i16 => ..,
        /// The APIs supported by the broker.
        api_keys: Vec<ApiVersion> => ..,
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => 1..,
    }
}

wire_struct! {
    /// The APIs supported by the broker.
    pub struct ApiVersion {
        /// The API index.
        api_key: i16 => ..,
        /// The minimum supported version, inclusive.
        min_version: i16 => ..,
        /// The maximum supported version, inclusive.
        max_version: i16 => ..,
    }
}
