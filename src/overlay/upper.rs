//! The upper layer on local disk, one directory per archive: `journal` (see `journal.rs`) and
//! `data/<id>`, one file per new or changed file's content. Nothing of a change lives only in
//! memory: writes go straight to these files, so the daemon's memory does not grow with them.

use std::fs::{File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// Open data files kept between requests.
const OPEN_FILES: usize = 512;

pub struct Upper {
    root: PathBuf,
    data: PathBuf,
    next_id: AtomicU64,
    open: Mutex<LruCache<u64, Arc<File>>>,
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

impl Upper {
    /// Opens (creating if needed) the upper layer in `root`.
    pub fn open(root: &Path) -> io::Result<Upper> {
        let data = root.join("data");
        std::fs::create_dir_all(&data)?;
        let next = Self::list_ids(&data)?
            .into_iter()
            .max()
            .map_or(1, |m| m + 1);
        Ok(Upper {
            root: root.to_owned(),
            data,
            next_id: AtomicU64::new(next),
            open: Mutex::new(LruCache::new(
                NonZeroUsize::new(OPEN_FILES).expect("non-zero"),
            )),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn journal_path(&self) -> PathBuf {
        self.root.join("journal")
    }
    pub fn data_path(&self, id: u64) -> PathBuf {
        self.data.join(id.to_string())
    }

    fn list_ids(data: &Path) -> io::Result<Vec<u64>> {
        Ok(std::fs::read_dir(data)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect())
    }

    /// Ids of the data files present.
    pub fn ids(&self) -> io::Result<Vec<u64>> {
        Self::list_ids(&self.data)
    }

    /// Creates a new, empty data file.
    pub fn create(&self) -> io::Result<(u64, Arc<File>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(self.data_path(id))?,
        );
        self.open
            .lock()
            .expect("open files lock")
            .put(id, file.clone());
        Ok((id, file))
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

    /// Makes sure ids handed out from now on are above `id`.
    pub fn reserve_above(&self, id: u64) {
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
    }

    pub fn remove(&self, id: u64) {
        self.open.lock().expect("open files lock").pop(&id);
        let _ = std::fs::remove_file(self.data_path(id));
    }

    /// (files, bytes) in the data directory.
    pub fn usage(&self) -> (u64, u64) {
        let Ok(dir) = std::fs::read_dir(&self.data) else {
            return (0, 0);
        };
        dir.filter_map(|e| e.ok()?.metadata().ok())
            .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
    }

    /// Flushes the data directory itself (new and removed names).
    pub fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.data)?.sync_all()
    }
}
