//! `PageRecycler`: the page cache of deleted segments, handed on to new appends.
//!
//! ```text
//! PageRecycler::new() -> PageRecycler
//! hold(file: Arc<dyn Storage>, now_ms)      a deleted segment's log file (already unlinked)
//! make_room(bytes) -> Vec<Held>             before appending `bytes`: drops about as many pages
//! expire(now_ms) -> Vec<Held>               files held longer than RECYCLE_HOLD_MS, to close
//! release_all() -> Vec<Held>                at shutdown
//! held_bytes(), held_files()
//! ```
//!
//! Why: every byte appended lands in a page-cache page, and a page the kernel has to take from
//! free memory can cost far more than the copy into it. On a virtual machine whose host takes
//! back free guest memory (virtio-balloon free page reporting, as on this project's machines),
//! the first write to such a page faults into the host: a 1 MB append took 2.6 ms instead of
//! 0.23 ms, and appends ran at 450 MB/s instead of 1.5-3 GB/s. Closing a deleted 1 GiB segment
//! frees its pages all at once; the host takes them back within a second, and the next appends
//! pay for fresh pages again.
//!
//! So a segment removed by retention, DeleteRecords, truncation, compaction or topic deletion
//! keeps its unlinked log file open here, and each append first drops about as many bytes of a
//! held file's page cache as it is about to write (`posix_fadvise(DONTNEED)`, from the file's
//! end): the pages freed that way are the ones the kernel hands to the append, still backed by
//! the host. (Cutting the file with `ftruncate` instead stalled appends 7-17 ms at times: it
//! waits for the file system's journal.) A file whose pages are all dropped is closed, which frees
//! its disk blocks; a held file is closed outright after [`RECYCLE_HOLD_MS`] (Kafka delays segment
//! deletion by `file.delete.delay.ms`, 60 s, too), when more than [`RECYCLE_HELD_BYTES_MAX`] are
//! held, and at shutdown.
//!
//! Only files the recycler holds the last handle of are dropped from: a fetch still sending from
//! a deleted segment keeps its pages until the fetch lets the file go. Dropping runs outside the
//! recycler's lock, so two partitions appending at once work on two different files.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::limits::{RECYCLE_HELD_BYTES_MAX, RECYCLE_HOLD_MS, RECYCLE_STEP_BYTES};
use crate::log::spare::SpareBudget;
use crate::log::storage::Storage;

/// One deleted segment's log file, held for its pages.
#[derive(Debug)]
pub struct Held {
    file: Arc<dyn Storage>,
    /// Bytes whose pages were not dropped yet (the file's first `len` bytes).
    len: u64,
    /// When it was handed over (clock ms).
    since_ms: i64,
}

#[derive(Debug, Default)]
struct State {
    files: VecDeque<Held>,
    /// Bytes asked for by appends and not dropped yet (dropped in steps of [`RECYCLE_STEP_BYTES`]).
    owed: u64,
}

/// Deleted segments' log files, whose pages appends reuse (see the module doc).
#[derive(Debug, Default)]
pub struct PageRecycler {
    state: Mutex<State>,
    /// Bytes of held files whose pages were not dropped yet (read without the lock on every append).
    held: AtomicU64,
    /// The budget of spare segment files (see [`crate::log::spare`]), shared by every partition.
    spares: Arc<SpareBudget>,
}

