//! In-memory [`Directory`]/[`Storage`] that models what a power loss does to files.
//!
//! Each file keeps the bytes written (`data`) and the bytes made durable by the last `sync`
//! (`durable`); the directory keeps its durable names and the creations, renames and removals made
//! since its last `sync`. [`MemDirectory::crash`] picks, with a seeded generator, one outcome a
//! real disk allows: per file, the unsynced tail is lost, torn at any byte, kept, or followed by
//! garbage; for the directory, some prefix of the unsynced operations survives (journalled
//! filesystems commit metadata in order). Handles opened before a crash fail afterwards, like the
//! file descriptors of a dead process.

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::storage::{Directory, Storage};

/// A tiny deterministic generator (xorshift64*), enough to pick crash outcomes from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

#[derive(Debug, Default, Clone)]
struct MemFile {
    /// The file's bytes as written (for a reused file: the new data, then the old bytes after it).
    data: Vec<u8>,
    durable: Vec<u8>,
    /// A reused file's data length, shorter than `data` ([`Directory::reuse`]); `None`: all of
    /// `data`.
    len: Option<usize>,
    /// The file was reused: a crash may leave its old bytes after whatever new data survived.
    reused: bool,
}

impl MemFile {
    fn len(&self) -> usize {
        self.len.unwrap_or(self.data.len())
    }
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(String, u64),
    Rename(String, String),
    Remove(String),
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<u64, MemFile>,
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    pending: Vec<DirOp>,
    next_id: u64,
    generation: u64,
}

fn apply(names: &mut BTreeMap<String, u64>, op: &DirOp) {
    match op {
        DirOp::Link(name, id) => {
            names.insert(name.clone(), *id);
        }
        DirOp::Rename(from, to) => {
            if let Some(id) = names.remove(from) {
                names.insert(to.clone(), id);
            }
        }
        DirOp::Remove(name) => {
            names.remove(name);
        }
    }
}

/// An in-memory directory with a crash model. Clones share the same files.
#[derive(Debug, Clone)]
pub struct MemDirectory {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl Default for MemDirectory {
    fn default() -> Self {
        MemDirectory::new()
    }
}

impl MemDirectory {
    /// An empty directory.
    pub fn new() -> MemDirectory {
        MemDirectory {
            state: Arc::default(),
            path: PathBuf::from("mem:"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulates a power loss: see the module doc. Handles opened before it stop working.
    pub fn crash(&self, rng: &mut Rng) {
        let mut st = self.lock();
        st.generation += 1;
        let keep_ops = rng.below(st.pending.len() as u64 + 1) as usize;
        let mut names = st.durable_names.clone();
        let ops: Vec<DirOp> = st.pending[..keep_ops].to_vec();
        for op in &ops {
            apply(&mut names, op);
        }
        st.names = names.clone();
        st.durable_names = names;
        st.pending.clear();
        let live: Vec<u64> = st.names.values().copied().collect();
        st.files.retain(|id, _| live.contains(id));
        for file in st.files.values_mut() {
            let common = file
                .data
                .iter()
                .zip(&file.durable)
                .take_while(|(a, b)| a == b)
                .count();
            let new = match rng.below(4) {
                0 => file.durable.clone(),
                1 | 2 => {
                    let extra = rng.below((file.data.len() - common) as u64 + 1) as usize;
                    let mut v = file.data[..common + extra].to_vec();
                    if file.reused && file.durable.len() > v.len() && rng.below(2) == 0 {
                        // The new pages written back so far, then the old ones still on disk.
                        v.extend_from_slice(&file.durable[common + extra..]);
                    } else if file.data.len() > common && rng.below(2) == 0 {
                        for _ in 0..rng.below(200) {
                            v.push(rng.next_u64() as u8);
                        }
                    }
                    v
                }
                _ => file.data.clone(),
            };
            file.data = new.clone();
            file.durable = new;
            file.len = None;
        }
    }

    /// Current bytes of `name` (for tests that corrupt files on purpose).
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        st.names
            .get(name)
            .and_then(|id| st.files.get(id))
            .map(|f| f.data.clone())
    }

    /// Overwrites byte `pos` of `name` both in the written and durable images (bit rot).
    pub fn corrupt(&self, name: &str, pos: usize, xor: u8) {
        let mut st = self.lock();
        if let Some(id) = st.names.get(name).copied() {
            if let Some(f) = st.files.get_mut(&id) {
                if pos < f.data.len() {
                    f.data[pos] ^= xor;
                }
                if pos < f.durable.len() {
                    f.durable[pos] ^= xor;
                }
            }
        }
    }
}

/// A handle on one in-memory file.
#[derive(Debug)]
pub struct MemStorage {
    state: Arc<Mutex<State>>,
    id: u64,
    generation: u64,
}

impl MemStorage {
    fn with<R>(&self, f: impl FnOnce(&mut MemFile) -> io::Result<R>) -> io::Result<R> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.generation != self.generation {
            return Err(io::Error::other("file handle from before a crash"));
        }
        match st.files.get_mut(&self.id) {
            Some(file) => f(file),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "file gone")),
        }
    }
}

