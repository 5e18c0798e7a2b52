//! Named limits of the client, each with the reason it exists. Units are last in the name.

/// Largest response frame accepted from a broker. Kafka's `socket.request.max.bytes` default is
/// 100 MiB and a fetch response is bounded by `fetch.max.bytes` (default 50 MiB); anything larger is
/// a corrupt or hostile length prefix, and allocating it could exhaust memory.
pub const RESPONSE_FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Requests queued to one connection's writer before `send` waits: pipelining depth is bounded so
/// a slow broker applies backpressure instead of growing a queue.
pub const CONNECTION_QUEUE_REQUESTS_MAX: usize = 1024;

/// Largest `batch.size` accepted: one batch must fit comfortably within a request frame.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest `buffer.memory` accepted (bytes the producer may hold unsent).
pub const BUFFER_MEMORY_BYTES_MAX: usize = 4 * 1024 * 1024 * 1024;

/// Batches in flight per partition with idempotence: the broker keeps the last 5 batches' sequence
/// numbers per producer, so more could not be deduplicated on retry (Kafka's own limit).
pub const IN_FLIGHT_PER_PARTITION_MAX: usize = 5;

/// Largest `max.partition.fetch.bytes` accepted.
pub const PARTITION_FETCH_BYTES_MAX: i32 = 64 * 1024 * 1024;

/// Largest `fetch.max.wait.ms` accepted: a long poll longer than this would outlive any sane
/// request timeout.
pub const FETCH_WAIT_MS_MAX: i32 = 60_000;

/// Longest pause between reconnection attempts (the backoff doubles up to this).
pub const RECONNECT_BACKOFF_MS_MAX: u64 = 1_000;

/// Number of times a metadata-related failure is retried before the error reaches the caller.
pub const METADATA_RETRIES_MAX: u32 = 20;

const _: () = assert!(BATCH_BYTES_MAX < RESPONSE_FRAME_BYTES_MAX);
const _: () = assert!((PARTITION_FETCH_BYTES_MAX as usize) < RESPONSE_FRAME_BYTES_MAX);

/// Response frames at least this large are read into a recycled buffer
/// ([`crate::connection::frame_pool`]) instead of a fresh allocation: a fresh multi-megabyte
/// allocation is a fresh mapping whose every page faults and is zeroed on first write (3-5% of a
/// consumer's CPU in profiles of the bench).
pub const POOLED_FRAME_BYTES_MIN: usize = 1024 * 1024;

/// Bytes of idle frame buffers one connection keeps for reuse; more are freed. Two 16 MiB fetch
/// responses (one being read while the caller holds the other) fit, with room.
pub const POOLED_FRAME_BYTES_KEPT_MAX: usize = 64 * 1024 * 1024;

/// Batch buffers a producer keeps for reuse ([`sluice_protocol::record::BatchBufferPool`]): a
/// buffer comes back once the batch built in it has been sent and answered, so this covers
/// `max.in.flight` batches on a few partitions at once; a producer writing to more partitions
/// allocates the rest as before. Idle buffers are at most this many times `batch.size`.
pub const BATCH_BUFFERS_KEPT: usize = 16;
