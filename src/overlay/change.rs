//! The changes a writable overlay accepts: each takes the save gate shared, journals the change and
//! applies it to the tree. Operations that hand a node to the kernel count that reference before
//! they let go of the tree, so the node cannot be freed before the kernel knows it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use nix::errno::Errno;

use super::base::ArchiveEntry;
use super::journal::{Op, Record};
use super::tree::{self, Attr, Content, Ino, NodeRef, RenameMode, Tree};
use super::{Layers, OpError, Overlay, Writable, apply};
use crate::archive::Kind;
use crate::clock;

/// The attribute changes of a setattr request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<clock::Time>,
}

/// An upper file's mtime is its data file's mtime: replay reads it from there, so every change to
/// one goes to the other.
fn set_file_time(file: &File, t: clock::Time) -> Result<(), OpError> {
    let ts = nix::sys::time::TimeSpec::new(t.0, i64::from(t.1));
    nix::sys::stat::futimens(file, &ts, &ts)
        .map_err(|e| OpError::upper("set a file's time")(e.into()))
}

/// (size, mtime) of a data file, as the kernel recorded them.
fn file_state(file: &File) -> Result<(u64, clock::Time), OpError> {
    use std::os::unix::fs::MetadataExt;
    let md = file.metadata().map_err(OpError::upper("stat a file"))?;
    Ok((md.len(), (md.mtime(), md.mtime_nsec() as u32)))
}

/// Copies an archive entry's data into a new upper file. A damaged entry is the archive's fault
/// and a failed write the upper layer's; the error says which.
fn copy_up(entry: &ArchiveEntry, file: &File) -> Result<(), OpError> {
    use std::io::{Read, Write};
    let mut reader = entry.decoder().map_err(|e| entry.failed(e))?;
    let mut writer = io::BufWriter::with_capacity(1 << 20, file);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(entry.failed(e.into())),
        };
        writer
            .write_all(&buf[..n])
            .map_err(OpError::upper("copy a file up"))?;
    }
    writer.flush().map_err(OpError::upper("copy a file up"))
}

/// Records a data file's size and mtime in its node.
fn note_file_state(tree: &mut Tree, ino: Ino, file: &File) -> Result<(), OpError> {
    let (size, mtime) = file_state(file)?;
    if let Some(n) = tree.node_mut(ino) {
        n.attr.size = size;
        n.attr.mtime = mtime;
        n.attr.ctime = mtime;
    }
    Ok(())
}

/// The path of `name` in `parent`, which must be a directory that still has a name.
fn new_path(tree: &Tree, parent: Ino, name: &[u8]) -> Result<Vec<u8>, OpError> {
    let p = tree.node(parent).ok_or(Errno::ENOENT)?;
    if p.attr.kind != Kind::Dir {
        return Err(Errno::ENOTDIR.into());
    }
    if !p.is_named() {
        return Err(Errno::ENOENT.into());
    }
    tree::check_name(name)?;
    Ok(tree.child_path(parent, name))
}

fn path_of(tree: &Tree, ino: Ino) -> Option<Vec<u8>> {
    let n = tree.node(ino)?;
    n.is_named().then(|| tree.child_path(n.parent, &n.name))
}

/// A node to make: where, with which permission bits, for whom (the caller of the request).
#[derive(Debug, Clone, Copy)]
pub struct NewNode<'a> {
    pub parent: Ino,
    pub name: &'a [u8],
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
}

impl NewNode<'_> {
    /// Its path, and its permission bits and owner as native filesystems give them: a setgid
    /// directory passes on its group (and, to directories, the setgid bit).
    fn resolve(&self, tree: &Tree, dir: bool) -> Result<(Vec<u8>, u32, u32, u32), OpError> {
        let path = new_path(tree, self.parent, self.name)?;
        let perm = self.perm & 0o7777;
        Ok(match tree.node(self.parent) {
            Some(p) if p.attr.perm & 0o2000 != 0 => (
                path,
                perm | if dir { 0o2000 } else { 0 },
                self.uid,
                p.attr.gid,
            ),
            _ => (path, perm, self.uid, self.gid),
        })
    }
}

/// The node as the kernel is told about it, with the reference the kernel takes by receiving it.
fn handed_out(tree: &Tree, ino: Ino) -> Result<NodeRef, OpError> {
    let n = tree.node(ino).ok_or(Errno::ENOENT)?;
    n.lookups.fetch_add(1, Ordering::AcqRel);
    Ok(NodeRef {
        ino,
        generation: n.generation,
        attr: n.attr,
    })
}

