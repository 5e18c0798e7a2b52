//! Exactly-once progress: the records of the offset log, the commit log and the state snapshots,
//! and the recovery decision, all pure (the driver does the I/O against the broker).
//!
//! Per batch N the driver writes, in this order, each durably (acks=all) before the next step:
//! 1. the **offset log** entry: N, its batch time, its input offset ranges, and the end offsets of
//!    every output partition before N writes anything;
//! 2. (runs the batch; sinks write and flush;)
//! 3. the **state** snapshot of every stateful DStream after N;
//! 4. the **commit log** entry for N.
//!
//! On restart [`recover`] compares the last entries of the two logs: if N is committed the job
//! resumes after N with N's state; if only N's offsets are written, N is re-run with exactly its
//! recorded ranges and time and the state of N-1, and the sinks use the recorded output end offsets
//! to find what the crashed attempt already wrote.

use crate::error::StreamError;
use crate::planner::OffsetRange;
use serde::{Deserialize, Serialize};

/// Format version of the progress records; a job refuses to resume from a newer one.
pub const PROGRESS_VERSION: u32 = 1;

/// An output partition's end offset when a batch was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputStart {
    /// Output topic.
    pub topic: String,
    /// Output partition.
    pub partition: i32,
    /// Its log end offset before the batch wrote anything.
    pub offset: i64,
}

/// An offset log entry: what batch N reads, recorded before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetLogEntry {
    /// Format version.
    pub version: u32,
    /// Batch id.
    pub batch: u64,
    /// Batch time, epoch milliseconds.
    pub time_ms: i64,
    /// The input ranges, one per partition.
    pub ranges: Vec<OffsetRange>,
    /// End offsets of the output partitions before the batch.
    pub output_starts: Vec<OutputStart>,
    /// Whether this is the final batch of a graceful stop (closes event-time windows).
    pub is_final: bool,
    /// Worker threads of the run that planned the batch: default partition counts follow it, and
    /// a re-run must partition identically to reproduce its output tags.
    #[serde(default)]
    pub workers: usize,
}

/// A commit log entry: batch N's outputs are written and its state saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitLogEntry {
    /// Format version.
    pub version: u32,
    /// Batch id.
    pub batch: u64,
    /// Batch time, epoch milliseconds.
    pub time_ms: i64,
}

/// The snapshots of every stateful DStream after a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntryRecord {
    /// Format version.
    pub version: u32,
    /// The batch after which the state was taken.
    pub batch: u64,
    /// One snapshot per stateful DStream, in creation order.
    pub snapshots: Vec<Vec<u8>>,
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StreamError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StreamError::Progress(format!("corrupt {what} record: {e}")))
}

fn check_version(what: &str, v: u32) -> Result<(), StreamError> {
    if v > PROGRESS_VERSION {
        return Err(StreamError::Progress(format!(
            "{what} record has format version {v}, this build understands up to {PROGRESS_VERSION}"
        )));
    }
    Ok(())
}

macro_rules! codec {
    ($t:ty, $what:literal) => {
        impl $t {
            /// Encodes the record (JSON).
            pub fn encode(&self) -> Vec<u8> {
                // Plain data with string keys only: serialization cannot fail.
                serde_json::to_vec(self).unwrap_or_default()
            }
            /// Decodes a record, checking the format version.
            pub fn decode(bytes: &[u8]) -> Result<Self, StreamError> {
                let e: Self = decode($what, bytes)?;
                check_version($what, e.version)?;
                Ok(e)
            }
        }
    };
}

codec!(OffsetLogEntry, "offset log");
codec!(CommitLogEntry, "commit log");
codec!(StateEntryRecord, "state");

/// What a restarted job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No progress recorded: start from the starting offsets with empty state.
    Fresh,
    /// The last batch committed: continue after it, with its state.
    Resume {
        /// The last committed batch's offset log entry (its ranges' ends are the next starts).
        last: OffsetLogEntry,
    },
    /// The last batch did not commit: run it again exactly, from the previous batch's state.
    Rerun {
        /// The batch to re-run.
        entry: OffsetLogEntry,
        /// The batch whose state to restore (`None`: the re-run batch is the first).
        state_of: Option<u64>,
    },
}

/// Decides how to restart from the last offset log and commit log entries.
pub fn recover(
    last_offsets: Option<OffsetLogEntry>,
    last_commit: Option<CommitLogEntry>,
) -> Result<Recovery, StreamError> {
    match (last_offsets, last_commit) {
        (None, None) => Ok(Recovery::Fresh),
        (None, Some(c)) => Err(StreamError::Progress(format!(
            "commit log has batch {} but the offset log is empty: were the internal topics deleted?",
            c.batch
        ))),
        (Some(o), None) if o.batch == 0 => Ok(Recovery::Rerun { entry: o, state_of: None }),
        (Some(o), Some(c)) if c.batch == o.batch => Ok(Recovery::Resume { last: o }),
        (Some(o), Some(c)) if c.batch + 1 == o.batch => Ok(Recovery::Rerun { entry: o, state_of: Some(c.batch) }),
        (Some(o), c) => Err(StreamError::Progress(format!(
            "offset log is at batch {} but the commit log at {}: the logs disagree",
            o.batch,
            c.map_or("none".to_string(), |c| c.batch.to_string())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(batch: u64) -> OffsetLogEntry {
        OffsetLogEntry {
            version: PROGRESS_VERSION,
            batch,
            time_ms: 1000 * batch as i64,
            ranges: vec![OffsetRange {
                topic: "in".into(),
                partition: 0,
                from: 0,
                until: 10,
            }],
            output_starts: vec![OutputStart {
                topic: "out".into(),
                partition: 1,
                offset: 42,
            }],
            is_final: false,
            workers: 2,
        }
    }

    fn com(batch: u64) -> CommitLogEntry {
        CommitLogEntry {
            version: PROGRESS_VERSION,
            batch,
            time_ms: 1000 * batch as i64,
        }
    }

    #[test]
    fn records_round_trip_and_reject_garbage_and_future_versions() {
        assert_eq!(OffsetLogEntry::decode(&off(3).encode()).unwrap(), off(3));
        assert_eq!(CommitLogEntry::decode(&com(3).encode()).unwrap(), com(3));
        let s = StateEntryRecord {
            version: 1,
            batch: 2,
            snapshots: vec![b"[]".to_vec()],
        };
        assert_eq!(StateEntryRecord::decode(&s.encode()).unwrap(), s);
        assert!(matches!(
            OffsetLogEntry::decode(b"{nope"),
            Err(StreamError::Progress(_))
        ));
        let mut future = com(1);
        future.version = PROGRESS_VERSION + 1;
        assert!(CommitLogEntry::decode(&future.encode()).is_err());
    }

    #[test]
    fn recovery_decisions() {
        assert_eq!(recover(None, None).unwrap(), Recovery::Fresh);
        assert_eq!(
            recover(Some(off(0)), None).unwrap(),
            Recovery::Rerun {
                entry: off(0),
                state_of: None
            }
        );
        assert_eq!(
            recover(Some(off(5)), Some(com(5))).unwrap(),
            Recovery::Resume { last: off(5) }
        );
        assert_eq!(
            recover(Some(off(6)), Some(com(5))).unwrap(),
            Recovery::Rerun {
                entry: off(6),
                state_of: Some(5)
            }
        );
        assert!(recover(None, Some(com(1))).is_err());
        assert!(recover(Some(off(7)), Some(com(5))).is_err());
        assert!(recover(Some(off(4)), Some(com(5))).is_err());
        assert!(recover(Some(off(3)), None).is_err());
    }
}
