//! Idempotent producer state: per producer id, its epoch and the last few batches it wrote.
//!
//! A retried batch (same producer, epoch and sequence range as one of the last
//! [`PRODUCER_BATCHES_CACHED`] batches) is recognised and answered with its original offsets instead
//! of being written twice; a batch that skips sequences is `OutOfOrderSequence`; an older epoch is
//! `InvalidProducerEpoch`. State is rebuilt on start from the newest snapshot at or below the log
//! end plus a header-only replay of the batches after it, and snapshots are written on segment
//! roll and on clean shutdown as `<20-digit offset>.snapshot` small files (see `encode`).

use std::collections::{HashMap, VecDeque};

use crate::log::batch::Header;
use crate::log::checkpoint::Reader;
use crate::log::error::LogError;
use crate::log::limits::{
    PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_CACHED, PRODUCER_ID_EXPIRATION_MS,
};

/// Suffix of producer state snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_VERSION: i16 = 1;

/// Offsets and sequences of one written batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// First sequence.
    pub first_seq: i32,
    /// Last sequence.
    pub last_seq: i32,
    /// First offset assigned.
    pub base_offset: i64,
    /// Last offset assigned.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub timestamp: i64,
}

/// What the log knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// The last batches, oldest first.
    pub batches: VecDeque<BatchMeta>,
    /// Timestamp of its last batch (for expiry).
    pub last_timestamp: i64,
}

/// Verdict on an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data: append it.
    Append,
    /// Already written: answer with these offsets.
    Duplicate(BatchMeta),
}

