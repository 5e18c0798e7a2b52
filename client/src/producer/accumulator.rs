//! The producer's batching core: per-partition queues of record batches, built in place.
//!
//! A synchronous state machine taking `now` ([`LazyNow`] for appends, which need the clock only
//! to open a batch): [`Accumulator::append`] writes a record straight into
//! the open [`RecordBatchBuilder`] of its partition (no intermediate per-record struct), closing the
//! batch when the next record would pass `batch.size`; [`Accumulator::drain_ready`] closes batches
//! that lingered long enough and hands out sendable ones, at most `max_in_flight` per partition,
//! in sequence order; [`Accumulator::requeue`] puts a batch whose send failed back at the front so a
//! retry keeps its sequence numbers (the broker then drops duplicates and refuses reordering).
//!
//! **Invariant**: for each partition, batches leave in increasing base sequence, and a retried
//! batch goes out before any later one, alone: after every batch in flight was answered, and
//! with nothing behind it until it is answered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use sluice_protocol::record::{
    header, BatchBufferPool, BatchOptions, Compression, RecordBatchBuilder, TimestampType,
};

use super::outcome::BatchOutcome;
use crate::error::ProduceError;
use crate::limits::BATCH_BUFFERS_KEPT;

/// Initial buffer of a partition's first batch; later batches start at their predecessor's size.
const FIRST_BATCH_BYTES: usize = 16 * 1024;

/// Settings of the accumulator.
#[derive(Debug, Clone)]
pub struct AccumulatorConfig {
    /// `batch.size` in bytes.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// Batches in flight per partition.
    pub max_in_flight: usize,
    /// Codec of produced batches.
    pub compression: Compression,
}

/// The producer identity written into batches (`-1`s when idempotence is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

impl ProducerIdentity {
    /// No identity: a non-idempotent producer.
    pub const NONE: ProducerIdentity = ProducerIdentity {
        producer_id: -1,
        producer_epoch: -1,
    };

    fn idempotent(self) -> bool {
        self.producer_id >= 0
    }
}

/// A sealed batch waiting to be sent (or re-sent).
#[derive(Debug)]
pub struct ReadyBatch {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The encoded batch (base offset 0, CRC computed).
    pub data: Bytes,
    /// Its base sequence as currently written in `data` (-1 without idempotence).
    pub base_sequence: i32,
    /// The base sequence it was built with; `base_sequence` is lower by the records of earlier
    /// batches of its partition that the broker rejected for good.
    pub original_sequence: i32,
    /// Its record count.
    pub n_records: usize,
    /// Bytes of `buffer.memory` it holds until it completes.
    pub reserved_bytes: usize,
    /// Where its records' deliveries wait.
    pub outcome: Arc<BatchOutcome>,
    /// When its first record was appended (for `delivery.timeout.ms`).
    pub created: Instant,
    /// Send attempts so far.
    pub attempts: u32,
    /// Not sent again before this (a retry's backoff); later batches of its partition wait too.
    pub retry_at: Option<Instant>,
}

struct OpenBatch {
    builder: RecordBatchBuilder,
    opened: Instant,
    outcome: Arc<BatchOutcome>,
    reserved_bytes: usize,
}

struct PartitionQueue {
    topic: Arc<str>,
    partition: i32,
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
    in_flight: usize,
    next_sequence: i32,
    /// Size of the last batch sealed here: the next batch's buffer starts that big, so busy
    /// partitions never regrow their buffer and quiet ones do not hold `batch.size` each.
    last_batch_bytes: usize,
    /// (original base sequence, record count) of batches the broker rejected for good: the
    /// broker never saw their sequence numbers, so every later batch moves down by their count.
    rejected: Vec<(i32, i32)>,
}

/// Where an appended record went.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The batch's shared outcome.
    pub outcome: Arc<BatchOutcome>,
    /// The record's index in its batch (its offset delta); 0 for a record that opened it.
    pub index: i32,
    /// True if this append closed a batch (the partitioner may move sticky partitions on).
    pub closed_batch: bool,
}

