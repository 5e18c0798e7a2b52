//! Sluice's small metadata files: JSON inside the log's checksummed, atomically replaced small-file
//! format (`log::checkpoint`: magic, length, payload, CRC-32; written to a temp file, fsynced,
//! renamed, directory fsynced). A crash leaves the old file or the new one, never a torn one; a
//! checksum mismatch is a typed error naming the file, not a silent reset.

use std::path::{Path, PathBuf};

use crate::log::checkpoint::{self, CheckpointError};

/// Why a metadata file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is missing its checksum, corrupt, or unreadable.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: CheckpointError,
    },
    /// The file's payload is not the JSON expected.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Atomically replaces `path` with `body` (see the module doc).
pub fn write_atomic(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    checkpoint::write_atomic(path, body).map_err(|source| StoreError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file written by [`write_atomic`]; `Ok(None)` when it does not exist.
pub fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    checkpoint::read_checked(path).map_err(|source| StoreError::File {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and deserialises a JSON file written with [`write_json`]; `Ok(None)` when absent.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    let Some(body) = read_checked(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|err| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("bad JSON: {err}"),
        })
}

/// Serialises `value` as JSON and replaces `path` atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(value).map_err(|err| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("cannot serialise: {err}"),
    })?;
    write_atomic(path, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json");
        assert!(read_json::<Vec<u32>>(&path).expect("absent").is_none());
        write_json(&path, &vec![1u32, 2, 3]).expect("write");
        assert_eq!(
            read_json::<Vec<u32>>(&path).expect("read"),
            Some(vec![1, 2, 3])
        );
        let mut raw = std::fs::read(&path).expect("raw");
        let middle = raw.len() / 2;
        raw[middle] ^= 1;
        std::fs::write(&path, &raw).expect("flip");
        assert!(matches!(
            read_json::<Vec<u32>>(&path),
            Err(StoreError::File { .. })
        ));
        write_atomic(&path, b"not json").expect("write");
        assert!(matches!(
            read_json::<Vec<u32>>(&path),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
