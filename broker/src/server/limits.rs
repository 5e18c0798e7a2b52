//! Limits of the connection layer and the request handlers, each with its reason. Configurable
//! limits (frame size, connections, idle time, in-flight requests) live in `config::limits`.

/// Response frames written in one `writev`; Linux's IOV_MAX is 1024, and a few dozen slices
/// already amortise the system call.
pub const WRITE_SLICES_MAX: usize = 256;
/// Read-buffer room reserved ahead of a frame's arrived bytes: a typical produce request (up to
/// librdkafka's 1 MB message.max.bytes) arrives without regrowing, and a peer announcing a huge
/// frame without sending it pins no more than this.
pub const FRAME_RESERVE_BYTES_MAX: usize = 1024 * 1024;
/// Fetch `max_wait_ms` is capped so a client cannot park a request forever (Kafka clients use
/// 100-500 ms).
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;
/// Fetch response budget when the request's `max_bytes` is larger (Kafka's
/// `fetch.max.bytes` default is 50 MiB; the response is held in memory by reference only).
pub const FETCH_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Log maintenance (retention, compaction, `flush.ms`, checkpoints) runs this often; `flush.ms`
/// values below it are honoured at this granularity.
pub const LOG_MAINTENANCE_INTERVAL_MS: u64 = 1000;
/// Producer ids are reserved on disk in blocks so that allocation rarely touches the disk.
pub const PRODUCER_ID_BLOCK: i64 = 1000;
/// Longest placeholder chunk standing for a file range in an encoded fetch response (see
/// `connection/file_parts.rs`): one shared zeroed buffer of this size is allocated, never touched.
pub const PLACEHOLDER_BYTES: usize = 1024 * 1024;