/// The time, read from the clock at most once and only when asked for. Most records open no
/// batch and need none: a clock read for every record sent was 4% of the producer's CPU.
#[derive(Debug, Clone, Copy)]
pub struct LazyNow(Option<Instant>);

impl LazyNow {
    /// Reads the clock when first asked.
    pub fn unread() -> Self {
        LazyNow(None)
    }

    /// A time already known.
    pub fn at(now: Instant) -> Self {
        LazyNow(Some(now))
    }

    /// The time, reading the clock if that was not done yet.
    pub fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(Instant::now)
    }
}

/// The per-partition batch queues.
pub struct Accumulator {
    config: AccumulatorConfig,
    identity: ProducerIdentity,
    topics: FxHashMap<Arc<str>, Vec<Option<PartitionQueue>>>,
    /// Outcomes of batches opened, oldest first; resolved ones are pruned from the front.
    outcomes: VecDeque<Arc<BatchOutcome>>,
    /// Buffers of sent batches, reused for new ones once the batches are dropped.
    buffers: BatchBufferPool,
}

impl std::fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accumulator")
            .field("topics", &self.topics.len())
            .finish()
    }
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(config: AccumulatorConfig, identity: ProducerIdentity) -> Self {
        Accumulator {
            config,
            identity,
            topics: FxHashMap::default(),
            outcomes: VecDeque::new(),
            buffers: BatchBufferPool::new(BATCH_BUFFERS_KEPT),
        }
    }

    fn queue<'a>(
        topics: &'a mut FxHashMap<Arc<str>, Vec<Option<PartitionQueue>>>,
        topic: &str,
        partition: i32,
    ) -> &'a mut PartitionQueue {
        // No allocation and no reference-count traffic per record: a topic's name is allocated
        // once, when its first partition queue is made.
        if !topics.contains_key(topic) {
            topics.insert(Arc::from(topic), Vec::new());
        }
        let Some(queues) = topics.get_mut(topic) else {
            unreachable!("inserted above");
        };
        let idx = partition as usize;
        if queues.len() <= idx {
            queues.resize_with(idx + 1, || None);
        }
        let name = match queues[idx] {
            Some(_) => None,
            None => Some(match queues.iter().flatten().next() {
                Some(q) => q.topic.clone(),
                None => Arc::from(topic),
            }),
        };
        queues[idx].get_or_insert_with(|| PartitionQueue {
            topic: name.unwrap_or_else(|| Arc::from(topic)),
            partition,
            open: None,
            ready: VecDeque::new(),
            in_flight: 0,
            next_sequence: 0,
            last_batch_bytes: FIRST_BATCH_BYTES,
            rejected: Vec::new(),
        })
    }

    /// Appends one record to `topic`/`partition` (`partition >= 0`). `reserve` is the
    /// `buffer.memory` charge the caller already acquired for it.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        reserve: usize,
        now: &mut LazyNow,
    ) -> Result<Appended, ProduceError> {
        let batch_size = self.config.batch_size;
        let compression = self.config.compression;
        let identity = self.identity;
        let mut opened = None;
        let q = Self::queue(&mut self.topics, topic, partition);
        let record_bytes = RecordBatchBuilder::record_bytes(0, 0, key, value, headers) + 10; // room for larger deltas
        let mut closed_batch = false;
        if let Some(open) = &q.open {
            let full = open.builder.estimated_bytes() + record_bytes > batch_size;
            if full && !open.builder.is_empty() {
                q.close_open(identity, &mut self.buffers)?;
                closed_batch = true;
            }
        }
        if q.open.is_none() {
            let capacity = (q.last_batch_bytes + 1024)
                .min(batch_size + 1024)
                .max(record_bytes + 128);
            let options = BatchOptions {
                compression,
                producer_id: identity.producer_id,
                producer_epoch: identity.producer_epoch,
                base_sequence: if identity.idempotent() {
                    q.next_sequence
                } else {
                    -1
                },
                timestamp_type: TimestampType::CreateTime,
                is_transactional: false,
                is_control: false,
                partition_leader_epoch: -1,
            };
            let outcome = Arc::new(BatchOutcome::new(q.topic.clone(), partition));
            opened = Some(outcome.clone());
            q.open = Some(OpenBatch {
                builder: RecordBatchBuilder::in_buffer(options, self.buffers.take(capacity)),
                opened: now.get(),
                outcome,
                reserved_bytes: 0,
            });
        }
        let Some(open) = q.open.as_mut() else {
            return Err(ProduceError::Closed);
        };
        let index = open.builder.records_count() as i32;
        open.builder
            .append(timestamp_ms, key, value, headers)
            .map_err(|e| ProduceError::Encode(e.to_string()))?;
        open.reserved_bytes += reserve;
        let appended = Appended {
            outcome: open.outcome.clone(),
            index,
            closed_batch,
        };
        if open.builder.estimated_bytes() >= batch_size {
            q.close_open(identity, &mut self.buffers)?;
        }
        if let Some(outcome) = opened {
            while self.outcomes.front().is_some_and(|o| o.get().is_some()) {
                self.outcomes.pop_front();
            }
            self.outcomes.push_back(outcome);
        }
        Ok(appended)
    }

    /// Closes open batches older than `linger` (or all of them when `flush`), then takes every
    /// batch that may be sent now: per partition, in order, while fewer than `max_in_flight` are
    /// in flight. Also returns when the next open batch will be due, if any.
    pub fn drain_ready(
        &mut self,
        now: Instant,
        flush: bool,
    ) -> Result<(Vec<ReadyBatch>, Option<Instant>), ProduceError> {
        let linger = self.config.linger;
        let max_in_flight = self.config.max_in_flight;
        let identity = self.identity;
        let mut out = Vec::new();
        let mut next_due: Option<Instant> = None;
        for queues in self.topics.values_mut() {
            for q in queues.iter_mut().flatten() {
                if let Some(open) = &q.open {
                    let due = open.opened + linger;
                    if flush || due <= now {
                        q.close_open(identity, &mut self.buffers)?;
                    } else {
                        next_due = Some(next_due.map_or(due, |d| d.min(due)));
                    }
                }
                while q.in_flight < max_in_flight {
                    // A retried batch goes out alone, once every batch in flight has been
                    // answered, and nothing follows it until it is answered (as the Java client
                    // does): otherwise a later batch could reach a new leader first, and the
                    // retried one would fall out of the broker's duplicate window.
                    if let Some(at) = q.ready.front().and_then(|b| b.retry_at) {
                        if at > now {
                            next_due = Some(next_due.map_or(at, |d| d.min(at)));
                            break;
                        }
                    }
                    let retrying = q.ready.front().is_some_and(|b| b.attempts > 0);
                    if retrying && q.in_flight > 0 {
                        break;
                    }
                    let Some(mut batch) = q.ready.pop_front() else {
                        break;
                    };
                    q.resequence(&mut batch)?;
                    q.in_flight += 1;
                    out.push(batch);
                    if retrying {
                        break;
                    }
                }
            }
        }
        Ok((out, next_due))
    }

    /// A batch's send ended (acknowledged or failed for good): frees its in-flight slot.
    pub fn complete(&mut self, topic: &str, partition: i32) {
        if let Some(q) = self.existing(topic, partition) {
            q.in_flight = q.in_flight.saturating_sub(1);
        }
    }

    /// A batch's send failed and will be retried: it goes back in sequence order before every
    /// batch not yet sent.
    pub fn requeue(&mut self, mut batch: ReadyBatch) {
        batch.attempts += 1;
        let (topic, partition) = (batch.topic.clone(), batch.partition);
        let Some(q) = self.existing(&topic, partition) else {
            return;
        };
        q.in_flight = q.in_flight.saturating_sub(1);
        let pos = q
            .ready
            .iter()
            .position(|b| b.base_sequence > batch.base_sequence)
            .unwrap_or(q.ready.len());
        q.ready.insert(pos, batch);
    }

    /// The broker rejected `batch` for good (it failed with a non-retriable error): later batches
    /// of its partition take over its sequence numbers, so they are not refused as out of order.
    pub fn rejected(&mut self, batch: &ReadyBatch) {
        if batch.original_sequence < 0 {
            return;
        }
        if let Some(q) = self.existing(&batch.topic, batch.partition) {
            q.rejected
                .push((batch.original_sequence, batch.n_records as i32));
        }
    }

    /// Seals every open batch (for `flush`) and returns the outcomes of every batch not resolved
    /// yet: open, queued or in flight.
    pub fn seal_all(&mut self) -> Vec<Arc<BatchOutcome>> {
        let identity = self.identity;
        for queues in self.topics.values_mut() {
            for q in queues.iter_mut().flatten() {
                // A batch that cannot be sealed fails its own deliveries; flush goes on.
                let _ = q.close_open(identity, &mut self.buffers);
            }
        }
        self.outcomes
            .iter()
            .filter(|o| o.get().is_none())
            .cloned()
            .collect()
    }

    /// True if no record is buffered, queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.topics.values().all(|qs| {
            qs.iter()
                .flatten()
                .all(|q| q.open.is_none() && q.ready.is_empty() && q.in_flight == 0)
        })
    }

    /// Batches in flight for one partition.
    pub fn in_flight(&self, topic: &str, partition: i32) -> usize {
        self.topics
            .get(topic)
            .and_then(|qs| qs.get(partition as usize))
            .and_then(|q| q.as_ref())
            .map_or(0, |q| q.in_flight)
    }

    fn existing(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionQueue> {
        self.topics
            .get_mut(topic)?
            .get_mut(partition as usize)?
            .as_mut()
    }
}

