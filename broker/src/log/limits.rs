//! Named limits of the partition log. Every size read from disk is checked against one of these
//! before anything is allocated; each carries the reason for its value.

/// Largest stored batch accepted from disk or from a producer: bounds the buffer a scan or a read
/// allocates for one batch (Kafka's `message.max.bytes` is far below; 128 MiB leaves room for
/// generous `max.message.bytes` settings).
pub const STORED_BATCH_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Smallest valid `batchLength` (bytes after the length field): a v2 header with no records.
pub const BATCH_LENGTH_MIN: usize = 49;

/// Largest segment file: index entries store file positions as u32.
pub const SEGMENT_BYTES_MAX: u64 = u32::MAX as u64;

/// Largest offset span inside one segment: index entries store offsets relative to the segment base
/// as u32, so a segment rolls before a batch would exceed this.
pub const SEGMENT_OFFSET_SPAN_MAX: i64 = u32::MAX as i64;

/// Largest index file accepted from disk (`segment.index.bytes` is capped by this too): an index
/// is mapped or read whole, so it must stay modest.
pub const INDEX_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Largest small file (checkpoint, producer snapshot, marker) read whole into memory.
pub const CHECKPOINT_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Leader epochs remembered per partition; an epoch cache longer than this on disk is corrupt.
pub const LEADER_EPOCH_ENTRIES_MAX: usize = 1_000_000;

/// Batches remembered per producer id for duplicate detection: Kafka clients keep at most five
/// requests in flight per connection when idempotent, so five suffice (Kafka keeps five too).
pub const PRODUCER_BATCHES_CACHED: usize = 5;

/// Producer ids tracked per partition: bounds snapshot size and memory; beyond it the producer
/// with the oldest last append is forgotten (as if its id had expired).
pub const PRODUCERS_PER_PARTITION_MAX: usize = 100_000;

/// Bytes a scan reads from a segment file at once: large enough that recovery does few syscalls,
/// small enough to be cheap per partition.
pub const SCAN_CHUNK_BYTES: usize = 1024 * 1024;

/// Distinct keys one compaction pass holds in memory; a segment set with more keys is compacted in
/// several passes (only the newest keys are cleaned at a time).
pub const COMPACTION_KEYS_MAX: usize = 4_000_000;

/// How long a producer id is remembered after its last append (Kafka's
/// `transactional.id.expiration.ms`/`producer.id.expiration.ms` default: one day).
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// Minimum interval between two writes of the recovery-point checkpoint by the maintenance tick:
/// each write costs three fsyncs, and losing a few seconds of recovery point only costs a longer scan.
pub const RECOVERY_POINT_CHECKPOINT_INTERVAL_MS: i64 = 5_000;

const _: () = assert!(STORED_BATCH_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX);
const _: () = assert!(BATCH_LENGTH_MIN + 12 == 61);
const _: () = assert!(CHECKPOINT_BYTES_MAX as u64 >= INDEX_BYTES_MAX);
/// Reads of at least this many bytes are handed out as file ranges for `sendfile` instead of
/// being copied into memory: below it, one small pread costs less than a second system call.
pub const SEND_FILE_BYTES_MIN: usize = 64 * 1024;
/// Bytes of segment file read at once while walking batch headers to bound a file-range read: a
/// few small batches' headers per read, and little copied when batches are large.
pub const HEADER_WALK_WINDOW_BYTES: usize = 4096;
const _: () = assert!(HEADER_WALK_WINDOW_BYTES >= crate::log::batch::HEADER_BYTES);
/// Most blocks a segment file reserves ahead of its data at a time (see `storage::FileStorage`;
/// smaller files reserve as much as they hold). Each reservation is an `fallocate` on the append
/// path, and its time grows with the range: paced at 426k records/s of 1 KB, batch p99 was
/// 12-17 ms in two of three runs with 256 MiB steps, 3.4-9.2 ms with 32 MiB, 3.5-4.0 ms in six
/// runs with 8 MiB (and 3.8-19 ms with 4 MiB, or with none: delayed allocation stalls instead).
pub const PREALLOCATE_BYTES: u64 = 8 * 1024 * 1024;
/// The block an append to a reused segment file is padded to the end of (see
/// `storage::FileStorage::open_reused`): the page size, and ext4's usual block size; a larger
/// block size would only bring back some of the reads the padding avoids.
pub const WRITE_BLOCK_BYTES: u64 = 4096;
/// Dirty bytes a segment file may gather before its writeback is started in the background (see
/// `Storage::start_writeback`): big enough for large sequential writes, small enough that a seal's
/// fdatasync finds little to flush.
pub const WRITEBACK_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
/// How long a deleted segment's log file is held for its page cache (see `recycle`) before it is
/// closed: Kafka delays segment deletion by `file.delete.delay.ms`, 60 s, too.
pub const RECYCLE_HOLD_MS: i64 = 60_000;
/// Most bytes of deleted segments held at once: past it the oldest are closed at once. Holding
/// keeps disk blocks allocated (they are freed as a file is cut), so this bounds the disk a
/// deletion leaves in use for up to [`RECYCLE_HOLD_MS`]; 8 GiB covers several seconds of appends.
pub const RECYCLE_HELD_BYTES_MAX: u64 = 8 * 1024 * 1024 * 1024;
/// Appended bytes gathered before a held file is cut by as many: one `ftruncate` per 1 MiB keeps
/// the freed pages few enough to be reused at once, and the system calls few.
pub const RECYCLE_STEP_BYTES: u64 = 1024 * 1024;
/// Spare segment files (see `spare`) one partition keeps: with one deletion per new segment at a
/// steady state of retention, one is enough.
pub const SPARES_PER_PARTITION_MAX: usize = 1;
/// Most bytes spare segment files of the whole broker keep on disk.
pub const SPARE_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;
/// How long a spare segment file waits to be reused before it is removed (as held files).
pub const SPARE_HOLD_MS: i64 = RECYCLE_HOLD_MS;
