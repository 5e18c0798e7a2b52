//! One segment: a `.log` file of batches plus its `.index` and `.timeindex`.
//!
//! Files are named by the segment's base offset as 20 zero-padded digits
//! (`00000000000000001234.log`). The segment tracks its next offset, its largest timestamp and the
//! bytes since the last index entry; it never interprets records. Positions inside a segment fit in
//! u32 (`segment.bytes` is capped), offsets relative to the base too.

use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::Bytes;

use crate::log::batch::{Header, HEADER_BYTES};
use crate::log::offset_index::{IndexBuf, OffsetIndex};
use crate::log::scan::{scan, ScanEnd, Visit};
use crate::log::storage::{Directory, Storage};
use crate::log::time_index::TimeIndex;

/// Suffix of segment data files.
pub const LOG_SUFFIX: &str = ".log";
/// Suffix of offset index files.
pub const INDEX_SUFFIX: &str = ".index";
/// Suffix of time index files.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// The file name of a segment's `suffix` file.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Parses `00000000000000001234.log` style names into (base offset, suffix).
pub fn parse_file_name(name: &str) -> Option<(i64, &str)> {
    let digits = name.get(..20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &name[20..]))
}

/// What a batch appended to a segment looked like.
#[derive(Debug, Clone, Copy)]
pub struct Appended {
    /// Base offset.
    pub base_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Max timestamp.
    pub max_timestamp: i64,
    /// Byte position in the segment.
    pub position: u64,
    /// Bytes.
    pub size: u64,
}

impl Appended {
    /// The batch with header `h`, stored at `position`.
    pub fn of(h: &Header, position: u64) -> Appended {
        Appended {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
            position,
            size: h.total_bytes() as u64,
        }
    }
}

/// A segment's two index files, created empty while it is still active, off the append path
/// (see [`crate::log::partition::Partition`]), for its seal to write into.
///
/// Why: a seal happens on the append path, under the log's lock, and writing an index file anew
/// there (removing any old one, creating the new one) waits on the partition directory's block
/// whenever a group commit is writing that block to disk (its `fsync` of the directory). Behind
/// the disk's writeback that wait was 90 ms and more (off-CPU stacks of the tokio workers in
/// `__ext4_find_entry`, 2026-12-07). Writing into a file already created touches no directory.
#[derive(Debug)]
pub(crate) struct IndexFiles {
    base_offset: i64,
    offset: Arc<dyn Storage>,
    time: Arc<dyn Storage>,
}

impl IndexFiles {
    /// Creates `<base>.index` and `<base>.timeindex`, empty; fails when either exists (a seal
    /// that came first wrote them), never replacing a file. An `.index` created before the
    /// `.timeindex` failed is left: a seal writing its own files replaces it.
    pub(crate) fn create(dir: &dyn Directory, base_offset: i64) -> io::Result<IndexFiles> {
        Ok(IndexFiles {
            base_offset,
            offset: dir.create_new(&file_name(base_offset, INDEX_SUFFIX))?,
            time: dir.create_new(&file_name(base_offset, TIME_INDEX_SUFFIX))?,
        })
    }

    /// The base offset of the segment the files are for.
    pub(crate) fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Removes both files (left by a segment that is gone; recovery would drop them too).
    pub(crate) fn remove(self, dir: &dyn Directory) {
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let name = file_name(self.base_offset, suffix);
            if let Err(e) = dir.remove(&name) {
                tracing::debug!(dir = %dir.path().display(), file = %name, error = %e, "cannot remove an unused index file");
            }
        }
    }
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    log: Arc<dyn Storage>,
    index: OffsetIndex,
    time_index: TimeIndex,
    next_offset: i64,
    max_timestamp: i64,
    max_timestamp_offset: i64,
    first_batch_timestamp: Option<i64>,
    bytes_since_index_entry: u64,
    index_interval_bytes: u64,
    /// Index files on disk match the in-memory indexes.
    indexes_written: bool,
}

