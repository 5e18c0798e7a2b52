//! What tasks measure: [`Latency`] histograms (HdrHistogram, microseconds), [`TaskStats`] counters
//! per task merged at the end, an [`ErrorTally`] that keeps every failure visible, and [`Live`]
//! counters for the progress line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::limits::{ERROR_KINDS_MAX, HISTOGRAM_DIGITS, LATENCY_US_MAX};

/// A latency distribution in microseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Option<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        // The bounds are constants that HdrHistogram accepts; None only if they were invalid.
        Latency {
            hist: Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_DIGITS).ok(),
        }
    }
}

/// Percentiles of a [`Latency`], in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Latency {
    /// Records one sample.
    pub fn record(&mut self, latency: Duration) {
        self.record_us(
            latency.as_micros().min(u128::from(LATENCY_US_MAX)) as u64,
            1,
        );
    }

    /// Records `n` samples of `us` microseconds (clamped to the histogram's range).
    pub fn record_us(&mut self, us: u64, n: u64) {
        if let Some(h) = &mut self.hist {
            let _ = h.record_n(us.clamp(1, LATENCY_US_MAX), n);
        }
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Latency) {
        if let (Some(a), Some(b)) = (&mut self.hist, &other.hist) {
            let _ = a.add(b);
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, |h| h.len())
    }

    /// The percentiles, or `None` without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        let h = self.hist.as_ref().filter(|h| !h.is_empty())?;
        let ms = |us: u64| us as f64 / 1000.0;
        Some(LatencySummary {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// Failures by message, so a report can say what went wrong and how often.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorTally {
    /// (message, records affected), in order of first occurrence.
    pub kinds: Vec<(String, u64)>,
    /// Records affected by further kinds past [`ERROR_KINDS_MAX`].
    pub other: u64,
}

impl ErrorTally {
    /// Counts `records` records lost to `message`.
    pub fn add(&mut self, message: &str, records: u64) {
        if let Some(k) = self.kinds.iter_mut().find(|(m, _)| m == message) {
            k.1 += records;
        } else if self.kinds.len() < ERROR_KINDS_MAX {
            self.kinds.push((message.to_string(), records));
        } else {
            self.other += records;
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &ErrorTally) {
        for (m, n) in &other.kinds {
            self.add(m, *n);
        }
        self.other += other.other;
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.other == 0
    }
}

/// What one task measured. Only the measured phase (after warm-up) is counted, except
/// `warmup_records`.
#[derive(Debug, Clone, Default)]
pub struct TaskStats {
    /// Records acknowledged (producers) or received (consumers).
    pub records: u64,
    /// Value bytes of those records.
    pub bytes: u64,
    /// Batch bytes on the wire (headers and framing included; compressed size when compressed).
    pub wire_bytes: u64,
    /// Batches (producers: requests acknowledged; consumers: batches received).
    pub batches: u64,
    /// Records whose produce failed or was not acknowledged, or that a consumer could not read.
    pub failed_records: u64,
    /// Requests that failed.
    pub failed_requests: u64,
    /// Why.
    pub errors: ErrorTally,
    /// Batch round trip (producers) latency.
    pub latency: Latency,
    /// Produce-to-consume latency (e2e consumers).
    pub e2e: Latency,
    /// Records moved during warm-up (not in any figure).
    pub warmup_records: u64,
    /// The last measured completion.
    pub last: Option<Instant>,
    /// Records acknowledged without an acknowledgement (acks=0 counts sent records).
    pub unacknowledged_by_design: bool,
}

impl TaskStats {
    /// Adds another task's figures.
    pub fn merge(&mut self, o: &TaskStats) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.wire_bytes += o.wire_bytes;
        self.batches += o.batches;
        self.failed_records += o.failed_records;
        self.failed_requests += o.failed_requests;
        self.errors.merge(&o.errors);
        self.latency.merge(&o.latency);
        self.e2e.merge(&o.e2e);
        self.warmup_records += o.warmup_records;
        self.last = self.last.max(o.last);
        self.unacknowledged_by_design |= o.unacknowledged_by_design;
    }

    /// Counts a failure of `records` records in one request.
    pub fn fail(&mut self, message: &str, records: u64) {
        self.failed_requests += 1;
        self.failed_records += records;
        self.errors.add(message, records);
    }
}

/// Counters every task bumps per batch, read by the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Records produced (acknowledged), warm-up included.
    pub produced: AtomicU64,
    /// Their value bytes.
    pub produced_bytes: AtomicU64,
    /// Records consumed, warm-up included.
    pub consumed: AtomicU64,
    /// Their value bytes.
    pub consumed_bytes: AtomicU64,
    /// Records failed.
    pub failed: AtomicU64,
}

impl Live {
    /// Adds produced records.
    pub fn produced(&self, records: u64, bytes: u64) {
        self.produced.fetch_add(records, Ordering::Relaxed);
        self.produced_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds consumed records.
    pub fn consumed(&self, records: u64, bytes: u64) {
        self.consumed.fetch_add(records, Ordering::Relaxed);
        self.consumed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds failed records.
    pub fn failed(&self, records: u64) {
        self.failed.fetch_add(records, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_samples() {
        let mut l = Latency::default();
        assert!(l.summary().is_none());
        for ms in 1..=1000u64 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        let mut m = Latency::default();
        m.record_us(LATENCY_US_MAX * 2, 3);
        m.merge(&l);
        assert_eq!(m.count(), 1003);
    }

    #[test]
    fn errors_are_tallied_by_message_and_bounded() {
        let mut t = ErrorTally::default();
        t.add("a", 2);
        t.add("a", 3);
        for i in 0..ERROR_KINDS_MAX + 2 {
            t.add(&format!("e{i}"), 1);
        }
        assert_eq!(t.kinds[0], ("a".to_string(), 5));
        assert_eq!(t.kinds.len(), ERROR_KINDS_MAX);
        assert_eq!(t.other, 3);
        let mut s = TaskStats::default();
        s.fail("x", 10);
        let mut total = TaskStats::default();
        total.merge(&s);
        total.merge(&s);
        assert_eq!((total.failed_records, total.failed_requests), (20, 2));
        assert_eq!(total.errors.kinds, vec![("x".to_string(), 20)]);
    }
}