impl PartitionQueue {
    /// Rewrites the batch's base sequence (and CRC) if earlier batches were rejected since it
    /// was last numbered.
    fn resequence(&self, batch: &mut ReadyBatch) -> Result<(), ProduceError> {
        if batch.original_sequence < 0 || self.rejected.is_empty() {
            return Ok(());
        }
        let shift: i32 = self
            .rejected
            .iter()
            .filter(|(seq, _)| *seq < batch.original_sequence)
            .map(|(_, n)| n)
            .sum();
        let wanted = batch.original_sequence - shift;
        if wanted == batch.base_sequence {
            return Ok(());
        }
        let mut data = bytes::BytesMut::from(&batch.data[..]);
        let at = header::offset::BASE_SEQUENCE;
        let Some(field) = data.get_mut(at..at + 4) else {
            return Err(ProduceError::Encode("batch shorter than its header".into()));
        };
        field.copy_from_slice(&wanted.to_be_bytes());
        header::rewrite_crc(&mut data).map_err(|e| ProduceError::Encode(e.to_string()))?;
        batch.data = data.freeze();
        batch.base_sequence = wanted;
        Ok(())
    }

    fn close_open(
        &mut self,
        identity: ProducerIdentity,
        buffers: &mut BatchBufferPool,
    ) -> Result<(), ProduceError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let n_records = open.builder.records_count();
        self.last_batch_bytes = open.builder.estimated_bytes();
        let base_sequence = open.builder.options().base_sequence;
        let data = match open.builder.finish_reusable() {
            Ok((d, home)) => {
                buffers.put_back(home);
                d
            }
            Err(e) => {
                let err = ProduceError::Encode(e.to_string());
                open.outcome.fail(err.clone());
                return Err(err);
            }
        };
        if identity.idempotent() {
            self.next_sequence = self.next_sequence.wrapping_add(n_records as i32) & i32::MAX;
        }
        self.ready.push_back(ReadyBatch {
            topic: self.topic.clone(),
            partition: self.partition,
            data,
            base_sequence,
            original_sequence: base_sequence,
            n_records,
            reserved_bytes: open.reserved_bytes,
            outcome: open.outcome,
            created: open.opened,
            attempts: 0,
            retry_at: None,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::record::RecordBatch;

    fn acc(batch_size: usize, linger_ms: u64, identity: ProducerIdentity) -> Accumulator {
        Accumulator::new(
            AccumulatorConfig {
                batch_size,
                linger: Duration::from_millis(linger_ms),
                max_in_flight: 2,
                compression: Compression::None,
            },
            identity,
        )
    }

    /// An idempotent producer's accumulator: 100-byte batches, no linger, 2 in flight.
    fn idempotent(producer_id: i64) -> Accumulator {
        let id = ProducerIdentity {
            producer_id,
            producer_epoch: 0,
        };
        acc(100, 0, id)
    }

    fn append(a: &mut Accumulator, p: i32, value: &[u8], now: Instant) -> Appended {
        a.append(
            "t",
            p,
            1000,
            Some(b"k"),
            Some(value),
            &[],
            value.len(),
            &mut LazyNow::at(now),
        )
        .unwrap()
    }

    #[test]
    fn batches_close_on_size_and_linger() {
        let t0 = Instant::now();
        let mut a = acc(300, 10, ProducerIdentity::NONE);
        for i in 0..3 {
            let r = append(&mut a, 0, &[b'x'; 100], t0);
            assert_eq!(r.index, i % 2, "two 100-byte records fit in 300 bytes");
        }
        let (ready, due) = a.drain_ready(t0, false).unwrap();
        assert_eq!(
            ready.len(),
            1,
            "the first batch closed when the third record came"
        );
        assert_eq!(ready[0].n_records, 2);
        assert_eq!(due, Some(t0 + Duration::from_millis(10)));
        let (ready, _) = a
            .drain_ready(t0 + Duration::from_millis(10), false)
            .unwrap();
        assert_eq!(ready.len(), 1, "the lingering batch is due");
        let batch = RecordBatch::parse(ready[0].data.clone()).unwrap();
        assert_eq!(batch.header().records_count, 1);
        assert_eq!(batch.header().producer_id, -1);
        assert_eq!(batch.header().base_sequence, -1);
    }

    #[test]
    fn in_flight_is_bounded_and_sequences_increase() {
        let t0 = Instant::now();
        let mut a = idempotent(7);
        for _ in 0..4 {
            append(&mut a, 1, &[b'y'; 90], t0);
        }
        let (ready, _) = a.drain_ready(t0, true).unwrap();
        assert_eq!(ready.len(), 2, "max_in_flight is 2");
        assert_eq!(
            ready.iter().map(|b| b.base_sequence).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(a.in_flight("t", 1), 2);
        // The second batch fails and is retried while the first is still in flight: it waits
        // for the first's answer, then goes out alone, before the third.
        let mut it = ready.into_iter();
        let first = it.next().unwrap();
        let second = it.next().unwrap();
        a.requeue(second);
        let (ready, _) = a.drain_ready(t0, false).unwrap();
        assert!(ready.is_empty(), "the retry waits for the batch in flight");
        a.complete("t", 1);
        drop(first);
        let (ready, _) = a.drain_ready(t0, false).unwrap();
        assert_eq!(
            ready.iter().map(|b| b.base_sequence).collect::<Vec<_>>(),
            vec![1],
            "the retry goes out alone"
        );
        assert_eq!(ready[0].attempts, 1);
        a.complete("t", 1);
        let (ready, _) = a.drain_ready(t0, false).unwrap();
        assert_eq!(
            ready.iter().map(|b| b.base_sequence).collect::<Vec<_>>(),
            vec![2, 3],
            "then pipelining resumes"
        );
        let b = RecordBatch::parse(ready[0].data.clone()).unwrap();
        assert_eq!(b.header().producer_id, 7);
        assert_eq!(b.header().base_sequence, 2);
        for _ in &ready {
            a.complete("t", 1);
        }
        assert!(a.is_empty());
    }

    #[test]
    fn a_batch_waiting_for_its_backoff_holds_back_its_partition_only() {
        let t0 = Instant::now();
        let mut a = idempotent(7);
        for _ in 0..3 {
            append(&mut a, 1, &[b'y'; 90], t0);
        }
        append(&mut a, 2, &[b'z'; 90], t0);
        let (ready, _) = a.drain_ready(t0, true).unwrap();
        // Partition 1's first batch found no leader: it goes back, due in 50 ms.
        let (mut waiting, sent): (Vec<_>, Vec<_>) = ready
            .into_iter()
            .partition(|b| b.partition == 1 && b.base_sequence == 0);
        let mut w = waiting.remove(0);
        w.retry_at = Some(t0 + Duration::from_millis(50));
        a.requeue(w);
        let (ready, due) = a.drain_ready(t0, false).unwrap();
        assert!(
            ready
                .iter()
                .all(|b| b.partition != 1 || b.base_sequence != 2),
            "nothing of partition 1 overtakes the waiting batch"
        );
        assert!(ready.iter().all(|b| b.base_sequence != 0));
        assert_eq!(due, Some(t0 + Duration::from_millis(50)));
        for b in sent.iter().chain(&ready) {
            a.complete(&b.topic, b.partition);
        }
        let (early, _) = a
            .drain_ready(t0 + Duration::from_millis(10), false)
            .unwrap();
        assert!(
            early.is_empty(),
            "with nothing in flight, the retry still waits until it is due"
        );
        let (ready, _) = a
            .drain_ready(t0 + Duration::from_millis(50), false)
            .unwrap();
        assert_eq!(
            ready
                .iter()
                .map(|b| (b.partition, b.base_sequence))
                .collect::<Vec<_>>(),
            vec![(1, 0)],
            "then it goes out alone, first"
        );
    }

    #[test]
    fn batches_after_a_rejected_one_take_over_its_sequences() {
        let t0 = Instant::now();
        let mut a = idempotent(3);
        for _ in 0..3 {
            append(&mut a, 0, &[b'q'; 90], t0);
        }
        let (ready, _) = a.drain_ready(t0, true).unwrap();
        let seqs: Vec<i32> = ready.iter().map(|b| b.base_sequence).collect();
        assert_eq!(seqs, vec![0, 1]);
        let mut it = ready.into_iter();
        let first = it.next().unwrap();
        let second = it.next().unwrap();
        // The first batch is rejected for good; the second was refused as out of order.
        a.rejected(&first);
        a.complete("t", 0);
        a.requeue(second);
        let (mut ready, _) = a.drain_ready(t0, false).unwrap();
        assert_eq!(ready.len(), 1, "the retry goes out alone");
        a.complete("t", 0);
        ready.extend(a.drain_ready(t0, false).unwrap().0);
        let seqs: Vec<i32> = ready.iter().map(|b| b.base_sequence).collect();
        assert_eq!(seqs, vec![0, 1], "both move down by one record");
        for b in &ready {
            let parsed = RecordBatch::parse(b.data.clone()).unwrap();
            assert_eq!(
                parsed.header().base_sequence,
                b.base_sequence,
                "CRC rewritten too"
            );
        }
    }

    #[test]
    fn an_oversized_record_gets_a_batch_of_its_own() {
        let t0 = Instant::now();
        let mut a = acc(100, 0, ProducerIdentity::NONE);
        append(&mut a, 0, b"small", t0);
        let r = append(&mut a, 0, &[b'z'; 500], t0);
        assert!(r.closed_batch);
        assert_eq!(r.index, 0);
        let (ready, _) = a.drain_ready(t0, false).unwrap();
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[1].n_records, 1);
    }
}
