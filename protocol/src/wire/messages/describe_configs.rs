//! DescribeConfigs (api key 32), versions 0-2: field lists and version gates from Kafka's
//! `DescribeConfigsRequest.json` / `DescribeConfigsResponse.json` (v0 from the Kafka 2.x copy,
//! since Kafka 4 dropped it).

wire_struct! {
    /// DescribeConfigsRequest, versions 0-2.
    pub struct DescribeConfigsRequest {
        /// The resources whose configurations we want to describe.
        resources: Vec<DescribeConfigsResource> => ..,
        /// True if we should include all synonyms.
        include_synonyms: bool => 1..,
    }
}

wire_struct! {
    /// The resources whose configurations we want to describe.
    pub struct DescribeConfigsResource {
        /// The resource type.
        resource_type: i8 => ..,
        /// The resource name.
        resource_name: String => ..,
        /// The configuration keys to list, or null to list all configuration keys.
        configuration_keys: Option<Vec<String>> => ..,
    }
}

wire_struct! {
    /// DescribeConfigsResponse, versions 0-2.
    pub struct DescribeConfigsResponse {
        /// The duration in milliseconds for which the request was throttled due to a quota
        /// violation, or zero if the request did not violate any quota.
        throttle_time_ms: i32 => ..,
        /// The results for each resource.
        results: Vec<DescribeConfigsResult> => ..,
    }
}

wire_struct! {
    /// The results for each resource.
    pub struct DescribeConfigsResult {
        /// The error code, or 0 if we were able to successfully describe the configurations.
        error_code: i16 => ..,
        /// The error message, or null if we were able to successfully describe the configurations.
        error_message: Option<String> => ..,
        /// The resource type.
        resource_type: i8 => ..,
        /// The resource name.
        resource_name: String => ..,
        /// Each listed configuration.
        configs: Vec<DescribeConfigsResourceResult> => ..,
    }
}

wire_struct! {
    /// Each listed configuration.
    pub struct DescribeConfigsResourceResult {
        /// The configuration name.
        name: String => ..,
        /// The configuration value.
        value: Option<String> => ..,
        /// True if the configuration is read-only.
        read_only: bool => ..,
        /// True if the configuration is not set (version 0 only; later versions use
        /// `config_source`).
        is_default: bool => ..=0,
        /// The configuration source.
        config_source: i8 = -1 => 1..,
        /// True if this configuration is sensitive.
        is_sensitive: bool => ..,
        /// The synonyms for this configuration key.
        synonyms: Vec<DescribeConfigsSynonym> => 1..,
    }
}

wire_struct! {
    /// The synonyms for this configuration key.
    pub struct DescribeConfigsSynonym {
        /// The synonym name.
        name: String => ..,
        /// The synonym value.
        value: Option<String> => ..,
        /// The synonym source.
        source: i8 => ..,
    }
}
