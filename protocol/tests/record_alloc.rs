//! Walking an uncompressed batch allocates nothing per record, and a compressed batch allocates one
//! buffer for the whole section: checked with a counting global allocator (per thread, so other
//! tests running in parallel do not disturb the count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use sluice_protocol::record::{BatchOptions, Compression, RecordBatch, RecordBatchBuilder};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

fn batch(compression: Compression, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(BatchOptions {
        compression,
        ..Default::default()
    });
    for i in 0..n {
        let value = format!("value number {i} with some padding to compress");
        b.append(
            i as i64,
            Some(b"key"),
            Some(value.as_bytes()),
            &[("h", Some(b"v"))],
        )
        .expect("append");
    }
    b.finish().expect("finish")
}

fn walk(batch: &RecordBatch) -> usize {
    let mut n = 0;
    for r in batch.records().expect("records") {
        let r = r.expect("record");
        n += r.value().map_or(0, |v| v.len()) + r.headers().map(|h| h.key.len()).sum::<usize>();
    }
    n
}

#[test]
fn walking_records_allocates_at_most_once_per_batch() {
    // Shared (refcounted) Bytes from the start, so slicing is only a refcount increment.
    let plain = RecordBatch::parse(batch(Compression::None, 1000)).expect("parse");
    let _warm = plain.as_bytes().clone();
    let before = allocations();
    assert!(walk(&plain) > 0);
    assert_eq!(allocations() - before, 0, "uncompressed walk allocated");

    let lz4 = RecordBatch::parse(batch(Compression::Lz4, 1000)).expect("parse");
    let before = allocations();
    assert!(walk(&lz4) > 0);
    let n = allocations() - before;
    // The inflated buffer, its promotion to shared Bytes and the decoder's own state: a constant,
    // not one per record.
    assert!(n <= 10, "lz4 walk allocated {n} times for 1000 records");
}