impl Segment {
    /// Creates a new, empty segment (the `.log` file is created; indexes are written on seal).
    pub fn create(
        dir: &dyn Directory,
        base_offset: i64,
        index_entries_max: usize,
        index_interval_bytes: u64,
    ) -> io::Result<Segment> {
        Segment::create_as(
            dir,
            &file_name(base_offset, LOG_SUFFIX),
            base_offset,
            index_entries_max,
            index_interval_bytes,
        )
    }

    /// [`Segment::create`] in file `name` instead of `<base>.log` (compaction writes
    /// `<base>.log.cleaned` and renames it into place later; the open file follows the rename).
    pub(crate) fn create_as(
        dir: &dyn Directory,
        name: &str,
        base_offset: i64,
        index_entries_max: usize,
        index_interval_bytes: u64,
    ) -> io::Result<Segment> {
        let log = dir.open(name, true)?;
        log.truncate(0)?;
        Ok(Segment::empty(
            base_offset,
            log,
            index_entries_max,
            index_interval_bytes,
        ))
    }

    /// Creates a new, empty segment in the spare file `spare` (renamed to the segment's `.log`
    /// name; its old bytes stay past the data until overwritten or cut, see
    /// [`crate::log::spare`]).
    pub fn create_reusing(
        dir: &dyn Directory,
        spare: &str,
        base_offset: i64,
        index_entries_max: usize,
        index_interval_bytes: u64,
    ) -> io::Result<Segment> {
        let log = dir.reuse(spare, &file_name(base_offset, LOG_SUFFIX))?;
        Ok(Segment::empty(
            base_offset,
            log,
            index_entries_max,
            index_interval_bytes,
        ))
    }

    fn empty(
        base_offset: i64,
        log: Arc<dyn Storage>,
        index_entries_max: usize,
        index_interval_bytes: u64,
    ) -> Segment {
        Segment {
            base_offset,
            log,
            index: OffsetIndex::new(base_offset, index_entries_max),
            time_index: TimeIndex::new(base_offset),
            next_offset: base_offset,
            max_timestamp: -1,
            max_timestamp_offset: base_offset,
            first_batch_timestamp: None,
            bytes_since_index_entry: 0,
            index_interval_bytes,
            indexes_written: false,
        }
    }

    /// Opens an existing segment without validating its batches: loads the index files when they
    /// pass their sanity checks, else rebuilds the indexes with a header-only scan. Used for
    /// segments below the recovery point or after a clean shutdown.
    ///
    /// `end_offset` is the offset the segment's data ends at, when known (the next segment's
    /// base): the scan stops once a batch reaches it, so whatever follows in the file is never
    /// read as batches. Only the old bytes of a reused segment file can be there, when a crash
    /// undid the cut made at its seal. Returns the segment of the valid prefix and how the scan
    /// ended; [`ScanEnd::Clean`]'s `end` is where the data ends, which may be short of the file.
    pub fn open_trusted(
        dir: &dyn Directory,
        base_offset: i64,
        index_entries_max: usize,
        index_interval_bytes: u64,
        end_offset: Option<i64>,
    ) -> io::Result<(Segment, ScanEnd)> {
        let log = dir.open(&file_name(base_offset, LOG_SUFFIX), false)?;
        let mut seg = Segment::empty(base_offset, log, index_entries_max, index_interval_bytes);
        if let Some(index) = seg.load_offset_index(dir)? {
            seg.index = index;
            // Find the end: scan headers from the last index entry, which must point at a batch
            // starting at its offset (else the index is stale: rebuild it).
            let (off, pos) = seg.index.last().unwrap_or((base_offset, 0));
            let entry_ok = header_at(&*seg.log, u64::from(pos))
                .is_some_and(|h| pos == 0 || h.base_offset == off);
            if !entry_ok {
                return Segment::rebuild(seg, end_offset);
            }
            let (mut next, mut tail_max_timestamp) = (off, -1);
            let end = scan_until(
                &*seg.log,
                u64::from(pos),
                false,
                None,
                end_offset,
                |_, h| {
                    next = h.last_offset() + 1;
                    tail_max_timestamp = tail_max_timestamp.max(h.max_timestamp);
                },
            )?;
            let ScanEnd::Clean { end: data_end } = end else {
                // Either the index is stale or the log is bad: a full header scan tells which.
                return Segment::rebuild(seg, end_offset);
            };
            seg.next_offset = next.max(base_offset);
            seg.bytes_since_index_entry = data_end - u64::from(pos);
            // A seal's time index ends with the segment's largest timestamp. One that lacks the
            // batches' own (a seal's new file cut short or left empty by a crash before its fsync,
            // while the segment was already below the recovery point after a clean restart)
            // would make time retention delete the segment early, or never: rebuild instead.
            let time_index = seg
                .load_time_index(dir)?
                .filter(|t| t.max_timestamp().unwrap_or(-1) >= tail_max_timestamp);
            match time_index {
                Some(t) => {
                    seg.time_index = t;
                    seg.max_timestamp = seg.time_index.max_timestamp().unwrap_or(-1);
                    seg.indexes_written = true;
                    seg.first_batch_timestamp = seg.first_timestamp()?;
                    return Ok((seg, end));
                }
                None => {
                    seg.index = OffsetIndex::new(base_offset, index_entries_max);
                    seg.next_offset = base_offset;
                    seg.bytes_since_index_entry = 0;
                }
            }
        }
        Segment::rebuild(seg, end_offset)
    }