/// All producers of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerState {
    /// Empty state.
    pub fn new() -> ProducerState {
        ProducerState::default()
    }

    /// The entry of `producer_id`, looking first in `staged` (changes of the current request).
    fn entry<'a>(
        &'a self,
        staged: &'a [(i64, ProducerEntry)],
        producer_id: i64,
    ) -> Option<&'a ProducerEntry> {
        staged
            .iter()
            .rev()
            .find(|(p, _)| *p == producer_id)
            .map(|(_, e)| e)
            .or_else(|| self.producers.get(&producer_id))
    }

    /// Checks a leader append of batch `h` against the state (and the request's earlier batches in
    /// `staged`).
    pub fn check(
        &self,
        staged: &[(i64, ProducerEntry)],
        h: &Header,
    ) -> Result<SequenceCheck, LogError> {
        if !h.is_idempotent() {
            return Ok(SequenceCheck::Append);
        }
        let Some(e) = self.entry(staged, h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < e.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                current: e.epoch,
                received: h.producer_epoch,
            });
        }
        if h.producer_epoch > e.epoch {
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    received: h.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate(*b));
        }
        let expected = e
            .batches
            .back()
            .map_or(h.base_sequence, |b| next_seq(b.last_seq));
        if h.base_sequence != expected {
            return Err(LogError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                received: h.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records batch `h` written at `base_offset` into `staged`.
    pub fn stage(&self, staged: &mut Vec<(i64, ProducerEntry)>, h: &Header, base_offset: i64) {
        if !h.is_idempotent() {
            return;
        }
        let mut e = self
            .entry(staged, h.producer_id)
            .cloned()
            .unwrap_or(ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: h.max_timestamp,
            });
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        if e.batches.len() == PRODUCER_BATCHES_CACHED {
            e.batches.pop_front();
        }
        e.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(h.last_offset_delta),
            timestamp: h.max_timestamp,
        });
        e.last_timestamp = e.last_timestamp.max(h.max_timestamp);
        staged.push((h.producer_id, e));
    }

    /// Applies staged changes.
    pub fn commit(&mut self, staged: Vec<(i64, ProducerEntry)>) {
        for (pid, e) in staged {
            self.producers.insert(pid, e);
        }
        if self.producers.len() > PRODUCERS_PER_PARTITION_MAX {
            let mut by_age: Vec<(i64, i64)> = self
                .producers
                .iter()
                .map(|(p, e)| (e.last_timestamp, *p))
                .collect();
            by_age.sort_unstable();
            for (_, pid) in by_age
                .iter()
                .take(self.producers.len() - PRODUCERS_PER_PARTITION_MAX)
            {
                self.producers.remove(pid);
            }
        }
    }

    /// Replays one stored batch (recovery, follower append): no checks.
    pub fn replay(&mut self, h: &Header) {
        let mut staged = Vec::new();
        self.stage(&mut staged, h, h.base_offset);
        self.commit(staged);
    }

    /// Forgets producers whose last batch is older than the expiration.
    pub fn expire(&mut self, now_ms: i64) {
        self.producers
            .retain(|_, e| e.last_timestamp >= now_ms.saturating_sub(PRODUCER_ID_EXPIRATION_MS));
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The entry for a producer.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Snapshot payload: version i16, count u32, then per producer: id i64, epoch i16, last
    /// timestamp i64, batch count u32, and per batch first seq i32, last seq i32, base offset i64,
    /// last offset i64, timestamp i64 (big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        v.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for pid in ids {
            let e = &self.producers[pid];
            v.extend_from_slice(&pid.to_be_bytes());
            v.extend_from_slice(&e.epoch.to_be_bytes());
            v.extend_from_slice(&e.last_timestamp.to_be_bytes());
            v.extend_from_slice(&(e.batches.len() as u32).to_be_bytes());
            for b in &e.batches {
                v.extend_from_slice(&b.first_seq.to_be_bytes());
                v.extend_from_slice(&b.last_seq.to_be_bytes());
                v.extend_from_slice(&b.base_offset.to_be_bytes());
                v.extend_from_slice(&b.last_offset.to_be_bytes());
                v.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        v
    }

    /// Parses a snapshot payload, bounding every count.
    pub fn decode(payload: &[u8]) -> Result<ProducerState, String> {
        let short = || "short producer snapshot".to_string();
        let mut r = Reader::new(payload);
        if r.i16().ok_or_else(short)? != SNAPSHOT_VERSION {
            return Err("unknown producer snapshot version".into());
        }
        let n = r.u32().ok_or_else(short)? as usize;
        if n > PRODUCERS_PER_PARTITION_MAX {
            return Err(format!("producer snapshot with {n} producers"));
        }
        let mut s = ProducerState::new();
        for _ in 0..n {
            let pid = r.i64().ok_or_else(short)?;
            let epoch = r.i16().ok_or_else(short)?;
            let last_timestamp = r.i64().ok_or_else(short)?;
            let nb = r.u32().ok_or_else(short)? as usize;
            if nb > PRODUCER_BATCHES_CACHED {
                return Err(format!("producer snapshot entry with {nb} batches"));
            }
            let mut batches = VecDeque::with_capacity(nb);
            for _ in 0..nb {
                batches.push_back(BatchMeta {
                    first_seq: r.i32().ok_or_else(short)?,
                    last_seq: r.i32().ok_or_else(short)?,
                    base_offset: r.i64().ok_or_else(short)?,
                    last_offset: r.i64().ok_or_else(short)?,
                    timestamp: r.i64().ok_or_else(short)?,
                });
            }
            s.producers.insert(
                pid,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        if r.remaining() != 0 {
            return Err("trailing bytes in producer snapshot".into());
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::batch;

    fn header(pid: i64, epoch: i16, seq: i32, n: i32) -> Header {
        Header::parse(&batch(0, n, 5, Some((pid, epoch, seq)), b"")).unwrap()
    }

    fn append(s: &mut ProducerState, h: &Header, base: i64) -> Result<SequenceCheck, LogError> {
        let r = s.check(&[], h)?;
        if r == SequenceCheck::Append {
            let mut st = vec![];
            s.stage(&mut st, h, base);
            s.commit(st);
        }
        Ok(r)
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut s = ProducerState::new();
        assert!(matches!(
            append(&mut s, &header(1, 0, 0, 3), 0),
            Ok(SequenceCheck::Append)
        ));
        assert!(matches!(
            append(&mut s, &header(1, 0, 3, 2), 3),
            Ok(SequenceCheck::Append)
        ));
        match append(&mut s, &header(1, 0, 0, 3), 99) {
            Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.base_offset, b.last_offset), (0, 2)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            append(&mut s, &header(1, 0, 7, 1), 5),
            Err(LogError::OutOfOrderSequence {
                expected: 5,
                received: 7,
                ..
            })
        ));
        assert!(matches!(
            append(&mut s, &header(1, 1, 3, 1), 5),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            append(&mut s, &header(1, 1, 0, 1), 5),
            Ok(SequenceCheck::Append)
        ));
        assert!(matches!(
            append(&mut s, &header(1, 0, 5, 1), 6),
            Err(LogError::InvalidProducerEpoch { current: 1, .. })
        ));
        assert_eq!(ProducerState::decode(&s.encode()).unwrap(), s);
        assert!(ProducerState::decode(&s.encode()[..10]).is_err());
        s.expire(5 + PRODUCER_ID_EXPIRATION_MS + 1);
        assert!(s.is_empty());
    }

    #[test]
    fn staged_batches_of_one_request_chain() {
        let s = ProducerState::new();
        let mut staged = vec![];
        let a = header(9, 0, 0, 2);
        assert!(matches!(s.check(&staged, &a), Ok(SequenceCheck::Append)));
        s.stage(&mut staged, &a, 0);
        let b = header(9, 0, 2, 2);
        assert!(matches!(s.check(&staged, &b), Ok(SequenceCheck::Append)));
        assert!(s.check(&staged, &header(9, 0, 5, 1)).is_err());
    }
}
