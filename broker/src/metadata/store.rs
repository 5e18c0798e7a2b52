//! Sluice's small metadata files: JSON with a CRC-32 line in front, replaced atomically.
//!
//! Layout: `crc32:XXXXXXXX\n` (crc32fast of the body, 8 lowercase hex digits) then the JSON body.
//! Writing goes to `<name>.tmp`, fsync, rename over `<name>`, fsync the directory: a crash leaves
//! either the old file or the new one, never a torn one; a checksum mismatch (disk corruption) is
//! a typed error naming the file, not a silent reset.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A metadata file is a few KiB per thousand topics; refuse to read anything absurd.
pub const METADATA_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

const CRC_PREFIX: &str = "crc32:";
const HEADER_BYTES: usize = CRC_PREFIX.len() + 8 + 1;

/// Why a metadata file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on the named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is damaged: bad header, checksum mismatch, bad JSON or too large.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Atomically replaces `path` with `body` behind a checksum line (see the module doc).
pub fn write_atomic(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp).map_err(io)?;
        writeln!(file, "{CRC_PREFIX}{:08x}", crc32fast::hash(body)).map_err(io)?;
        file.write_all(body).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
    }
    Ok(())
}

/// Reads a file written by [`write_atomic`]; `Ok(None)` when it does not exist.
pub fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let len = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if len > METADATA_FILE_BYTES_MAX {
        return Err(corrupt(format!(
            "{len} bytes, over the {METADATA_FILE_BYTES_MAX}-byte limit"
        )));
    }
    let mut data = std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let header = data
        .get(..HEADER_BYTES)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.strip_prefix(CRC_PREFIX))
        .and_then(|h| h.strip_suffix('\n'))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| corrupt("missing checksum header".to_string()))?;
    let body = data.split_off(HEADER_BYTES);
    let actual = crc32fast::hash(&body);
    if actual != header {
        return Err(corrupt(format!(
            "checksum {actual:08x} does not match the recorded {header:08x}"
        )));
    }
    Ok(Some(body))
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
        assert!(read_checked(&path).expect("absent").is_none());
        write_atomic(&path, b"{\"a\":1}").expect("write");
        assert_eq!(
            read_checked(&path).expect("read"),
            Some(b"{\"a\":1}".to_vec())
        );
        let mut raw = std::fs::read(&path).expect("raw");
        let last = raw.len() - 2;
        raw[last] ^= 1;
        std::fs::write(&path, &raw).expect("flip");
        let err = read_checked(&path).expect_err("corrupt");
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::write(&path, b"garbage").expect("garbage");
        assert!(matches!(
            read_checked(&path),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