impl Overlay {
    /// Journals `op` and applies it. The caller holds the gate.
    fn change(&self, rw: &Writable, tree: &mut Tree, op: Op) -> Result<apply::Applied, OpError> {
        // Before the first change since a save is acknowledged, the lock record says so: another
        // user who finds it after this node died knows there is work only we can recover. (Not a
        // transaction's: nobody recovers half of one.)
        if !rw.transaction {
            rw.lock
                .note_unsaved(true)
                .map_err(OpError::upper("mark the writer lock's record"))?;
        }
        let t = clock::now();
        rw.journal
            .lock()
            .expect("journal lock")
            .append(&Record { t, op: op.clone() })
            .map_err(OpError::upper("append to the journal"))?;
        rw.changes.fetch_add(1, Ordering::Relaxed);
        let applied = apply::apply(tree, &op, t)?;
        if let Some(ino) = applied.unlinked {
            Self::free_if_unused(rw, tree, ino);
        }
        Ok(applied)
    }

    /// Runs one change: the save gate shared (a save waits for it, and it for a save), the layers
    /// exclusively.
    fn edit<R>(
        &self,
        f: impl FnOnce(&Writable, &mut Layers) -> Result<R, OpError>,
    ) -> Result<R, OpError> {
        let (rw, _gate) = self.changing()?;
        let r = f(rw, &mut self.layers.write().expect("layers lock"))?;
        Self::still_holding(rw)?;
        Ok(r)
    }

