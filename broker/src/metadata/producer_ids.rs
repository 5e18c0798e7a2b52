//! Persistent producer-id allocation for InitProducerId.
//!
//! Ids are reserved on disk a block at a time (`<data_dir>/producer-ids.json` records the first id
//! not yet reserved) before any id of the block is handed out, so an id is never given twice, even
//! after `kill -9`: a restart skips whatever was left of the reserved block. Reserving does
//! blocking file I/O once per block; async callers use `spawn_blocking` or accept the rare stall.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::store::{self, StoreError};
use crate::server::limits::PRODUCER_ID_BLOCK;

/// File name inside the data dir.
pub const PRODUCER_IDS_FILE: &str = "producer-ids.json";

#[derive(Debug, Serialize, Deserialize)]
struct Reserved {
    /// First id not yet reserved by any run.
    next_unreserved: i64,
}

#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out unique producer ids (see the module doc).
#[derive(Debug)]
pub struct ProducerIdAllocator {
    path: PathBuf,
    block: Mutex<Block>,
}

impl ProducerIdAllocator {
    /// Loads the reservation mark; nothing is reserved until the first allocation.
    pub fn open(data_dir: &Path) -> Result<ProducerIdAllocator, StoreError> {
        let path = data_dir.join(PRODUCER_IDS_FILE);
        let reserved: Option<Reserved> = store::read_json(&path)?;
        let start = reserved.map_or(0, |r| r.next_unreserved);
        if start < 0 {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("negative producer id mark {start}"),
            });
        }
        Ok(ProducerIdAllocator {
            path,
            block: Mutex::new(Block {
                next: start,
                end: start,
            }),
        })
    }

    /// A producer id never handed out before by this data dir.
    pub fn allocate(&self) -> Result<i64, StoreError> {
        let mut block = self.block.lock().unwrap_or_else(|e| e.into_inner());
        if block.next >= block.end {
            let end = block.next.saturating_add(PRODUCER_ID_BLOCK);
            store::write_json(
                &self.path,
                &Reserved {
                    next_unreserved: end,
                },
            )?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ProducerIdAllocator::open(dir.path()).expect("open");
        let a = first.allocate().expect("a");
        let b = first.allocate().expect("b");
        assert_eq!((a, b), (0, 1));
        drop(first); // as after kill -9: the rest of the block is lost, never reused
        let second = ProducerIdAllocator::open(dir.path()).expect("reopen");
        let c = second.allocate().expect("c");
        assert_eq!(c, PRODUCER_ID_BLOCK);
        for _ in 0..PRODUCER_ID_BLOCK + 5 {
            assert!(second.allocate().expect("more") > c);
        }
    }
}
