//! The narrow storage trait the log writes through, and its file implementation.
//!
//! ```text
//! trait Storage   { read_at(pos, buf), append(bufs), truncate(len), sync(), len(), map(), as_file() }
//! trait Directory { open(name, create), reuse(from, to), write_file(name, bufs), create_new(name),
//!                   list(), rename(from, to), remove(name), sync(), path() }
//! ```
//!
//! Everything the log persists goes through these two traits, so the in-memory implementation in
//! [`crate::log::mem_storage`] can model a crash (unsynced bytes lost or torn, unsynced renames
//! undone) and recovery can be tested at every crash point in-process. `append` is vectored so the
//! log can stamp a batch's first 16 bytes without copying the rest.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::log::limits::{PREALLOCATE_BYTES, WRITE_BLOCK_BYTES};

/// Most buffers one `pwritev` takes (Linux's `IOV_MAX`); longer lists are written in turns.
const IOV_MAX: usize = 1024;

/// One append-only file.
///
/// Reads may run concurrently with one appender; the log serialises appends and truncations.
pub trait Storage: Send + Sync + Debug {
    /// Fills `buf` from `pos`; fails with `UnexpectedEof` if the file is shorter.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Appends all of `bufs`, in order, at the end.
    fn append(&self, bufs: &[IoSlice<'_>]) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&self, len: u64) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> u64;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads exactly `len` bytes at `pos` into a new buffer (fails with `UnexpectedEof` if the file
    /// is shorter). Backends may skip zero-filling the buffer first.
    fn read_bytes(&self, pos: u64, len: usize) -> io::Result<bytes::Bytes> {
        let mut buf = bytes::BytesMut::zeroed(len);
        self.read_at(pos, &mut buf)?;
        Ok(buf.freeze())
    }
    /// A read-only memory map of the whole file, when the backend has real files. Only used for
    /// files that are never truncated while mapped (sealed indexes).
    fn map(&self) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
    /// Gives back disk space reserved past the end (see [`FileStorage`]'s preallocation); called
    /// when a segment is sealed, so a sealed file holds only its data.
    fn release_unused(&self) -> io::Result<()> {
        Ok(())
    }
    /// Reserves the file's blocks up to `len` bytes without changing its length (see
    /// [`crate::log::spare`]'s prepared files); backends without reservation do nothing.
    fn preallocate(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Bytes appended since writeback was last started ([`Self::start_writeback`]).
    fn dirty_bytes(&self) -> u64 {
        0
    }
    /// Starts writing back, without waiting, everything appended so far: keeps the page cache's
    /// dirty data small, so the fdatasync at a segment's seal (or for acks=all) has little left to
    /// flush and the disk sees a steady stream instead of gigabyte bursts.
    fn start_writeback(&self) -> io::Result<()> {
        Ok(())
    }
    /// The open file behind this storage, when there is one: lets the server `sendfile` stored
    /// batches to a socket without copying them through memory.
    fn as_file(&self) -> Option<&File> {
        None
    }
    /// Drops the clean page-cache pages of `len` bytes from `pos` (dirty ones stay): the data stays
    /// in the file. Used on deleted segments, whose pages new appends then reuse.
    fn drop_cached(&self, _pos: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Cuts what a reused file ([`Directory::reuse`]) still holds past the data: bytes of the
    /// segment it used to be (and the zeros an append pads its last block with). Nothing to do
    /// for other files. The sync that seals a segment calls it, and the log when it closes, before
    /// the file is synced: recovery trusts a sealed segment's length.
    fn cut_stale_tail(&self) -> io::Result<()> {
        Ok(())
    }
}

/// One directory of files (a partition directory).
pub trait Directory: Send + Sync + Debug {
    /// Opens `name`, creating it empty when `create` is set.
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn Storage>>;
    /// Renames `from` to `to` and opens it as an empty file to append to: its old bytes stay on
    /// disk past the new data (until overwritten or [`Storage::cut_stale_tail`]), so the appends
    /// overwrite blocks (and cached pages) the file already has instead of allocating new ones,
    /// and nothing is freed (freeing blocks on a `discard` mount waits on the device). Used for a
    /// segment file retention removed, as the partition's next segment (see
    /// [`crate::log::spare`]).
    fn reuse(&self, from: &str, to: &str) -> io::Result<Arc<dyn Storage>>;
    /// Names of all files.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes `name` (open handles stay readable).
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes creations, renames and removals durable (fsync of the directory).
    fn sync(&self) -> io::Result<()>;
    /// The directory's path, for error messages.
    fn path(&self) -> &Path;
    /// True when `name` exists.
    fn exists(&self, name: &str) -> io::Result<bool> {
        Ok(self.list()?.iter().any(|n| n == name))
    }
    /// Creates `name` as a new file holding `bufs` (a file of that name is removed first, not
    /// rewritten in place), and returns it: for a file written whole, once (an index, a
    /// checkpoint), which reserves no blocks past its data as a file appended to does (see
    /// [`FileStorage`]).
    fn write_file(&self, name: &str, bufs: &[IoSlice<'_>]) -> io::Result<Arc<dyn Storage>> {
        self.remove(name)?;
        let file = self.open(name, true)?;
        file.append(bufs)?;
        Ok(file)
    }

    /// Creates `name` as a new, empty file to be written whole later (it reserves no blocks, as
    /// [`Directory::write_file`]); `AlreadyExists` when a file of that name exists, which is left
    /// untouched.
    fn create_new(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
        if self.exists(name)? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_string(),
            ));
        }
        self.open(name, true)
    }
}

/// A real file opened for appending.
///
/// Appends reserve the file's blocks ahead of the data, up to [`PREALLOCATE_BYTES`] at a time
/// (`fallocate` with `FALLOC_FL_KEEP_SIZE`: the length stays the data's). Without it ext4 allocates
/// blocks at writeback (delayed allocation), and appends to the file wait behind that allocation:
/// writes of 1 MB took 30-120 ms while a sealed segment was being synced. Where `fallocate` is not
/// supported (or the disk is full) appends go on without it.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    len: AtomicU64,
    /// Writeback was started for everything below this position.
    written_back: AtomicU64,
    /// Serialises appends with truncation so `len` stays exact; holds the end of the reserved
    /// blocks (`u64::MAX`: reservation unsupported, not tried again).
    write: Mutex<u64>,
    /// Whether appends end on a block boundary, zeros filling the rest of their last block: set
    /// for a reused file (see [`Self::open_reused`]).
    pad_to_block: bool,
}

/// `len` bytes from `pos` as the `off_t` pair the file syscalls take; `InvalidInput` when either
/// does not fit.
fn file_range(pos: u64, len: u64) -> io::Result<(libc::off_t, libc::off_t)> {
    match (libc::off_t::try_from(pos), libc::off_t::try_from(len)) {
        (Ok(offset), Ok(len)) => Ok((offset, len)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file range too large",
        )),
    }
}

