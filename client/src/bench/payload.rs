//! Record values, generated once: each producer task owns a [`Payload`] pool of random uppercase
//! letters (as kafka-producer-perf-test uses) and hands out windows of it, so sending a record
//! neither allocates nor generates anything. With `e2e` (and always when the value has room) the
//! first 8 bytes of a value carry the send time in microseconds since the Unix epoch, big-endian,
//! which the consumer reads back to measure produce-to-consume latency.

use std::time::{SystemTime, UNIX_EPOCH};

use super::limits::{PAYLOAD_POOL_BYTES, STAMP_BYTES};

/// Distance between consecutive windows: a prime, so windows start at every offset in turn and
/// neighbouring records differ.
const STRIDE_BYTES: usize = 4099;

/// A pool of random bytes that record values are windows into.
#[derive(Debug, Clone)]
pub struct Payload {
    pool: Vec<u8>,
    size: usize,
    cursor: usize,
}

impl Payload {
    /// A pool for values of `size` bytes, filled from `seed` (xorshift64*, letters A-Z).
    pub fn new(size: usize, seed: u64) -> Payload {
        let mut state = seed | 1;
        let pool = (0..PAYLOAD_POOL_BYTES + size)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
                b'A' + ((r >> 32) % 26) as u8
            })
            .collect();
        Payload {
            pool,
            size,
            cursor: 0,
        }
    }

    /// Bytes per value.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The next value; its first 8 bytes are set to `stamp_us` when it has room for them.
    pub fn next_value(&mut self, stamp_us: u64) -> &[u8] {
        let start = self.cursor;
        self.cursor = (self.cursor + STRIDE_BYTES) % PAYLOAD_POOL_BYTES;
        let value = &mut self.pool[start..start + self.size];
        if let Some(head) = value.get_mut(..STAMP_BYTES) {
            head.copy_from_slice(&stamp_us.to_be_bytes());
        }
        value
    }
}

/// Microseconds since the Unix epoch (wall clock, so separate processes on one host agree).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The send time carried by a value, if it is long enough to hold one.
pub fn read_stamp(value: &[u8]) -> Option<u64> {
    let head: [u8; STAMP_BYTES] = value.get(..STAMP_BYTES)?.try_into().ok()?;
    Some(u64::from_be_bytes(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_size_asked_carry_the_stamp_and_differ() {
        let mut p = Payload::new(100, 7);
        let a = p.next_value(42).to_vec();
        let b = p.next_value(43).to_vec();
        assert_eq!((a.len(), b.len()), (100, 100));
        assert_eq!(read_stamp(&a), Some(42));
        assert_eq!(read_stamp(&b), Some(43));
        assert_ne!(a[8..], b[8..]);
        assert!(a[8..].iter().all(u8::is_ascii_uppercase));
    }

    #[test]
    fn short_values_carry_no_stamp_and_windows_wrap() {
        let mut p = Payload::new(3, 1);
        for _ in 0..(2 * PAYLOAD_POOL_BYTES / STRIDE_BYTES) {
            let v = p.next_value(1);
            assert_eq!(v.len(), 3);
            assert!(v.iter().all(u8::is_ascii_uppercase));
        }
        assert_eq!(read_stamp(b"abc"), None);
        assert!(Payload::new(0, 1).next_value(5).is_empty());
    }
}
