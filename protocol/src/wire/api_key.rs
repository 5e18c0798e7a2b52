//! [`ApiKey`]: the Kafka APIs Sluice speaks, and [`SUPPORTED_VERSIONS`], the version ranges it
//! advertises in ApiVersions.
//!
//! Only non-flexible versions are listed (no tagged fields anywhere), which every current client
//! accepts and which keeps Debian's librdkafka 2.0 (mis-parses tagged fields) working.

macro_rules! api_keys {
    ($( $(#[$meta:meta])* $variant:ident = $key:literal, $min:literal ..= $max:literal, $name:literal; )*) => {
        /// A Kafka API Sluice implements, with its numeric key as the discriminant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i16)]
        pub enum ApiKey {
            $( $(#[$meta])* $variant = $key, )*
        }

        /// Every supported API with its lowest and highest supported version, by key.
        pub const SUPPORTED_VERSIONS: &[(ApiKey, i16, i16)] = &[
            $( (ApiKey::$variant, $min, $max), )*
        ];

        impl ApiKey {
            /// The API for a numeric key, if Sluice implements it.
            pub fn from_i16(key: i16) -> Option<ApiKey> {
                match key {
                    $( $key => Some(ApiKey::$variant), )*
                    _ => None,
                }
            }

            /// Kafka's name for the API.
            pub fn name(self) -> &'static str {
                match self {
                    $( ApiKey::$variant => $name, )*
                }
            }

            /// The lowest and highest supported versions.
            pub fn versions(self) -> (i16, i16) {
                match self {
                    $( ApiKey::$variant => ($min, $max), )*
                }
            }
        }
    };
}

api_keys! {
    /// Append record batches to partitions.
    Produce = 0, 3..=7, "Produce";
    /// Read record batches from partitions.
    Fetch = 1, 4..=11, "Fetch";
    /// Look up offsets by time (earliest, latest, timestamp).
    ListOffsets = 2, 1..=5, "ListOffsets";
    /// Brokers, topics and partition leaders.
    Metadata = 3, 1..=8, "Metadata";
    /// Commit group offsets.
    OffsetCommit = 8, 2..=7, "OffsetCommit";
    /// Read committed group offsets.
    OffsetFetch = 9, 1..=5, "OffsetFetch";
    /// Find a group's coordinator.
    FindCoordinator = 10, 0..=2, "FindCoordinator";
    /// Join a consumer group.
    JoinGroup = 11, 2..=5, "JoinGroup";
    /// Keep a group membership alive.
    Heartbeat = 12, 0..=3, "Heartbeat";
    /// Leave a consumer group.
    LeaveGroup = 13, 0..=2, "LeaveGroup";
    /// Distribute the leader's assignment.
    SyncGroup = 14, 0..=3, "SyncGroup";
    /// Describe groups: state, protocol, members.
    DescribeGroups = 15, 0..=4, "DescribeGroups";
    /// List the groups a broker coordinates.
    ListGroups = 16, 0..=2, "ListGroups";
    /// The versions a broker supports.
    ApiVersions = 18, 0..=2, "ApiVersions";
    /// Create topics.
    CreateTopics = 19, 2..=4, "CreateTopics";
    /// Delete topics.
    DeleteTopics = 20, 1..=3, "DeleteTopics";
    /// Delete records below an offset.
    DeleteRecords = 21, 0..=1, "DeleteRecords";
    /// Get a producer id and epoch for idempotent produce.
    InitProducerId = 22, 0..=1, "InitProducerId";
    /// Describe topic or broker configs.
    DescribeConfigs = 32, 0..=2, "DescribeConfigs";
    /// Replace topic or broker configs.
    AlterConfigs = 33, 0..=1, "AlterConfigs";
    /// Delete consumer groups.
    DeleteGroups = 42, 0..=1, "DeleteGroups";
}

impl ApiKey {
    /// The numeric key.
    pub fn as_i16(self) -> i16 {
        self as i16
    }

    /// True when `version` is within the supported range.
    pub fn supports(self, version: i16) -> bool {
        let (min, max) = self.versions();
        (min..=max).contains(&version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_sorted() {
        for (i, &(key, min, max)) in SUPPORTED_VERSIONS.iter().enumerate() {
            assert_eq!(ApiKey::from_i16(key.as_i16()), Some(key));
            assert_eq!(key.versions(), (min, max));
            assert!(min <= max);
            if i > 0 {
                assert!(SUPPORTED_VERSIONS[i - 1].0 < key);
            }
        }
        assert_eq!(ApiKey::from_i16(17), None);
        assert!(ApiKey::ApiVersions.supports(2));
        assert!(!ApiKey::ApiVersions.supports(3));
    }
}
