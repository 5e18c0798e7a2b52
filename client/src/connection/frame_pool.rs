//! Recycled buffers for large response frames.
//!
//! A fetch response is read into one buffer and handed out as `Bytes` slices of it (records are
//! never copied again), so the buffer lives until the caller drops the last record. Allocating a
//! fresh one per frame makes the allocator map new memory each time, and every page of it faults
//! and is zeroed before the socket data lands there. Here the frame's `Bytes` own a `Pooled`
//! buffer: when the last slice is dropped the buffer goes back to its connection's pool, to be
//! filled by a later frame. The pool holds at most [`POOLED_FRAME_BYTES_KEPT_MAX`] bytes, and
//! only weakly belongs to the frames: once the connection is gone, returned buffers are freed.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use crate::limits::POOLED_FRAME_BYTES_KEPT_MAX;

type Free = Mutex<Vec<Vec<u8>>>;

/// One connection's idle frame buffers.
#[derive(Debug, Default)]
pub struct FramePool {
    free: Arc<Free>,
}

impl FramePool {
    /// An empty buffer with room for at least `capacity` bytes: a recycled one when one is big
    /// enough, else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        match free.iter().position(|b| b.capacity() >= capacity) {
            Some(i) => {
                let mut buf = free.swap_remove(i);
                buf.clear();
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// `buf` as `Bytes`; it comes back to this pool when the last slice of it is dropped.
    pub fn freeze(&self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: Arc::downgrade(&self.free),
        })
    }

    /// Bytes held idle.
    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.iter().map(Vec::capacity).sum()
    }
}

/// A frame buffer on loan to `Bytes`.
struct Pooled {
    buf: Vec<u8>,
    pool: Weak<Free>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut free = pool.lock().unwrap_or_else(|p| p.into_inner());
        let idle: usize = free.iter().map(Vec::capacity).sum();
        if idle + self.buf.capacity() <= POOLED_FRAME_BYTES_KEPT_MAX {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_frame_is_reused_by_the_next() {
        let pool = FramePool::default();
        let mut buf = pool.take(1 << 20);
        buf.extend_from_slice(&[7u8; 1000]);
        let ptr = buf.as_ptr();
        let frame = pool.freeze(buf);
        let slice = frame.slice(10..20);
        drop(frame);
        // A slice still holds the buffer.
        assert_eq!(pool.idle_bytes(), 0);
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        assert!(pool.idle_bytes() >= 1 << 20);
        let again = pool.take(4096);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
        // Too small a buffer is not handed out for a bigger frame.
        drop(pool.freeze(again));
        let bigger = pool.take(2 << 20);
        assert_ne!(bigger.as_ptr(), ptr);
    }

    #[test]
    fn the_pool_keeps_a_bounded_amount_and_nothing_after_the_connection() {
        let pool = FramePool::default();
        let frames: Vec<Bytes> = (0..8)
            .map(|_| pool.freeze(Vec::with_capacity(POOLED_FRAME_BYTES_KEPT_MAX / 4)))
            .collect();
        drop(frames);
        assert!(pool.idle_bytes() <= POOLED_FRAME_BYTES_KEPT_MAX);
        let late = pool.freeze(Vec::with_capacity(1 << 20));
        drop(pool);
        drop(late); // the pool is gone: freed, no panic
    }
}
