//! `LogManager`: every partition log under one data directory.
//!
//! ```text
//! LogManager::open(data_dir, defaults: LogConfig, clock: Arc<dyn Clock>) -> LogResult<LogManager>
//! create_partition(topic, partition, LogConfig) -> LogResult<Arc<Partition>>
//! delete_partition(topic, partition), partition(topic, partition) -> Option<Arc<Partition>>
//! set_config(topic, partition, LogConfig), partitions(), offline_partitions()
//! tick().await (retention, compaction, flush.ms, checkpoints), spawn_maintenance(interval)
//! shutdown() (flush, clean-shutdown markers)
//! ```
//!
//! Each partition lives in `<data_dir>/<topic>-<partition>/`, with its topic overrides in the
//! `log-config` small file (`key=value` lines). A partition whose data is corrupt opens offline
//! (every call returns the `Offline` error naming file and position); the others work. Deleting a
//! partition renames its directory to `<topic>-<partition>.<ms>-delete` (atomic, fsynced) before
//! removing it, so a crash mid-delete never resurrects half a partition. The data-dir lock is the
//! server's job.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use crate::log::checkpoint::{read_checked_in, write_atomic_in};
use crate::log::clock::Clock;
use crate::log::config::LogConfig;
use crate::log::error::{LogError, LogResult};
use crate::log::partition::{close_in_background, Partition};
use crate::log::recovery;
use crate::log::recycle::{Held, PageRecycler};
use crate::log::segment::{parse_file_name, LOG_SUFFIX};
use crate::log::spare::SPARE_SUFFIX;
use crate::log::storage::{sync_dir, Directory, FileDirectory};

/// Small file in a partition directory holding its topic config overrides.
pub const CONFIG_FILE: &str = "log-config";
const DELETE_SUFFIX: &str = "-delete";
/// File in a partition directory naming the topic incarnation (its id in the cluster metadata)
/// whose records the directory holds: Kafka's `partition.metadata`. Cluster mode only.
pub const TOPIC_ID_FILE: &str = "topic-id";

type Key = (String, i32);

/// All partition logs of a data directory.
#[derive(Debug)]
pub struct LogManager {
    data_dir: PathBuf,
    defaults: LogConfig,
    clock: Arc<dyn Clock>,
    partitions: RwLock<BTreeMap<Key, Arc<Partition>>>,
    /// Deleted segments' log files, whose pages new appends reuse (see `recycle`).
    recycler: Arc<PageRecycler>,
}

/// Parses a partition directory name `<topic>-<partition>`.
pub fn parse_dir_name(name: &str) -> Option<(String, i32)> {
    let (topic, part) = name.rsplit_once('-')?;
    let p: i32 = part.parse().ok().filter(|p| *p >= 0)?;
    (!topic.is_empty()).then(|| (topic.to_string(), p))
}

/// Kafka's legal topic names: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn encode_config(config: &LogConfig) -> Vec<u8> {
    let mut s = String::new();
    for (k, v) in config.to_props() {
        s.push_str(&format!("{k}={v}\n"));
    }
    s.into_bytes()
}

fn decode_config(defaults: &LogConfig, bytes: &[u8]) -> Result<LogConfig, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let mut props = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').ok_or("config line without =")?;
        props.insert(k.to_string(), v.to_string());
    }
    defaults.with_overrides(&props).map_err(|e| e.to_string())
}

impl LogManager {
    /// Opens every partition under `data_dir` (creating the directory), recovering as needed.
    pub fn open(
        data_dir: &Path,
        defaults: LogConfig,
        clock: Arc<dyn Clock>,
    ) -> LogResult<LogManager> {
        fs::create_dir_all(data_dir)?;
        let recycler = Arc::new(PageRecycler::new());
        let mut partitions = BTreeMap::new();
        for entry in fs::read_dir(data_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.ends_with(DELETE_SUFFIX) {
                info!(dir = %entry.path().display(), "finishing an interrupted partition deletion");
                fs::remove_dir_all(entry.path())?;
                continue;
            }
            let Some((topic, partition)) = parse_dir_name(&name) else {
                continue;
            };
            let p = Self::open_partition(
                &entry.path(),
                &topic,
                partition,
                &defaults,
                None,
                clock.clone(),
                recycler.clone(),
            );
            partitions.insert((topic, partition), p);
        }
        Ok(LogManager {
            data_dir: data_dir.to_path_buf(),
            defaults,
            clock,
            partitions: RwLock::new(partitions),
            recycler,
        })
    }

