//! The overlay: the archive's tree merged with the changes made since the last save. Read-only
//! mounts use the tree alone. Writable mounts add the writer lock, the upper layer (content of new
//! and changed files, on disk) and the journal (every change to names and metadata), so that a
//! daemon killed at any moment loses nothing that was written: mounting again replays the journal.
//!
//! Every change is appended to the journal (one write) and only then applied to the tree, through
//! `apply::apply`, the same function replay uses. Changes take the save gate shared; a save takes
//! it exclusively, so it sees a still tree while reads go on.

mod apply;
pub mod journal;
pub mod lock;
mod save;
pub mod tree;
pub mod upper;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use nix::errno::Errno;

use crate::archive::{Archive, Index, Kind};
use crate::clock;
use journal::{Identity, Journal, Op, Record};
use lock::{Holder, LockError, WriterLock};
use tree::{Attr, BuildReport, Content, Defaults, Ino, Tree};
use upper::Upper;

pub use save::{SaveGuard, SavePlan};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("upper layer {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
    #[error(
        "the upper layer {dir} holds unsaved changes made to another version of {archive}; the \
         archive was replaced since. Mount --read-only to see the archive as it is, or move {dir} \
         aside to mount writable without those changes"
    )]
    Mismatch { dir: PathBuf, archive: PathBuf },
}

/// What opening a writable overlay found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Changes replayed from the journal (a previous daemon's unsaved work).
    pub replayed: usize,
    /// A save that completed before its daemon died; its journal was retired.
    pub finished_save: bool,
    /// A stale writer lock that was taken over.
    pub took_over: Option<Holder>,
    /// Leftover temporary archives from interrupted saves that were removed.
    pub removed_temporaries: usize,
}

struct Writable {
    upper: Upper,
    journal: Mutex<Journal>,
    identity: Mutex<Identity>,
    /// Changes journaled since the last save. Writes to a file already in the upper layer are not
    /// journaled, but after a save no file is: the first change to each is (create or copy-up).
    changes: AtomicU64,
    gate: RwLock<()>,
    lock: WriterLock,
}

pub struct Overlay {
    tree: RwLock<Tree>,
    rw: Option<Writable>,
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// An upper file's mtime is its data file's mtime: replay reads it from there, so every change to
/// one goes to the other.
fn set_file_time(file: &File, t: clock::Time) -> Result<(), Errno> {
    let ts = nix::sys::time::TimeSpec::new(t.0, i64::from(t.1));
    nix::sys::stat::futimens(file, &ts, &ts).map_err(|e| Errno::from_raw(e as i32))
}

/// (size, mtime) of a data file, as the kernel recorded them.
fn file_state(file: &File) -> Result<(u64, clock::Time), Errno> {
    use std::os::unix::fs::MetadataExt;
    let md = file.metadata().map_err(|e| errno(&e))?;
    Ok((md.len(), (md.mtime(), md.mtime_nsec() as u32)))
}

/// The identity of an archive's current version.
pub fn identity_of(index: &Index) -> Identity {
    Identity {
        size: index.file_len,
        cd_crc: index.cd_crc,
        entries: index.len() as u64,
    }
}

/// Changes of `archive` waiting in its upper layer under `upper_root` while it is not mounted (they
/// come back at the next writable mount). The journal may be based on an older version of the
/// archive; the next mount decides what applies.
pub fn unsaved_on_disk(upper_root: &Path, archive: &Path) -> io::Result<usize> {
    Journal::pending_changes(&upper::dir_for(upper_root, archive).join(upper::JOURNAL))
}

/// Changes made since the last save, for `status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pending {
    pub changes: u64,
    pub files: u64,
    pub bytes: u64,
}

/// The attribute changes of a setattr request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetAttr {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<clock::Time>,
}

impl Overlay {
    pub fn read_only(index: &Index, defaults: Defaults) -> (Overlay, BuildReport) {
        let (tree, report) = Tree::build(index, defaults);
        (
            Overlay {
                tree: RwLock::new(tree),
                rw: None,
            },
            report,
        )
    }

