//! ApiVersions negotiation: for each API, the highest version both the broker and this client's
//! codec speak.

use std::collections::HashMap;

use sluice_protocol::wire::{ApiKey, ApiVersionsResponse};

/// The versions usable with one broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    usable: HashMap<i16, i16>,
    broker: HashMap<i16, (i16, i16)>,
}

impl Versions {
    /// Intersects the broker's advertised ranges with the codec's.
    pub fn negotiate(response: &ApiVersionsResponse) -> Versions {
        let mut usable = HashMap::new();
        let mut broker = HashMap::new();
        for v in &response.api_keys {
            broker.insert(v.api_key, (v.min_version, v.max_version));
            let Some(key) = ApiKey::from_i16(v.api_key) else {
                continue;
            };
            let (ours_min, ours_max) = key.versions();
            let hi = ours_max.min(v.max_version);
            let lo = ours_min.max(v.min_version);
            if lo <= hi {
                usable.insert(v.api_key, hi);
            }
        }
        Versions { usable, broker }
    }

    /// The version to use for `key`, or `None` if there is no common one.
    pub fn pick(&self, key: ApiKey) -> Option<i16> {
        self.usable.get(&key.as_i16()).copied()
    }

    /// The broker's advertised range for `key` (for error messages).
    pub fn broker_range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.broker.get(&key.as_i16()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::wire::ApiVersion;

    #[test]
    fn picks_the_highest_common_version() {
        let response = ApiVersionsResponse {
            error_code: 0,
            api_keys: vec![
                // Produce: broker 0..=9, codec 3..=7 -> 7.
                ApiVersion {
                    api_key: 0,
                    min_version: 0,
                    max_version: 9,
                },
                // Fetch: broker 0..=5 -> 5.
                ApiVersion {
                    api_key: 1,
                    min_version: 0,
                    max_version: 5,
                },
                // Metadata: broker 10..=12, codec up to 8 -> none.
                ApiVersion {
                    api_key: 3,
                    min_version: 10,
                    max_version: 12,
                },
                // An API the codec does not know.
                ApiVersion {
                    api_key: 999,
                    min_version: 0,
                    max_version: 1,
                },
            ],
            throttle_time_ms: 0,
        };
        let v = Versions::negotiate(&response);
        assert_eq!(v.pick(ApiKey::Produce), Some(7));
        assert_eq!(v.pick(ApiKey::Fetch), Some(5));
        assert_eq!(v.pick(ApiKey::Metadata), None);
        assert_eq!(v.pick(ApiKey::ListOffsets), None, "not advertised");
        assert_eq!(v.broker_range(ApiKey::Metadata), Some((10, 12)));
    }
}