    fn open_partition(
        path: &Path,
        topic: &str,
        partition: i32,
        defaults: &LogConfig,
        config: Option<LogConfig>,
        clock: Arc<dyn Clock>,
        recycler: Arc<PageRecycler>,
    ) -> Arc<Partition> {
        let opened = (|| -> LogResult<_> {
            let dir: Arc<dyn Directory> = Arc::new(FileDirectory::create(path)?);
            let config = match config {
                Some(c) => c,
                None => match read_checked_in(&*dir, CONFIG_FILE) {
                    Ok(Some(bytes)) => {
                        decode_config(defaults, &bytes).map_err(|reason| LogError::Offline {
                            path: path.join(CONFIG_FILE),
                            position: 0,
                            reason,
                        })?
                    }
                    Ok(None) => defaults.clone(),
                    Err(e) => {
                        return Err(LogError::Offline {
                            path: path.join(CONFIG_FILE),
                            position: 0,
                            reason: e.to_string(),
                        })
                    }
                },
            };
            recovery::open(dir, config, clock.now_ms())
        })();
        match opened {
            Ok(log) => Partition::new(topic, partition, log, clock, recycler),
            Err(e) => {
                warn!(topic, partition, error = %e, "partition offline");
                Partition::offline_with(topic, partition, e, clock, recycler)
            }
        }
    }

