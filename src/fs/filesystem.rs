//! The filesystem's semantics, independent of the kernel protocol: every request the kernel sends,
//! answered from the overlay (names, attributes, changes, and the archive content each node points
//! at), returning an errno on failure. The `fuse` module adapts this to fuser; tests call it
//! directly (`tests/semantics.rs`), without a kernel.

use std::os::unix::fs::FileExt;

use std::sync::atomic::AtomicU64;

use nix::errno::Errno;

use crate::archive::{EntryError, Kind};
use crate::display;
use crate::overlay::tree::{Attr, Ino, NAME_MAX, NodeRef, ROOT_INO, RenameMode};
use crate::overlay::{FileData, LinkTarget, NewNode, OpError, Overlay, SetAttr};

/// Largest symlink target we serve (Linux's PATH_MAX).
const SYMLINK_MAX: u64 = 4096;

/// One directory entry as readdir returns it; `cookie` is what the kernel passes back to resume
/// after this entry.
pub struct DirEntry {
    pub ino: Ino,
    pub generation: u64,
    pub cookie: u64,
    pub name: Vec<u8>,
    pub attr: Attr,
}

/// What `statfs` reports.
#[derive(Debug, Clone, Copy)]
pub struct FsStats {
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub block_size: u32,
}

pub struct Filesystem {
    overlay: Overlay,
    /// Archive entries that could not be read (corrupt, I/O errors), by a read or a copy-up, for
    /// `status`; counted where failures are logged (`fuse::FuseAdapter::fail`).
    pub read_errors: AtomicU64,
}

impl Filesystem {
    pub fn new(overlay: Overlay) -> Filesystem {
        Filesystem {
            overlay,
            read_errors: AtomicU64::new(0),
        }
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn is_writable(&self) -> bool {
        self.overlay.is_writable()
    }

    pub fn getattr(&self, ino: Ino) -> Result<Attr, OpError> {
        self.overlay
            .view()
            .tree()
            .node(ino)
            .map(|n| n.attr)
            .ok_or(OpError::Answer(Errno::ENOENT))
    }

    /// Looks up `name` in `parent`; a found node gains a kernel reference.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<NodeRef, OpError> {
        let view = self.overlay.view();
        let tree = view.tree();
        let dir = tree.node(parent).ok_or(Errno::ENOENT)?;
        let d = dir.dir().ok_or(Errno::ENOTDIR)?;
        let ino = match name {
            b"." => parent,
            b".." => dir.parent,
            n if n.len() > NAME_MAX => return Err(Errno::ENAMETOOLONG.into()),
            _ => d.get(name).ok_or(Errno::ENOENT)?,
        };
        let node = tree.node(ino).ok_or(Errno::ENOENT)?;
        let found = NodeRef {
            ino,
            generation: node.generation,
            attr: node.attr,
        };
        self.overlay.remember(&view, ino);
        Ok(found)
    }

    pub fn forget(&self, ino: Ino, n: u64) {
        self.overlay.forget(ino, n);
    }

