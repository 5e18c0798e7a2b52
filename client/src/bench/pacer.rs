//! [`Pacer`]: the `--rate` limit as a send schedule. A synchronous core: it only computes when
//! each batch is due; the caller sleeps until then. Latency of a paced batch is measured from its
//! due time, not from when it actually left, so a stalled broker shows up as latency instead of
//! silently lowering the offered load (coordinated omission).

use std::time::{Duration, Instant};

/// A fixed-rate schedule of records.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    records_per_sec: f64,
    scheduled: u64,
}

impl Pacer {
    /// A schedule of `records_per_sec` (at least 1) starting at `start`.
    pub fn new(records_per_sec: u64, start: Instant) -> Pacer {
        Pacer {
            start,
            records_per_sec: records_per_sec.max(1) as f64,
            scheduled: 0,
        }
    }

    /// When the next `records` are due: right after the ones scheduled before them.
    pub fn schedule(&mut self, records: u64) -> Instant {
        let due =
            self.start + Duration::from_secs_f64(self.scheduled as f64 / self.records_per_sec);
        self.scheduled += records;
        due
    }

    /// Records scheduled so far.
    pub fn scheduled(&self) -> u64 {
        self.scheduled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_spaced_by_their_size_over_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, t0);
        assert_eq!(p.schedule(100), t0);
        assert_eq!(p.schedule(100), t0 + Duration::from_millis(100));
        assert_eq!(p.schedule(50), t0 + Duration::from_millis(200));
        assert_eq!(p.schedule(1), t0 + Duration::from_millis(250));
        assert_eq!(p.scheduled(), 251);
    }

    #[test]
    fn a_zero_rate_is_treated_as_one_per_second() {
        let t0 = Instant::now();
        let mut p = Pacer::new(0, t0);
        p.schedule(1);
        assert_eq!(p.schedule(1), t0 + Duration::from_secs(1));
    }
}
