//! Hostile input: random and mutated bytes into `decode_request` / `decode_response` never panic,
//! and no single allocation made while decoding is out of proportion to the input (a counting
//! allocator watches every allocation the decoder makes on this thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use proptest::prelude::*;
use sluice_protocol::wire::{decode_request, decode_response, ApiKey, SUPPORTED_VERSIONS};

struct Counting;

thread_local! {
    static LARGEST_ALLOC_BYTES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only records the largest size requested.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC_BYTES.with(|m| m.set(m.get().max(layout.size())));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC_BYTES.with(|m| m.set(m.get().max(new_size)));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_alloc(f: impl FnOnce()) -> usize {
    LARGEST_ALLOC_BYTES.with(|m| m.set(0));
    f();
    LARGEST_ALLOC_BYTES.with(|m| m.get())
}

/// Decoded structs are at most ~16 times larger in memory than their smallest wire form.
fn alloc_bound(input_bytes: usize) -> usize {
    16 * input_bytes + 4096
}

fn supported() -> impl Strategy<Value = (ApiKey, i16)> {
    proptest::sample::select(SUPPORTED_VERSIONS.to_vec())
        .prop_flat_map(|(key, min, max)| (Just(key), min..=max))
}

/// A request header for a supported API and version, then random body bytes: reaches deep into
/// every message decoder instead of stopping at the api key.
fn request_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        supported(),
        any::<i32>(),
        proptest::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|((key, version), correlation_id, body)| {
            let mut frame = Vec::with_capacity(10 + body.len());
            frame.extend_from_slice(&key.as_i16().to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&correlation_id.to_be_bytes());
            frame.extend_from_slice(&(-1i16).to_be_bytes());
            frame.extend_from_slice(&body);
            frame
        })
}

/// Small counts and lengths are what make random bytes parse deep; bias towards them.
fn biased_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            3 => Just(0u8),
            1 => Just(0xffu8),
            2 => 0u8..4,
            4 => any::<u8>(),
        ],
        0..512,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
        let n = frame.len();
        let largest = largest_alloc(|| {
            let _ = decode_request(Bytes::from(frame));
        });
        prop_assert!(largest <= alloc_bound(n), "allocated {largest} for {n} bytes");
    }

    #[test]
    fn random_bodies_of_supported_requests_never_panic(frame in request_frame()) {
        let n = frame.len();
        let largest = largest_alloc(|| {
            let _ = decode_request(Bytes::from(frame));
        });
        prop_assert!(largest <= alloc_bound(n), "allocated {largest} for {n} bytes");
    }

    #[test]
    fn biased_bodies_of_supported_requests_never_panic(
        (key, version) in supported(),
        body in biased_bytes(),
    ) {
        let mut frame = Vec::new();
        frame.extend_from_slice(&key.as_i16().to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        frame.extend_from_slice(&body);
        let n = frame.len();
        let largest = largest_alloc(|| {
            let _ = decode_request(Bytes::from(frame));
        });
        prop_assert!(largest <= alloc_bound(n), "allocated {largest} for {n} bytes");
    }

    #[test]
    fn random_responses_never_panic((key, version) in supported(), body in biased_bytes()) {
        let n = body.len();
        let largest = largest_alloc(|| {
            let _ = decode_response(key, version, Bytes::from(body));
        });
        prop_assert!(largest <= alloc_bound(n), "allocated {largest} for {n} bytes");
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn captured_bodies() -> Vec<(bool, ApiKey, i16, Vec<u8>)> {
    include_str!("captures/wire_kafka_python.hex")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let key = ApiKey::from_i16(f[1].parse().expect("key")).expect("supported");
            let frame = unhex(f[4]);
            // Drop the size prefix; for responses also the correlation id.
            let skip = if f[0] == "request" { 4 } else { 8 };
            (
                f[0] == "request",
                key,
                f[2].parse().expect("version"),
                frame[skip..].to_vec(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Real frames with a few bytes overwritten: lengths and counts land on wild values in the
    /// middle of otherwise valid structure.
    #[test]
    fn mutated_real_frames_never_panic(
        index in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let all = captured_bodies();
        let (request, key, version, mut bytes) = all[index.index(all.len())].clone();
        for (at, value) in edits {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
        }
        let n = bytes.len();
        let largest = largest_alloc(|| {
            if request {
                let _ = decode_request(Bytes::from(bytes));
            } else {
                let _ = decode_response(key, version, Bytes::from(bytes));
            }
        });
        prop_assert!(largest <= alloc_bound(n), "allocated {largest} for {n} bytes");
    }
}