    /// Rebuilds `seg`'s in-memory indexes with a header-only scan of its file (up to
    /// `end_offset`, as in [`Segment::open_trusted`]).
    fn rebuild(mut seg: Segment, end_offset: Option<i64>) -> io::Result<(Segment, ScanEnd)> {
        seg.index = OffsetIndex::new(seg.base_offset, seg.index.max_entries());
        seg.time_index = TimeIndex::new(seg.base_offset);
        seg.next_offset = seg.base_offset;
        seg.max_timestamp = -1;
        seg.first_batch_timestamp = None;
        seg.bytes_since_index_entry = 0;
        seg.indexes_written = false;
        let log = seg.log.clone();
        let end = scan_until(&*log, 0, false, None, end_offset, |pos, h| {
            seg.track(h, pos)
        })?;
        Ok((seg, end))
    }

    /// Opens an existing segment and validates every batch (CRC, bounds, increasing offsets after
    /// `prev_last_offset`), rebuilding its indexes. Returns the segment holding the valid prefix and
    /// how the scan ended; the caller decides whether an invalid batch is a torn tail or corruption.
    /// `end_offset` stops the scan as in [`Segment::open_trusted`].
    pub fn open_validated(
        dir: &dyn Directory,
        base_offset: i64,
        index_entries_max: usize,
        index_interval_bytes: u64,
        prev_last_offset: Option<i64>,
        end_offset: Option<i64>,
        mut on_batch: impl FnMut(&Header),
    ) -> io::Result<(Segment, ScanEnd)> {
        let log = dir.open(&file_name(base_offset, LOG_SUFFIX), false)?;
        let mut seg = Segment::empty(
            base_offset,
            log.clone(),
            index_entries_max,
            index_interval_bytes,
        );
        let prev = prev_last_offset
            .map(|p| p.max(base_offset - 1))
            .or(Some(base_offset - 1));
        let end = scan_until(&*log, 0, true, prev, end_offset, |pos, h| {
            seg.track(h, pos);
            on_batch(h);
        })?;
        Ok((seg, end))
    }

    fn load_offset_index(&self, dir: &dyn Directory) -> io::Result<Option<OffsetIndex>> {
        let Some(buf) = load_index_buf(dir, &file_name(self.base_offset, INDEX_SUFFIX))? else {
            return Ok(None);
        };
        let max = self.index.max_entries();
        Ok(OffsetIndex::load(self.base_offset, buf, max, self.log.len(), None).ok())
    }

    fn load_time_index(&self, dir: &dyn Directory) -> io::Result<Option<TimeIndex>> {
        let Some(buf) = load_index_buf(dir, &file_name(self.base_offset, TIME_INDEX_SUFFIX))?
        else {
            return Ok(None);
        };
        let max = self.index.max_entries();
        Ok(TimeIndex::load(self.base_offset, &buf, self.next_offset, max).ok())
    }

