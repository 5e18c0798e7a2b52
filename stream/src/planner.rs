//! The micro-batch planner: a synchronous state machine choosing each batch's offset ranges.
//!
//! Each tick the driver lists the log start and end offsets of the subscribed partitions and asks
//! the planner for the next batch. A range runs from where the previous batch ended (or the start
//! position for a partition seen for the first time) to the latest offset, capped per partition by
//! `max_records_per_partition` and by the backpressure rate from [`crate::rate`] shared out in
//! proportion to each partition's lag (Spark's `DirectKafkaInputDStream.maxMessagesPerPartition`).
//! Time is passed in; nothing here does I/O.

use crate::rate::{PidConfig, PidRateEstimator, RateConfigError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// One partition's share of a batch: offsets `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OffsetRange {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// First offset of the range.
    pub from: i64,
    /// One past the last offset of the range.
    pub until: i64,
}

impl OffsetRange {
    /// The number of offsets in the range.
    pub fn len(&self) -> u64 {
        (self.until - self.from).max(0) as u64
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.until <= self.from
    }
}

/// The offsets a partition holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The log start offset (earliest retained).
    pub start: i64,
    /// The log end offset (high watermark): one past the last readable record.
    pub end: i64,
}

/// Where a partition seen for the first time starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartingOffsets {
    /// The log start offset.
    Earliest,
    /// The end of the log at the first plan.
    Latest,
}

/// Rate-control settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannerConfig {
    /// Batch interval in milliseconds.
    pub batch_interval_ms: u64,
    /// The most offsets one partition contributes to one batch (`None`: no cap).
    pub max_records_per_partition: Option<u64>,
    /// Whether the PID backpressure estimator caps batches.
    pub backpressure: bool,
    /// The rate (records per second, all partitions) used before the estimator has an estimate;
    /// `None`: uncapped until then.
    pub initial_rate: Option<f64>,
    /// Gains and minimum rate of the estimator.
    pub pid: PidConfig,
    /// Where partitions seen for the first time start.
    pub starting_offsets: StartingOffsets,
}

impl PlannerConfig {
    /// Defaults for a batch interval: backpressure on, no initial rate, no per-partition cap,
    /// starting at the earliest offsets.
    pub fn new(batch_interval_ms: u64) -> PlannerConfig {
        PlannerConfig {
            batch_interval_ms,
            max_records_per_partition: None,
            backpressure: true,
            initial_rate: None,
            pid: PidConfig::new(batch_interval_ms),
            starting_offsets: StartingOffsets::Earliest,
        }
    }
}

/// Data lost between batches: the log start moved past where the next batch would have begun
/// (retention deleted it before the job read it). The planner skips ahead and reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLoss {
    /// The partition.
    pub tp: TopicPartition,
    /// Where the batch should have started.
    pub expected: i64,
    /// Where the log starts now.
    pub log_start: i64,
}

/// A planned batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One range per known partition (possibly empty), ordered by topic and partition.
    pub ranges: Vec<OffsetRange>,
    /// Partitions whose planned start had been deleted.
    pub data_loss: Vec<DataLoss>,
}

impl Plan {
    /// Records in the batch.
    pub fn n_records(&self) -> u64 {
        self.ranges.iter().map(OffsetRange::len).sum()
    }
}

/// The planner's state: the next start offset per partition and the rate estimate.
#[derive(Debug, Clone)]
pub struct Planner {
    config: PlannerConfig,
    positions: BTreeMap<TopicPartition, i64>,
    estimator: PidRateEstimator,
    rate: Option<f64>,
}

impl Planner {
    /// A planner with no positions yet.
    pub fn new(config: PlannerConfig) -> Result<Planner, RateConfigError> {
        if let Some(r) = config.initial_rate {
            if !(r > 0.0 && r.is_finite()) {
                return Err(RateConfigError(format!(
                    "initial rate must be > 0, got {r}"
                )));
            }
        }
        if config.max_records_per_partition == Some(0) {
            return Err(RateConfigError(
                "max_records_per_partition must be > 0".into(),
            ));
        }
        let estimator = PidRateEstimator::new(config.pid)?;
        let rate = config.initial_rate;
        Ok(Planner {
            config,
            positions: BTreeMap::new(),
            estimator,
            rate,
        })
    }

    /// Resumes from the end of a recorded batch: its ranges' `until` become the next starts.
    pub fn resume_after(&mut self, ranges: &[OffsetRange]) {
        for r in ranges {
            self.positions
                .insert(TopicPartition::new(r.topic.clone(), r.partition), r.until);
        }
    }

