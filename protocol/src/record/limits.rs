//! Bounds on everything a record batch can claim about its own size.
//!
//! Every length read from a batch is checked against these before anything is allocated or sliced.
//! The broker applies its per-topic `max.message.bytes` on top; these are the absolute ceilings.

/// Largest batch (baseOffset through the last record) accepted or built: no batch can be larger than
/// the request frame that carries it (Kafka's `socket.request.max.bytes` default, 100 MiB).
pub const BATCH_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Smallest encoded record: length, attributes, timestampDelta, offsetDelta, key length, value length
/// and header count, one byte each.
pub const RECORD_BYTES_MIN: usize = 7;

/// Largest record section a compressed batch may inflate to: bounds the one buffer a consumer
/// allocates per batch, so a small "zip bomb" batch cannot take the client's memory.
pub const DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Most records a batch may claim: as many minimal records as fit in the largest decompressed
/// section; a larger count cannot be honest.
pub const RECORDS_PER_BATCH_MAX: usize = DECOMPRESSED_BYTES_MAX / RECORD_BYTES_MIN;

/// Most headers one record may claim: far above any real use (Kafka sets no limit), and low enough
/// that a caller collecting them into a `Vec` allocates a bounded amount.
pub const HEADERS_PER_RECORD_MAX: usize = 64 * 1024;

/// Largest zstd window a frame may declare: libzstd's own default decoder limit
/// (`ZSTD_WINDOWLOG_LIMIT_DEFAULT` = 27), so every batch Java or librdkafka can read, we can. The
/// decoder reserves the window up front, but only the bytes it writes (at most the inflated size,
/// bounded by `DECOMPRESSED_BYTES_MAX`) are ever touched.
pub const ZSTD_WINDOW_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Longest varint (32-bit zig-zag) encoding: 5 groups of 7 bits cover 32 bits.
pub const VARINT_BYTES_MAX: usize = 5;

/// Longest varlong (64-bit zig-zag) encoding: 10 groups of 7 bits cover 64 bits.
pub const VARLONG_BYTES_MAX: usize = 10;

const _: () = assert!(BATCH_BYTES_MAX <= i32::MAX as usize);
const _: () = assert!(DECOMPRESSED_BYTES_MAX >= BATCH_BYTES_MAX);
const _: () = assert!(RECORDS_PER_BATCH_MAX <= i32::MAX as usize);
