//! Small checksummed files replaced atomically (write a temp file, fsync, rename, fsync the
//! directory), for the Raft vote, committed index and snapshots.
//!
//! Layout, big-endian: `b"SLRF"` magic, u32 CRC-32 (crc32fast) of the payload, u64 payload
//! length, payload. A file that fails any check is reported, never half-read.
//! (The storage workstream's `log::checkpoint` provides the same service; this module can switch
//! to it once it is on main.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use crate::replication::limits::RAFT_FILE_BYTES_MAX;

const MAGIC: &[u8; 4] = b"SLRF";
const HEADER_BYTES: usize = 16;

/// Why a checksummed file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// Wrong magic, length or checksum.
    #[error("{path}: corrupt ({reason})")]
    Corrupt {
        /// The file.
        path: String,
        /// What was wrong.
        reason: &'static str,
    },
}

fn io_err(path: &Path, source: io::Error) -> FileError {
    FileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Replaces `path` with `payload`, durably.
pub fn write_atomic(path: &Path, payload: &[u8]) -> Result<(), FileError> {
    let tmp = path.with_extension("tmp");
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    bytes.extend_from_slice(payload);
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so a rename or a new file survives a crash.
pub fn sync_dir(path: &Path) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Reads a file written by [`write_atomic`]; `Ok(None)` if it does not exist.
pub fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    let mut f = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let corrupt = |reason| FileError::Corrupt {
        path: path.display().to_string(),
        reason,
    };
    let mut header = [0u8; HEADER_BYTES];
    f.read_exact(&mut header)
        .map_err(|_| corrupt("short header"))?;
    if &header[..4] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&header[8..16]);
    let len = u64::from_be_bytes(len_bytes);
    if len > RAFT_FILE_BYTES_MAX {
        return Err(corrupt("length beyond limit"));
    }
    let mut payload = Vec::with_capacity(len as usize);
    f.take(len)
        .read_to_end(&mut payload)
        .map_err(|e| io_err(path, e))?;
    if payload.len() as u64 != len {
        return Err(corrupt("short payload"));
    }
    if crc32fast::hash(&payload) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vote");
        assert!(read_checked(&path).unwrap().is_none());
        write_atomic(&path, b"hello raft").unwrap();
        assert_eq!(
            read_checked(&path).unwrap().as_deref(),
            Some(&b"hello raft"[..])
        );
        let good = fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            fs::write(&path, &bad).unwrap();
            assert!(
                read_checked(&path).is_err(),
                "flipped byte {i} went unnoticed"
            );
        }
        for cut in 0..good.len() {
            fs::write(&path, &good[..cut]).unwrap();
            assert!(read_checked(&path).is_err(), "cut at {cut} went unnoticed");
        }
    }
}
