//! The metadata Raft log on disk.
//!
//! `raft-log` holds one record per entry: u32 length, u32 CRC-32 (crc32fast) of the body, and the
//! body (the entry as JSON), big-endian. Appends are fsynced before openraft hears they are
//! durable. At open, records are read until the first short, oversized, corrupt or
//! out-of-sequence one, and the file is cut there (a torn append from a crash). Truncation and
//! purging rewrite the file atomically; the log is small (it is purged behind snapshots).
//! `raft-vote`, `raft-committed` and `raft-purged` are atomic checksummed files
//! ([`super::file`]).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, RaftLogId, RaftLogReader, StorageError, StorageIOError, Vote,
};

use super::file::{self, FileError};
use super::TypeConfig;
use crate::replication::limits::RAFT_ENTRY_BYTES_MAX;

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "raft-vote";
const COMMITTED_FILE: &str = "raft-committed";
const PURGED_FILE: &str = "raft-purged";
const RECORD_HEADER_BYTES: usize = 8;

type StoreResult<T> = Result<T, StorageError<u64>>;

/// Errors opening the log.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// A vote, committed or purge file is corrupt.
    #[error(transparent)]
    File(#[from] FileError),
    /// A small file decoded to nonsense.
    #[error("{0}: undecodable contents")]
    Decode(String),
}

struct Inner {
    dir: PathBuf,
    file: File,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
}

/// The Raft log store (cheap to clone: clones share the log).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn encode_record(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) -> io::Result<()> {
    let body = serde_json::to_vec(entry).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= RAFT_ENTRY_BYTES_MAX)
        .ok_or_else(|| io::Error::other("metadata log entry too large"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(())
}

/// Decodes records from `bytes`; returns the entries and the length of the valid prefix.
fn decode_records(bytes: &[u8], first_index: Option<u64>) -> (Vec<Entry<TypeConfig>>, usize) {
    let mut entries: Vec<Entry<TypeConfig>> = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= RECORD_HEADER_BYTES {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
        let crc = u32::from_be_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        if len > RAFT_ENTRY_BYTES_MAX {
            break;
        }
        let start = pos + RECORD_HEADER_BYTES;
        let Some(body) = bytes.get(start..start + len as usize) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(body) else {
            break;
        };
        let expected = entries.last().map(|e| e.log_id.index + 1).or(first_index);
        if expected.is_some_and(|i| i != entry.log_id.index) {
            break;
        }
        entries.push(entry);
        pos = start + len as usize;
    }
    (entries, pos)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, LogStoreError> {
    match file::read_checked(path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| LogStoreError::Decode(path.display().to_string())),
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let bytes = serde_json::to_vec(value).map_err(|e| FileError::Io {
        path: path.display().to_string(),
        source: io::Error::other(e),
    })?;
    file::write_atomic(path, &bytes)
}

impl LogStore {
    /// Opens the log in `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> Result<Self, LogStoreError> {
        let io_err = |path: &Path, source| LogStoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let vote = read_json(&dir.join(VOTE_FILE))?;
        let committed = read_json(&dir.join(COMMITTED_FILE))?;
        let last_purged: Option<LogId<u64>> = read_json(&dir.join(PURGED_FILE))?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io_err(&path, e))?;
        let first = last_purged.map(|l| l.index + 1);
        let (decoded, valid) = decode_records(&bytes, None);
        if valid < bytes.len() {
            tracing::warn!(path = %path.display(), valid, len = bytes.len(), "cutting a torn tail off the metadata log");
            file.set_len(valid as u64).map_err(|e| io_err(&path, e))?;
            file.sync_all().map_err(|e| io_err(&path, e))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| io_err(&path, e))?;
        let entries = decoded
            .into_iter()
            .filter(|e| first.is_none_or(|f| e.log_id.index >= f))
            .map(|e| (e.log_id.index, e))
            .collect();
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_owned(),
                file,
                entries,
                last_purged,
                vote,
                committed,
            })),
        })
    }

    // The error type is openraft's, imposed by its storage traits; boxing it here would only
    // move the size elsewhere.
    #[allow(clippy::result_large_err)]
    fn lock(&self) -> StoreResult<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| {
            StorageIOError::<u64>::read_logs(&io::Error::other("metadata log lock poisoned")).into()
        })
    }
}

impl Inner {
    /// Rewrites the whole log file from `entries` (after truncate or purge).
    fn rewrite(&mut self) -> io::Result<()> {
        let mut bytes = Vec::new();
        for e in self.entries.values() {
            encode_record(e, &mut bytes)?;
        }
        let path = self.dir.join(LOG_FILE);
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        file::sync_dir(&path).map_err(io::Error::other)?;
        self.file = OpenOptions::new().append(true).read(true).open(&path)?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        let inner = self.lock()?;
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let inner = self.lock()?;
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| *e.get_log_id())
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StoreResult<()> {
        let mut inner = self.lock()?;
        write_json(&inner.dir.join(VOTE_FILE), vote).map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<u64>>> {
        Ok(self.lock()?.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StoreResult<()> {
        let mut inner = self.lock()?;
        write_json(&inner.dir.join(COMMITTED_FILE), &committed)
            .map_err(|e| StorageIOError::write(&e))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogId<u64>>> {
        Ok(self.lock()?.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock()?;
        let mut bytes = Vec::new();
        let entries: Vec<_> = entries.into_iter().collect();
        for e in &entries {
            encode_record(e, &mut bytes).map_err(|e| StorageIOError::write_logs(&e))?;
        }
        let result = inner
            .file
            .write_all(&bytes)
            .and_then(|()| inner.file.sync_data());
        if let Err(e) = &result {
            let err = io::Error::new(e.kind(), e.to_string());
            callback.log_io_completed(Err(err));
            return Err(
                StorageIOError::write_logs(&io::Error::new(e.kind(), e.to_string())).into(),
            );
        }
        for e in entries {
            inner.entries.insert(e.log_id.index, e);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StoreResult<()> {
        let mut inner = self.lock()?;
        inner.entries.retain(|&i, _| i < log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StoreResult<()> {
        let mut inner = self.lock()?;
        // Record the purge point first: a crash in between leaves extra entries, never a gap.
        write_json(&inner.dir.join(PURGED_FILE), &log_id)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.last_purged = Some(log_id);
        inner.entries.retain(|&i, _| i > log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}