    fn first_timestamp(&self) -> io::Result<Option<i64>> {
        if self.log.len() < HEADER_BYTES as u64 {
            return Ok(None);
        }
        let mut head = [0u8; HEADER_BYTES];
        self.log.read_at(0, &mut head)?;
        Ok(Header::parse(&head).ok().map(|h| h.max_timestamp))
    }

    /// Updates offsets, timestamps and indexes for a batch now at `position`.
    fn track(&mut self, h: &Header, position: u64) {
        self.track_appended(&Appended::of(h, position));
    }

    fn track_appended(&mut self, a: &Appended) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(a.max_timestamp);
        }
        if a.max_timestamp > self.max_timestamp {
            self.max_timestamp = a.max_timestamp;
            self.max_timestamp_offset = a.base_offset;
        }
        if self.bytes_since_index_entry >= self.index_interval_bytes || a.position == 0 {
            if a.position > 0 {
                self.index.append(a.base_offset, a.position as u32);
            }
            self.time_index
                .append(self.max_timestamp, self.max_timestamp_offset);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += a.size;
        self.next_offset = a.last_offset + 1;
        self.indexes_written = false;
    }

    /// Appends the given buffers (whole batches) and records their headers.
    pub fn append(&mut self, bufs: &[IoSlice<'_>], batches: &[Appended]) -> io::Result<()> {
        self.log.append(bufs)?;
        for a in batches {
            self.track_appended(a);
        }
        Ok(())
    }

    /// Base offset.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// One past the last offset in the segment (the base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Bytes in the `.log` file.
    pub fn size(&self) -> u64 {
        self.log.len()
    }
    /// Largest batch max-timestamp, -1 when empty or untimestamped.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// Max timestamp of the first batch (Kafka's basis for `segment.ms`).
    pub fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp
    }
    /// The `.log` file.
    pub fn file(&self) -> &Arc<dyn Storage> {
        &self.log
    }
    /// True when the offset index has no room left.
    pub fn index_full(&self) -> bool {
        self.index.is_full()
    }
    /// The offset index.
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.index
    }

    /// Position and header of the batch containing `offset` (or the first batch after it, for
    /// compacted logs with gaps); `None` when `offset` is at or past the segment's end.
    pub fn locate(&self, offset: i64) -> io::Result<Option<(u64, Header)>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let (_, pos) = self.index.lookup(offset);
        let mut found = None;
        scan(
            &*self.log,
            u64::from(pos),
            self.log.len(),
            false,
            None,
            |p, h, _| {
                if h.last_offset() >= offset {
                    found = Some((p, *h));
                    Visit::Stop
                } else {
                    Visit::Continue
                }
            },
        )?;
        Ok(found)
    }

    /// The first batch whose max timestamp is >= `ts`, as (position, header).
    pub fn locate_timestamp(&self, ts: i64) -> io::Result<Option<(u64, Header)>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let start_offset = self.time_index.lookup(ts);
        let (_, pos) = self.index.lookup(start_offset);
        let mut found = None;
        scan(
            &*self.log,
            u64::from(pos),
            self.log.len(),
            false,
            None,
            |p, h, _| {
                if h.max_timestamp >= ts {
                    found = Some((p, *h));
                    Visit::Stop
                } else {
                    Visit::Continue
                }
            },
        )?;
        Ok(found)
    }

    /// Reads `len` bytes at `pos` into one buffer (one pread, no per-batch copy).
    pub fn read(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.log.read_bytes(pos, len)
    }

    /// Removes every batch containing an offset >= `offset`; returns the bytes removed.
    pub fn truncate_to(&mut self, dir: &dyn Directory, offset: i64) -> io::Result<u64> {
        let Some((pos, _)) = self.locate(offset)? else {
            return Ok(0);
        };
        let removed = self.log.len() - pos;
        self.log.truncate(pos)?;
        // Rebuild the in-memory state of the kept prefix (header-only scan from the nearest entry).
        let mut fresh = Segment::empty(
            self.base_offset,
            self.log.clone(),
            self.index.max_entries(),
            self.index_interval_bytes,
        );
        let log = self.log.clone();
        scan(&*log, 0, pos, false, None, |p, h, _| {
            fresh.track(h, p);
            Visit::Continue
        })?;
        *self = fresh;
        // The index files on disk describe the old contents: remove them (they are rewritten on seal;
        // a mapped copy of the old file stays valid for whoever holds it).
        dir.remove(&file_name(self.base_offset, INDEX_SUFFIX))?;
        dir.remove(&file_name(self.base_offset, TIME_INDEX_SUFFIX))?;
        Ok(removed)
    }

    /// Writes the index files (fresh files, never rewritten in place) and returns them so the
    /// caller can fsync them with the log. Adds a final time index entry for the max timestamp.
    pub fn write_indexes(&mut self, dir: &dyn Directory) -> io::Result<Vec<Arc<dyn Storage>>> {
        self.write_indexes_as(dir, "")
    }

    /// [`Segment::write_indexes`] into `<base>.index<extra>` and `<base>.timeindex<extra>`.
    pub(crate) fn write_indexes_as(
        &mut self,
        dir: &dyn Directory,
        extra: &str,
    ) -> io::Result<Vec<Arc<dyn Storage>>> {
        let base = self.base_offset;
        self.write_indexes_with(|suffix, bytes| {
            let name = format!("{}{extra}", file_name(base, suffix));
            dir.write_file(&name, &[IoSlice::new(bytes)])
        })
    }

    /// [`Segment::write_indexes`] into `prepared`, when those are this segment's empty index
    /// files: written without a directory operation (see [`IndexFiles`]). Otherwise as
    /// [`Segment::write_indexes`].
    pub(crate) fn write_indexes_into(
        &mut self,
        dir: &dyn Directory,
        prepared: Option<IndexFiles>,
    ) -> io::Result<Vec<Arc<dyn Storage>>> {
        let usable = |f: &IndexFiles| {
            f.base_offset == self.base_offset && f.offset.is_empty() && f.time.is_empty()
        };
        let Some(files) = prepared.filter(usable) else {
            return self.write_indexes(dir);
        };
        self.write_indexes_with(|suffix, bytes| {
            let file = if suffix == INDEX_SUFFIX {
                &files.offset
            } else {
                &files.time
            };
            file.append(&[IoSlice::new(bytes)])?;
            Ok(Arc::clone(file))
        })
    }

    /// Adds the final time index entry, then writes each index's bytes with `write(suffix, bytes)`.
    fn write_indexes_with(
        &mut self,
        mut write: impl FnMut(&str, &[u8]) -> io::Result<Arc<dyn Storage>>,
    ) -> io::Result<Vec<Arc<dyn Storage>>> {
        if self.max_timestamp >= 0 {
            self.time_index
                .append(self.max_timestamp, self.max_timestamp_offset);
        }
        let time_index = self.time_index.to_bytes();
        let files = vec![
            write(INDEX_SUFFIX, self.index.as_bytes())?,
            write(TIME_INDEX_SUFFIX, &time_index)?,
        ];
        self.indexes_written = true;
        Ok(files)
    }

    /// True when the index files on disk are current.
    pub fn indexes_written(&self) -> bool {
        self.indexes_written
    }

    /// Renames every file of this segment to `<name>.<suffix>` (e.g. `.deleted`).
    pub fn rename_files(&self, dir: &dyn Directory, suffix: &str) -> io::Result<()> {
        for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let name = file_name(self.base_offset, s);
            if dir.exists(&name)? {
                dir.rename(&name, &format!("{name}{suffix}"))?;
            }
        }
        Ok(())
    }
}

