//! Writing to topics: `DStream::to_topic` (exactly once, see [`crate::sink`]) and
//! `Rdd::save_to_topic` (at least once, for batch jobs).
//!
//! A sink task computes its partition, assigns each record an output partition and a sequence
//! number per output partition, skips what the [`WrittenTable`] says a crashed attempt already
//! wrote, tags the rest and writes them, one ordered write per output partition, returning only
//! when every record is acknowledged. A failed write is a [`TaskError::Sink`]: the scheduler does
//! not retry it (a prefix may have landed); the driver re-runs the batch after reading back.

use crate::dstream::{lock, DStream};
use crate::error::{JobError, StreamError, TaskError};
use crate::log::{Log, OutRecord};
use crate::progress::OutputStart;
use crate::rdd::{Data, Rdd};
use crate::sink::{
    output_partition, Tag, WrittenTable, HEADER_BATCH, HEADER_JOB, HEADER_SEQ, HEADER_TASK,
};
use crate::task::TaskContext;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// One `to_topic` output: its topic and what the current batch must not write again.
pub(crate) struct TopicSink {
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) written: Mutex<Arc<WrittenTable>>,
}

/// The sinks of a streaming job and the log they write to.
pub(crate) struct SinkEnv {
    pub(crate) log: Arc<dyn Log>,
    pub(crate) job_id: String,
    pub(crate) sinks: Mutex<Vec<Arc<TopicSink>>>,
}

impl SinkEnv {
    /// The end offset of every output partition now (recorded in the offset log before a batch).
    pub(crate) fn output_starts(&self) -> Result<Vec<OutputStart>, StreamError> {
        let sinks = lock(&self.sinks).clone();
        let mut out = Vec::new();
        for s in sinks {
            for p in 0..s.partitions {
                let o = self.log.offsets(&s.topic, p)?;
                out.push(OutputStart {
                    topic: s.topic.clone(),
                    partition: p,
                    offset: o.end,
                });
            }
        }
        Ok(out)
    }

    /// Prepares the sinks for batch `batch`: with `starts` (a re-run), reads back what an earlier
    /// attempt wrote since then; without, nothing is written yet.
    pub(crate) fn prepare(
        &self,
        batch: u64,
        starts: Option<&[OutputStart]>,
    ) -> Result<usize, StreamError> {
        let sinks = lock(&self.sinks).clone();
        let mut found = 0;
        for s in sinks {
            let mut table = WrittenTable::new(batch);
            if let Some(starts) = starts {
                for st in starts.iter().filter(|st| st.topic == s.topic) {
                    let end = self.log.offsets(&s.topic, st.partition)?.end;
                    for r in self
                        .log
                        .read_range(&s.topic, st.partition, st.offset, end)?
                    {
                        let headers = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
                        if let Some(tag) = Tag::parse(&self.job_id, headers) {
                            table.add(&s.topic, st.partition, tag);
                        }
                    }
                }
            }
            found += table.len();
            *lock(&s.written) = Arc::new(table);
        }
        Ok(found)
    }
}

/// Writes one task's records: partitioned, optionally tagged and filtered by `written`.
fn write_task<T>(
    log: &dyn Log,
    topic: &str,
    partitions: i32,
    tc: &TaskContext,
    it: impl Iterator<Item = T>,
    f: &(dyn Fn(T) -> OutRecord + Send + Sync),
    tagging: Option<(&str, &WrittenTable)>,
) -> Result<u64, TaskError> {
    let task = tc.partition();
    let n = usize::try_from(partitions.max(1)).unwrap_or(1);
    let mut seqs = vec![0u64; n];
    let mut bufs: Vec<Vec<OutRecord>> = (0..n).map(|_| Vec::new()).collect();
    let batch = Bytes::from(tc.batch().to_string());
    let task_tag = Bytes::from(task.to_string());
    for x in it {
        let mut r = f(x);
        let p = output_partition(r.key.as_deref(), task, partitions) as usize;
        let seq = seqs[p];
        seqs[p] += 1;
        if let Some((job, written)) = tagging {
            if written.contains(topic, p as i32, task as u32, seq) {
                continue;
            }
            r.headers.push((
                HEADER_JOB.to_string(),
                Some(Bytes::copy_from_slice(job.as_bytes())),
            ));
            r.headers
                .push((HEADER_BATCH.to_string(), Some(batch.clone())));
            r.headers
                .push((HEADER_TASK.to_string(), Some(task_tag.clone())));
            r.headers
                .push((HEADER_SEQ.to_string(), Some(Bytes::from(seq.to_string()))));
        }
        bufs[p].push(r);
    }
    let mut total = 0;
    for (p, records) in bufs.into_iter().enumerate() {
        if records.is_empty() {
            continue;
        }
        total += records.len() as u64;
        log.write(topic, p as i32, records)
            .map_err(|e| TaskError::Sink(e.to_string()))?;
    }
    Ok(total)
}

impl<T: Data> DStream<T> {
    /// Writes every batch to `topic`, exactly once across crashes and restarts when run by a
    /// [`crate::streaming::StreamingContext`] (see [`crate::sink`] for how). `f` turns an element into a
    /// record; keyed records go to murmur2(key) partitions as with any Kafka producer.
    pub fn to_topic(
        &self,
        topic: &str,
        f: impl Fn(T) -> OutRecord + Send + Sync + 'static,
    ) -> Result<(), StreamError> {
        let env = self.graph().sink_env().ok_or(StreamError::State(
            "missing a log: to_topic needs a StreamingContext",
        ))?;
        let partitions = env.log.partitions(topic)?;
        let sink = Arc::new(TopicSink {
            topic: topic.to_string(),
            partitions,
            written: Mutex::new(Arc::new(WrittenTable::new(0))),
        });
        lock(&env.sinks).push(sink.clone());
        let f: Arc<dyn Fn(T) -> OutRecord + Send + Sync> = Arc::new(f);
        self.foreach_rdd(move |rdd, _| {
            let written = lock(&sink.written).clone();
            let (env, sink, f) = (env.clone(), sink.clone(), f.clone());
            rdd.run_partitions(move |tc, it| {
                write_task(
                    env.log.as_ref(),
                    &sink.topic,
                    sink.partitions,
                    tc,
                    it,
                    f.as_ref(),
                    Some((&env.job_id, &written)),
                )
            })?;
            Ok(())
        });
        Ok(())
    }
}

impl<T: Data> Rdd<T> {
    /// Writes the RDD to `topic` (at least once: a job re-run writes again). Returns the number of
    /// records written.
    pub fn save_to_topic(
        &self,
        log: Arc<dyn Log>,
        topic: &str,
        f: impl Fn(T) -> OutRecord + Send + Sync + 'static,
    ) -> Result<u64, JobError> {
        let partitions = log
            .partitions(topic)
            .map_err(|e| JobError::InvalidArgument(e.to_string()))?;
        let topic = topic.to_string();
        let counts = self.run_partitions(move |tc, it| {
            write_task(log.as_ref(), &topic, partitions, tc, it, &f, None)
        })?;
        Ok(counts.into_iter().sum())
    }
}
