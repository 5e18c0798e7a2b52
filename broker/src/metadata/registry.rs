//! The topic registry: every topic's partition count and config overrides, persisted atomically.
//!
//! Readers take a cheap snapshot (`Arc<TopicInfo>`); writers serialise on one mutex, write the
//! whole file (it is small) with [`store::write_json`], then publish the
//! new map, so what clients see has always reached the disk first. Methods do blocking file I/O:
//! async callers run them on `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::store::{self, StoreError};
use super::topic_name::validate_topic_name;

/// File name of the registry inside the data dir.
pub const REGISTRY_FILE: &str = "topics.json";
const REGISTRY_VERSION: u32 = 1;

/// Whether a topic is served or halfway through deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicState {
    /// Served to clients.
    Live,
    /// Deletion started; its files are being removed. Invisible to clients.
    Deleting,
}

/// One topic as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// The topic name (validated by Kafka's rules).
    pub name: String,
    /// Number of partitions, numbered 0..partitions.
    pub partitions: i32,
    /// Config overrides by Kafka name (only those set explicitly; the rest are broker defaults).
    pub configs: BTreeMap<String, String>,
    /// Live or being deleted.
    pub state: TopicState,
}

#[derive(Debug, Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    topics: Vec<TopicInfo>,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The registry file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A topic of that name exists (or is still being deleted).
    #[error("topic {0:?} already exists")]
    AlreadyExists(String),
    /// No live topic of that name.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// The name breaks Kafka's topic-name rules.
    #[error("{0}")]
    InvalidName(String),
    /// The partition count is out of range.
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
}

type TopicMap = BTreeMap<String, Arc<TopicInfo>>;

/// The persistent topic registry (see the module doc).
#[derive(Debug)]
pub struct TopicRegistry {
    path: PathBuf,
    topics: RwLock<Arc<TopicMap>>,
    write: Mutex<()>,
}

impl TopicRegistry {
    /// Loads `<data_dir>/topics.json`, or starts empty when there is none.
    pub fn open(data_dir: &Path) -> Result<TopicRegistry, MetadataError> {
        let path = data_dir.join(REGISTRY_FILE);
        let file: Option<RegistryFile> = store::read_json(&path)?;
        let mut topics = TopicMap::new();
        if let Some(file) = file {
            if file.version != REGISTRY_VERSION {
                return Err(StoreError::Corrupt {
                    path,
                    reason: format!("unknown registry version {}", file.version),
                }
                .into());
            }
            for topic in file.topics {
                topics.insert(topic.name.clone(), Arc::new(topic));
            }
        }
        Ok(TopicRegistry {
            path,
            topics: RwLock::new(Arc::new(topics)),
            write: Mutex::new(()),
        })
    }

    fn snapshot(&self) -> Arc<TopicMap> {
        // A poisoned lock only means a writer panicked between steps that cannot fail; the map
        // it guards is always a complete value.
        Arc::clone(&self.topics.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The live topic named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<TopicInfo>> {
        self.snapshot()
            .get(name)
            .filter(|topic| topic.state == TopicState::Live)
            .cloned()
    }

    /// Every live topic, by name.
    pub fn live_topics(&self) -> Vec<Arc<TopicInfo>> {
        self.snapshot()
            .values()
            .filter(|topic| topic.state == TopicState::Live)
            .cloned()
            .collect()
    }

    /// Topics whose deletion was started but not finished (finish them at start-up).
    pub fn deleting_topics(&self) -> Vec<Arc<TopicInfo>> {
        self.snapshot()
            .values()
            .filter(|topic| topic.state == TopicState::Deleting)
            .cloned()
            .collect()
    }

    /// Applies `change` to a copy of the map, persists it, then publishes it.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut TopicMap) -> Result<T, MetadataError>,
    ) -> Result<T, MetadataError> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut topics = TopicMap::clone(&self.snapshot());
        let out = change(&mut topics)?;
        let file = RegistryFile {
            version: REGISTRY_VERSION,
            topics: topics.values().map(|t| TopicInfo::clone(t)).collect(),
        };
        store::write_json(&self.path, &file)?;
        *self.topics.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(topics);
        Ok(out)
    }

    /// Registers a new live topic; validates the name and the partition count.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<TopicInfo>, MetadataError> {
        validate_topic_name(name).map_err(MetadataError::InvalidName)?;
        if partitions < 1 {
            return Err(MetadataError::InvalidPartitions(partitions));
        }
        self.update(|topics| {
            if topics.contains_key(name) {
                return Err(MetadataError::AlreadyExists(name.to_string()));
            }
            let info = Arc::new(TopicInfo {
                name: name.to_string(),
                partitions,
                configs,
                state: TopicState::Live,
            });
            topics.insert(name.to_string(), Arc::clone(&info));
            Ok(info)
        })
    }

    /// First phase of deletion: the topic disappears for clients; its files are still there.
    pub fn mark_deleting(&self, name: &str) -> Result<Arc<TopicInfo>, MetadataError> {
        self.update(|topics| {
            let current = topics
                .get(name)
                .filter(|t| t.state == TopicState::Live)
                .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
            let deleting = Arc::new(TopicInfo {
                state: TopicState::Deleting,
                ..TopicInfo::clone(current)
            });
            topics.insert(name.to_string(), Arc::clone(&deleting));
            Ok(deleting)
        })
    }

    /// Last phase of deletion, once the files are gone.
    pub fn remove(&self, name: &str) -> Result<(), MetadataError> {
        self.update(|topics| {
            topics
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
        })
    }

    /// Replaces a live topic's config overrides.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<TopicInfo>, MetadataError> {
        self.update(|topics| {
            let current = topics
                .get(name)
                .filter(|t| t.state == TopicState::Live)
                .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
            let updated = Arc::new(TopicInfo {
                configs,
                ..TopicInfo::clone(current)
            });
            topics.insert(name.to_string(), Arc::clone(&updated));
            Ok(updated)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_survive_reopen_and_deletion_is_two_phase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = TopicRegistry::open(dir.path()).expect("open");
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        registry
            .create("orders", 3, configs.clone())
            .expect("create");
        registry
            .create("audit", 1, BTreeMap::new())
            .expect("create");
        assert!(matches!(
            registry.create("orders", 1, BTreeMap::new()),
            Err(MetadataError::AlreadyExists(_))
        ));
        assert!(matches!(
            registry.create("bad name", 1, BTreeMap::new()),
            Err(MetadataError::InvalidName(_))
        ));
        assert!(matches!(
            registry.create("zero", 0, BTreeMap::new()),
            Err(MetadataError::InvalidPartitions(0))
        ));
        registry.mark_deleting("audit").expect("mark");
        assert!(registry.get("audit").is_none());

        let reopened = TopicRegistry::open(dir.path()).expect("reopen");
        let orders = reopened.get("orders").expect("orders");
        assert_eq!(orders.partitions, 3);
        assert_eq!(orders.configs, configs);
        assert_eq!(reopened.live_topics().len(), 1);
        assert_eq!(reopened.deleting_topics()[0].name, "audit");
        reopened.remove("audit").expect("remove");
        assert!(TopicRegistry::open(dir.path())
            .expect("reopen")
            .deleting_topics()
            .is_empty());
    }
}