    /// Opens `archive` for writing: takes the writer lock, then replays the journal of the upper
    /// layer in `upper_dir`, if a previous daemon left one.
    pub fn writable(
        archive: &Archive,
        defaults: Defaults,
        upper_dir: &Path,
        mountpoint: &Path,
    ) -> Result<(Overlay, BuildReport, Recovery), OverlayError> {
        let (lock, took_over) = WriterLock::acquire(archive.path(), mountpoint)?;
        let io_err = |source| OverlayError::Io {
            dir: upper_dir.to_owned(),
            source,
        };
        let upper = Upper::open(upper_dir).map_err(io_err)?;
        let identity = identity_of(archive.index());
        let (mut tree, report) = Tree::build(archive.index(), defaults);
        let mut recovery = Recovery {
            took_over,
            ..Recovery::default()
        };
        let journal_path = upper.journal_path();
        let records = match Journal::read(&journal_path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(e)),
        };
        let base = records.first().and_then(|r| match r.op {
            Op::Base(b) => Some(b),
            _ => None,
        });
        let completed = records.iter().any(|r| r.op == Op::Committing(identity));
        let journal = match base {
            Some(b) if b == identity => {
                recovery.replayed = save::replay(&mut tree, &records[1..], &upper);
                Journal::open(&journal_path).map_err(io_err)?
            }
            Some(_) if completed || records.len() == 1 => {
                // The save finished (its rename happened) or there was nothing to keep.
                recovery.finished_save = completed;
                save::clear_data(&upper, &tree);
                Journal::create(&journal_path, identity, clock::now()).map_err(io_err)?
            }
            Some(_) => {
                return Err(OverlayError::Mismatch {
                    dir: upper_dir.to_owned(),
                    archive: archive.path().to_owned(),
                });
            }
            None => {
                save::clear_data(&upper, &tree);
                Journal::create(&journal_path, identity, clock::now()).map_err(io_err)?
            }
        };
        recovery.removed_temporaries = save::remove_temporaries(archive.path());
        let rw = Writable {
            upper,
            journal: Mutex::new(journal),
            identity: Mutex::new(identity),
            changes: AtomicU64::new(recovery.replayed as u64),
            gate: RwLock::new(()),
            lock,
        };
        Ok((
            Overlay {
                tree: RwLock::new(tree),
                rw: Some(rw),
            },
            report,
            recovery,
        ))
    }

    /// Clears the writer lock's holder record (the daemon, on its way out).
    pub fn release_lock(&self) {
        if let Some(rw) = &self.rw {
            rw.lock.clear();
        }
    }

    /// Records the calling process as the writer lock's holder (the daemon, once forked).
    pub fn claim_lock(&self) -> io::Result<()> {
        match &self.rw {
            Some(rw) => rw.lock.claim(),
            None => Ok(()),
        }
    }

    pub fn is_writable(&self) -> bool {
        self.rw.is_some()
    }

    pub fn tree(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree.read().expect("tree lock")
    }

    pub fn upper_root(&self) -> Option<&Path> {
        self.rw.as_ref().map(|rw| rw.upper.root())
    }

    fn writable_parts(&self) -> Result<&Writable, Errno> {
        self.rw.as_ref().ok_or(Errno::EROFS)
    }

    /// Journals `op` and applies it. The caller holds the gate.
    fn change(&self, rw: &Writable, tree: &mut Tree, op: Op) -> Result<apply::Applied, Errno> {
        let t = clock::now();
        rw.journal
            .lock()
            .expect("journal lock")
            .append(&Record { t, op: op.clone() })
            .map_err(|e| errno(&e))?;
        rw.changes.fetch_add(1, Ordering::Relaxed);
        let applied = apply::apply(tree, &op, t)?;
        if let Some(ino) = applied.unlinked {
            Self::free_if_unused(rw, tree, ino);
        }
        Ok(applied)
    }

    fn free_if_unused(rw: &Writable, tree: &mut Tree, ino: Ino) {
        if let Some(node) = tree.release_if_unused(ino)
            && let Content::Upper(id) = node.content
        {
            rw.upper.remove(id);
        }
    }

    /// The path of `name` in `parent`, which must be a directory that still has a name.
    fn new_path(tree: &Tree, parent: Ino, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let p = tree.node(parent).ok_or(Errno::ENOENT)?;
        if p.attr.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        if !p.is_named() {
            return Err(Errno::ENOENT);
        }
        tree::check_name(name)?;
        Ok(tree.child_path(parent, name))
    }

    fn path_of(tree: &Tree, ino: Ino) -> Option<Vec<u8>> {
        let n = tree.node(ino)?;
        n.is_named().then(|| tree.child_path(n.parent, &n.name))
    }

    /// Owner and permission bits of a new node: a setgid directory passes on its group (and, to
    /// directories, the setgid bit), as on native filesystems.
    fn new_owner(
        tree: &Tree,
        parent: Ino,
        perm: u32,
        uid: u32,
        gid: u32,
        dir: bool,
    ) -> (u32, u32, u32) {
        match tree.node(parent) {
            Some(p) if p.attr.perm & 0o2000 != 0 => {
                (perm | if dir { 0o2000 } else { 0 }, uid, p.attr.gid)
            }
            _ => (perm, uid, gid),
        }
    }

    fn attr_of(tree: &Tree, ino: Ino) -> Result<(Ino, Attr), Errno> {
        Ok((ino, tree.node(ino).ok_or(Errno::ENOENT)?.attr))
    }

    pub fn mkdir(
        &self,
        parent: Ino,
        name: &[u8],
        perm: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Attr), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let path = Self::new_path(&tree, parent, name)?;
        let (perm, uid, gid) = Self::new_owner(&tree, parent, perm & 0o7777, uid, gid, true);
        let a = self.change(
            rw,
            &mut tree,
            Op::Mkdir {
                path,
                perm,
                uid,
                gid,
            },
        )?;
        Self::attr_of(&tree, a.ino.expect("created"))
    }

    /// A new, empty regular file.
    pub fn create(
        &self,
        parent: Ino,
        name: &[u8],
        perm: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Attr), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let path = Self::new_path(&tree, parent, name)?;
        if tree.lookup(parent, name).is_some() {
            return Err(Errno::EEXIST);
        }
        let (perm, uid, gid) = Self::new_owner(&tree, parent, perm & 0o7777, uid, gid, false);
        let (id, file) = rw.upper.create().map_err(|e| errno(&e))?;
        match self.change(
            rw,
            &mut tree,
            Op::Create {
                path,
                id,
                perm,
                uid,
                gid,
            },
        ) {
            Ok(a) => {
                let (ino, attr) = Self::attr_of(&tree, a.ino.expect("created"))?;
                set_file_time(&file, attr.mtime)?;
                Ok((ino, attr))
            }
            Err(e) => {
                rw.upper.remove(id);
                Err(e)
            }
        }
    }

    pub fn symlink(
        &self,
        parent: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<(Ino, Attr), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let path = Self::new_path(&tree, parent, name)?;
        let (_, uid, gid) = Self::new_owner(&tree, parent, 0o777, uid, gid, false);
        let a = self.change(
            rw,
            &mut tree,
            Op::Symlink {
                path,
                target: target.to_vec(),
                uid,
                gid,
            },
        )?;
        Self::attr_of(&tree, a.ino.expect("created"))
    }

    pub fn link(&self, ino: Ino, parent: Ino, name: &[u8]) -> Result<(Ino, Attr), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let to = Self::new_path(&tree, parent, name)?;
        let from = Self::path_of(&tree, ino).ok_or(Errno::ENOENT)?;
        self.change(rw, &mut tree, Op::Link { from, to })?;
        Self::attr_of(&tree, ino)
    }

    pub fn unlink(&self, parent: Ino, name: &[u8], dir: bool) -> Result<(), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let path = Self::new_path(&tree, parent, name)?;
        let op = if dir {
            Op::Rmdir { path }
        } else {
            Op::Unlink { path }
        };
        self.change(rw, &mut tree, op).map(|_| ())
    }

    pub fn rename(
        &self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let from = Self::new_path(&tree, from_dir, from)?;
        let to = Self::new_path(&tree, to_dir, to)?;
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        self.change(rw, &mut tree, Op::Rename { from, to, flags })
            .map(|_| ())
    }

    /// Makes `ino`'s content an upper data file (copying the archive entry's bytes when `keep`).
    fn ensure_upper(
        &self,
        rw: &Writable,
        tree: &mut Tree,
        ino: Ino,
        archive: &Archive,
        keep: bool,
    ) -> Result<Arc<File>, Errno> {
        let node = tree.node(ino).ok_or(Errno::ENOENT)?;
        let entry = match node.content {
            Content::Upper(id) => return rw.upper.file(id).map_err(|e| errno(&e)),
            Content::Archive(entry) if node.attr.kind == Kind::File => entry,
            Content::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        let (id, file) = rw.upper.create().map_err(|e| errno(&e))?;
        if keep {
            let copied = archive
                .decoder(entry)
                .map_err(|e| Errno::from_raw(e.errno()))
                .and_then(|mut r| {
                    let mut w = io::BufWriter::with_capacity(1 << 20, &*file);
                    io::copy(&mut r, &mut w)
                        .and_then(|_| io::Write::flush(&mut w))
                        .map_err(|e| errno(&e))
                });
            if let Err(e) = copied {
                rw.upper.remove(id);
                return Err(e);
            }
        }
        match Self::path_of(tree, ino) {
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

    /// Writes `data` at `offset` of the regular file `ino`, copying it up first if needed.
    pub fn write(
        &self,
        ino: Ino,
        offset: u64,
        data: &[u8],
        archive: &Archive,
    ) -> Result<(), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let upper = match self.tree().node(ino).map(|n| &n.content) {
            Some(Content::Upper(id)) => Some(rw.upper.file(*id).map_err(|e| errno(&e))?),
            Some(_) => None,
            None => return Err(Errno::ENOENT),
        };
        let file = match upper {
            Some(f) => f,
            None => self.ensure_upper(
                rw,
                &mut self.tree.write().expect("tree lock"),
                ino,
                archive,
                true,
            )?,
        };
        file.write_all_at(data, offset).map_err(|e| errno(&e))?;
        let (size, mtime) = file_state(&file)?;
        let mut tree = self.tree.write().expect("tree lock");
        if let Some(n) = tree.node_mut(ino) {
            n.attr.size = size;
            n.attr.mtime = mtime;
            n.attr.ctime = mtime;
        }
        Ok(())
    }

    /// chmod, chown, truncate and utimens.
    pub fn setattr(&self, ino: Ino, s: SetAttr, archive: &Archive) -> Result<Attr, Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        if tree.node(ino).is_none() {
            return Err(Errno::ENOENT);
        }
        if let Some(size) = s.size {
            let file = self.ensure_upper(rw, &mut tree, ino, archive, size > 0)?;
            file.set_len(size).map_err(|e| errno(&e))?;
            let (size, mtime) = file_state(&file)?;
            let n = tree.node_mut(ino).expect("exists");
            n.attr.size = size;
            n.attr.mtime = mtime;
            n.attr.ctime = mtime;
        }
        if s.perm.is_some() || s.uid.is_some() || s.gid.is_some() || s.mtime.is_some() {
            match Self::path_of(&tree, ino) {
                Some(path) => {
                    let op = Op::SetAttr {
                        path,
                        perm: s.perm,
                        uid: s.uid,
                        gid: s.gid,
                        mtime: s.mtime,
                    };
                    self.change(rw, &mut tree, op)?;
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
                set_file_time(&*rw.upper.file(*id).map_err(|e| errno(&e))?, m)?;
            }
        }
        Ok(tree.node(ino).expect("exists").attr)
    }

    /// fallocate(2) on the regular file `ino`.
    pub fn fallocate(
        &self,
        ino: Ino,
        mode: i32,
        offset: u64,
        len: u64,
        archive: &Archive,
    ) -> Result<(), Errno> {
        let rw = self.writable_parts()?;
        let _gate = rw.gate.read().expect("gate");
        let mut tree = self.tree.write().expect("tree lock");
        let file = self.ensure_upper(rw, &mut tree, ino, archive, true)?;
        nix::fcntl::fallocate(
            &*file,
            nix::fcntl::FallocateFlags::from_bits_truncate(mode),
            offset as i64,
            len as i64,
        )
        .map_err(|e| Errno::from_raw(e as i32))?;
        let (size, mtime) = file_state(&file)?;
        let n = tree.node_mut(ino).expect("exists");
        n.attr.size = size;
        n.attr.mtime = mtime;
        n.attr.ctime = mtime;
        Ok(())
    }

    /// fsync(2): the file's data (if in the upper layer) and the journal reach the disk.
    pub fn fsync(&self, ino: Ino) -> Result<(), Errno> {
        let Some(rw) = &self.rw else { return Ok(()) };
        let upper_id = match self.tree().node(ino).map(|n| &n.content) {
            Some(Content::Upper(id)) => Some(*id),
            _ => None,
        };
        if let Some(id) = upper_id {
            rw.upper
                .file(id)
                .and_then(|f| f.sync_data())
                .map_err(|e| errno(&e))?;
            rw.upper.sync_dir(id).map_err(|e| errno(&e))?;
        }
        rw.journal
            .lock()
            .expect("journal lock")
            .sync()
            .map_err(|e| errno(&e))
    }

    /// The open upper data file of `ino`, when its content lives in the upper layer.
    pub fn upper_file(&self, id: u64) -> Result<Arc<File>, Errno> {
        self.writable_parts()?.upper.file(id).map_err(|e| errno(&e))
    }

    /// The kernel took another reference to `ino` (writable mounts count them).
    pub fn remember(&self, ino: Ino) {
        if self.rw.is_some()
            && let Some(n) = self.tree().node(ino)
        {
            n.lookups.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The kernel dropped `n` references to `ino`; a node without names is freed at zero.
    pub fn forget(&self, ino: Ino, n: u64) {
        let Some(rw) = &self.rw else { return };
        let left = {
            let tree = self.tree();
            let Some(node) = tree.node(ino) else { return };
            let before = node.lookups.fetch_sub(
                n.min(node.lookups.load(Ordering::Acquire)),
                Ordering::AcqRel,
            );
            before.saturating_sub(n)
        };
        if left == 0 {
            Self::free_if_unused(rw, &mut self.tree.write().expect("tree lock"), ino);
        }
    }

    /// Changes since the last save.
    pub fn pending(&self) -> Pending {
        let Some(rw) = &self.rw else {
            return Pending::default();
        };
        let (files, bytes) = rw.upper.usage();
        Pending {
            changes: rw.changes.load(Ordering::Relaxed),
            files,
            bytes,
        }
    }
}