/// The zeros an append to a reused file ends with (see [`FileStorage::open_reused`]).
static BLOCK_PAD: [u8; WRITE_BLOCK_BYTES as usize] = [0; WRITE_BLOCK_BYTES as usize];

impl FileStorage {
    /// Opens (or creates) `path` for reading and appending.
    pub fn open(path: &Path, create: bool) -> io::Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(FileStorage {
            file,
            len: AtomicU64::new(len),
            written_back: AtomicU64::new(len),
            write: Mutex::new(len),
            pad_to_block: false,
        })
    }

    /// Creates `path`, which must not exist (a file is never rewritten in place: a reader may
    /// have it mapped), and writes `bufs` into it, reserving no blocks: see
    /// [`Directory::write_file`]. Later appends reserve none either.
    pub fn create_written(path: &Path, bufs: &[IoSlice<'_>]) -> io::Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let storage = FileStorage {
            file,
            len: AtomicU64::new(0),
            written_back: AtomicU64::new(0),
            // As if reserving were unsupported: the blocks are allocated at writeback, once.
            write: Mutex::new(u64::MAX),
            pad_to_block: false,
        };
        storage.append(bufs)?;
        Ok(storage)
    }

    /// Opens the existing file at `path` as empty: appends start at position 0 and overwrite its
    /// old bytes, whose blocks count as reserved.
    ///
    /// Each append to such a file is written up to the end of its last block, zeros after the
    /// data (the length stays the data's). Why: the file's old blocks are written on disk and
    /// their pages mostly out of the cache, so a write covering only part of a block makes the
    /// kernel read that block from disk first, on the append path. Every append ending inside a
    /// block did, and behind the device's writeback queue that read took up to 150 ms: a quarter
    /// of the tokio workers' time at a steady state of retention (`perf` off-CPU stacks in
    /// `ext4_block_write_begin`, 2026-12-06). The zeros past the data are old bytes as far as
    /// recovery is concerned (cut as a torn tail), and a seal or clean close cuts them off.
    pub fn open_reused(path: &Path) -> io::Result<FileStorage> {
        use std::os::unix::fs::MetadataExt;
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let meta = file.metadata()?;
        // A prepared file's blocks are reserved past its (zero) length.
        let physical = meta.len().max(meta.blocks().saturating_mul(512));
        Ok(FileStorage {
            file,
            len: AtomicU64::new(0),
            written_back: AtomicU64::new(0),
            write: Mutex::new(physical),
            pad_to_block: true,
        })
    }

    /// Writes all of `bufs` at `pos` (`pwritev`, so the file position and length play no part:
    /// a reused file is longer than its data).
    fn write_all_at(&self, mut slices: &mut [IoSlice<'_>], mut pos: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        while !slices.is_empty() {
            let count = slices.len().min(IOV_MAX);
            let offset = libc::off_t::try_from(pos).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "write position too large")
            })?;
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` (std guarantees it on Unix); the
            // first `count` slices are valid readable buffers that outlive the call, and pwritev
            // only reads them.
            let n = unsafe {
                libc::pwritev(
                    self.file.as_raw_fd(),
                    slices.as_ptr().cast::<libc::iovec>(),
                    count as libc::c_int,
                    offset,
                )
            };
            match n {
                0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                n => {
                    IoSlice::advance_slices(&mut slices, n as usize);
                    pos += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Reserves blocks past `end`: as many as the file already holds (so a small partition's
    /// segment reserves little), at least 1 MiB and at most [`PREALLOCATE_BYTES`].
    fn reserve(&self, reserved: &mut u64, end: u64) {
        if end <= *reserved {
            return;
        }
        const MIB: u64 = 1024 * 1024;
        let ahead = end.clamp(MIB, PREALLOCATE_BYTES);
        let target = (end + ahead).div_ceil(MIB) * MIB;
        match self.reserve_blocks(*reserved, target) {
            Ok(()) => *reserved = target,
            Err(e) => {
                tracing::debug!("fallocate failed, appending without reserving blocks: {e}");
                *reserved = u64::MAX;
            }
        }
    }

    /// Reserves the blocks of bytes `from..to` without changing the length (see
    /// [`reserve_blocks`]).
    fn reserve_blocks(&self, from: u64, to: u64) -> io::Result<()> {
        reserve_blocks(&self.file, from, to)
    }
}

/// Reserves the blocks of bytes `from..to` of `file` without changing its length (`fallocate`
/// with `FALLOC_FL_KEEP_SIZE`).
pub(crate) fn reserve_blocks(file: &File, from: u64, to: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (offset, len) = file_range(from, to.saturating_sub(from))?;
    // SAFETY: fallocate on a descriptor `file` owns, with in-range arguments; it touches no
    // memory of ours.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Storage for FileStorage {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    fn read_bytes(&self, pos: u64, len: usize) -> io::Result<bytes::Bytes> {
        use std::os::fd::AsRawFd;
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        while buf.len() < len {
            let filled = buf.len();
            let spare = buf.spare_capacity_mut();
            let offset = libc::off_t::try_from(pos + filled as u64).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "read position too large")
            })?;
            // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by `buf`; pread writes
            // at most that many bytes into it and returns how many it wrote.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                    offset,
                )
            };
            match n {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "read past end",
                    ))
                }
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                // SAFETY: pread initialised the first `n` bytes of the spare capacity.
                n => unsafe { buf.set_len(filled + n as usize) },
            }
        }
        Ok(bytes::Bytes::from(buf))
    }

    fn append(&self, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        let mut reserved = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let len = self.len.load(Ordering::Acquire);
        self.reserve(&mut reserved, len + total as u64);
        let mut owned: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).copied().collect();
        let pad = (len + total as u64).next_multiple_of(WRITE_BLOCK_BYTES) - (len + total as u64);
        if self.pad_to_block && pad > 0 && !owned.is_empty() {
            owned.push(IoSlice::new(&BLOCK_PAD[..pad as usize]));
        }
        if let Err(e) = self.write_all_at(&mut owned, len) {
            // A partial write leaves bytes past `len`; cut them so the next append starts at a
            // batch boundary and no half batch is left for recovery to find.
            let _ = self.file.set_len(len);
            if *reserved != u64::MAX {
                *reserved = (*reserved).min(len);
            }
            return Err(e);
        }
        self.len.fetch_add(total as u64, Ordering::AcqRel);
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut reserved = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.file.set_len(len)?;
        self.len.store(len, Ordering::Release);
        self.written_back.fetch_min(len, Ordering::AcqRel);
        // Cutting the file also frees the blocks reserved past the new end.
        if *reserved != u64::MAX {
            *reserved = len;
        }
        Ok(())
    }

    fn dirty_bytes(&self) -> u64 {
        let len = self.len.load(Ordering::Acquire);
        len.saturating_sub(self.written_back.load(Ordering::Acquire))
    }

    fn start_writeback(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let end = self.len.load(Ordering::Acquire);
        let from = self.written_back.swap(end, Ordering::AcqRel);
        if end <= from {
            self.written_back.fetch_max(from, Ordering::AcqRel);
            return Ok(());
        }
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(from),
            libc::off64_t::try_from(end - from),
        ) else {
            return Ok(());
        };
        // SAFETY: sync_file_range on a descriptor owned by `self.file`, with in-range arguments; it
        // touches no memory of ours. SYNC_FILE_RANGE_WRITE only queues the dirty pages for writing.
        let r = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                offset,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        let mut reserved = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.reserve_blocks(0, len)?;
        if *reserved != u64::MAX {
            *reserved = (*reserved).max(len);
        }
        Ok(())
    }

    fn release_unused(&self) -> io::Result<()> {
        let mut reserved = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if *reserved == u64::MAX || *reserved <= self.len.load(Ordering::Acquire) {
            return Ok(());
        }
        let len = self.len.load(Ordering::Acquire);
        // ftruncate to the current length frees the blocks reserved past it.
        self.file.set_len(len)?;
        *reserved = len;
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    fn map(&self) -> io::Result<Option<memmap2::Mmap>> {
        if self.len() == 0 {
            return Ok(None);
        }
        // SAFETY: the log only maps files it never truncates or rewrites in place (sealed index
        // files, replaced by rename); a removed file stays mapped valid until unmapped.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Some(map))
    }

    fn as_file(&self) -> Option<&File> {
        Some(&self.file)
    }

    fn cut_stale_tail(&self) -> io::Result<()> {
        let mut reserved = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let len = self.len.load(Ordering::Acquire);
        if self.file.metadata()?.len() > len {
            self.file.set_len(len)?;
            if *reserved != u64::MAX {
                *reserved = len;
            }
        }
        Ok(())
    }

    fn drop_cached(&self, pos: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (offset, len) = file_range(pos, len)?;
        // SAFETY: posix_fadvise on a descriptor owned by `self.file`, with in-range arguments; it
        // touches no memory of ours. DONTNEED only drops clean cached pages of the range.
        let r = unsafe {
            libc::posix_fadvise(
                self.file.as_raw_fd(),
                offset,
                len,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        Ok(())
    }
}

/// A real directory.
#[derive(Debug, Clone)]
pub struct FileDirectory {
    path: PathBuf,
}

impl FileDirectory {
    /// Opens (creating if needed) the directory at `path`.
    pub fn create(path: &Path) -> io::Result<FileDirectory> {
        fs::create_dir_all(path)?;
        Ok(FileDirectory {
            path: path.to_path_buf(),
        })
    }
}

/// fsyncs a directory so creations and renames in it are durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

impl Directory for FileDirectory {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn Storage>> {
        Ok(Arc::new(FileStorage::open(&self.path.join(name), create)?))
    }

    fn reuse(&self, from: &str, to: &str) -> io::Result<Arc<dyn Storage>> {
        let to = self.path.join(to);
        fs::rename(self.path.join(from), &to)?;
        Ok(Arc::new(FileStorage::open_reused(&to)?))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path.join(from), self.path.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    fn sync(&self) -> io::Result<()> {
        sync_dir(&self.path)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        Ok(self.path.join(name).exists())
    }

    fn write_file(&self, name: &str, bufs: &[IoSlice<'_>]) -> io::Result<Arc<dyn Storage>> {
        self.remove(name)?;
        Ok(Arc::new(FileStorage::create_written(
            &self.path.join(name),
            bufs,
        )?))
    }

    fn create_new(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
        Ok(Arc::new(FileStorage::create_written(
            &self.path.join(name),
            &[],
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_storage_appends_reads_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let d = FileDirectory::create(dir.path()).unwrap();
        let f = d.open("a", true).unwrap();
        f.append(&[IoSlice::new(b"hello "), IoSlice::new(b"world")])
            .unwrap();
        assert_eq!(f.len(), 11);
        let mut buf = [0u8; 5];
        f.read_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        f.truncate(5).unwrap();
        f.append(&[IoSlice::new(b"!")]).unwrap();
        let mut all = [0u8; 6];
        f.read_at(0, &mut all).unwrap();
        assert_eq!(&all, b"hello!");
        assert!(f.read_at(3, &mut [0u8; 10]).is_err());
        assert_eq!(&f.read_bytes(1, 4).unwrap()[..], b"ello");
        assert!(f.read_bytes(3, 10).is_err());
        f.sync().unwrap();
        d.rename("a", "b").unwrap();
        d.sync().unwrap();
        assert_eq!(d.list().unwrap(), vec!["b".to_string()]);
        assert_eq!(&f.map().unwrap().unwrap()[..], b"hello!");
    }

    /// Bytes this thread has had read from a block device (`/proc/thread-self/io`).
    fn thread_read_bytes() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("read_bytes: "))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    /// Regression (2026-12-06): at a steady state of retention, where every new segment reuses a
    /// spare file, the broker's tokio workers spent a quarter of their time blocked in `pwritev`:
    /// each append ended inside a block of the file's old data, whose page was out of the cache,
    /// so the kernel read that block from disk before copying, behind the writeback queue (up to
    /// 150 ms). Appends to a reused file now end on a block boundary, zeros after the data.
    #[test]
    fn appends_to_a_reused_file_read_nothing_from_disk() {
        const OLD_BYTES: usize = 4 << 20;
        let dir = tempfile::tempdir().unwrap();
        let d = FileDirectory::create(dir.path()).unwrap();
        let old = d.open("old.log", true).unwrap();
        old.append(&[IoSlice::new(&vec![7u8; OLD_BYTES])]).unwrap();
        old.sync().unwrap();
        old.drop_cached(0, OLD_BYTES as u64).unwrap();
        drop(old);

        let f = d.reuse("old.log", "new.log").unwrap();
        let batch: Vec<u8> = (0..100_003u32).map(|i| i as u8).collect();
        let read_before = thread_read_bytes();
        for _ in 0..20 {
            f.append(&[IoSlice::new(&batch[..61]), IoSlice::new(&batch[61..])])
                .unwrap();
        }
        assert_eq!(
            thread_read_bytes() - read_before,
            0,
            "appends to a reused file read from disk"
        );
        let data_len = 20 * batch.len() as u64;
        assert_eq!(f.len(), data_len);
        let data = f.read_bytes(0, data_len as usize).unwrap();
        assert!(data.chunks(batch.len()).all(|c| c == &batch[..]));
        // Zeros to the end of the last block, then the old bytes.
        let block_end = data_len.next_multiple_of(WRITE_BLOCK_BYTES);
        let mut past = vec![1u8; (block_end - data_len) as usize + 1];
        f.read_at(data_len, &mut past).unwrap();
        assert!(past[..past.len() - 1].iter().all(|&b| b == 0));
        assert_eq!(past[past.len() - 1], 7);
        f.cut_stale_tail().unwrap();
        let path = dir.path().join("new.log");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), data_len);
        // A new file is not padded: its length is the data's.
        let fresh = d.open("fresh.log", true).unwrap();
        fresh.append(&[IoSlice::new(&batch)]).unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("fresh.log"))
                .unwrap()
                .len(),
            batch.len() as u64
        );
    }

    /// Reserved blocks never show in the file's length, before or after a seal, a truncation
    /// or a reopen.
    #[test]
    fn reserving_blocks_keeps_the_length_of_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let d = FileDirectory::create(dir.path()).unwrap();
        let f = d.open("seg", true).unwrap();
        let chunk = vec![5u8; 300_000];
        for _ in 0..10 {
            f.append(&[IoSlice::new(&chunk)]).unwrap();
        }
        let path = dir.path().join("seg");
        assert_eq!(f.len(), 3_000_000);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3_000_000);
        f.truncate(1_000_000).unwrap();
        f.append(&[IoSlice::new(b"tail")]).unwrap();
        f.release_unused().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1_000_004);
        let again = d.open("seg", false).unwrap();
        assert_eq!(again.len(), 1_000_004);
        let mut tail = [0u8; 4];
        again.read_at(1_000_000, &mut tail).unwrap();
        assert_eq!(&tail, b"tail");
    }

    /// A file written whole (an index, a checkpoint) holds its data's blocks and no more, where
    /// a file opened and appended to reserves a megabyte ahead; writing it again replaces it.
    #[test]
    fn a_written_file_reserves_no_blocks() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let d = FileDirectory::create(dir.path()).unwrap();
        let on_disk = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().blocks() * 512;
        let data = vec![7u8; 10_000];
        let appended = d.open("appended", true).unwrap();
        appended.append(&[IoSlice::new(&data)]).unwrap();
        let written = d
            .write_file(
                "written",
                &[IoSlice::new(&data[..4_000]), IoSlice::new(&data[4_000..])],
            )
            .unwrap();
        assert_eq!(written.len(), 10_000);
        written.sync().unwrap();
        appended.sync().unwrap();
        // Where the file system reserves blocks (fallocate), only the appended file holds more
        // than its data.
        if on_disk("appended") >= 1024 * 1024 {
            assert!(
                on_disk("written") <= 12 * 1024,
                "{} bytes",
                on_disk("written")
            );
        }
        // Replacing it makes a new file: a mapping of the old one stays whole.
        let old_map = written.map().unwrap().unwrap();
        let again = d.write_file("written", &[IoSlice::new(b"short")]).unwrap();
        assert_eq!(again.len(), 5);
        assert_eq!(std::fs::read(dir.path().join("written")).unwrap(), b"short");
        assert_eq!(old_map.len(), 10_000);
        assert!(old_map.iter().all(|&b| b == 7));
    }
}
