//! Broker settings of the group coordinator, with Kafka's names and defaults.
//!
//! Built from the broker's key/value settings by [`GroupConfig::from_props`], validated once.

use std::collections::BTreeMap;

/// Why a group setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupConfigError {
    /// The value is not a number in range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// The setting.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Settings of the group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long a new (empty) group waits for more members
    /// before the first assignment; each member arriving meanwhile extends it, up to the
    /// rebalance timeout. Kafka's default 3000.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (default 6000).
    pub min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms` (default 1800000).
    pub max_session_timeout_ms: u64,
    /// `group.max.size`: members per group (default and ceiling
    /// [`MEMBERS_PER_GROUP_MAX`](super::limits::MEMBERS_PER_GROUP_MAX)).
    pub max_size: usize,
    /// `offset.metadata.max.bytes`: longest metadata string on a commit (default 4096).
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` (default 1 here; Kafka
    /// uses 50 to spread many coordinators, which a single node does not need).
    pub offsets_topic_num_partitions: i32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: super::limits::MEMBERS_PER_GROUP_MAX,
            offset_metadata_max_bytes: 4096,
            offsets_topic_num_partitions: 1,
        }
    }
}

impl GroupConfig {
    /// The setting names this config reads.
    pub const KEYS: &'static [&'static str] = &[
        "group.initial.rebalance.delay.ms",
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
        "group.max.size",
        "offset.metadata.max.bytes",
        "offsets.topic.num.partitions",
    ];

    /// Reads `props` (every key must be one of [`GroupConfig::KEYS`]), defaults for the rest.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<GroupConfig, GroupConfigError> {
        let mut config = GroupConfig::default();
        for (key, value) in props {
            let number = || -> Result<u64, GroupConfigError> {
                value
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| GroupConfigError::Invalid {
                        key: key.clone(),
                        value: value.clone(),
                        reason: e.to_string(),
                    })
            };
            match key.as_str() {
                "group.initial.rebalance.delay.ms" => config.initial_rebalance_delay_ms = number()?,
                "group.min.session.timeout.ms" => config.min_session_timeout_ms = number()?,
                "group.max.session.timeout.ms" => config.max_session_timeout_ms = number()?,
                "group.max.size" => config.max_size = to_usize(key, value, number()?)?,
                "offset.metadata.max.bytes" => {
                    config.offset_metadata_max_bytes = to_usize(key, value, number()?)?
                }
                "offsets.topic.num.partitions" => {
                    config.offsets_topic_num_partitions = i32::try_from(number()?).unwrap_or(0)
                }
                _ => {
                    return Err(GroupConfigError::Invalid {
                        key: key.clone(),
                        value: value.clone(),
                        reason: format!("unknown group setting (known: {})", Self::KEYS.join(", ")),
                    })
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between settings.
    pub fn validate(&self) -> Result<(), GroupConfigError> {
        let invalid = |key: &str, value: String, reason: &str| GroupConfigError::Invalid {
            key: key.to_owned(),
            value,
            reason: reason.to_owned(),
        };
        if self.min_session_timeout_ms > self.max_session_timeout_ms {
            return Err(invalid(
                "group.min.session.timeout.ms",
                self.min_session_timeout_ms.to_string(),
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        if self.max_session_timeout_ms > i32::MAX as u64 {
            return Err(invalid(
                "group.max.session.timeout.ms",
                self.max_session_timeout_ms.to_string(),
                "must fit in a 32-bit signed integer",
            ));
        }
        if self.max_size == 0 || self.max_size > super::limits::MEMBERS_PER_GROUP_MAX {
            return Err(invalid(
                "group.max.size",
                self.max_size.to_string(),
                "must be between 1 and 10000",
            ));
        }
        if !(1..=1000).contains(&self.offsets_topic_num_partitions) {
            return Err(invalid(
                "offsets.topic.num.partitions",
                self.offsets_topic_num_partitions.to_string(),
                "must be between 1 and 1000",
            ));
        }
        Ok(())
    }
}

fn to_usize(key: &str, value: &str, n: u64) -> Result<usize, GroupConfigError> {
    usize::try_from(n).map_err(|_| GroupConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: "too large".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_kafka() {
        let c = GroupConfig::from_props(&BTreeMap::new()).unwrap();
        assert_eq!(c.initial_rebalance_delay_ms, 3000);
        assert_eq!(c.min_session_timeout_ms, 6000);
        assert_eq!(c.max_session_timeout_ms, 1_800_000);
    }

    #[test]
    fn reads_settings_and_rejects_bad_ones() {
        let c = GroupConfig::from_props(&props(&[
            ("group.initial.rebalance.delay.ms", "100"),
            ("group.min.session.timeout.ms", "500"),
        ]))
        .unwrap();
        assert!(
            GroupConfig::from_props(&props(&[("group.initial.rebalance.delay", "5")])).is_err()
        );
        assert_eq!(c.initial_rebalance_delay_ms, 100);
        assert_eq!(c.min_session_timeout_ms, 500);
        let err = GroupConfig::from_props(&props(&[("group.max.size", "abc")])).unwrap_err();
        assert!(
            matches!(err, GroupConfigError::Invalid { ref key, .. } if key == "group.max.size")
        );
        let err = GroupConfig::from_props(&props(&[
            ("group.min.session.timeout.ms", "10"),
            ("group.max.session.timeout.ms", "5"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("group.min.session.timeout.ms"));
        assert!(GroupConfig::from_props(&props(&[("offsets.topic.num.partitions", "0")])).is_err());
    }
}
