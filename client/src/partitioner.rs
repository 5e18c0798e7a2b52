//! Choosing a partition for a record, exactly as the Java client's default partitioner does.
//!
//! - A record with a key goes to `to_positive(murmur2(key)) % n_partitions`, where [`murmur2`] is
//!   Kafka's `Utils.murmur2` (seed `0x9747b28c`) and `to_positive` clears the sign bit. The same key
//!   therefore lands in the same partition whether Sluice, the Java client or librdkafka with
//!   `partitioner=murmur2_random` wrote it.
//! - A record without a key uses *sticky* partitioning (KIP-480): every keyless record for a topic
//!   goes to one partition until the batch being built there is sent, then a new partition is picked
//!   at random, so keyless traffic still forms full batches.
//!
//! [`StickyPartitioner`] is a synchronous core: the producer tells it when a batch was closed.

use std::collections::HashMap;

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, returning the signed value
/// the Java client sees.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // The Java switch falls through from the highest remaining byte down.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
pub fn to_positive(hash: i32) -> i32 {
    hash & 0x7fff_ffff
}

/// The partition the Java client's default partitioner chooses for `key` among `n_partitions`
/// (`n_partitions` must be at least 1; 0 yields partition 0).
pub fn partition_for_key(key: &[u8], n_partitions: i32) -> i32 {
    if n_partitions <= 0 {
        return 0;
    }
    to_positive(murmur2(key)) % n_partitions
}

/// Sticky partition choice for keyless records, per topic.
#[derive(Debug)]
pub struct StickyPartitioner {
    current: HashMap<String, i32>,
    rng: u64,
}

impl StickyPartitioner {
    /// A partitioner whose random choices start from `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Self {
        StickyPartitioner {
            current: HashMap::new(),
            rng: seed | 1,
        }
    }

    /// The partition keyless records for `topic` go to now, out of `n_partitions`.
    pub fn partition(&mut self, topic: &str, n_partitions: i32) -> i32 {
        if n_partitions <= 1 {
            return 0;
        }
        if let Some(&p) = self.current.get(topic) {
            if p < n_partitions {
                return p;
            }
        }
        let p = self.next_random(n_partitions);
        self.current.insert(topic.to_string(), p);
        p
    }

    /// The batch for `topic`/`partition` was closed: keyless records move to another partition
    /// (if `partition` is still the sticky one).
    pub fn batch_closed(&mut self, topic: &str, partition: i32, n_partitions: i32) {
        let Some(&p) = self.current.get(topic) else {
            return;
        };
        if p != partition || n_partitions <= 1 {
            return;
        }
        // Pick a different partition, uniformly among the others.
        let offset = 1 + self.next_random(n_partitions - 1);
        let next = (p + offset) % n_partitions;
        self.current.insert(topic.to_string(), next);
    }

    fn next_random(&mut self, bound: i32) -> i32 {
        // xorshift64*: plenty for spreading load, no dependency.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        (r % bound.max(1) as u64) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `UtilsTest.testMurmur2` vectors.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keyed_partition_is_positive_modulo() {
        // to_positive(-790332482) = 1357151166; % 10 = 6, % 50 = 16 (Kafka's own expectation).
        assert_eq!(partition_for_key(b"foobar", 10), 6);
        assert_eq!(partition_for_key(b"foobar", 50), 16);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(partition_for_key(b"x", 0), 0);
        for n in 1..20 {
            let p = partition_for_key(b"some key", n);
            assert!((0..n).contains(&p));
        }
    }

    #[test]
    fn sticky_stays_until_the_batch_closes_then_moves() {
        let mut s = StickyPartitioner::new(42);
        let first = s.partition("t", 4);
        for _ in 0..10 {
            assert_eq!(s.partition("t", 4), first);
        }
        s.batch_closed("t", (first + 1) % 4, 4);
        assert_eq!(
            s.partition("t", 4),
            first,
            "closing another partition's batch"
        );
        s.batch_closed("t", first, 4);
        let second = s.partition("t", 4);
        assert_ne!(second, first);
        assert!((0..4).contains(&second));
        assert_eq!(s.partition("single", 1), 0);
    }

    #[test]
    fn sticky_spreads_over_every_partition() {
        let mut s = StickyPartitioner::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..500 {
            let p = s.partition("t", 5);
            seen[p as usize] += 1;
            s.batch_closed("t", p, 5);
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
