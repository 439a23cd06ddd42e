//! The upper layer on local disk, one private directory per archive under the upper root:
//! `journal` (see `journal/`) and `data/XX/<id>`, one file per new or changed file's content.
//! Nothing of a change lives only in memory: writes go straight to these files, so the daemon's
//! memory does not grow with them. Everything is reached through descriptors of verified private
//! directories (`PrivateDir`), never by following a path another user could change.
//!
//! Creating a file on the host filesystem costs an inode allocation, which ext4 makes slow right
//! after many deletions (a save retires every data file). So once a mount starts writing, a janitor
//! thread keeps a pool of empty data files ready for new files and deletes retired ones off the
//! request path; files are spread over up to 256 subdirectories made as they are needed. A mount
//! that writes nothing creates nothing, and a clean exit takes the pool (and, when nothing is left
//! unsaved, the whole directory) away again: inodes are what this tool saves.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::journal::{self, Header, Journal, legacy};
use crate::archive::ArchiveId;
use crate::file_key::{file_key, readable};
use crate::private_dir::{PrivateDir, PrivateDirError};

/// Open data files kept between requests, at most (and at most a quarter of what this process may
/// have open).
const OPEN_FILES: usize = 512;

fn open_files_kept() -> NonZeroUsize {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let kept = usize::try_from(limit / 4)
        .unwrap_or(OPEN_FILES)
        .clamp(8, OPEN_FILES);
    NonZeroUsize::new(kept).expect("at least 8")
}
/// Empty data files kept ready, and the level below which the janitor refills the pool.
const POOL: usize = 512;
const POOL_LOW: usize = 128;
const DATA: &str = "data";

enum Chore {
    Refill,
    Delete(Vec<u64>),
}

struct Shared {
    data: PrivateDir,
    next_id: AtomicU64,
    /// Ids of empty data files made ahead (closed: a pool must not hold descriptors).
    pool: Mutex<Vec<u64>>,
}

/// Where data file `id` lives below `data/`.
fn rel(id: u64) -> PathBuf {
    PathBuf::from(format!("{:02x}/{id}", id & 0xff))
}

impl Shared {
    fn make(&self) -> io::Result<(u64, Arc<File>)> {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let created = match self.data.create_new(rel(id)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.data
                        .subdir(format!("{:02x}", id & 0xff))
                        .map_err(io::Error::other)?;
                    self.data.create_new(rel(id))
                }
                other => other,
            };
            match created {
                Ok(file) => return Ok((id, Arc::new(file))),
                // A file no journal record names (left by a daemon that died): never reuse it.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn refill(&self) {
        while self.pool.lock().expect("pool lock").len() < POOL {
            match self.make() {
                Ok((id, _closed)) => self.pool.lock().expect("pool lock").push(id),
                Err(e) => {
                    tracing::warn!(
                        "cannot prepare upper data files in {}: {e}",
                        crate::display::path(self.data.path())
                    );
                    return;
                }
            }
        }
    }

    fn remove(&self, id: u64) {
        let _ = self.data.remove_file(rel(id));
    }

