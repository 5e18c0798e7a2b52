//! The exactly-once topic sink's bookkeeping, pure: how output records are tagged, which output
//! partition each goes to, and which records a re-run must skip because a crashed attempt already
//! wrote them.
//!
//! Every record `to_topic` writes carries headers naming the job, the batch, the result task
//! (partition of the output RDD) and the record's sequence number among that task's records for
//! that output partition. Re-execution is deterministic (same input ranges, same state, same
//! deterministic hashing and task partitioning), so a re-run produces the same records with the same
//! tags. Before re-running batch N, the driver reads each output partition from the end offset it
//! had when N was planned (recorded in N's offset log entry) and collects the tags of N's records
//! already there ([`WrittenTable`]); the re-run skips exactly those. Within one run, a retried task
//! skips the records an earlier attempt already handed to the producer.

use crate::hash::FxHashMap;
use std::collections::HashSet;

/// Header naming the job that wrote a record.
pub const HEADER_JOB: &str = "sluice.job";
/// Header with the batch id (decimal).
pub const HEADER_BATCH: &str = "sluice.batch";
/// Header with the result task (output RDD partition, decimal).
pub const HEADER_TASK: &str = "sluice.task";
/// Header with the record's sequence within (batch, task, output partition), decimal.
pub const HEADER_SEQ: &str = "sluice.seq";

/// The output partition of a record: murmur2 of the key as the Java client does (so keyed output
/// lands where any Kafka producer would put it), else the task's partition index modulo the count.
pub fn output_partition(key: Option<&[u8]>, task_partition: usize, n_partitions: i32) -> i32 {
    match key {
        Some(k) => {
            let h = murmur2(k) & 0x7fff_ffff;
            h % n_partitions.max(1)
        }
        None => (task_partition % n_partitions.max(1) as usize) as i32,
    }
}

/// Kafka's murmur2 (as `org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// A record's tags, parsed from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Batch id.
    pub batch: u64,
    /// Result task.
    pub task: u32,
    /// Sequence within (batch, task, output partition).
    pub seq: u64,
}

impl Tag {
    /// Parses the tags from headers, if they name `job`.
    pub fn parse<'a>(
        job: &str,
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Option<Tag> {
        let (mut j, mut batch, mut task, mut seq) = (None, None, None, None);
        for (k, v) in headers {
            let v = v.and_then(|v| std::str::from_utf8(v).ok());
            match k {
                HEADER_JOB => j = v,
                HEADER_BATCH => batch = v.and_then(|v| v.parse().ok()),
                HEADER_TASK => task = v.and_then(|v| v.parse().ok()),
                HEADER_SEQ => seq = v.and_then(|v| v.parse().ok()),
                _ => {}
            }
        }
        if j != Some(job) {
            return None;
        }
        Some(Tag {
            batch: batch?,
            task: task?,
            seq: seq?,
        })
    }
}

/// Which (output topic, partition, task, seq) of one batch are already written.
#[derive(Debug, Clone, Default)]
pub struct WrittenTable {
    batch: u64,
    seqs: FxHashMap<(String, i32, u32), HashSet<u64>>,
}

impl WrittenTable {
    /// An empty table for `batch`.
    pub fn new(batch: u64) -> WrittenTable {
        WrittenTable {
            batch,
            seqs: FxHashMap::default(),
        }
    }

    /// The batch the table is about.
    pub fn batch(&self) -> u64 {
        self.batch
    }

    /// Records a written record; records of other batches are ignored.
    pub fn add(&mut self, topic: &str, partition: i32, tag: Tag) {
        if tag.batch == self.batch {
            self.seqs
                .entry((topic.to_string(), partition, tag.task))
                .or_default()
                .insert(tag.seq);
        }
    }

    /// Whether the record is already written.
    pub fn contains(&self, topic: &str, partition: i32, task: u32, seq: u64) -> bool {
        self.seqs
            .get(&(topic.to_string(), partition, task))
            .is_some_and(|s| s.contains(&seq))
    }

    /// How many records are recorded.
    pub fn len(&self) -> usize {
        self.seqs.values().map(HashSet::len).sum()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Known answers from Kafka's UtilsTest / DefaultPartitionerTest.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn output_partitions() {
        assert_eq!(output_partition(None, 7, 3), 1);
        let p = output_partition(Some(b"foobar"), 0, 10);
        assert_eq!(p, (-790332482i32 & 0x7fff_ffff) % 10);
    }

    #[test]
    fn tags_parse_and_fill_the_table() {
        let h = |k: &'static str, v: &'static str| (k, Some(v.as_bytes()));
        let tag = Tag::parse(
            "j",
            [
                h(HEADER_JOB, "j"),
                h(HEADER_BATCH, "4"),
                h(HEADER_TASK, "1"),
                h(HEADER_SEQ, "9"),
                h("x", "y"),
            ],
        );
        assert_eq!(
            tag,
            Some(Tag {
                batch: 4,
                task: 1,
                seq: 9
            })
        );
        assert_eq!(
            Tag::parse(
                "other",
                [
                    h(HEADER_JOB, "j"),
                    h(HEADER_BATCH, "4"),
                    h(HEADER_TASK, "1"),
                    h(HEADER_SEQ, "9")
                ]
            ),
            None
        );
        assert_eq!(
            Tag::parse(
                "j",
                [
                    h(HEADER_JOB, "j"),
                    h(HEADER_BATCH, "x"),
                    h(HEADER_TASK, "1"),
                    h(HEADER_SEQ, "9")
                ]
            ),
            None
        );
        let mut t = WrittenTable::new(4);
        t.add(
            "out",
            0,
            Tag {
                batch: 4,
                task: 1,
                seq: 9,
            },
        );
        t.add(
            "out",
            0,
            Tag {
                batch: 3,
                task: 1,
                seq: 8,
            },
        );
        assert!(t.contains("out", 0, 1, 9));
        assert!(!t.contains("out", 0, 1, 8));
        assert!(!t.contains("out", 1, 1, 9));
        assert_eq!(t.len(), 1);
    }
}
