//! [`BatchBufferPool`]: batch buffers a producer reuses instead of allocating one per batch.
//!
//! A producer that builds a 1 MB batch in a new allocation each time pays for it in the kernel:
//! the allocator hands large blocks back to the system when they are freed (`madvise` or
//! `munmap`), so every new batch faults its pages in again and the kernel zeroes them, before
//! the builder copies a single value (measured in `sluice bench produce`: about a third of the
//! client's system time). Kafka's producer keeps a `BufferPool` for the same reason.
//!
//! The pool keeps the remainder ("home") of each buffer a batch was cut from
//! ([`RecordBatchBuilder::finish_reusable`](super::RecordBatchBuilder::finish_reusable)). Once
//! every `Bytes` of that batch is dropped (the request was written to the socket and answered),
//! the home is the allocation's only owner and [`BytesMut::try_reclaim`] gets the whole
//! allocation back without copying or allocating. A home whose batch is still in flight is
//! skipped, unless the room left after that batch is already enough (the two never overlap); the
//! pool never waits and never grows past its limit (the oldest home is let go).

use std::collections::VecDeque;

use bytes::BytesMut;

/// Reusable batch buffers; see the module docs.
#[derive(Debug)]
pub struct BatchBufferPool {
    homes: VecDeque<BytesMut>,
    limit: usize,
}

impl BatchBufferPool {
    /// A pool that keeps at most `limit` buffers (at least one).
    pub fn new(limit: usize) -> BatchBufferPool {
        let limit = limit.max(1);
        BatchBufferPool {
            homes: VecDeque::with_capacity(limit),
            limit,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: a kept buffer whose batch has
    /// been dropped (or whose room after a live batch is enough), or a new allocation.
    pub fn take(&mut self, capacity: usize) -> BytesMut {
        // A home is always empty: what was written in it left as a batch.
        let reclaimed = self
            .homes
            .iter_mut()
            .position(|home| home.try_reclaim(capacity));
        reclaimed
            .and_then(|i| self.homes.remove(i))
            .unwrap_or_else(|| BytesMut::with_capacity(capacity))
    }

    /// Keeps `home` (what [`finish_reusable`](super::RecordBatchBuilder::finish_reusable) left
    /// of a buffer) to be reclaimed once its batch is dropped. Past the limit the oldest home is
    /// let go: its memory is freed with its batch.
    pub fn put_back(&mut self, home: BytesMut) {
        if self.homes.len() >= self.limit {
            self.homes.pop_front();
        }
        self.homes.push_back(home);
    }

    /// Buffers kept, free or still shared with a batch.
    pub fn len(&self) -> usize {
        self.homes.len()
    }

    /// True when no buffer is kept.
    pub fn is_empty(&self) -> bool {
        self.homes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchIter, BatchOptions, Compression, RecordBatchBuilder};

    fn build(pool: &mut BatchBufferPool, options: BatchOptions, value: &[u8]) -> bytes::Bytes {
        let mut b = RecordBatchBuilder::in_buffer(options, pool.take(4096));
        for ts in 0..3 {
            b.append(ts, None, Some(value), &[]).unwrap();
        }
        let (batch, home) = b.finish_reusable().unwrap();
        pool.put_back(home);
        batch
    }

    #[test]
    fn a_buffer_comes_back_once_its_batch_is_dropped_and_not_before() {
        let mut pool = BatchBufferPool::new(4);
        let first = build(&mut pool, BatchOptions::default(), b"one");
        let first_at = first.as_ptr();
        // While the first batch lives, its buffer is not handed out again.
        let second = build(&mut pool, BatchOptions::default(), b"two");
        assert_ne!(second.as_ptr(), first_at);
        assert_eq!(BatchIter::new(first.clone()).count(), 1);
        let first_bytes = first.to_vec();
        drop(first);
        let third = build(&mut pool, BatchOptions::default(), b"six");
        assert_eq!(
            third.as_ptr(),
            first_at,
            "the dropped batch's allocation is reused"
        );
        // The batches are intact and independent.
        assert_ne!(third.to_vec(), first_bytes);
        for batch in [&second, &third] {
            // BatchIter::new checks each batch's CRC.
            let b = BatchIter::new(batch.clone()).next().unwrap().unwrap();
            assert_eq!(b.records().unwrap().count(), 3);
        }
        assert!(pool.len() <= 4);
    }

    #[test]
    fn too_small_or_shared_buffers_are_skipped_and_the_limit_holds() {
        let mut pool = BatchBufferPool::new(2);
        let kept: Vec<_> = (0..5)
            .map(|_| build(&mut pool, BatchOptions::default(), b"v"))
            .collect();
        assert_eq!(pool.len(), 2);
        // Every kept buffer is still shared with its batch (what is left after the batch is
        // smaller than asked): a new one comes, none is taken out.
        let fresh = pool.take(4096);
        assert!(kept.iter().all(|b| b.as_ptr() != fresh.as_ptr()));
        assert_eq!(pool.len(), 2);
        drop(kept);
        // Free now, but too small for 1 MiB: skipped, and still kept.
        let big = pool.take(1 << 20);
        assert!(big.capacity() >= 1 << 20);
        assert!(big.is_empty());
        assert_eq!(pool.len(), 2);
        // A small request reclaims one of them.
        let small = pool.take(64);
        assert!(small.is_empty() && small.capacity() >= 64);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn a_compressed_batch_hands_back_its_records_buffer_at_once() {
        let options = BatchOptions {
            compression: Compression::Gzip,
            ..BatchOptions::default()
        };
        let mut pool = BatchBufferPool::new(2);
        let first = pool.take(4096);
        let records_at = first.as_ptr();
        let mut b = RecordBatchBuilder::in_buffer(options, first);
        for ts in 0..3 {
            b.append(ts, None, Some(&[b'x'; 200]), &[]).unwrap();
        }
        let (batch, home) = b.finish_reusable().unwrap();
        pool.put_back(home);
        // The compressed batch is a new buffer; the records buffer is free while it lives.
        assert_ne!(batch.as_ptr(), records_at);
        let again = pool.take(1024);
        assert_eq!(
            again.as_ptr(),
            records_at,
            "the records buffer was not handed back"
        );
        let b = BatchIter::new(batch).next().unwrap().unwrap();
        assert_eq!(b.records().unwrap().count(), 3);
    }
}
