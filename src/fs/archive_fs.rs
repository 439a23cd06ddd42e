//! The filesystem's semantics over an archive, independent of the kernel protocol: lookups, attributes,
//! directory listings, symlink targets and file reads, each returning an errno on failure. The
//! `fuse` module adapts this to fuser; tests call it directly.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::tree::{Attr, BuildReport, Defaults, Ino, ROOT_INO, Tree};
use crate::archive::{Archive, DecodedCache, EntryError, EntryReader, Kind};

/// Largest symlink target we serve (Linux's PATH_MAX).
const SYMLINK_MAX: u64 = 4096;
/// File readers kept between reads.
const READERS: usize = 256;

pub struct ArchiveFs {
    tree: Tree,
    archive: Arc<Archive>,
    cache: Arc<DecodedCache>,
    /// Readers of recently read files, by inode. Keyed by inode rather than by open handle because
    /// read-only mounts let the kernel open files without asking us (see `fuse.rs`); a reader
    /// carries the streaming state of a large compressed file between reads.
    readers: Mutex<lru::LruCache<Ino, Arc<EntryReader>>>,
    /// Reads that failed (corrupt entries, I/O errors), for `status`.
    pub read_errors: AtomicU64,
}

/// One directory entry as readdir returns it; `cookie` is what the kernel passes back to resume
/// after this entry.
pub struct DirEntry<'a> {
    pub ino: Ino,
    pub cookie: u64,
    pub kind: Kind,
    pub name: &'a [u8],
}

impl ArchiveFs {
    pub fn new(
        archive: Arc<Archive>,
        cache: Arc<DecodedCache>,
        defaults: Defaults,
    ) -> (Self, BuildReport) {
        let (tree, report) = Tree::build(archive.index(), defaults);
        let fs = ArchiveFs {
            tree,
            archive,
            cache,
            readers: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(READERS).expect("non-zero"),
            )),
            read_errors: AtomicU64::new(0),
        };
        (fs, report)
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }
    pub fn archive(&self) -> &Arc<Archive> {
        &self.archive
    }
    pub fn cache(&self) -> &Arc<DecodedCache> {
        &self.cache
    }

    pub fn getattr(&self, ino: Ino) -> Result<Attr, Errno> {
        self.tree.node(ino).map(|n| n.attr).ok_or(Errno::ENOENT)
    }

    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<(Ino, Attr), Errno> {
        let dir = self.tree.node(parent).ok_or(Errno::ENOENT)?;
        if dir.attr.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let ino = match name {
            b"." => parent,
            b".." => dir.parent,
            _ => self.tree.lookup(parent, name).ok_or(Errno::ENOENT)?,
        };
        Ok((ino, self.getattr(ino)?))
    }

    fn log_entry_error(&self, ino: Ino, e: &EntryError) -> Errno {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
        let name = self.path_of(ino);
        tracing::error!(archive = %self.archive.path().display(), entry = %name, "read failed: {e}");
        Errno::from_raw(e.errno())
    }

    /// The node's path inside the mount, for log lines.
    pub fn path_of(&self, mut ino: Ino) -> String {
        let mut parts = Vec::new();
        while ino != ROOT_INO {
            let Some(n) = self.tree.node(ino) else { break };
            parts.push(String::from_utf8_lossy(&n.name).into_owned());
            ino = n.parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let node = self.tree.node(ino).ok_or(Errno::ENOENT)?;
        if node.attr.kind != Kind::Symlink {
            return Err(Errno::EINVAL);
        }
        let entry = node.entry.ok_or(Errno::EIO)?;
        if self.archive.index().entry(entry).uncompressed_size > SYMLINK_MAX {
            return Err(self.log_entry_error(
                ino,
                &EntryError::Corrupt("symlink target longer than 4096 bytes".into()),
            ));
        }
        self.archive
            .read_all(entry)
            .map_err(|e| self.log_entry_error(ino, &e))
    }

    /// Checks that `ino` can be opened (read-only mounts: the kernel skips this, see `fuse.rs`).
    pub fn open(&self, ino: Ino, write: bool) -> Result<(), Errno> {
        let node = self.tree.node(ino).ok_or(Errno::ENOENT)?;
        if write {
            return Err(Errno::EROFS);
        }
        match node.attr.kind {
            Kind::Dir => Err(Errno::EISDIR),
            Kind::Symlink => Err(Errno::ELOOP),
            Kind::File => Ok(()),
        }
    }

    fn reader(&self, ino: Ino) -> Result<Arc<EntryReader>, Errno> {
        let mut readers = self.readers.lock().expect("readers lock");
        if let Some(r) = readers.get(&ino) {
            return Ok(r.clone());
        }
        let node = self.tree.node(ino).ok_or(Errno::ENOENT)?;
        match (node.attr.kind, node.entry) {
            (Kind::File, Some(entry)) => {
                let r = Arc::new(EntryReader::new(
                    self.archive.clone(),
                    self.cache.clone(),
                    entry,
                ));
                readers.put(ino, r.clone());
                Ok(r)
            }
            (Kind::Dir, _) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        self.reader(ino)?
            .read_at(offset, size as usize)
            .map_err(|e| self.log_entry_error(ino, &e))
    }

    /// Calls `add` for each entry after `offset` until it returns true (reply buffer full).
    pub fn readdir(
        &self,
        ino: Ino,
        offset: u64,
        mut add: impl FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let dir = self.tree.node(ino).ok_or(Errno::ENOENT)?;
        if dir.attr.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let dots = [(ino, b".".as_slice()), (dir.parent, b"..".as_slice())];
        for (k, (d_ino, name)) in dots.iter().enumerate() {
            let cookie = k as u64 + 1;
            if cookie > offset
                && add(DirEntry {
                    ino: *d_ino,
                    cookie,
                    kind: Kind::Dir,
                    name,
                })
            {
                return Ok(());
            }
        }
        let skip = offset.saturating_sub(2) as usize;
        for (k, child) in dir.children.iter().enumerate().skip(skip) {
            let node = self.tree.node(*child).expect("child exists");
            let entry = DirEntry {
                ino: *child,
                cookie: k as u64 + 3,
                kind: node.attr.kind,
                name: &node.name,
            };
            if add(entry) {
                break;
            }
        }
        Ok(())
    }

    /// (total blocks, files) for statfs: the archive's size in 4 KiB blocks and its node count.
    pub fn statfs(&self) -> (u64, u64) {
        (
            self.archive.index().file_len.div_ceil(4096),
            self.tree.len() as u64,
        )
    }
}
