//! The upper layer on local disk, one directory per archive: `journal` (see `journal.rs`) and
//! `data/XX/<id>`, one file per new or changed file's content. Nothing of a change lives only in
//! memory: writes go straight to these files, so the daemon's memory does not grow with them.
//!
//! Creating a file on the host filesystem costs an inode allocation, which ext4 makes slow right
//! after many deletions (a save retires every data file). So a janitor thread keeps a pool of empty
//! data files ready for new files and deletes retired ones off the request path, and the files are
//! spread over 256 subdirectories.

use std::fs::{File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// Open data files kept between requests.
const OPEN_FILES: usize = 512;
/// Empty data files kept ready, and the level below which the janitor refills the pool.
const POOL: usize = 512;
const POOL_LOW: usize = 128;

enum Chore {
    Refill,
    Delete(Vec<u64>),
}

struct Shared {
    data: PathBuf,
    next_id: AtomicU64,
    pool: Mutex<Vec<(u64, Arc<File>)>>,
}

impl Shared {
    fn path(&self, id: u64) -> PathBuf {
        self.data
            .join(format!("{:02x}", id & 0xff))
            .join(id.to_string())
    }

    fn make(&self) -> io::Result<(u64, Arc<File>)> {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(self.path(id))
            {
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
                Ok(f) => self.pool.lock().expect("pool lock").push(f),
                Err(e) => {
                    tracing::warn!(
                        "cannot prepare upper data files in {}: {e}",
                        self.data.display()
                    );
                    return;
                }
            }
        }
    }
}

/// The journal's file name in an upper directory.
pub const JOURNAL: &str = "journal";

pub struct Upper {
    root: PathBuf,
    shared: Arc<Shared>,
    open: Mutex<LruCache<u64, Arc<File>>>,
    janitor: Mutex<Sender<Chore>>,
}

/// The upper directory for `archive` under `upper_root`: the archive's file name plus a hash of its
/// full path, so two archives named alike in different places never share one.
pub fn dir_for(upper_root: &Path, archive: &Path) -> PathBuf {
    let name: String = archive
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(40)
                .collect()
        })
        .unwrap_or_default();
    upper_root.join(format!(
        "{name}-{:08x}",
        crc32fast::hash(archive.as_os_str().as_bytes())
    ))
}

fn list_ids(data: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for sub in std::fs::read_dir(data)? {
        let sub = sub?.path();
        if let Ok(files) = std::fs::read_dir(&sub) {
            ids.extend(files.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok()));
        }
    }
    Ok(ids)
}

impl Upper {
    /// Opens (creating if needed) the upper layer in `root`.
    pub fn open(root: &Path) -> io::Result<Upper> {
        let data = root.join("data");
        for k in 0..256 {
            std::fs::create_dir_all(data.join(format!("{k:02x}")))?;
        }
        let next = list_ids(&data)?.into_iter().max().map_or(1, |m| m + 1);
        let shared = Arc::new(Shared {
            data,
            next_id: AtomicU64::new(next),
            pool: Mutex::new(Vec::new()),
        });
        let (tx, rx) = channel::<Chore>();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("upper-janitor".into())
            .spawn(move || {
                for chore in rx {
                    match chore {
                        Chore::Refill => s.refill(),
                        Chore::Delete(ids) => {
                            for id in ids {
                                let _ = std::fs::remove_file(s.path(id));
                            }
                        }
                    }
                }
            })?;
        Ok(Upper {
            root: root.to_owned(),
            shared,
            open: Mutex::new(LruCache::new(
                NonZeroUsize::new(OPEN_FILES).expect("non-zero"),
            )),
            janitor: Mutex::new(tx),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn journal_path(&self) -> PathBuf {
        self.root.join(JOURNAL)
    }
    pub fn data_path(&self, id: u64) -> PathBuf {
        self.shared.path(id)
    }

    /// Ids of the data files present (including empty ones waiting in the pool).
    pub fn ids(&self) -> io::Result<Vec<u64>> {
        list_ids(&self.shared.data)
    }

    fn chore(&self, c: Chore) {
        let _ = self.janitor.lock().expect("janitor lock").send(c);
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
            Some(f) => f,
            None => self.shared.make()?,
        };
        self.open
            .lock()
            .expect("open files lock")
            .put(id, file.clone());
        Ok((id, file))
    }

    /// Whether `id` is an empty file waiting in the pool (not content of any node).
    pub fn is_pooled(&self, id: u64) -> bool {
        self.shared
            .pool
            .lock()
            .expect("pool lock")
            .iter()
            .any(|(i, _)| *i == id)
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
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(self.data_path(id))?,
        );
        self.open
            .lock()
            .expect("open files lock")
            .put(id, file.clone());
        Ok(file)
    }

    /// Removes data file `id` now.
    pub fn remove(&self, id: u64) {
        self.open.lock().expect("open files lock").pop(&id);
        let _ = std::fs::remove_file(self.data_path(id));
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

    /// Flushes the data directories (new and removed names).
    pub fn sync_dir(&self, id: u64) -> io::Result<()> {
        match self.data_path(id).parent() {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }
}