    /// The next start offset of every known partition.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// The current rate limit (records per second, all partitions), if any.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Plans the next batch from the partitions' current offsets and advances the positions to
    /// its ends. A partition absent from `offsets` keeps its position and gets no range.
    pub fn plan(&mut self, offsets: &BTreeMap<TopicPartition, PartitionOffsets>) -> Plan {
        let mut data_loss = Vec::new();
        let mut starts: Vec<(&TopicPartition, i64, i64)> = Vec::with_capacity(offsets.len());
        for (tp, o) in offsets {
            let from = match self.positions.get(tp) {
                Some(&p) => p,
                None => match self.config.starting_offsets {
                    StartingOffsets::Earliest => o.start,
                    StartingOffsets::Latest => o.end,
                },
            };
            let from = if from < o.start {
                data_loss.push(DataLoss {
                    tp: tp.clone(),
                    expected: from,
                    log_start: o.start,
                });
                o.start
            } else {
                from
            };
            // An end below our position means the log was truncated under us (a new leader with
            // a shorter log): take nothing rather than re-reading offsets with different records.
            let end = o.end.max(from);
            starts.push((tp, from, end));
        }
        let caps = self.caps(&starts);
        let mut ranges = Vec::with_capacity(starts.len());
        for ((tp, from, end), cap) in starts.into_iter().zip(caps) {
            let until = match cap {
                Some(c) => end.min(from.saturating_add(c as i64)),
                None => end,
            };
            self.positions.insert(tp.clone(), until);
            ranges.push(OffsetRange {
                topic: tp.topic.clone(),
                partition: tp.partition,
                from,
                until,
            });
        }
        Plan { ranges, data_loss }
    }

    /// Per-partition caps on the number of records, from the fixed cap and the rate.
    fn caps(&self, starts: &[(&TopicPartition, i64, i64)]) -> Vec<Option<u64>> {
        let fixed = self.config.max_records_per_partition;
        let rate = if self.config.backpressure {
            self.rate
        } else {
            None
        };
        let Some(rate) = rate else {
            return vec![fixed; starts.len()];
        };
        let lags: Vec<u64> = starts
            .iter()
            .map(|(_, f, e)| (e - f).max(0) as u64)
            .collect();
        let total: u64 = lags.iter().sum();
        let secs = self.config.batch_interval_ms as f64 / 1000.0;
        lags.iter()
            .map(|&lag| {
                if total == 0 {
                    return fixed;
                }
                let share = lag as f64 / total as f64 * rate * secs;
                // At least one record per lagging partition per batch, so that progress never
                // stops (Spark guards this with a minimum rate per partition).
                let by_rate = (share as u64).max(u64::from(lag > 0));
                Some(fixed.map_or(by_rate, |f| f.min(by_rate)))
            })
            .collect()
    }

