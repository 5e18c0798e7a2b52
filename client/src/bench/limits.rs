//! Named limits of `sluice bench`, each with the reason it exists. Units are last in the name.

/// Largest `--message-size`: one record must fit in a batch well below the client's 16 MiB
/// `BATCH_BYTES_MAX`, together with the records around it.
pub const MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// Smallest `--message-size` for `e2e`: each value starts with an 8-byte send timestamp.
pub const STAMP_BYTES: usize = 8;

/// Largest `--batch-size` in records (Kafka's recordsCount is an i32; batches this large are
/// already far past any throughput gain).
pub const BATCH_RECORDS_MAX: usize = 1_000_000;

/// Largest `--producers` / `--consumers`: each is a task with its own connection; more than this
/// on one machine measures the scheduler, not the broker.
pub const TASKS_MAX: usize = 256;

/// Largest `--partitions` the bench creates.
pub const PARTITIONS_MAX: i32 = 10_000;

/// Largest `--in-flight` produce requests per producer task (Kafka's idempotent producer allows
/// 5 per partition; the raw path may pipeline deeper, bounded so memory stays predictable).
pub const IN_FLIGHT_MAX: usize = 64;

/// Bytes of random payload each producer task keeps; record values are windows into it, so
/// payloads are generated once and never allocated per record. Larger than lz4's 64 KiB window so
/// compression ratios are not flattered by repetition; small enough to stay in a core's L2 cache,
/// as a value an application has just serialised is (kafka-producer-perf-test sends one fixed
/// payload). With 1 MiB the copy of each value into its batch missed the cache: it took a third
/// of the bench's CPU at 300k records/s and a quarter less user time with 256 KiB, the CPU the
/// broker shares on a 2-core machine.
pub const PAYLOAD_POOL_BYTES: usize = 256 * 1024;

/// Significant decimal digits the latency histograms keep (HdrHistogram's precision).
pub const HISTOGRAM_DIGITS: u8 = 3;

/// Highest latency the histograms record, in microseconds (an hour); slower results are clamped
/// to it, never dropped.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Distinct error messages kept per run; further kinds are counted under "other errors".
pub const ERROR_KINDS_MAX: usize = 16;

/// Consecutive failed requests after which a task stops (the broker is gone): it keeps counting
/// rather than spinning on instant failures.
pub const CONSECUTIVE_FAILURES_MAX: u32 = 50;

/// How long `e2e` consumers keep reading after the producers finish before the records still
/// missing are counted as lost.
pub const DRAIN_TIMEOUT_MS: u64 = 30_000;

const _: () = assert!(STAMP_BYTES <= MESSAGE_BYTES_MAX);
