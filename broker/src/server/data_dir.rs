//! The data-directory lock: one broker process per data dir. Taken before anything in the dir is
//! read or written, held (an OS file lock on `<data_dir>/.lock`) until the process exits, so a
//! second `sluiced` on the same dir refuses to start instead of corrupting the first one's files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside the data dir.
pub const LOCK_FILE: &str = ".lock";

/// Why the data dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds the lock.
    #[error("data dir {path} is in use by another sluiced process ({holder}); stop it or choose another --data-dir")]
    Locked {
        /// The data dir.
        path: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// The dir or lock file could not be created or locked.
    #[error("data dir {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process exiting, even by SIGKILL) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates the data dir if needed and takes its lock without waiting.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, DataDirError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DataDirError::Io { path, source }
        };
        std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the holder's pid, for the message.
                let _ = (&file).take(64).read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "holder unknown".to_string(),
                    pid => format!("pid {pid}"),
                };
                return Err(DataDirError::Locked {
                    path: data_dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(DataDirError::Io { path, source }),
        }
        file.set_len(0).map_err(io(&path))?;
        file.seek(SeekFrom::Start(0)).map_err(io(&path))?;
        write!(file, "{}", std::process::id()).map_err(io(&path))?;
        Ok(DataDirLock {
            _file: file,
            path: data_dir.to_path_buf(),
        })
    }

    /// The locked data dir.
    pub fn data_dir(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_dir_is_refused_until_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).expect("first lock");
        let err = DataDirLock::acquire(&data).expect_err("second lock");
        let message = err.to_string();
        assert!(
            message.contains("in use by another sluiced process"),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataDirLock::acquire(&data).expect("lock after release");
    }
}
