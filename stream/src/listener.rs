//! Observability: what every batch reports (to the log and to listeners) and the summary at stop.

use crate::planner::OffsetRange;
use std::fmt;

/// What a completed batch reports (Spark's `BatchInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Batch id.
    pub batch: u64,
    /// Batch time, epoch milliseconds.
    pub batch_time_ms: i64,
    /// The input ranges; `len()` of each is its record count.
    pub input: Vec<OffsetRange>,
    /// From the batch time to the start of processing.
    pub scheduling_delay_ms: u64,
    /// From the start to the end of processing (jobs, sinks, progress logs).
    pub processing_time_ms: u64,
    /// From the batch time to the end of processing.
    pub total_delay_ms: u64,
    /// Late records dropped by event-time windows in this batch.
    pub late_dropped: u64,
    /// Whether this batch was a re-run of a batch interrupted by a crash.
    pub rerun: bool,
}

impl BatchReport {
    /// Input records of the batch.
    pub fn n_records(&self) -> u64 {
        self.input.iter().map(OffsetRange::len).sum()
    }
}

impl fmt::Display for BatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch {} time {} ms: {} records [",
            self.batch,
            self.batch_time_ms,
            self.n_records()
        )?;
        for (i, r) in self.input.iter().filter(|r| !r.is_empty()).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}-{}:{}", r.topic, r.partition, r.len())?;
        }
        write!(
            f,
            "], scheduling delay {} ms, processing {} ms, total delay {} ms",
            self.scheduling_delay_ms, self.processing_time_ms, self.total_delay_ms
        )?;
        if self.late_dropped > 0 {
            write!(f, ", {} late records dropped", self.late_dropped)?;
        }
        if self.rerun {
            f.write_str(" (re-run after restart)")?;
        }
        Ok(())
    }
}

/// Receives batch events (Spark's `StreamingListener`). Called on the driver thread: keep it quick.
pub trait StreamingListener: Send + Sync {
    /// A batch completed.
    fn on_batch_completed(&self, report: &BatchReport);
    /// The context stopped.
    fn on_stopped(&self, _summary: &Summary) {}
}

/// Totals over a run, printed at stop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Batches completed.
    pub batches: u64,
    /// Input records processed.
    pub records: u64,
    /// Late records dropped.
    pub late_dropped: u64,
    /// Total processing time.
    pub processing_ms: u64,
    /// Largest total delay.
    pub max_total_delay_ms: u64,
    total_delays: Vec<u64>,
}

/// Batches whose delays the summary keeps for percentiles; older ones only count in the totals.
const SUMMARY_DELAYS_MAX: usize = 1 << 20;

impl Summary {
    /// Adds a batch.
    pub fn add(&mut self, r: &BatchReport) {
        self.batches += 1;
        self.records += r.n_records();
        self.late_dropped += r.late_dropped;
        self.processing_ms += r.processing_time_ms;
        self.max_total_delay_ms = self.max_total_delay_ms.max(r.total_delay_ms);
        if self.total_delays.len() < SUMMARY_DELAYS_MAX {
            self.total_delays.push(r.total_delay_ms);
        }
    }

    /// The `q`-quantile (0..=1) of total delay, in milliseconds.
    pub fn total_delay_quantile_ms(&self, q: f64) -> Option<u64> {
        if self.total_delays.is_empty() {
            return None;
        }
        let mut v = self.total_delays.clone();
        v.sort_unstable();
        // Nearest rank: the smallest value with at least q of the batches at or below it.
        let rank = (v.len() as f64 * q.clamp(0.0, 1.0)).ceil() as usize;
        Some(v[rank.clamp(1, v.len()) - 1])
    }

    /// Records per second of processing time.
    pub fn records_per_processing_second(&self) -> f64 {
        if self.processing_ms == 0 {
            0.0
        } else {
            self.records as f64 * 1000.0 / self.processing_ms as f64
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} batches, {} records, {:.0} records/s of processing, total delay p50 {} ms p99 {} ms max {} ms, {} late records dropped",
            self.batches,
            self.records,
            self.records_per_processing_second(),
            self.total_delay_quantile_ms(0.5).unwrap_or(0),
            self.total_delay_quantile_ms(0.99).unwrap_or(0),
            self.max_total_delay_ms,
            self.late_dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(batch: u64, n: i64, delay: u64) -> BatchReport {
        BatchReport {
            batch,
            batch_time_ms: 1000,
            input: vec![
                OffsetRange {
                    topic: "t".into(),
                    partition: 0,
                    from: 0,
                    until: n,
                },
                OffsetRange {
                    topic: "t".into(),
                    partition: 1,
                    from: 5,
                    until: 5,
                },
            ],
            scheduling_delay_ms: 1,
            processing_time_ms: delay - 1,
            total_delay_ms: delay,
            late_dropped: 2,
            rerun: false,
        }
    }

    #[test]
    fn report_line_names_partitions_and_delays() {
        let line = report(3, 7, 40).to_string();
        assert_eq!(
            line,
            "batch 3 time 1000 ms: 7 records [t-0:7], scheduling delay 1 ms, processing 39 ms, total delay 40 ms, 2 late records dropped"
        );
    }

    #[test]
    fn summary_totals_and_quantiles() {
        let mut s = Summary::default();
        assert_eq!(s.total_delay_quantile_ms(0.99), None);
        for i in 1..=100 {
            s.add(&report(i, 10, i + 1));
        }
        assert_eq!((s.batches, s.records, s.late_dropped), (100, 1000, 200));
        assert_eq!(s.total_delay_quantile_ms(0.5), Some(51));
        assert_eq!(s.total_delay_quantile_ms(0.99), Some(100));
        assert_eq!(s.max_total_delay_ms, 101);
        assert!(s.to_string().starts_with("100 batches, 1000 records"));
    }
}