/// Scans `file` from `from` to its end (see [`scan`]), stopping after the batch that reaches
/// `end_offset`; the [`ScanEnd::Clean`] returned then holds the position after that batch.
fn scan_until(
    file: &dyn Storage,
    from: u64,
    verify: bool,
    prev_last_offset: Option<i64>,
    end_offset: Option<i64>,
    mut visit: impl FnMut(u64, &Header),
) -> io::Result<ScanEnd> {
    let mut reached = None;
    let end = scan(
        file,
        from,
        file.len(),
        verify,
        prev_last_offset,
        |pos, h, _| {
            visit(pos, h);
            if end_offset.is_some_and(|e| h.last_offset() + 1 >= e) {
                reached = Some(pos + h.total_bytes() as u64);
                Visit::Stop
            } else {
                Visit::Continue
            }
        },
    )?;
    Ok(match reached {
        Some(end) => ScanEnd::Clean { end },
        None => end,
    })
}

/// The batch header at `pos` of `file`, if one is there and parses (no CRC check).
pub(crate) fn header_at(file: &dyn Storage, pos: u64) -> Option<Header> {
    let mut head = [0u8; HEADER_BYTES];
    file.read_at(pos, &mut head).ok()?;
    Header::parse(&head).ok()
}

/// Removes every file of segment `base` (those missing are skipped).
pub fn remove_segment_files(dir: &dyn Directory, base: i64) -> io::Result<()> {
    for s in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        dir.remove(&file_name(base, s))?;
    }
    Ok(())
}

