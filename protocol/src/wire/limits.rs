//! Named bounds for everything the wire codec reads from a peer.
//!
//! Every count and length read from the network is checked against one of these (or against the
//! bytes actually left in the frame) before anything is allocated.

/// Largest request or response frame accepted, excluding the 4-byte size prefix: Kafka's
/// `socket.request.max.bytes` default (100 MiB), large enough for any produce request a client
/// sends with default settings.
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Most elements accepted in one array: far above any real request (a metadata response for
/// 100,000 partitions), far below what would let nested arrays of tiny elements multiply memory.
pub const ARRAY_LEN_MAX: usize = 1 << 20;

/// Record chunks shorter than this are copied into the frame's header buffer instead of being
/// referenced: an extra iovec costs more than copying a few hundred bytes.
pub const INLINE_CHUNK_BYTES_MAX: usize = 256;

/// Bytes of a frame's size prefix (a big-endian int32).
pub const FRAME_PREFIX_BYTES: usize = 4;

const _: () = assert!(FRAME_BYTES_MAX <= i32::MAX as usize);
const _: () = assert!(ARRAY_LEN_MAX <= i32::MAX as usize);