    /// Removes many data files: grouped by subdirectory (each opened once) and spread over the
    /// cores, since a save retires tens of thousands and a clean exit waits for them.
    fn remove_all(&self, ids: Vec<u64>) {
        use rayon::prelude::*;
        let mut by_dir: Vec<Vec<u64>> = vec![Vec::new(); 256];
        for id in ids {
            by_dir[(id & 0xff) as usize].push(id);
        }
        by_dir.into_par_iter().enumerate().for_each(|(k, ids)| {
            if ids.is_empty() {
                return;
            }
            match self.data.open_subdir(format!("{k:02x}")) {
                Ok(Some(dir)) => ids.iter().for_each(|id| {
                    let _ = dir.remove_file(id.to_string());
                }),
                _ => ids.into_iter().for_each(|id| self.remove(id)),
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpperError {
    #[error(transparent)]
    Dir(#[from] PrivateDirError),
    #[error("cannot use the upper layer {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
}

impl crate::hint::Hint for UpperError {
    fn hint(&self) -> Option<String> {
        match self {
            UpperError::Dir(e) => e.hint(),
            UpperError::Io { .. } => None,
        }
    }
}

pub struct Upper {
    /// The upper root (one directory per archive below it).
    root: PrivateDir,
    name: String,
    dir: PrivateDir,
    shared: Arc<Shared>,
    open: Mutex<LruCache<u64, Arc<File>>>,
    janitor: Mutex<Option<(Sender<Chore>, std::thread::JoinHandle<()>)>>,
}

/// The name of `archive`'s upper directory: its file name plus a hash of its full path, so two
/// archives named alike in different places never share one.
fn dir_name(archive: &ArchiveId) -> String {
    let archive = archive.path();
    file_key(archive, DIR_READABLE, &[archive.as_os_str().as_bytes()])
}

/// How much of an archive's name its upper directory keeps readable.
const DIR_READABLE: usize = 40;

/// The name conda-fuse before journal version 1 gave it (a CRC-32 of the path).
fn legacy_dir_name(archive: &Path) -> String {
    format!(
        "{}-{:08x}",
        readable(archive, DIR_READABLE),
        crc32fast::hash(archive.as_os_str().as_bytes())
    )
}

/// The upper directory for `archive` under `upper_root` (for messages and listings).
pub fn dir_for(upper_root: &Path, archive: &ArchiveId) -> PathBuf {
    upper_root.join(dir_name(archive))
}

/// The unsaved changes waiting for `archive` under `upper_root`, read without changing anything:
/// the journal (if any). Errors name the problem (a damaged or newer journal).
pub fn peek(
    upper_root: &Path,
    archive: &ArchiveId,
) -> Result<Option<journal::Loaded>, Box<dyn std::error::Error + Send + Sync>> {
    let Some(root) = PrivateDir::open(upper_root)? else {
        return Ok(None);
    };
    let Some(dir) = root.open_subdir(dir_name(archive))? else {
        return Ok(None);
    };
    Ok(Journal::load(&dir)?)
}

fn list_ids(data: &PrivateDir) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for sub in data.entries()? {
        if let Ok(Some(d)) = data.open_subdir(&sub) {
            ids.extend(
                d.entries()?
                    .iter()
                    .filter_map(|n| n.to_str()?.parse::<u64>().ok()),
            );
        }
    }
    Ok(ids)
}

impl Upper {
    /// Opens (creating if needed) the upper layer of `archive` under `upper_root`. Unsaved
    /// changes a conda-fuse before journal version 1 left for it are carried over.
    pub fn open(upper_root: &Path, archive: &ArchiveId) -> Result<Upper, UpperError> {
        Self::open_in(PrivateDir::ensure(upper_root)?, archive)
    }

    fn open_in(root: PrivateDir, archive: &ArchiveId) -> Result<Upper, UpperError> {
        let name = dir_name(archive);
        let io_err = |source| UpperError::Io {
            dir: root.show(&name),
            source,
        };
        if root.open_subdir(&name)?.is_none() {
            import_legacy(&root, &name, archive.path()).map_err(io_err)?;
        }
        let dir = root.subdir(&name)?;
        let data = dir.subdir(DATA)?;
        let next = list_ids(&data)
            .map_err(io_err)?
            .into_iter()
            .max()
            .map_or(1, |m| m + 1);
        let shared = Arc::new(Shared {
            data,
            next_id: AtomicU64::new(next),
            pool: Mutex::new(Vec::new()),
        });
        Ok(Upper {
            root,
            name,
            dir,
            shared,
            open: Mutex::new(LruCache::new(open_files_kept())),
            janitor: Mutex::new(None),
        })
    }

    /// Opens the upper layer of `archive` under `upper_root` empty: whatever is there (a crashed
    /// transaction's changes, never acknowledged as saved) goes first.
    pub fn open_fresh(upper_root: &Path, archive: &ArchiveId) -> Result<Upper, UpperError> {
        let root = PrivateDir::ensure(upper_root)?;
        let name = dir_name(archive);
        match root.remove_tree(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(UpperError::Io {
                    dir: root.show(&name),
                    source,
                });
            }
        }
        Self::open_in(root, archive)
    }

    /// The directory holding the journal.
    pub fn dir(&self) -> &PrivateDir {
        &self.dir
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where data file `id` is, for messages.
    pub fn shown_path(&self, id: u64) -> PathBuf {
        self.shared.data.show(rel(id))
    }

    /// (size, mtime) of data file `id`.
    pub fn stat(&self, id: u64) -> io::Result<(u64, crate::clock::Time)> {
        let st = self.shared.data.stat(rel(id))?;
        Ok((st.st_size as u64, (st.st_mtime, st.st_mtime_nsec as u32)))
    }

    /// Ids of the data files present (including empty ones waiting in the pool).
    pub fn ids(&self) -> io::Result<Vec<u64>> {
        list_ids(&self.shared.data)
    }

    /// Hands work to the janitor, starting it on first use.
    fn chore(&self, c: Chore) {
        let mut janitor = self.janitor.lock().expect("janitor lock");
        if janitor.is_none() {
            let (tx, rx) = channel::<Chore>();
            let s = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("upper-janitor".into())
                .spawn(move || {
                    for chore in rx {
                        match chore {
                            Chore::Refill => s.refill(),
                            Chore::Delete(ids) => s.remove_all(ids),
                        }
                    }
                });
            match spawned {
                Ok(handle) => *janitor = Some((tx, handle)),
                Err(e) => {
                    tracing::warn!("cannot start the upper layer's janitor: {e}");
                    if let Chore::Delete(ids) = c {
                        ids.into_iter().for_each(|id| self.shared.remove(id));
                    }
                    return;
                }
            }
        }
        let _ = janitor.as_ref().expect("started").0.send(c);
    }

    /// A new, empty data file, from the pool when one is ready.
    pub fn create(&self) -> io::Result<(u64, Arc<File>)> {
        let (taken, left) = {
            let mut pool = self.shared.pool.lock().expect("pool lock");
            let taken = pool.pop();
            (taken, pool.len())
        };
        if left < POOL_LOW {
            self.chore(Chore::Refill);
        }
        let (id, file) = match taken {
            Some(id) => match self.shared.data.open_rw(rel(id), false) {
                Ok(f) => (id, Arc::new(f)),
                Err(_) => self.shared.make()?,
            },
            None => self.shared.make()?,
        };
        self.open
            .lock()
            .expect("open files lock")
            .put(id, file.clone());
        Ok((id, file))
    }

    /// Makes sure ids handed out from now on are above `id`.
    pub fn reserve_above(&self, id: u64) {
        self.shared.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    /// The data file `id`, opened for reading and writing.
    pub fn file(&self, id: u64) -> io::Result<Arc<File>> {
        if let Some(f) = self.open.lock().expect("open files lock").get(&id) {
            return Ok(f.clone());
        }
        let file = Arc::new(self.shared.data.open_rw(rel(id), false)?);
        self.open
            .lock()
            .expect("open files lock")
            .put(id, file.clone());
        Ok(file)
    }

    /// How to open data file `id` for reading later (a save opens each only when it compresses it).
    pub fn opener(&self, id: u64) -> crate::archive::build::Opener {
        let shared = self.shared.clone();
        Arc::new(move || shared.data.open_read(rel(id)))
    }

    /// Removes data file `id` now.
    pub fn remove(&self, id: u64) {
        self.open.lock().expect("open files lock").pop(&id);
        self.shared.remove(id);
    }

    /// Removes data files in the background (after a save retires them all).
    pub fn retire(&self, ids: Vec<u64>) {
        {
            let mut open = self.open.lock().expect("open files lock");
            for id in &ids {
                open.pop(id);
            }
        }
        self.chore(Chore::Delete(ids));
    }

    /// Flushes the data directory of `id` (new and removed names).
    pub fn sync_dir(&self, id: u64) -> io::Result<()> {
        match self
            .shared
            .data
            .open_subdir(format!("{:02x}", id & 0xff))
            .map_err(io::Error::other)?
        {
            Some(d) => d.sync(),
            None => Ok(()),
        }
    }

    /// Lets the janitor finish what it was given, and stops it.
    fn stop_janitor(&self) {
        if let Some((tx, handle)) = self.janitor.lock().expect("janitor lock").take() {
            drop(tx);
            let _ = handle.join();
        }
    }

    /// A clean exit: the janitor finishes, the pool and empty subdirectories go, and when
    /// `nothing_unsaved` the whole directory goes too (the next mount starts afresh).
    pub fn close(&self, nothing_unsaved: bool) {
        self.stop_janitor();
        for id in self.shared.pool.lock().expect("pool lock").drain(..) {
            self.shared.remove(id);
        }
        self.open.lock().expect("open files lock").clear();
        // Files this process just closed may linger a moment on NFS and FUSE filesystems.
        let patience = std::time::Duration::from_secs(2);
        let data = &self.shared.data;
        for sub in data.entries().unwrap_or_default() {
            let _ = crate::hostfs::remove_dir_when_released(data, &sub, patience); // only empty ones go
        }
        if nothing_unsaved && self.ids().is_ok_and(|ids| ids.is_empty()) {
            let _ = crate::hostfs::remove_dir_when_released(&self.dir, DATA.as_ref(), patience);
            let _ = self.dir.remove_file(journal::FILE);
            let _ =
                crate::hostfs::remove_dir_when_released(&self.root, self.name.as_ref(), patience);
        }
    }
}

impl Drop for Upper {
    fn drop(&mut self) {
        self.stop_janitor();
    }
}

/// Carries what an older conda-fuse left for `archive` (a directory named by CRC-32, a version 0
/// journal) into the directory `name`, with a version 1 journal.
fn import_legacy(root: &PrivateDir, name: &str, archive: &Path) -> io::Result<()> {
    let legacy = legacy_dir_name(archive);
    let Some(old) = root.open_subdir(&legacy).map_err(io::Error::other)? else {
        return Ok(());
    };
    let data = match old.open_read(journal::FILE) {
        Ok(mut f) => {
            let mut v = Vec::new();
            io::Read::read_to_end(&mut f, &mut v)?;
            v
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let Some((base, records)) = legacy::parse(&data) else {
        tracing::warn!(dir = %crate::display::path(old.path()), "an older upper layer without a readable journal is left as it is");
        return Ok(());
    };
    drop(old);
    root.rename(&legacy, name)?;
    let dir = root.subdir(name).map_err(io::Error::other)?;
    let header = Header {
        archive: archive.to_owned(),
        base,
        created: crate::clock::now(),
    };
    Journal::create(&dir, &header, &records)?;
    tracing::info!(dir = %crate::display::path(dir.path()), changes = records.len(), "carried over the upper layer of an older conda-fuse");
    Ok(())
}
