//! The filesystem's semantics, independent of the kernel protocol: every request the kernel sends,
//! answered from the overlay (names, attributes, changes) and the archive (content), returning an
//! errno on failure. The `fuse` module adapts this to fuser; tests may call it directly.

use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use lru::LruCache;
use nix::errno::Errno;

use crate::archive::{Archive, CacheLimits, DecodedCache, EntryError, EntryReader, Kind};
use crate::overlay::tree::{Attr, Content, Ino, ROOT_INO};
use crate::overlay::{Overlay, SetAttr};

/// Largest symlink target we serve (Linux's PATH_MAX).
const SYMLINK_MAX: u64 = 4096;
/// Entry readers kept between reads (they carry streaming state for large entries).
const READERS: usize = 256;

/// The archive being served and what reads it; replaced whole when a save installs a new archive.
pub struct Current {
    pub archive: Arc<Archive>,
    pub cache: Arc<DecodedCache>,
    readers: Mutex<LruCache<u32, Arc<EntryReader>>>,
}

impl Current {
    fn new(archive: Arc<Archive>, limits: CacheLimits) -> Current {
        Current {
            archive,
            cache: Arc::new(DecodedCache::new(limits)),
            readers: Mutex::new(LruCache::new(NonZeroUsize::new(READERS).expect("non-zero"))),
        }
    }

    fn reader(&self, entry: u32) -> Arc<EntryReader> {
        let mut readers = self.readers.lock().expect("readers lock");
        if let Some(r) = readers.get(&entry) {
            return r.clone();
        }
        let r = Arc::new(EntryReader::new(
            self.archive.clone(),
            self.cache.clone(),
            entry,
        ));
        readers.put(entry, r.clone());
        r
    }
}

/// One directory entry as readdir returns it; `cookie` is what the kernel passes back to resume
/// after this entry.
pub struct DirEntry {
    pub ino: Ino,
    pub cookie: u64,
    pub name: Vec<u8>,
    pub attr: Attr,
}

