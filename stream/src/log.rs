//! The narrow interface the stream engine needs from the event log, with an in-memory
//! implementation for tests (which can fail writes part-way, to model a crash inside a sink).
//!
//! The broker-backed implementation over `sluice-client` is `client_log::ClientLog`. The
//! interface is synchronous: the engine's tasks and driver are plain threads; the client-backed
//! implementation blocks on its own tokio runtime.

use crate::error::StreamError;
use crate::planner::PartitionOffsets;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// A record read from the log. Keys, values and header values are slices of the fetched bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, epoch milliseconds.
    pub timestamp_ms: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record to write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutRecord {
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp (`None`: the write time).
    pub timestamp_ms: Option<i64>,
}

impl OutRecord {
    /// A record with a key and a value.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> OutRecord {
        OutRecord {
            key: Some(key.into()),
            value: Some(value.into()),
            ..OutRecord::default()
        }
    }

    /// A record with only a value.
    pub fn value(value: impl Into<Bytes>) -> OutRecord {
        OutRecord {
            value: Some(value.into()),
            ..OutRecord::default()
        }
    }
}

/// A read started by [`Log::start_read`]: call it to wait for the records.
pub type PendingRead = Box<dyn FnOnce() -> Result<Vec<Record>, StreamError> + Send>;

/// What the engine needs from the log.
pub trait Log: Send + Sync {
    /// The partition count of a topic.
    fn partitions(&self, topic: &str) -> Result<i32, StreamError>;
    /// A partition's start and end offsets.
    fn offsets(&self, topic: &str, partition: i32) -> Result<PartitionOffsets, StreamError>;
    /// Starts reading `[from, until)` in the background and returns a handle that waits for the
    /// records, so the reads of all of a batch's ranges overlap each other and the processing.
    /// `None` (the default): the caller reads with [`Log::read_range`] when it needs the records.
    fn start_read(
        &self,
        _topic: &str,
        _partition: i32,
        _from: i64,
        _until: i64,
    ) -> Option<PendingRead> {
        None
    }
    /// The records with offsets in `[from, until)` (fewer where compaction removed some).
    fn read_range(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> Result<Vec<Record>, StreamError>;
    /// The first offset whose record timestamp is at or after `timestamp_ms` (the end offset if
    /// none is).
    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, StreamError>;
    /// Creates a topic unless it exists.
    fn ensure_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), StreamError>;
    /// Writes records to one partition, in order, returning once all are acknowledged by every
    /// in-sync replica. On error, some prefix of the records may have been written.
    fn write(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutRecord>,
    ) -> Result<(), StreamError>;
}

type Partition = Vec<Record>;

/// An in-memory log. `fail_after(n)` makes writes fail once `n` more records were written, so
/// tests can cut a sink or a progress write in the middle, as a crash would.
#[derive(Debug, Default)]
pub struct MemoryLog {
    topics: Mutex<BTreeMap<String, Vec<Partition>>>,
    budget: AtomicI64,
}

impl MemoryLog {
    /// An empty log with no failure planned.
    pub fn new() -> MemoryLog {
        MemoryLog {
            topics: Mutex::new(BTreeMap::new()),
            budget: AtomicI64::new(i64::MAX),
        }
    }

    /// Writes fail after `n` more records (`None`: never).
    pub fn fail_after(&self, n: Option<u64>) {
        self.budget
            .store(n.map_or(i64::MAX, |n| n as i64), Ordering::SeqCst);
    }

    /// Every record of a partition.
    pub fn records(&self, topic: &str, partition: i32) -> Vec<Record> {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .get(topic)
            .and_then(|p| p.get(partition as usize))
            .cloned()
            .unwrap_or_default()
    }

    fn with_partition<R>(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnOnce(&mut Partition) -> R,
    ) -> Result<R, StreamError> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let parts = topics
            .get_mut(topic)
            .ok_or_else(|| StreamError::Broker(format!("unknown topic {topic}")))?;
        let p = usize::try_from(partition)
            .ok()
            .and_then(|i| parts.get_mut(i))
            .ok_or_else(|| StreamError::Broker(format!("unknown partition {topic}-{partition}")))?;
        Ok(f(p))
    }
}

impl Log for MemoryLog {
    fn partitions(&self, topic: &str) -> Result<i32, StreamError> {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .get(topic)
            .map(|p| p.len() as i32)
            .ok_or_else(|| StreamError::Broker(format!("unknown topic {topic}")))
    }

    fn offsets(&self, topic: &str, partition: i32) -> Result<PartitionOffsets, StreamError> {
        self.with_partition(topic, partition, |p| PartitionOffsets {
            start: 0,
            end: p.len() as i64,
        })
    }

    fn read_range(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
    ) -> Result<Vec<Record>, StreamError> {
        self.with_partition(topic, partition, |p| {
            let from = from.clamp(0, p.len() as i64) as usize;
            let until = until.clamp(0, p.len() as i64) as usize;
            p[from..until.max(from)].to_vec()
        })
    }

    fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, StreamError> {
        self.with_partition(topic, partition, |p| {
            p.iter()
                .find(|r| r.timestamp_ms >= timestamp_ms)
                .map_or(p.len() as i64, |r| r.offset)
        })
    }

    fn ensure_topic(
        &self,
        topic: &str,
        partitions: i32,
        _configs: &[(&str, &str)],
    ) -> Result<(), StreamError> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(topic.to_string())
            .or_insert_with(|| vec![Vec::new(); partitions.max(1) as usize]);
        Ok(())
    }

    fn write(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutRecord>,
    ) -> Result<(), StreamError> {
        let name: Arc<str> = Arc::from(topic);
        self.with_partition(topic, partition, |p| {
            for r in records {
                if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
                    return Err(StreamError::Broker("injected write failure".into()));
                }
                let offset = p.len() as i64;
                p.push(Record {
                    topic: name.clone(),
                    partition,
                    offset,
                    timestamp_ms: r.timestamp_ms.unwrap_or(0),
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                });
            }
            Ok(())
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_log_reads_writes_and_fails_on_demand() {
        let log = MemoryLog::new();
        assert!(log.partitions("t").is_err());
        log.ensure_topic("t", 2, &[]).unwrap();
        log.ensure_topic("t", 5, &[]).unwrap();
        assert_eq!(log.partitions("t").unwrap(), 2);
        log.write("t", 1, vec![OutRecord::value("a"), OutRecord::value("b")])
            .unwrap();
        assert_eq!(
            log.offsets("t", 1).unwrap(),
            PartitionOffsets { start: 0, end: 2 }
        );
        let r = log.read_range("t", 1, 1, 10).unwrap();
        assert_eq!(
            (r.len(), r[0].offset, r[0].value.as_deref()),
            (1, 1, Some(&b"b"[..]))
        );
        log.fail_after(Some(1));
        assert!(log
            .write("t", 0, vec![OutRecord::value("c"), OutRecord::value("d")])
            .is_err());
        assert_eq!(log.offsets("t", 0).unwrap().end, 1, "a prefix was written");
        assert!(log.write("t", 9, vec![]).is_err());
    }
}