    /// Reports a completed batch to the rate estimator. `completed_at_ms` is when it finished.
    pub fn on_batch_completed(
        &mut self,
        completed_at_ms: i64,
        n_records: u64,
        processing_delay_ms: u64,
        scheduling_delay_ms: u64,
    ) {
        if let Some(r) = self.estimator.compute(
            completed_at_ms,
            n_records,
            processing_delay_ms,
            scheduling_delay_ms,
        ) {
            tracing::debug!(rate = r, "backpressure rate updated");
            self.rate = Some(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn offsets(v: &[(i32, i64, i64)]) -> BTreeMap<TopicPartition, PartitionOffsets> {
        v.iter()
            .map(|&(p, start, end)| (tp(p), PartitionOffsets { start, end }))
            .collect()
    }

    fn lens(plan: &Plan) -> Vec<(i64, i64)> {
        plan.ranges.iter().map(|r| (r.from, r.until)).collect()
    }

    #[test]
    fn ranges_run_from_the_last_end_to_the_latest_offsets() {
        let mut p = Planner::new(PlannerConfig::new(1000)).unwrap();
        let plan = p.plan(&offsets(&[(0, 0, 10), (1, 5, 7)]));
        assert_eq!(lens(&plan), vec![(0, 10), (5, 7)]);
        let plan = p.plan(&offsets(&[(0, 0, 12), (1, 5, 7)]));
        assert_eq!(lens(&plan), vec![(10, 12), (7, 7)]);
        assert_eq!(plan.n_records(), 2);
    }

    #[test]
    fn latest_start_skips_existing_data_and_new_partitions_start_earliest_or_latest() {
        let mut c = PlannerConfig::new(1000);
        c.starting_offsets = StartingOffsets::Latest;
        let mut p = Planner::new(c).unwrap();
        assert_eq!(lens(&p.plan(&offsets(&[(0, 0, 10)]))), vec![(10, 10)]);
        assert_eq!(
            lens(&p.plan(&offsets(&[(0, 0, 15), (1, 0, 3)]))),
            vec![(10, 15), (3, 3)]
        );
    }

    #[test]
    fn fixed_cap_limits_each_partition() {
        let mut c = PlannerConfig::new(1000);
        c.max_records_per_partition = Some(4);
        let mut p = Planner::new(c).unwrap();
        assert_eq!(
            lens(&p.plan(&offsets(&[(0, 0, 10), (1, 0, 2)]))),
            vec![(0, 4), (0, 2)]
        );
        assert_eq!(
            lens(&p.plan(&offsets(&[(0, 0, 10), (1, 0, 2)]))),
            vec![(4, 8), (2, 2)]
        );
        assert_eq!(
            lens(&p.plan(&offsets(&[(0, 0, 10), (1, 0, 2)]))),
            vec![(8, 10), (2, 2)]
        );
    }

    #[test]
    fn initial_rate_is_shared_in_proportion_to_lag() {
        let mut c = PlannerConfig::new(500);
        c.initial_rate = Some(1000.0); // 500 records per 500 ms batch
        let mut p = Planner::new(c).unwrap();
        let plan = p.plan(&offsets(&[(0, 0, 3000), (1, 0, 1000), (2, 0, 0)]));
        assert_eq!(lens(&plan), vec![(0, 375), (0, 125), (0, 0)]);
    }

    #[test]
    fn a_huge_backlog_is_taken_at_the_estimated_rate() {
        let mut c = PlannerConfig::new(1000);
        c.initial_rate = Some(10_000.0);
        let mut p = Planner::new(c).unwrap();
        let backlog = offsets(&[(0, 0, 10_000_000)]);
        let first = p.plan(&backlog);
        assert_eq!(first.n_records(), 10_000);
        // The job processes 10k records in 2 s with 1 s of queueing: it is too slow.
        p.on_batch_completed(3000, 10_000, 2000, 1000);
        assert_eq!(
            p.plan(&backlog).n_records(),
            10_000,
            "first report only seeds the estimator"
        );
        p.on_batch_completed(6000, 10_000, 2000, 1000);
        let r = p.rate().unwrap();
        assert!((100.0..10_000.0).contains(&r), "{r}");
        let n = p.plan(&backlog).n_records();
        assert_eq!(n, r as u64);
    }

    #[test]
    fn min_one_record_per_lagging_partition() {
        let mut c = PlannerConfig::new(10);
        c.initial_rate = Some(1.0);
        let mut p = Planner::new(c).unwrap();
        assert_eq!(
            lens(&p.plan(&offsets(&[(0, 0, 5), (1, 0, 5)]))),
            vec![(0, 1), (0, 1)]
        );
    }

    #[test]
    fn deleted_data_is_skipped_and_reported() {
        let mut p = Planner::new(PlannerConfig::new(1000)).unwrap();
        p.resume_after(&[OffsetRange {
            topic: "t".into(),
            partition: 0,
            from: 0,
            until: 5,
        }]);
        let plan = p.plan(&offsets(&[(0, 8, 12)]));
        assert_eq!(lens(&plan), vec![(8, 12)]);
        assert_eq!(
            plan.data_loss,
            vec![DataLoss {
                tp: tp(0),
                expected: 5,
                log_start: 8
            }]
        );
    }

    #[test]
    fn a_truncated_log_yields_an_empty_range() {
        let mut p = Planner::new(PlannerConfig::new(1000)).unwrap();
        p.resume_after(&[OffsetRange {
            topic: "t".into(),
            partition: 0,
            from: 0,
            until: 10,
        }]);
        assert_eq!(lens(&p.plan(&offsets(&[(0, 0, 7)]))), vec![(10, 10)]);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let mut c = PlannerConfig::new(1000);
        c.max_records_per_partition = Some(0);
        assert!(Planner::new(c).is_err());
        let mut c = PlannerConfig::new(1000);
        c.initial_rate = Some(-1.0);
        assert!(Planner::new(c).is_err());
        assert!(Planner::new(PlannerConfig::new(0)).is_err());
    }
}
