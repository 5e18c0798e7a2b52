//! AlterConfigs (api key 33), versions 0-1: field lists and version gates from Kafka's
//! `AlterConfigsRequest.json` / `AlterConfigsResponse.json`.

wire_struct! {
    /// AlterConfigsRequest, versions 0-1.
    pub struct AlterConfigsRequest {
        /// The updates for each resource.
        resources: Vec<AlterConfigsResource> => ..,
        /// True if we should validate the request, but not change the configurations.
        validate_only: bool => ..,
    }
}

wire_struct! {
    /// The updates for each resource.
    pub struct AlterConfigsResource {
        /// The resource type.
        resource_type: i8 => ..,
        /// The resource name.
        resource_name: String => ..,
        /// The configurations.
        configs: Vec<AlterableConfig> => ..,
    }
}

wire_struct! {
    /// The configurations.
    pub struct AlterableConfig {
        /// The configuration key name.
        name: String => ..,
        /// The value to set for the configuration key.
        value: Option<String> => ..,
    }
}

wire_struct! {
    /// AlterConfigsResponse, versions 0-1.
    pub struct AlterConfigsResponse {
        /// Duration in milliseconds for which the request was throttled due to a quota violation,
        /// or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The responses for each resource.
        responses: Vec<AlterConfigsResourceResponse> => ..,
    }
}

wire_struct! {
    /// The responses for each resource.
    pub struct AlterConfigsResourceResponse {
        /// The resource error code.
        error_code: i16 => ..,
        /// The resource error message, or null if there was no error.
        error_message: Option<String> => ..,
        /// The resource type.
        resource_type: i8 => ..,
        /// The resource name.
        resource_name: String => ..,
    }
}