    fn dir_of(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// The broker-wide defaults.
    pub fn defaults(&self) -> &LogConfig {
        &self.defaults
    }

    /// The deleted segments held for their pages.
    pub fn recycler(&self) -> &Arc<PageRecycler> {
        &self.recycler
    }

    /// Creates a new, empty partition with `config`.
    pub fn create_partition(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> LogResult<Arc<Partition>> {
        if !valid_topic_name(topic) || partition < 0 {
            return Err(LogError::InvalidTopic(format!("{topic}-{partition}")));
        }
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        let key = (topic.to_string(), partition);
        let name = format!("{topic}-{partition}");
        if map.contains_key(&key) {
            return Err(LogError::PartitionExists(name));
        }
        let path = self.dir_of(topic, partition);
        let dir = FileDirectory::create(&path)?;
        write_atomic_in(&dir, CONFIG_FILE, &encode_config(&config))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        sync_dir(&self.data_dir)?;
        let log = recovery::open(Arc::new(dir), config, self.clock.now_ms())?;
        let p = Partition::new(
            topic,
            partition,
            log,
            self.clock.clone(),
            self.recycler.clone(),
        );
        map.insert(key, p.clone());
        Ok(p)
    }

    /// The topic id stamped on a partition's directory by [`Self::stamp_topic_id`]: `None` if
    /// there is none (a directory from before stamps, or single-node mode), or if the stamp
    /// cannot be read (logged: the caller then treats the replica as unstamped).
    pub fn topic_id(&self, topic: &str, partition: i32) -> LogResult<Option<u64>> {
        let dir = FileDirectory::create(&self.dir_of(topic, partition))?;
        match read_checked_in(&dir, TOPIC_ID_FILE) {
            Ok(Some(bytes)) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(id) => Ok(Some(u64::from_be_bytes(id))),
                Err(_) => {
                    warn!(
                        topic,
                        partition, "a topic id stamp of the wrong length: ignored"
                    );
                    Ok(None)
                }
            },
            Ok(None) => Ok(None),
            Err(e) => {
                warn!(topic, partition, error = %e, "unreadable topic id stamp: ignored");
                Ok(None)
            }
        }
    }

    /// Stamps a partition's directory with the id of the topic incarnation it holds (durably),
    /// so that a broker returning after the topic was deleted and created again under the same
    /// name can tell its old replica from one of the new topic.
    pub fn stamp_topic_id(&self, topic: &str, partition: i32, id: u64) -> LogResult<()> {
        let dir = FileDirectory::create(&self.dir_of(topic, partition))?;
        write_atomic_in(&dir, TOPIC_ID_FILE, &id.to_be_bytes())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(())
    }

    /// Changes a partition's config (persisted).
    pub fn set_config(&self, topic: &str, partition: i32, config: LogConfig) -> LogResult<()> {
        let p = self
            .partition(topic, partition)
            .ok_or_else(|| LogError::UnknownPartition(format!("{topic}-{partition}")))?;
        let dir = FileDirectory::create(&self.dir_of(topic, partition))?;
        write_atomic_in(&dir, CONFIG_FILE, &encode_config(&config))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        p.set_config(config)
    }

    /// Deletes a partition and its files.
    pub fn delete_partition(&self, topic: &str, partition: i32) -> LogResult<()> {
        let p = {
            let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            map.remove(&(topic.to_string(), partition))
        };
        let Some(p) = p else {
            return Err(LogError::UnknownPartition(format!("{topic}-{partition}")));
        };
        let _ = p.close();
        let path = self.dir_of(topic, partition);
        let doomed = self.data_dir.join(format!(
            "{topic}-{partition}.{}{DELETE_SUFFIX}",
            self.clock.now_ms()
        ));
        fs::rename(&path, &doomed)?;
        sync_dir(&self.data_dir)?;
        let held = self.hold_segments_of(&doomed);
        fs::remove_dir_all(&doomed)?;
        close_in_background(held);
        Ok(())
    }

    /// Hands the segment log files of a partition directory about to be removed to the recycler;
    /// returns the files it let go of at once (over its byte cap). A file that cannot be opened is
    /// simply removed with the directory.
    fn hold_segments_of(&self, dir: &Path) -> Vec<Held> {
        let Ok(dir) = FileDirectory::create(dir) else {
            return Vec::new();
        };
        let Ok(names) = dir.list() else {
            return Vec::new();
        };
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        let spare = format!("{LOG_SUFFIX}{SPARE_SUFFIX}");
        for name in names {
            // Segment files and spares alike: their pages are what new appends can reuse.
            let is_log = parse_file_name(&name).is_some_and(|(_, s)| s == LOG_SUFFIX || s == spare);
            if !is_log {
                continue;
            }
            if let Ok(file) = dir.open(&name, false) {
                out.extend(self.recycler.hold(file, now));
            }
        }
        out
    }

    /// The partition, if it exists (it may be offline: see [`Partition::offline`]).
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// Every partition.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Partitions that are offline, with their errors.
    pub fn offline_partitions(&self) -> Vec<(String, i32, LogError)> {
        self.partitions()
            .iter()
            .filter_map(|p| {
                p.offline()
                    .map(|e| (p.topic().to_string(), p.partition(), e))
            })
            .collect()
    }

    /// One maintenance round over every online partition.
    pub async fn tick(&self) {
        let expired = self.recycler.expire(self.clock.now_ms());
        if !expired.is_empty() {
            close_in_background(expired);
        }
        for p in self.partitions() {
            if p.offline().is_some() {
                continue;
            }
            if let Err(e) = p.tick().await {
                warn!(topic = p.topic(), partition = p.partition(), error = %e, "log maintenance failed");
            }
        }
    }

    /// Runs [`LogManager::tick`] every `interval` until the returned task is aborted.
    pub fn spawn_maintenance(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                t.tick().await;
                me.tick().await;
            }
        })
    }

    /// Flushes and closes every partition, writing their clean-shutdown markers. Returns the first
    /// error (after trying them all).
    pub fn shutdown(&self) -> LogResult<()> {
        let mut first = None;
        drop(self.recycler.release_all());
        for p in self.partitions() {
            match p.close() {
                Ok(()) | Err(LogError::Closed) | Err(LogError::Offline { .. }) => {}
                Err(e) => {
                    warn!(topic = p.topic(), partition = p.partition(), error = %e, "clean close failed");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names() {
        assert_eq!(parse_dir_name("my-topic-3"), Some(("my-topic".into(), 3)));
        assert_eq!(parse_dir_name("topic"), None);
        assert_eq!(parse_dir_name("-1"), None);
        assert_eq!(parse_dir_name("t--1"), Some(("t-".into(), 1)));
        assert_eq!(parse_dir_name("t-x"), None);
        assert!(valid_topic_name("orders.v2_x-1"));
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(250)] {
            assert!(!valid_topic_name(bad), "{bad}");
        }
        let c = LogConfig::default();
        assert_eq!(decode_config(&c, &encode_config(&c)).unwrap(), c);
    }

    #[tokio::test]
    async fn a_deleted_partition_leaves_its_log_files_to_the_recycler() {
        use crate::log::batch::testing::batch;
        use crate::log::clock::SystemClock;
        use crate::log::partition::Durability;
        let tmp = tempfile::tempdir().unwrap();
        let logs =
            LogManager::open(tmp.path(), LogConfig::default(), Arc::new(SystemClock)).unwrap();
        let p = logs.create_partition("t", 0, LogConfig::default()).unwrap();
        let b = bytes::Bytes::from(batch(0, 1, 1_000, None, &[7u8; 900]));
        p.append(b, 0, Durability::PageCache).await.unwrap();
        drop(p);
        logs.delete_partition("t", 0).unwrap();
        assert!(!tmp.path().join("t-0").exists());
        assert_eq!(logs.recycler().held_files(), 1);
        assert!(logs.recycler().held_bytes() > 900);
        logs.shutdown().unwrap();
        assert_eq!(logs.recycler().held_files(), 0, "shutdown lets them go");
    }
}