impl PageRecycler {
    /// An empty recycler.
    pub fn new() -> PageRecycler {
        PageRecycler::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The broker-wide budget of spare segment files.
    pub fn spare_budget(&self) -> &Arc<SpareBudget> {
        &self.spares
    }

    /// Bytes held whose pages were not dropped yet.
    pub fn held_bytes(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// Files held.
    pub fn held_files(&self) -> usize {
        self.lock().files.len()
    }

    /// Takes a deleted segment's log file. Returns the files to close now (the oldest, when more
    /// than [`RECYCLE_HELD_BYTES_MAX`] would be held); the caller closes them off any lock.
    #[must_use = "the returned files are to be closed off the lock"]
    pub fn hold(&self, file: Arc<dyn Storage>, now_ms: i64) -> Vec<Held> {
        let len = file.len();
        let mut out = Vec::new();
        if len == 0 {
            return out;
        }
        let mut st = self.lock();
        st.files.push_back(Held {
            file,
            len,
            since_ms: now_ms,
        });
        let mut held = self.held.fetch_add(len, Ordering::AcqRel) + len;
        while held > RECYCLE_HELD_BYTES_MAX {
            let Some(old) = st.files.pop_front() else {
                break;
            };
            held = self.held.fetch_sub(old.len, Ordering::AcqRel) - old.len;
            out.push(old);
        }
        out
    }

    /// Before an append of `bytes`: drops about as many bytes of held files' page cache, in steps
    /// of [`RECYCLE_STEP_BYTES`]. Returns the files it finished with, to be closed off the append
    /// path (closing frees their disk blocks). Does nothing (one atomic load) when nothing is held.
    #[must_use = "the returned files are to be closed off the lock"]
    pub fn make_room(&self, bytes: u64) -> Vec<Held> {
        let mut spent = Vec::new();
        if self.held_bytes() == 0 {
            return spent;
        }
        let mut cut = {
            let mut st = self.lock();
            st.owed += bytes;
            if st.owed < RECYCLE_STEP_BYTES {
                return spent;
            }
            std::mem::take(&mut st.owed)
        };
        while cut > 0 {
            let Some(mut held) = self.take_unshared() else {
                break;
            };
            let step = cut.min(held.len);
            let from = held.len - step;
            if let Err(e) = held.file.drop_cached(from, step) {
                // Closing frees the same pages, only all at once.
                tracing::debug!(error = %e, "dropping a deleted segment's pages failed");
                self.held.fetch_sub(held.len, Ordering::AcqRel);
                spent.push(held);
                continue;
            }
            self.held.fetch_sub(step, Ordering::AcqRel);
            held.len = from;
            cut -= step;
            if held.len > 0 {
                self.lock().files.push_front(held);
            } else {
                spent.push(held);
            }
        }
        spent
    }

    /// Takes out the oldest held file no reader shares (a file still being sent from keeps its
    /// bytes until the reader drops it).
    fn take_unshared(&self) -> Option<Held> {
        let mut st = self.lock();
        let i = st
            .files
            .iter()
            .position(|h| Arc::strong_count(&h.file) == 1)?;
        st.files.remove(i)
    }

    /// Files held for [`RECYCLE_HOLD_MS`] or longer, taken out to be closed (off any lock: closing
    /// a large unlinked file frees its pages and blocks, which takes a while).
    #[must_use = "the returned files are to be closed off the lock"]
    pub fn expire(&self, now_ms: i64) -> Vec<Held> {
        let mut st = self.lock();
        let (out, kept): (Vec<Held>, Vec<Held>) = st
            .files
            .drain(..)
            .partition(|h| now_ms - h.since_ms >= RECYCLE_HOLD_MS);
        st.files = kept.into();
        drop(st);
        for h in &out {
            self.held.fetch_sub(h.len, Ordering::AcqRel);
        }
        out
    }

    /// Every held file, taken out to be closed (shutdown).
    #[must_use = "the returned files are to be closed off the lock"]
    pub fn release_all(&self) -> Vec<Held> {
        let out: Vec<Held> = self.lock().files.drain(..).collect();
        for h in &out {
            self.held.fetch_sub(h.len, Ordering::AcqRel);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSlice;

    const MIB: u64 = 1024 * 1024;

    /// A file of a fixed length that records the ranges whose pages were dropped.
    #[derive(Debug)]
    struct Recording {
        len: u64,
        dropped: Mutex<Vec<(u64, u64)>>,
    }

    impl Storage for Recording {
        fn read_at(&self, _: u64, _: &mut [u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn append(&self, _: &[IoSlice<'_>]) -> std::io::Result<()> {
            Ok(())
        }
        fn truncate(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn len(&self) -> u64 {
            self.len
        }
        fn drop_cached(&self, pos: u64, len: u64) -> std::io::Result<()> {
            self.dropped.lock().unwrap().push((pos, len));
            Ok(())
        }
    }

    fn file(len: u64) -> Arc<Recording> {
        Arc::new(Recording {
            len,
            dropped: Mutex::new(Vec::new()),
        })
    }

    fn dropped(f: &Recording) -> Vec<(u64, u64)> {
        f.dropped.lock().unwrap().clone()
    }

    /// Hands the recycler its own handle, keeping a weak one to look at the file afterwards.
    fn hold(r: &PageRecycler, f: Arc<Recording>, now_ms: i64) -> std::sync::Weak<Recording> {
        let weak = Arc::downgrade(&f);
        assert!(r.hold(f, now_ms).is_empty());
        weak
    }

    #[test]
    fn appends_drop_held_pages_in_steps_from_the_end_then_close_the_file() {
        let r = PageRecycler::new();
        assert!(
            r.make_room(10 * MIB).is_empty(),
            "nothing held: nothing owed either"
        );
        let a = hold(&r, file(3 * MIB), 0);
        let b = hold(&r, file(2 * MIB), 0);
        assert_eq!(r.held_bytes(), 5 * MIB);
        assert!(r.make_room(RECYCLE_STEP_BYTES / 2).is_empty());
        assert_eq!(r.held_bytes(), 5 * MIB, "below one step nothing is dropped");
        assert!(r.make_room(RECYCLE_STEP_BYTES / 2).is_empty());
        assert_eq!(r.held_bytes(), 5 * MIB - RECYCLE_STEP_BYTES);
        let a_file = a.upgrade().unwrap();
        assert_eq!(
            dropped(&a_file),
            vec![(3 * MIB - RECYCLE_STEP_BYTES, RECYCLE_STEP_BYTES)],
            "the oldest file goes first, from its end"
        );
        drop(a_file);
        // One large append drops across files; finished files come back to be closed.
        let spent = r.make_room(5 * MIB);
        assert_eq!(r.held_bytes(), 0);
        assert_eq!(spent.len(), 2);
        let covered: u64 = spent
            .iter()
            .map(|h| {
                let f = Arc::clone(&h.file);
                f.len()
            })
            .sum();
        assert_eq!(covered, 5 * MIB);
        drop(spent);
        assert!(a.upgrade().is_none() && b.upgrade().is_none(), "closed");
        assert!(r.make_room(10 * MIB).is_empty());
    }

    #[test]
    fn a_file_a_reader_still_holds_keeps_its_pages() {
        let r = PageRecycler::new();
        let shared = file(4 * MIB);
        assert!(r.hold(shared.clone(), 0).is_empty());
        let alone = hold(&r, file(4 * MIB), 0);
        drop(r.make_room(2 * MIB));
        assert!(
            dropped(&shared).is_empty(),
            "the shared file keeps its pages"
        );
        assert_eq!(dropped(&alone.upgrade().unwrap()), vec![(2 * MIB, 2 * MIB)]);
        assert_eq!(r.held_bytes(), 6 * MIB);
        drop(shared);
        drop(r.make_room(4 * MIB));
        assert_eq!(r.held_bytes(), 2 * MIB);
    }

    #[test]
    fn files_go_after_the_hold_or_at_release() {
        let r = PageRecycler::new();
        hold(&r, file(MIB), 0);
        hold(&r, file(MIB), 1000);
        assert!(r.hold(file(0), 0).is_empty(), "an empty file is not held");
        assert_eq!(r.held_files(), 2);
        assert!(r.expire(RECYCLE_HOLD_MS - 1).is_empty());
        let gone = r.expire(RECYCLE_HOLD_MS);
        assert_eq!(gone.len(), 1);
        assert_eq!(r.held_bytes(), MIB);
        assert_eq!(r.release_all().len(), 1);
        assert_eq!((r.held_bytes(), r.held_files()), (0, 0));
    }

    #[test]
    fn the_oldest_files_go_when_too_much_is_held() {
        let r = PageRecycler::new();
        let half = RECYCLE_HELD_BYTES_MAX / 2 + 1;
        hold(&r, file(half), 0);
        let out = r.hold(file(half), 1);
        assert_eq!(out.len(), 1, "the older file goes");
        assert_eq!(out[0].since_ms, 0);
        assert_eq!(r.held_bytes(), half);
    }

    /// Pages of `file` in the page cache, by `mincore` on a map of it.
    fn resident_pages(file: &std::fs::File) -> usize {
        // SAFETY: a read-only map of a file nobody truncates during the test.
        let map = unsafe { memmap2::Mmap::map(file) }.unwrap();
        let page = 4096;
        let mut vec = vec![0u8; map.len().div_ceil(page)];
        // SAFETY: `vec` has one byte per page of the mapping, as mincore requires.
        let r = unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        vec.iter().filter(|b| *b & 1 == 1).count()
    }

    #[test]
    fn a_real_deleted_file_loses_its_cached_pages_to_appends() {
        use crate::log::storage::FileStorage;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("00000000000000000000.log");
        let f = FileStorage::open(&path, true).unwrap();
        f.append(&[IoSlice::new(&vec![1u8; 4 * MIB as usize])])
            .unwrap();
        f.sync().unwrap();
        let look = std::fs::File::open(&path).unwrap();
        assert!(resident_pages(&look) > 0, "just written, so cached");
        std::fs::remove_file(&path).unwrap();
        let r = PageRecycler::new();
        assert!(r.hold(Arc::new(f), 0).is_empty());
        let spent = r.make_room(4 * MIB);
        assert_eq!(spent.len(), 1);
        assert_eq!(resident_pages(&look), 0, "every page was dropped");
    }
}