    pub fn mkdir(&self, new: &NewNode<'_>) -> Result<NodeRef, OpError> {
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let (path, perm, uid, gid) = new.resolve(tree, true)?;
            let op = Op::Mkdir {
                path,
                perm,
                uid,
                gid,
            };
            let a = self.change(rw, tree, op)?;
            handed_out(tree, a.ino.expect("created"))
        })
    }

    /// A new, empty regular file.
    pub fn create(&self, new: &NewNode<'_>) -> Result<NodeRef, OpError> {
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let (path, perm, uid, gid) = new.resolve(tree, false)?;
            if tree.lookup(new.parent, new.name).is_some() {
                return Err(Errno::EEXIST.into());
            }
            let (id, file) = rw.upper.create().map_err(OpError::upper("create a file"))?;
            let op = Op::Create {
                path,
                id,
                perm,
                uid,
                gid,
            };
            match self.change(rw, tree, op) {
                Ok(a) => {
                    let ino = a.ino.expect("created");
                    set_file_time(&file, tree.node(ino).expect("created").attr.mtime)?;
                    handed_out(tree, ino)
                }
                Err(e) => {
                    rw.upper.remove(id);
                    Err(e)
                }
            }
        })
    }

    /// A new FIFO, socket or device (`kind` must be one of them).
    pub fn mknod(&self, new: &NewNode<'_>, kind: Kind, rdev: u64) -> Result<NodeRef, OpError> {
        if !kind.is_special() {
            return Err(Errno::EINVAL.into());
        }
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let (path, perm, uid, gid) = new.resolve(tree, false)?;
            let op = Op::Mknod {
                path,
                kind: kind.type_bits(),
                perm,
                uid,
                gid,
                rdev: if kind.is_device() { rdev } else { 0 },
            };
            let a = self.change(rw, tree, op)?;
            handed_out(tree, a.ino.expect("created"))
        })
    }

    pub fn symlink(&self, new: &NewNode<'_>, target: &[u8]) -> Result<NodeRef, OpError> {
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let (path, _, uid, gid) = new.resolve(tree, false)?;
            let op = Op::Symlink {
                path,
                target: target.to_vec(),
                uid,
                gid,
            };
            let a = self.change(rw, tree, op)?;
            handed_out(tree, a.ino.expect("created"))
        })
    }

    pub fn link(&self, ino: Ino, parent: Ino, name: &[u8]) -> Result<NodeRef, OpError> {
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let to = new_path(tree, parent, name)?;
            let from = path_of(tree, ino).ok_or(Errno::ENOENT)?;
            self.change(rw, tree, Op::Link { from, to })?;
            handed_out(tree, ino)
        })
    }

    pub fn unlink(&self, parent: Ino, name: &[u8], dir: bool) -> Result<(), OpError> {
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let path = new_path(tree, parent, name)?;
            let op = if dir {
                Op::Rmdir { path }
            } else {
                Op::Unlink { path }
            };
            self.change(rw, tree, op).map(|_| ())
        })
    }

    pub fn rename(
        &self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        mode: RenameMode,
    ) -> Result<(), OpError> {
        self.edit(|rw, layers| {
            let tree = &mut layers.tree;
            let from = new_path(tree, from_dir, from)?;
            let to = new_path(tree, to_dir, to)?;
            self.change(rw, tree, Op::Rename { from, to, mode })
                .map(|_| ())
        })
    }

    /// Makes `ino`'s content an upper data file, copying the archive entry's bytes when `keep`. The
    /// entry is decoded from the base it belongs to: both come from the same `layers`.
    pub(super) fn ensure_upper(
        &self,
        rw: &Writable,
        layers: &mut Layers,
        ino: Ino,
        keep: bool,
    ) -> Result<Arc<File>, OpError> {
        let node = layers.tree.node(ino).ok_or(Errno::ENOENT)?;
        let entry = match &node.content {
            Content::Upper(id) => {
                return rw.upper.file(*id).map_err(OpError::upper("open a file"));
            }
            Content::Archive(no) if node.attr.kind == Kind::File => layers.entry(no),
            Content::Dir(_) => return Err(Errno::EISDIR.into()),
            _ => return Err(Errno::EINVAL.into()),
        };
        let (id, file) = rw.upper.create().map_err(OpError::upper("create a file"))?;
        if keep {
            if let Err(e) = copy_up(&entry, &file) {
                rw.upper.remove(id);
                return Err(e);
            }
        }
        let tree = &mut layers.tree;
        match path_of(tree, ino) {
            Some(path) => {
                if let Err(e) = self.change(rw, tree, Op::CopyUp { path, id }) {
                    rw.upper.remove(id);
                    return Err(e);
                }
            }
            None => tree.node_mut(ino).expect("exists").content = Content::Upper(id),
        }
        // Copying up changes where the bytes live, not the file's mtime.
        set_file_time(&file, tree.node(ino).expect("exists").attr.mtime)?;
        Ok(file)
    }

    /// Writes `data` at `offset` of the regular file `ino`, copying it up first if needed. Returns
    /// the bytes written: fewer than asked when the disk filled part way, as on a native
    /// filesystem.
    pub fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, OpError> {
        let (rw, _gate) = self.changing()?;
        let upper = match self.view().tree().node(ino).map(|n| &n.content) {
            Some(Content::Upper(id)) => Some(*id),
            Some(_) => None,
            None => return Err(Errno::ENOENT.into()),
        };
        let file = match upper {
            Some(id) => rw.upper.file(id).map_err(OpError::upper("open a file"))?,
            None => self.ensure_upper(
                rw,
                &mut self.layers.write().expect("layers lock"),
                ino,
                true,
            )?,
        };
        let mut written = 0;
        let mut failure = None;
        while written < data.len() {
            match file.write_at(&data[written..], offset + written as u64) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(OpError::upper("write")(e));
                    break;
                }
            }
        }
        // Whatever reached the data file (all, some, or none of it) is what the node shows.
        note_file_state(
            &mut self.layers.write().expect("layers lock").tree,
            ino,
            &file,
        )?;
        match failure {
            Some(e) if written == 0 => Err(e),
            _ => {
                Self::still_holding(rw)?;
                Ok(written)
            }
        }
    }

    /// chmod, chown, truncate and utimens.
    pub fn setattr(&self, ino: Ino, s: SetAttr) -> Result<Attr, OpError> {
        self.edit(|rw, layers| {
            if layers.tree.node(ino).is_none() {
                return Err(Errno::ENOENT.into());
            }
            if let Some(size) = s.size {
                let file = self.ensure_upper(rw, layers, ino, size > 0)?;
                let resized = file.set_len(size).map_err(OpError::upper("resize a file"));
                note_file_state(&mut layers.tree, ino, &file)?;
                resized?;
            }
            let tree = &mut layers.tree;
            if s.perm.is_some() || s.uid.is_some() || s.gid.is_some() || s.mtime.is_some() {
                match path_of(tree, ino) {
                    Some(path) => {
                        let op = Op::SetAttr {
                            path,
                            perm: s.perm,
                            uid: s.uid,
                            gid: s.gid,
                            mtime: s.mtime,
                        };
                        self.change(rw, tree, op)?;
                    }
                    None => {
                        // A file without a name (unlinked, still open): nothing to journal.
                        let n = tree.node_mut(ino).expect("exists");
                        n.attr.perm = s.perm.map_or(n.attr.perm, |p| p & 0o7777);
                        n.attr.uid = s.uid.unwrap_or(n.attr.uid);
                        n.attr.gid = s.gid.unwrap_or(n.attr.gid);
                        n.attr.mtime = s.mtime.unwrap_or(n.attr.mtime);
                        n.attr.ctime = clock::now();
                    }
                }
                if let (Some(m), Some(Content::Upper(id))) =
                    (s.mtime, tree.node(ino).map(|n| &n.content))
                {
                    let file = rw.upper.file(*id).map_err(OpError::upper("open a file"))?;
                    set_file_time(&file, m)?;
                }
            }
            Ok(tree.node(ino).expect("exists").attr)
        })
    }

    /// fallocate(2) on the regular file `ino`.
    pub fn fallocate(&self, ino: Ino, mode: i32, offset: u64, len: u64) -> Result<(), OpError> {
        self.edit(|rw, layers| {
            let file = self.ensure_upper(rw, layers, ino, true)?;
            let allocated = nix::fcntl::fallocate(
                &*file,
                nix::fcntl::FallocateFlags::from_bits_truncate(mode),
                offset as i64,
                len as i64,
            )
            .map_err(|e| match e {
                // Modes this filesystem does not do are the answer; the rest is the disk's fault.
                Errno::EOPNOTSUPP | Errno::EINVAL => OpError::Answer(e),
                _ => OpError::upper("allocate space")(e.into()),
            });
            note_file_state(&mut layers.tree, ino, &file)?;
            allocated
        })
    }
}