impl Storage for MemStorage {
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<()> {
        self.with(|f| {
            let start = pos as usize;
            let end = start.checked_add(buf.len()).filter(|&e| e <= f.len());
            match end {
                Some(end) => {
                    buf.copy_from_slice(&f.data[start..end]);
                    Ok(())
                }
                None => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past end",
                )),
            }
        })
    }

    fn append(&self, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        self.with(|f| {
            let Some(mut at) = f.len else {
                for b in bufs {
                    f.data.extend_from_slice(b);
                }
                return Ok(());
            };
            // A reused file: overwrite the old bytes in place, growing the file past them.
            for b in bufs {
                let over = b.len().min(f.data.len().saturating_sub(at));
                f.data[at..at + over].copy_from_slice(&b[..over]);
                f.data.extend_from_slice(&b[over..]);
                at += b.len();
            }
            f.len = (at < f.data.len()).then_some(at);
            Ok(())
        })
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.with(|f| {
            f.data.truncate(len as usize);
            f.len = None;
            Ok(())
        })
    }

    fn cut_stale_tail(&self) -> io::Result<()> {
        self.with(|f| {
            if let Some(len) = f.len.take() {
                f.data.truncate(len);
            }
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|f| {
            f.durable = f.data.clone();
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.with(|f| Ok(f.len() as u64)).unwrap_or(0)
    }
}

impl Directory for MemDirectory {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn Storage>> {
        let mut st = self.lock();
        let id = match st.names.get(name) {
            Some(id) => *id,
            None if create => {
                st.next_id += 1;
                let id = st.next_id;
                st.files.insert(id, MemFile::default());
                st.names.insert(name.to_string(), id);
                st.pending.push(DirOp::Link(name.to_string(), id));
                id
            }
            None => return Err(io::Error::new(io::ErrorKind::NotFound, name.to_string())),
        };
        Ok(Arc::new(MemStorage {
            state: self.state.clone(),
            id,
            generation: st.generation,
        }))
    }

    fn reuse(&self, from: &str, to: &str) -> io::Result<Arc<dyn Storage>> {
        self.rename(from, to)?;
        let mut st = self.lock();
        let Some(id) = st.names.get(to).copied() else {
            return Err(io::Error::new(io::ErrorKind::NotFound, to.to_string()));
        };
        if let Some(f) = st.files.get_mut(&id) {
            f.len = Some(0);
            f.reused = true;
        }
        Ok(Arc::new(MemStorage {
            state: self.state.clone(),
            id,
            generation: st.generation,
        }))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut st = self.lock();
        if !st.names.contains_key(from) {
            return Err(io::Error::new(io::ErrorKind::NotFound, from.to_string()));
        }
        let op = DirOp::Rename(from.to_string(), to.to_string());
        apply(&mut st.names, &op);
        st.pending.push(op);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut st = self.lock();
        let op = DirOp::Remove(name.to_string());
        apply(&mut st.names, &op);
        st.pending.push(op);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.durable_names = st.names.clone();
        st.pending.clear();
        Ok(())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_bytes_survive_every_crash() {
        for seed in 0..200 {
            let d = MemDirectory::new();
            let f = d.open("f", true).unwrap();
            f.append(&[IoSlice::new(b"durable")]).unwrap();
            f.sync().unwrap();
            d.sync().unwrap();
            f.append(&[IoSlice::new(b"-volatile")]).unwrap();
            d.crash(&mut Rng::new(seed));
            assert!(f.append(&[IoSlice::new(b"x")]).is_err());
            let data = d.contents("f").unwrap();
            assert!(data.starts_with(b"durable"), "seed {seed}");
        }
    }

    #[test]
    fn unsynced_creation_may_vanish_synced_rename_stays() {
        let mut vanished = false;
        for seed in 0..50 {
            let d = MemDirectory::new();
            d.open("a", true).unwrap();
            d.sync().unwrap();
            d.rename("a", "b").unwrap();
            d.sync().unwrap();
            d.open("c", true).unwrap();
            d.crash(&mut Rng::new(seed));
            let names = d.list().unwrap();
            assert!(names.contains(&"b".to_string()));
            vanished |= !names.contains(&"c".to_string());
        }
        assert!(vanished);
    }
}