    /// The node's path inside the mount, escaped for log lines.
    pub fn path_of(&self, ino: Ino) -> String {
        let view = self.overlay.view();
        let tree = view.tree();
        match tree.node(ino) {
            Some(n) if ino != ROOT_INO => {
                format!("/{}", display::escape(&tree.child_path(n.parent, &n.name)))
            }
            _ => "/".into(),
        }
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, OpError> {
        match self.overlay.link_target(ino)? {
            LinkTarget::Inline(t) => Ok(t),
            LinkTarget::Archive(entry) => {
                if entry.size() > SYMLINK_MAX {
                    let e = EntryError::Corrupt("symlink target longer than 4096 bytes".into());
                    return Err(entry.failed(e));
                }
                entry.read_all().map_err(|e| entry.failed(e))
            }
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>, OpError> {
        match self.overlay.file_data(ino)? {
            FileData::Archive(entry) => entry
                .read_at(offset, size as usize)
                .map_err(|e| entry.failed(e)),
            FileData::Upper(file) => {
                let mut buf = vec![0u8; size as usize];
                let mut n = 0;
                while n < buf.len() {
                    match file.read_at(&mut buf[n..], offset + n as u64) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(OpError::upper("read a changed file")(e)),
                    }
                }
                buf.truncate(n);
                Ok(buf)
            }
        }
    }

    /// Up to `max` entries of directory `ino` after `offset` (0: from the start, with "." and "..").
    /// With `plus` (readdirplus), every entry but "." and ".." gains a kernel reference; the caller
    /// forgets those it could not pass on.
    pub fn readdir(
        &self,
        ino: Ino,
        offset: u64,
        max: usize,
        plus: bool,
    ) -> Result<Vec<DirEntry>, OpError> {
        let view = self.overlay.view();
        let tree = view.tree();
        let dir = tree.node(ino).ok_or(Errno::ENOENT)?;
        let d = dir.dir().ok_or(Errno::ENOTDIR)?;
        let mut out = Vec::new();
        for (cookie, name, target) in [(1u64, &b"."[..], ino), (2, b"..", dir.parent)] {
            if cookie > offset {
                let n = tree.node(target).ok_or(Errno::ENOENT)?;
                out.push(DirEntry {
                    ino: target,
                    generation: n.generation,
                    cookie,
                    name: name.to_vec(),
                    attr: n.attr,
                });
            }
        }
        let from = offset.saturating_sub(2) as usize;
        for (pos, name, child) in d.entries_from(from).take(max) {
            let Some(n) = tree.node(child) else { continue };
            if plus {
                self.overlay.remember(&view, child);
            }
            out.push(DirEntry {
                ino: child,
                generation: n.generation,
                cookie: pos as u64 + 3,
                name: name.to_vec(),
                attr: n.attr,
            });
        }
        Ok(out)
    }

    /// Writable mounts report the space of the upper layer's filesystem, where new data goes.
    pub fn statfs(&self) -> FsStats {
        if let Some(root) = self.overlay.upper_root()
            && let Ok(s) = nix::sys::statvfs::statvfs(root)
        {
            return FsStats {
                blocks: s.blocks(),
                blocks_free: s.blocks_free(),
                blocks_available: s.blocks_available(),
                files: s.files(),
                files_free: s.files_free(),
                block_size: s.fragment_size() as u32,
            };
        }
        let view = self.overlay.view();
        FsStats {
            blocks: view.base().archive().index().file_len.div_ceil(4096),
            blocks_free: 0,
            blocks_available: 0,
            files: view.tree().live() as u64,
            files_free: 0,
            block_size: 4096,
        }
    }

    // Changes: each answers with the new node, which has gained a kernel reference.

    pub fn mkdir(&self, new: &NewNode<'_>) -> Result<NodeRef, OpError> {
        self.overlay.mkdir(new)
    }

    /// A regular file (open with O_CREAT).
    pub fn create(&self, new: &NewNode<'_>) -> Result<NodeRef, OpError> {
        self.overlay.create(new)
    }

    /// mknod(2): a regular file, FIFO, socket, or (for root) a device; the mount is nodev, so a
    /// device node can be kept but not opened.
    pub fn mknod(&self, new: &NewNode<'_>, mode: u32, rdev: u64) -> Result<NodeRef, OpError> {
        match Kind::from_mode(mode) {
            Kind::File => self.overlay.create(new),
            k @ (Kind::Fifo | Kind::Socket) => self.overlay.mknod(new, k, 0),
            k @ (Kind::CharDevice | Kind::BlockDevice) if new.uid == 0 => {
                self.overlay.mknod(new, k, rdev)
            }
            Kind::CharDevice | Kind::BlockDevice => Err(Errno::EPERM.into()),
            Kind::Dir | Kind::Symlink => Err(Errno::EINVAL.into()),
        }
    }

    pub fn symlink(&self, new: &NewNode<'_>, target: &[u8]) -> Result<NodeRef, OpError> {
        self.overlay.symlink(new, target)
    }

    pub fn link(&self, ino: Ino, parent: Ino, name: &[u8]) -> Result<NodeRef, OpError> {
        self.overlay.link(ino, parent, name)
    }

    pub fn unlink(&self, parent: Ino, name: &[u8]) -> Result<(), OpError> {
        self.overlay.unlink(parent, name, false)
    }

    pub fn rmdir(&self, parent: Ino, name: &[u8]) -> Result<(), OpError> {
        self.overlay.unlink(parent, name, true)
    }

    pub fn rename(
        &self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        flags: u32,
    ) -> Result<(), OpError> {
        let mode = RenameMode::from_flags(flags)?;
        self.overlay.rename(from_dir, from, to_dir, to, mode)
    }

    pub fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<u32, OpError> {
        self.overlay.write(ino, offset, data).map(|n| n as u32)
    }

    pub fn setattr(&self, ino: Ino, s: SetAttr) -> Result<Attr, OpError> {
        self.overlay.setattr(ino, s)
    }

    pub fn fallocate(&self, ino: Ino, mode: i32, offset: u64, len: u64) -> Result<(), OpError> {
        self.overlay.fallocate(ino, mode, offset, len)
    }

    pub fn fsync(&self, ino: Ino) -> Result<(), OpError> {
        self.overlay.fsync(ino)
    }
}