pub struct Filesystem {
    overlay: Overlay,
    current: RwLock<Arc<Current>>,
    /// Reads that failed (corrupt entries, I/O errors), for `status`.
    pub read_errors: AtomicU64,
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Filesystem {
    pub fn new(overlay: Overlay, archive: Arc<Archive>, limits: CacheLimits) -> Filesystem {
        Filesystem {
            overlay,
            current: RwLock::new(Arc::new(Current::new(archive, limits))),
            read_errors: AtomicU64::new(0),
        }
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn current(&self) -> Arc<Current> {
        self.current.read().expect("current lock").clone()
    }

    pub fn is_writable(&self) -> bool {
        self.overlay.is_writable()
    }

    /// Serves `archive` from now on (after a save put it in place). Readers of the old one finish
    /// with it; every node already refers to the new one's entries.
    pub fn switch_archive(&self, archive: Arc<Archive>) {
        let limits = self.current().cache.limits().clone();
        *self.current.write().expect("current lock") = Arc::new(Current::new(archive, limits));
    }

    pub fn getattr(&self, ino: Ino) -> Result<Attr, Errno> {
        self.overlay
            .tree()
            .node(ino)
            .map(|n| n.attr)
            .ok_or(Errno::ENOENT)
    }

    /// Looks up `name` in `parent`; a found node gains a kernel reference.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<(Ino, Attr), Errno> {
        let found = {
            let tree = self.overlay.tree();
            let dir = tree.node(parent).ok_or(Errno::ENOENT)?;
            let d = dir.dir().ok_or(Errno::ENOTDIR)?;
            let ino = match name {
                b"." => parent,
                b".." => dir.parent,
                _ => d.get(name).ok_or(Errno::ENOENT)?,
            };
            (ino, tree.node(ino).ok_or(Errno::ENOENT)?.attr)
        };
        self.overlay.remember(found.0);
        Ok(found)
    }

    pub fn remember(&self, ino: Ino) {
        self.overlay.remember(ino);
    }

    pub fn forget(&self, ino: Ino, n: u64) {
        self.overlay.forget(ino, n);
    }

    fn log_entry_error(&self, ino: Ino, archive: &Archive, e: &EntryError) -> Errno {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
        let name = self.path_of(ino);
        tracing::error!(archive = %archive.path().display(), entry = %name, "read failed: {e}");
        Errno::from_raw(e.errno())
    }

    /// The node's path inside the mount, for log lines.
    pub fn path_of(&self, ino: Ino) -> String {
        let tree = self.overlay.tree();
        match tree.node(ino) {
            Some(n) if ino != ROOT_INO => {
                format!(
                    "/{}",
                    String::from_utf8_lossy(&tree.child_path(n.parent, &n.name))
                )
            }
            _ => "/".into(),
        }
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let entry = {
            let tree = self.overlay.tree();
            let node = tree.node(ino).ok_or(Errno::ENOENT)?;
            if node.attr.kind != Kind::Symlink {
                return Err(Errno::EINVAL);
            }
            match &node.content {
                Content::Symlink(t) => return Ok(t.to_vec()),
                Content::Archive(e) => *e,
                _ => return Err(Errno::EIO),
            }
        };
        let cur = self.current();
        if cur.archive.index().entry(entry).uncompressed_size > SYMLINK_MAX {
            let e = EntryError::Corrupt("symlink target longer than 4096 bytes".into());
            return Err(self.log_entry_error(ino, &cur.archive, &e));
        }
        cur.archive
            .read_all(entry)
            .map_err(|e| self.log_entry_error(ino, &cur.archive, &e))
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let content = {
            let tree = self.overlay.tree();
            let node = tree.node(ino).ok_or(Errno::ENOENT)?;
            match &node.content {
                Content::Archive(e) => Ok(*e),
                Content::Upper(id) => Err(*id),
                Content::Dir(_) => return Err(Errno::EISDIR),
                Content::Symlink(_) => return Err(Errno::EINVAL),
            }
        };
        match content {
            Ok(entry) => {
                let cur = self.current();
                cur.reader(entry)
                    .read_at(offset, size as usize)
                    .map_err(|e| self.log_entry_error(ino, &cur.archive, &e))
            }
            Err(id) => {
                let file = self.overlay.upper_file(id)?;
                let mut buf = vec![0u8; size as usize];
                let mut n = 0;
                while n < buf.len() {
                    match file.read_at(&mut buf[n..], offset + n as u64) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_errno(&e)),
                    }
                }
                buf.truncate(n);
                Ok(buf)
            }
        }
    }

    /// Up to `max` entries of directory `ino` after `offset` (0: from the start, with "." and "..").
    pub fn readdir(&self, ino: Ino, offset: u64, max: usize) -> Result<Vec<DirEntry>, Errno> {
        let tree = self.overlay.tree();
        let dir = tree.node(ino).ok_or(Errno::ENOENT)?;
        let d = dir.dir().ok_or(Errno::ENOTDIR)?;
        let mut out = Vec::new();
        for (cookie, name, target) in [(1u64, &b"."[..], ino), (2, b"..", dir.parent)] {
            if cookie > offset {
                let attr = tree.node(target).map(|n| n.attr).ok_or(Errno::ENOENT)?;
                out.push(DirEntry {
                    ino: target,
                    cookie,
                    name: name.to_vec(),
                    attr,
                });
            }
        }
        let from = offset.saturating_sub(2) as usize;
        for (pos, name, child) in d.entries_from(from).take(max) {
            let Some(n) = tree.node(child) else { continue };
            out.push(DirEntry {
                ino: child,
                cookie: pos as u64 + 3,
                name: name.to_vec(),
                attr: n.attr,
            });
        }
        Ok(out)
    }

    /// (blocks, free blocks, available blocks, files, free files, block size) for statfs. Writable
    /// mounts report the space of the upper layer's filesystem, where new data goes.
    pub fn statfs(&self) -> (u64, u64, u64, u64, u64, u32) {
        if let Some(root) = self.overlay.upper_root()
            && let Ok(s) = nix::sys::statvfs::statvfs(root)
        {
            return (
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.fragment_size() as u32,
            );
        }
        let cur = self.current();
        let nodes = self.overlay.tree().live() as u64;
        (
            cur.archive.index().file_len.div_ceil(4096),
            0,
            0,
            nodes,
            0,
            4096,
        )
    }

    // Changes: each answers with the new node's attributes, which gain a kernel reference.

    fn created(&self, r: Result<(Ino, Attr), Errno>) -> Result<(Ino, Attr), Errno> {
        let (ino, attr) = r?;
        self.overlay.remember(ino);
        Ok((ino, attr))
    }

    pub fn mkdir(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Attr), Errno> {
        self.created(self.overlay.mkdir(parent, name, mode, uid, gid))
    }

    pub fn create(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Attr), Errno> {
        if mode & libc::S_IFMT != 0 && mode & libc::S_IFMT != libc::S_IFREG {
            // FIFOs, sockets and devices cannot be kept in a zip archive.
            return Err(Errno::EPERM);
        }
        self.created(self.overlay.create(parent, name, mode, uid, gid))
    }

    pub fn symlink(
        &self,
        parent: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Attr), Errno> {
        self.created(self.overlay.symlink(parent, name, target, uid, gid))
    }

    pub fn link(&self, ino: Ino, parent: Ino, name: &[u8]) -> Result<(Ino, Attr), Errno> {
        self.created(self.overlay.link(ino, parent, name))
    }

    pub fn unlink(&self, parent: Ino, name: &[u8]) -> Result<(), Errno> {
        self.overlay.unlink(parent, name, false)
    }

    pub fn rmdir(&self, parent: Ino, name: &[u8]) -> Result<(), Errno> {
        self.overlay.unlink(parent, name, true)
    }

    pub fn rename(
        &self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.overlay.rename(from_dir, from, to_dir, to, flags)
    }

    pub fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let cur = self.current();
        self.overlay.write(ino, offset, data, &cur.archive)?;
        Ok(data.len() as u32)
    }

    pub fn setattr(&self, ino: Ino, s: SetAttr) -> Result<Attr, Errno> {
        if !self.is_writable() {
            return Err(Errno::EROFS);
        }
        let cur = self.current();
        self.overlay.setattr(ino, s, &cur.archive)
    }

    pub fn fallocate(&self, ino: Ino, mode: i32, offset: u64, len: u64) -> Result<(), Errno> {
        let cur = self.current();
        self.overlay.fallocate(ino, mode, offset, len, &cur.archive)
    }

    pub fn fsync(&self, ino: Ino) -> Result<(), Errno> {
        self.overlay.fsync(ino)
    }
}
