//! Backpressure: Spark Streaming's PID rate estimator, as a pure state machine.
//!
//! After each batch the driver reports when it ran, how many records it processed, how long the
//! processing took and how long it waited to be scheduled; the estimator answers with a new
//! ingestion rate (records per second, all partitions together) or `None` while it has no estimate.
//! The planner caps the next batch by that rate, so a job restarted in front of a large backlog
//! takes it in batches it can finish within the interval instead of one enormous batch.
//!
//! The controller (as Spark's `PIDRateEstimator`):
//! `error = latest_rate - processing_rate`,
//! `historical_error = scheduling_delay * processing_rate / batch_interval`,
//! `new_rate = max(latest_rate - P * error - I * historical_error - D * d_error, min_rate)`,
//! with P = 1.0, I = 0.2, D = 0.0 by default. The first report only seeds `latest_rate`.

use thiserror::Error;

/// Gains and bounds of the estimator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PidConfig {
    /// Batch interval in milliseconds.
    pub batch_interval_ms: u64,
    /// Proportional gain (Spark: `spark.streaming.backpressure.pid.proportional`, 1.0).
    pub proportional: f64,
    /// Integral gain (Spark: 0.2).
    pub integral: f64,
    /// Derivative gain (Spark: 0.0).
    pub derivative: f64,
    /// The rate never drops below this, in records per second (Spark: 100).
    pub min_rate: f64,
}

impl PidConfig {
    /// Spark's defaults for a batch interval.
    pub fn new(batch_interval_ms: u64) -> PidConfig {
        PidConfig {
            batch_interval_ms,
            proportional: 1.0,
            integral: 0.2,
            derivative: 0.0,
            min_rate: 100.0,
        }
    }

    /// Checks the gains and bounds.
    pub fn validate(&self) -> Result<(), RateConfigError> {
        if self.batch_interval_ms == 0 {
            return Err(RateConfigError("batch interval must be > 0 ms".into()));
        }
        for (name, v) in [
            ("proportional", self.proportional),
            ("integral", self.integral),
            ("derivative", self.derivative),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(RateConfigError(format!(
                    "{name} gain must be a finite number >= 0, got {v}"
                )));
            }
        }
        if !(self.min_rate > 0.0 && self.min_rate.is_finite()) {
            return Err(RateConfigError(format!(
                "min rate must be > 0, got {}",
                self.min_rate
            )));
        }
        Ok(())
    }
}

/// An invalid rate-control setting.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("invalid rate control setting: {0}")]
pub struct RateConfigError(pub String);

/// The PID estimator's state.
#[derive(Debug, Clone)]
pub struct PidRateEstimator {
    config: PidConfig,
    first_run: bool,
    latest_time_ms: i64,
    latest_rate: f64,
    latest_error: f64,
}

impl PidRateEstimator {
    /// A fresh estimator.
    pub fn new(config: PidConfig) -> Result<PidRateEstimator, RateConfigError> {
        config.validate()?;
        Ok(PidRateEstimator {
            config,
            first_run: true,
            latest_time_ms: -1,
            latest_rate: -1.0,
            latest_error: -1.0,
        })
    }

    /// Reports a completed batch: `time_ms` is when it completed, `n_records` how many it processed.
    /// Returns the new rate, or `None` (first report, an empty batch, a zero processing time, or a
    /// report not newer than the last).
    pub fn compute(
        &mut self,
        time_ms: i64,
        n_records: u64,
        processing_delay_ms: u64,
        scheduling_delay_ms: u64,
    ) -> Option<f64> {
        if time_ms <= self.latest_time_ms || n_records == 0 || processing_delay_ms == 0 {
            return None;
        }
        let delay_since_update_s = (time_ms - self.latest_time_ms) as f64 / 1000.0;
        let processing_rate = n_records as f64 / processing_delay_ms as f64 * 1000.0;
        let error = self.latest_rate - processing_rate;
        let historical_error =
            scheduling_delay_ms as f64 * processing_rate / self.config.batch_interval_ms as f64;
        let d_error = (error - self.latest_error) / delay_since_update_s;
        let new_rate = (self.latest_rate
            - self.config.proportional * error
            - self.config.integral * historical_error
            - self.config.derivative * d_error)
            .max(self.config.min_rate);
        self.latest_time_ms = time_ms;
        if self.first_run {
            self.latest_rate = processing_rate;
            self.latest_error = 0.0;
            self.first_run = false;
            None
        } else {
            self.latest_rate = new_rate;
            self.latest_error = error;
            Some(new_rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> PidRateEstimator {
        PidRateEstimator::new(PidConfig::new(1000)).unwrap()
    }

    #[test]
    fn first_report_only_seeds_the_rate() {
        let mut e = est();
        assert_eq!(e.compute(1000, 5000, 500, 0), None);
        // Same processing rate, no scheduling delay: the rate stays the processing rate.
        let r = e.compute(2000, 5000, 500, 0).unwrap();
        assert!((r - 10_000.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn scheduling_delay_lowers_the_rate() {
        let mut e = est();
        e.compute(1000, 10_000, 1000, 0);
        // 10k rec/s processing, 500 ms of queueing: rate = 10000 - 0 - 0.2 * 500 * 10000 / 1000.
        let r = e.compute(2000, 10_000, 1000, 500).unwrap();
        assert!((r - 9_000.0).abs() < 1e-6, "{r}");
    }

    #[test]
    fn slower_processing_lowers_the_rate_and_min_rate_bounds_it() {
        let mut e = est();
        e.compute(1000, 10_000, 1000, 0);
        let r = e.compute(2000, 1000, 1000, 0).unwrap();
        // latest 10000, processing 1000: error 9000, new = 10000 - 9000 = 1000.
        assert!((r - 1000.0).abs() < 1e-6, "{r}");
        let r = e.compute(3000, 1, 1000, 100_000).unwrap();
        assert_eq!(r, 100.0);
    }

    #[test]
    fn ignored_reports() {
        let mut e = est();
        assert_eq!(e.compute(1000, 0, 10, 0), None);
        assert_eq!(e.compute(1000, 10, 0, 0), None);
        e.compute(1000, 10, 10, 0);
        assert_eq!(
            e.compute(1000, 10, 10, 0),
            None,
            "not newer than the last report"
        );
    }

    #[test]
    fn invalid_config_is_rejected() {
        let mut c = PidConfig::new(0);
        assert!(PidRateEstimator::new(c).is_err());
        c = PidConfig::new(100);
        c.integral = -1.0;
        assert!(c.validate().is_err());
        c = PidConfig::new(100);
        c.min_rate = 0.0;
        assert!(c.validate().is_err());
    }
}
