//! Where committed offsets are made durable: a narrow trait over the partitions of
//! `__consumer_offsets`, with an in-memory implementation for tests.
//!
//! The coordinator only needs two things from storage: append key/value records to one partition
//! and learn when they are durable, and read every record back at start-up. The production
//! implementation sits on the partition log (`cleanup.policy=compact`); tests use [`MemOffsetsLog`],
//! which can also be told to fail, to check that a failed write is never acknowledged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use bytes::Bytes;

/// A boxed future, as the trait's methods return (keeps the trait object-safe without extra crates).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One record of `__consumer_offsets`: a key and a value, `None` being a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsRecord {
    /// See [`super::offsets_format`].
    pub key: Bytes,
    /// `None` deletes the key.
    pub value: Option<Bytes>,
}

/// Why the offsets log failed.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsLogError {
    /// The storage layer refused or failed the write or read.
    #[error("offsets log storage: {0}")]
    Storage(String),
    /// A stored record could not be decoded.
    #[error("offsets log record at partition {partition} offset {offset}: {reason}")]
    Corrupt {
        /// The partition of `__consumer_offsets`.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        reason: String,
    },
}

/// The partitions of `__consumer_offsets`, as the coordinator sees them.
pub trait OffsetsLog: Send + Sync + 'static {
    /// How many partitions the topic has.
    fn n_partitions(&self) -> i32;

    /// Appends `records` to `partition` as one batch, ordered after every append that resolved
    /// before this call; resolves once written (not yet durable) with the target to pass to
    /// [`OffsetsLog::wait_durable`].
    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'_, Result<i64, OffsetsLogError>>;

    /// Resolves once everything of `partition` before `target` is durable (fsynced); concurrent
    /// waiters share one fsync.
    fn wait_durable(
        &self,
        partition: i32,
        target: i64,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>>;

    /// Every record of `partition` from the start, in offset order.
    fn read_all(
        &self,
        partition: i32,
    ) -> BoxFuture<'_, Result<Vec<OffsetsRecord>, OffsetsLogError>>;
}

/// An in-memory offsets log for tests: everything appended is "durable" unless `fail_appends` is
/// set, in which case appends fail and nothing is kept.
#[derive(Debug, Default)]
pub struct MemOffsetsLog {
    partitions: Mutex<Vec<Vec<OffsetsRecord>>>,
    fail_appends: std::sync::atomic::AtomicBool,
}

impl MemOffsetsLog {
    /// A log with `n` empty partitions.
    pub fn new(n: i32) -> MemOffsetsLog {
        let n = usize::try_from(n.max(1)).unwrap_or(1);
        MemOffsetsLog {
            partitions: Mutex::new(vec![Vec::new(); n]),
            fail_appends: Default::default(),
        }
    }

    /// Makes later appends fail (or succeed again).
    pub fn set_fail_appends(&self, fail: bool) {
        self.fail_appends
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every record held, all partitions.
    pub fn records(&self) -> Vec<OffsetsRecord> {
        self.partitions
            .lock()
            .map(|p| p.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }
}

impl OffsetsLog for MemOffsetsLog {
    fn n_partitions(&self) -> i32 {
        self.partitions.lock().map(|p| p.len() as i32).unwrap_or(1)
    }

    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'_, Result<i64, OffsetsLogError>> {
        let result = if self.fail_appends.load(std::sync::atomic::Ordering::SeqCst) {
            Err(OffsetsLogError::Storage("injected failure".into()))
        } else {
            match self.partitions.lock() {
                Ok(mut parts) => match usize::try_from(partition)
                    .ok()
                    .and_then(|p| parts.get_mut(p))
                {
                    Some(log) => {
                        log.extend(records);
                        Ok(log.len() as i64)
                    }
                    None => Err(OffsetsLogError::Storage(format!(
                        "no partition {partition}"
                    ))),
                },
                Err(_) => Err(OffsetsLogError::Storage("poisoned".into())),
            }
        };
        Box::pin(async move { result })
    }

    fn wait_durable(
        &self,
        _partition: i32,
        _target: i64,
    ) -> BoxFuture<'_, Result<(), OffsetsLogError>> {
        Box::pin(async { Ok(()) })
    }

    fn read_all(
        &self,
        partition: i32,
    ) -> BoxFuture<'_, Result<Vec<OffsetsRecord>, OffsetsLogError>> {
        let result = match self.partitions.lock() {
            Ok(parts) => usize::try_from(partition)
                .ok()
                .and_then(|p| parts.get(p))
                .cloned()
                .ok_or_else(|| OffsetsLogError::Storage(format!("no partition {partition}"))),
            Err(_) => Err(OffsetsLogError::Storage("poisoned".into())),
        };
        Box::pin(async move { result })
    }
}

/// The partition of `__consumer_offsets` that holds `group_id`: Kafka's
/// `abs(groupId.hashCode()) % n`, with Java's `String.hashCode` over UTF-16 code units, so a group
/// lands where Kafka would put it.
pub fn partition_for(group_id: &str, n_partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let h = if h == i32::MIN { 0 } else { h.abs() };
    h % n_partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java_string_hash_code() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("anything", 1), 0);
        for g in ["a", "group-1", "ünïcode", "polygenelubricants"] {
            let p = partition_for(g, 7);
            assert!((0..7).contains(&p), "{g} -> {p}");
        }
    }
}
