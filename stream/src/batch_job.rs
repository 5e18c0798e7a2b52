//! `BatchContext`: bounded jobs over a stored range of a topic, with the same RDD operations, that
//! return results or write them to a topic and exit.
//!
//! ```text
//! let bc = BatchContext::new("127.0.0.1:9092", None)?;
//! let events = bc.read_topic("ad-events", Bound::Earliest, Bound::Latest)?;
//! let top = events.map(..).reduce_by_key(..).sort_by(.., false, 1)?.take(10)?;
//! ```

use crate::context::{Context, ContextConfig};
use crate::error::{JobError, StreamError};
use crate::log::{Log, OutRecord, Record};
use crate::planner::OffsetRange;
use crate::rdd::{Data, Rdd};
use crate::streaming::source_rdd;
use std::sync::Arc;

/// One end of a stored range, per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The log start offset.
    Earliest,
    /// The log end offset when the range is resolved.
    Latest,
    /// An absolute offset (clamped to the stored range).
    Offset(i64),
    /// The first offset with a timestamp at or after this (epoch ms).
    Timestamp(i64),
}

/// The entry point of a batch job.
pub struct BatchContext {
    ctx: Context,
    log: Arc<dyn Log>,
}

impl std::fmt::Debug for BatchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchContext")
            .field("ctx", &self.ctx)
            .finish()
    }
}

impl BatchContext {
    #[cfg(feature = "client")]
    /// A batch context over the brokers `brokers` (`host:port[,...]`), with `workers` threads
    /// (`None`: one per core). Must not be called from inside a tokio runtime (it runs its own).
    pub fn new(brokers: &str, workers: Option<usize>) -> Result<BatchContext, StreamError> {
        let log = crate::client_log::ClientLog::connect(brokers)?;
        BatchContext::with_log(Arc::new(log), workers)
    }

    /// A batch context over any [`Log`].
    pub fn with_log(
        log: Arc<dyn Log>,
        workers: Option<usize>,
    ) -> Result<BatchContext, StreamError> {
        let ctx = Context::new(ContextConfig {
            workers,
            ..ContextConfig::default()
        })?;
        Ok(BatchContext { ctx, log })
    }

    /// The execution context (for `parallelize` and friends).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The log.
    pub fn log(&self) -> Arc<dyn Log> {
        self.log.clone()
    }

    /// The offset ranges `[from, until)` of every partition of `topic`, resolved now.
    pub fn ranges(
        &self,
        topic: &str,
        from: Bound,
        until: Bound,
    ) -> Result<Vec<OffsetRange>, StreamError> {
        let mut out = Vec::new();
        for p in 0..self.log.partitions(topic)? {
            let o = self.log.offsets(topic, p)?;
            let resolve = |b: Bound| -> Result<i64, StreamError> {
                Ok(match b {
                    Bound::Earliest => o.start,
                    Bound::Latest => o.end,
                    Bound::Offset(x) => x.clamp(o.start, o.end),
                    Bound::Timestamp(ts) => self
                        .log
                        .offset_for_timestamp(topic, p, ts)?
                        .clamp(o.start, o.end),
                })
            };
            let (f, u) = (resolve(from)?, resolve(until)?);
            out.push(OffsetRange {
                topic: topic.to_string(),
                partition: p,
                from: f,
                until: u.max(f),
            });
        }
        Ok(out)
    }

    /// The records of `topic` between the bounds, as an RDD with one partition per topic
    /// partition. The range is fixed when this returns: records written later are not included.
    pub fn read_topic(
        &self,
        topic: &str,
        from: Bound,
        until: Bound,
    ) -> Result<Rdd<Record>, StreamError> {
        Ok(source_rdd(
            &self.ctx,
            self.log.clone(),
            self.ranges(topic, from, until)?,
        ))
    }

    /// Writes an RDD to a topic (at least once), returning the number of records written.
    pub fn save_to_topic<T: Data>(
        &self,
        rdd: &Rdd<T>,
        topic: &str,
        f: impl Fn(T) -> OutRecord + Send + Sync + 'static,
    ) -> Result<u64, JobError> {
        rdd.save_to_topic(self.log.clone(), topic, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::MemoryLog;

    #[test]
    fn reads_ranges_by_offset_and_timestamp_and_writes_results() {
        let log = Arc::new(MemoryLog::new());
        log.ensure_topic("in", 2, &[]).unwrap();
        log.ensure_topic("out", 1, &[]).unwrap();
        for i in 0..10i64 {
            let r = OutRecord {
                timestamp_ms: Some(i * 100),
                ..OutRecord::value(format!("v{i}"))
            };
            log.write("in", (i % 2) as i32, vec![r]).unwrap();
        }
        let bc = BatchContext::with_log(log.clone(), Some(2)).unwrap();
        assert_eq!(
            bc.read_topic("in", Bound::Earliest, Bound::Latest)
                .unwrap()
                .count()
                .unwrap(),
            10
        );
        assert_eq!(
            bc.read_topic("in", Bound::Offset(1), Bound::Offset(3))
                .unwrap()
                .count()
                .unwrap(),
            4
        );
        // Timestamps 500.. are offsets 3.. of p0 (500? no: p0 holds 0,200,...; 600 is offset 3).
        let late = bc
            .read_topic("in", Bound::Timestamp(500), Bound::Latest)
            .unwrap();
        let mut v: Vec<i64> = late.map(|r| r.timestamp_ms).collect().unwrap();
        v.sort();
        assert_eq!(v, vec![500, 600, 700, 800, 900]);
        let n = bc
            .save_to_topic(&late, "out", |r| {
                OutRecord::value(r.value.unwrap_or_default())
            })
            .unwrap();
        assert_eq!(n, 5);
        assert_eq!(log.records("out", 0).len(), 5);
        assert!(bc
            .read_topic("missing", Bound::Earliest, Bound::Latest)
            .is_err());
    }
}
