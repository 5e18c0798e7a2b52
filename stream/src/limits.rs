//! Named limits of the stream engine, each with the reason for its value.

/// Attempts per task before the job fails (Spark's `spark.task.maxFailures` default): enough to ride
/// out a transient source error, few enough that a deterministic bug fails the job quickly.
pub const TASK_ATTEMPTS_MAX: u32 = 4;

/// Keys sampled per partition by `sort_by` to choose range bounds (Spark samples about 20 per output
/// partition); bounds the driver-side memory of the sampling job.
pub const SORT_SAMPLE_KEYS_PER_PARTITION_MAX: usize = 256;

/// Partitions one RDD may have: every partition is a task and a slot in shuffle bookkeeping, so an
/// absurd count from a config typo must be refused before allocating per-partition tables.
pub const PARTITIONS_MAX: usize = 65_536;

/// Worker threads a context may start: far above any core count this engine targets.
pub const WORKERS_MAX: usize = 1_024;