fn load_index_buf(dir: &dyn Directory, name: &str) -> io::Result<Option<IndexBuf>> {
    let f = match dir.open(name, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if f.len() > crate::log::limits::INDEX_BYTES_MAX {
        return Ok(None);
    }
    if let Some(map) = f.map()? {
        return Ok(Some(IndexBuf::Mapped(map)));
    }
    let mut v = vec![0u8; f.len() as usize];
    f.read_at(0, &mut v)?;
    Ok(Some(IndexBuf::Owned(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::mem_storage::MemDirectory;

    fn append(seg: &mut Segment, b: &[u8]) {
        let h = Header::parse(b).unwrap();
        let a = Appended::of(&h, seg.size());
        seg.append(&[IoSlice::new(b)], &[a]).unwrap();
    }

    #[test]
    fn a_seal_writes_into_index_files_created_ahead_for_it_only() {
        let (d, elsewhere) = (MemDirectory::new(), MemDirectory::new());
        let mut written = Segment::create(&elsewhere, 0, 1000, 100).unwrap();
        for i in 0..20 {
            append(&mut written, &batch(i * 2, 2, 5 + i, None, &[1; 150]));
        }
        let expected = written.write_indexes(&elsewhere).unwrap();
        let mut seg = Segment::create(&d, 0, 1000, 100).unwrap();
        for i in 0..20 {
            append(&mut seg, &batch(i * 2, 2, 5 + i, None, &[1; 150]));
        }
        // Files created for another segment are not used; the seal writes its own.
        let other = IndexFiles::create(&d, 40).unwrap();
        assert!(
            IndexFiles::create(&d, 40).is_err(),
            "an existing file was replaced"
        );
        let prepared = IndexFiles::create(&d, 0).unwrap();
        let (offset, time) = (prepared.offset.clone(), prepared.time.clone());
        let files = seg.write_indexes_into(&d, Some(prepared)).unwrap();
        assert!(Arc::ptr_eq(&files[0], &offset) && Arc::ptr_eq(&files[1], &time));
        for (file, name, want) in [
            (&offset, INDEX_SUFFIX, &expected[0]),
            (&time, TIME_INDEX_SUFFIX, &expected[1]),
        ] {
            let want = want.read_bytes(0, want.len() as usize).unwrap();
            assert!(!want.is_empty());
            assert_eq!(file.read_bytes(0, file.len() as usize).unwrap(), want);
            assert_eq!(d.contents(&file_name(0, name)).unwrap(), want.to_vec());
        }
        let mut later = Segment::create(&d, 100, 1000, 100).unwrap();
        append(&mut later, &batch(100, 1, 5, None, &[1; 10]));
        let (offset_40, time_40) = (other.offset.clone(), other.time.clone());
        let fallback = later.write_indexes_into(&d, Some(other)).unwrap();
        assert!(!Arc::ptr_eq(&fallback[1], &time_40));
        assert!(offset_40.is_empty() && time_40.is_empty());
        assert!(!d
            .contents(&file_name(100, TIME_INDEX_SUFFIX))
            .unwrap()
            .is_empty());
    }

    proptest::proptest! {
        /// Offset and timestamp lookups through the sparse indexes agree with a linear scan of
        /// the batches, for the in-memory indexes and for the ones written to disk and reloaded.
        #[test]
        fn lookups_agree_with_a_linear_scan(
            shapes in proptest::collection::vec((1i32..6, 0usize..400, -20i64..50), 1..60),
            interval in 1u64..2000,
            probes in proptest::collection::vec(0i64..400, 1..40),
        ) {
            let d = MemDirectory::new();
            let mut seg = Segment::create(&d, 1000, 10_000, interval).unwrap();
            let mut batches = vec![]; // (position, base, last, max timestamp)
            let (mut off, mut ts) = (1000i64, 1000i64);
            for (n, size, dt) in shapes {
                ts += dt;
                let b = batch(off, n, ts, None, &vec![1u8; size]);
                let max_ts = Header::parse(&b).unwrap().max_timestamp;
                batches.push((seg.size(), off, off + i64::from(n) - 1, max_ts));
                append(&mut seg, &b);
                off += i64::from(n);
            }
            seg.write_indexes(&d).unwrap();
            let (reloaded, end) = Segment::open_trusted(&d, 1000, 10_000, interval, None).unwrap();
            let clean = matches!(end, ScanEnd::Clean { .. });
            proptest::prop_assert!(clean);
            for s in [&seg, &reloaded] {
                for &p in &probes {
                    let target = 1000 + p;
                    let expected = batches.iter().find(|b| b.2 >= target).map(|b| (b.0, b.1));
                    proptest::prop_assert_eq!(s.locate(target).unwrap().map(|(pos, h)| (pos, h.base_offset)), expected);
                    let t = 1000 + p / 2;
                    let expected = batches.iter().find(|b| b.3 >= t).map(|b| (b.0, b.1));
                    proptest::prop_assert_eq!(s.locate_timestamp(t).unwrap().map(|(pos, h)| (pos, h.base_offset)), expected);
                }
            }
        }
    }

    #[test]
    fn locate_reopen_and_truncate() {
        let d = MemDirectory::new();
        let mut seg = Segment::create(&d, 100, 1000, 100).unwrap();
        let mut positions = vec![];
        for i in 0..50 {
            positions.push(seg.size());
            append(
                &mut seg,
                &batch(100 + i * 2, 2, 1000 + i, None, &[i as u8; 40]),
            );
        }
        assert!(seg.offset_index().len() > 5);
        for i in 0..50i64 {
            let (p, h) = seg.locate(100 + i * 2 + 1).unwrap().unwrap();
            assert_eq!((p, h.base_offset), (positions[i as usize], 100 + i * 2));
        }
        assert!(seg.locate(200).unwrap().is_none());
        assert_eq!(
            seg.locate_timestamp(1030).unwrap().unwrap().1.base_offset,
            160
        );
        seg.write_indexes(&d).unwrap();
        let (re, end) = Segment::open_trusted(&d, 100, 1000, 100, None).unwrap();
        assert!(matches!(end, ScanEnd::Clean { .. }));
        assert_eq!(re.next_offset(), 200);
        assert_eq!(re.max_timestamp(), 1049);
        assert_eq!(re.locate(151).unwrap().unwrap().0, positions[25]);
        seg.truncate_to(&d, 151).unwrap();
        assert_eq!(seg.next_offset(), 150);
        assert_eq!(seg.size(), positions[25]);
        let (re, end) = Segment::open_validated(&d, 100, 1000, 100, None, None, |_| {}).unwrap();
        assert_eq!(end, ScanEnd::Clean { end: positions[25] });
        assert_eq!(re.next_offset(), 150);
    }
}
