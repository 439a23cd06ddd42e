//! The overlay: the archive's tree merged with the changes made since the last save. Read-only
//! mounts use the tree alone. Writable mounts add the writer lock, the upper layer (content of new
//! and changed files, on disk) and the journal (every change to names and metadata), so that a
//! daemon killed at any moment loses nothing that was written: mounting again replays the journal.
//!
//! The tree and the archive its entry numbers point into (its `Base`) live under one lock and are
//! only ever replaced together (`rebase`), so no request can pair an entry number with another
//! version of the archive. Every change is appended to the journal (one write) and only then
//! applied to the tree, through `apply::apply`, the same function replay uses. Changes take the
//! save gate shared; a save takes it exclusively, so it sees a still tree while reads go on.

mod apply;
pub mod base;
mod change;
mod error;
pub mod journal;
pub mod lock;
mod save;
pub mod tree;
pub mod upper;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use nix::errno::Errno;

use crate::archive::{Archive, ArchiveId, CacheLimits, Index};
use crate::clock;
use crate::conda::relocation::Relocation;
use base::{ArchiveEntry, Base};
use journal::{Header, Identity, Journal, JournalError, Op};
use lock::{LockError, LockLost, TakenOver, WriterLock};
use tree::{BuildReport, Content, Defaults, EntryNo, Ino, Tree};
use upper::{Upper, UpperError};

pub use change::{NewNode, SetAttr};
pub use error::OpError;
pub use save::{SaveGuard, SavePlan};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Upper(#[from] UpperError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("upper layer {dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
    #[error(
        "the upper layer {dir} holds unsaved changes made to another version of {archive}; the \
         archive was replaced since"
    )]
    Mismatch { dir: PathBuf, archive: PathBuf },
    #[error(
        "the upper layer {dir} holds changes of {recorded}, not of {archive}; it is left as it is"
    )]
    ForeignArchive {
        dir: PathBuf,
        recorded: PathBuf,
        archive: PathBuf,
    },
}

impl crate::hint::Hint for OverlayError {
    fn hint(&self) -> Option<String> {
        match self {
            OverlayError::Lock(e) => e.hint(),
            OverlayError::Upper(e) => e.hint(),
            OverlayError::Journal(e) => e.hint(),
            OverlayError::Io { .. } => None,
            OverlayError::Mismatch { dir, .. } => Some(format!(
                "mount --read-only to see the archive as it is, or move {} aside to mount writable \
                 without those changes",
                dir.display()
            )),
            OverlayError::ForeignArchive { dir, archive, .. } => Some(format!(
                "move {} aside to mount {} writable",
                dir.display(),
                archive.display()
            )),
        }
    }
}

/// What opening a writable overlay found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Changes replayed from the journal (a previous daemon's unsaved work).
    pub replayed: usize,
    /// A save that completed before its daemon died; its journal was retired.
    pub finished_save: bool,
    /// A writer lock that was taken over, and why.
    pub took_over: Option<TakenOver>,
    /// The archive's filesystem is known for node-local flock (its name): the lock's heartbeat is
    /// what keeps writers on two nodes apart.
    pub node_local_flock: Option<String>,
    /// A steal waited this long for the old holder's lease to run out.
    pub waited_out_lease: Option<std::time::Duration>,
    /// Leftover temporary archives from interrupted saves that were removed.
    pub removed_temporaries: usize,
}

struct Writable {
    upper: Upper,
    journal: Mutex<Journal>,
    /// Changes journaled since the last save. Writes to a file already in the upper layer are not
    /// journaled, but after a save no file is: the first change to each is (create or copy-up).
    changes: AtomicU64,
    gate: RwLock<()>,
    lock: WriterLock,
    /// The mount point as its user names it: files are served rewritten for the prefix under it
    /// (see `conda::relocation`), by each archive version the saves put in place.
    served_at: PathBuf,
    /// A transaction conda-fuse drives: its upper layer is node-local and nobody recovers it, so
    /// the lock's record never says changes wait (see `MountRequest::as_transaction`).
    transaction: bool,
}

/// The tree and the archive version its entry numbers point into: one owner, swapped together.
struct Layers {
    tree: Tree,
    base: Arc<Base>,
}

impl Layers {
    /// Entry `no` of the base this tree's numbers point into (the only way to pair them).
    fn entry(&self, no: &EntryNo) -> ArchiveEntry {
        ArchiveEntry {
            base: self.base.clone(),
            entry: no.get(),
        }
    }
}

pub struct Overlay {
    layers: RwLock<Layers>,
    rw: Option<Writable>,
    /// How the decompressed-data cache of each new base is bounded.
    limits: CacheLimits,
    /// Owner and time of nodes the archive does not describe (the root among them).
    defaults: Defaults,
}

/// A consistent look at the tree and its archive (a read lock: changes and rebases wait).
pub struct View<'a>(RwLockReadGuard<'a, Layers>);

impl View<'_> {
    pub fn tree(&self) -> &Tree {
        &self.0.tree
    }
    pub fn base(&self) -> &Arc<Base> {
        &self.0.base
    }
}

/// What a regular file's bytes are read from.
pub enum FileData {
    Archive(ArchiveEntry),
    Upper(Arc<File>),
}

/// What a symlink's target is read from.
pub enum LinkTarget {
    Inline(Vec<u8>),
    Archive(ArchiveEntry),
}

/// A fresh journal's header for the archive a tree is based on (its path and version).
fn header_for(archive: &Archive) -> Header {
    Header {
        archive: archive.path().to_owned(),
        base: identity_of(archive.index()),
        created: clock::now(),
    }
}

/// The identity of an archive's current version.
pub fn identity_of(index: &Index) -> Identity {
    Identity {
        size: index.file_len,
        cd_crc: index.cd_crc,
        entries: index.len() as u64,
    }
}

/// Changes of `archive` waiting in its upper layer under `upper_root` while it
/// is not mounted; they come back at the next writable mount. Changes a finished save already put
/// into the archive in place do not count.
pub fn unsaved_on_disk(upper_root: &Path, archive: &ArchiveId) -> Result<usize, String> {
    let Some(loaded) = upper::peek(upper_root, archive).map_err(|e| e.to_string())? else {
        return Ok(0);
    };
    let current = crate::regular_file::open(archive.path())
        .ok()
        .and_then(|f| Index::read(&f, archive.path()).ok())
        .map(|i| identity_of(&i));
    let after_save = current.and_then(|c| {
        loaded
            .records
            .iter()
            .rposition(|r| r.op == Op::Committing(c))
            .filter(|_| loaded.header.base != c)
    });
    let pending = &loaded.records[after_save.map_or(0, |k| k + 1)..];
    Ok(pending
        .iter()
        .filter(|r| !matches!(r.op, Op::Committing(_)))
        .count())
}

/// The journal a writable mount continues, with its changes replayed into `tree`: the previous
/// daemon's (resumed, or copied into a new file after a takeover), the part after a save that
/// finished in place, or a new one. Refused when it belongs to another archive, or to another
/// version of this one with changes that cannot apply.
fn recover(
    archive: &Archive,
    upper: &Upper,
    tree: &mut Tree,
    recovery: &mut Recovery,
) -> Result<Journal, OverlayError> {
    let io_err = |source| OverlayError::Io {
        dir: upper.root().to_owned(),
        source,
    };
    let header = header_for(archive);
    let identity = header.base;
    Ok(match Journal::load(upper.dir())? {
        None => {
            save::clear_data(upper);
            Journal::create(upper.dir(), &header, &[]).map_err(io_err)?
        }
        Some(l) if l.header.archive != archive.path() => {
            return Err(OverlayError::ForeignArchive {
                dir: upper.root().to_owned(),
                recorded: l.header.archive,
                archive: archive.path().to_owned(),
            });
        }
        Some(l) if l.header.base == identity => {
            recovery.replayed = save::replay(tree, &l.records, upper);
            if recovery.took_over.is_some() {
                // A new file: should the old holder still run (a stolen lock, a frozen node),
                // whatever it appends before it notices goes to the old one, never into ours.
                Journal::create(upper.dir(), &header, &l.records).map_err(io_err)?
            } else {
                Journal::resume(upper.dir(), &l).map_err(io_err)?
            }
        }
        Some(l) => {
            // The changes up to a save whose archive is the one in place are in it; the ones
            // after that save apply on top of it.
            match l
                .records
                .iter()
                .rposition(|r| r.op == Op::Committing(identity))
            {
                Some(k) => {
                    recovery.finished_save = true;
                    let rest = &l.records[k + 1..];
                    recovery.replayed = save::replay(tree, rest, upper);
                    Journal::create(upper.dir(), &header, rest).map_err(io_err)?
                }
                None if l.changes() == 0 => {
                    save::clear_data(upper);
                    Journal::create(upper.dir(), &header, &[]).map_err(io_err)?
                }
                None => {
                    return Err(OverlayError::Mismatch {
                        dir: upper.root().to_owned(),
                        archive: archive.path().to_owned(),
                    });
                }
            }
        }
    })
}

/// Changes made since the last save, for `status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pending {
    pub changes: u64,
    pub files: u64,
    pub bytes: u64,
}

impl Overlay {
    /// A read-only overlay of `archive` mounted at `served_at` (as its user names it): files
    /// written for another prefix are served rewritten for this mount's.
    pub fn read_only(
        archive: Arc<Archive>,
        defaults: Defaults,
        limits: CacheLimits,
        served_at: &Path,
    ) -> (Overlay, BuildReport) {
        let ((tree, report), base) = Self::layers_at(archive, defaults, &limits, served_at);
        let layers = RwLock::new(Layers { tree, base });
        (
            Overlay {
                layers,
                rw: None,
                limits,
                defaults,
            },
            report,
        )
    }

    /// The tree of `archive` as a mount at `served_at` serves it, and its base.
    fn layers_at(
        archive: Arc<Archive>,
        defaults: Defaults,
        limits: &CacheLimits,
        served_at: &Path,
    ) -> ((Tree, BuildReport), Arc<Base>) {
        let relocation = Relocation::plan(&archive, served_at);
        let served_size = |i| relocation.as_ref().and_then(|r| r.size(i));
        let tree = Tree::build_served(archive.index(), defaults, &served_size);
        let base = Arc::new(Base::new(archive, limits.clone(), relocation));
        (tree, base)
    }

    /// Opens `archive` for writing: takes the writer lock, then replays the journal of its upper
    /// layer under `upper_root`, if a previous daemon left one — unless this is a `transaction`,
    /// whose upper layer is its own: what a crashed one left there is thrown away. `mountpoint`
    /// is recorded with the lock; `served_at` is the same place as its user names it.
    pub fn writable(
        archive: Arc<Archive>,
        defaults: Defaults,
        limits: CacheLimits,
        upper_root: &Path,
        (mountpoint, served_at): (&Path, &Path),
        steal_lock: bool,
        transaction: bool,
    ) -> Result<(Overlay, BuildReport, Recovery), OverlayError> {
        let acquired = WriterLock::acquire(archive.id(), mountpoint, steal_lock)?;
        let lock = acquired.lock;
        // Under the writer lock: no live transaction of this archive can be using it.
        let upper = if transaction {
            Upper::open_fresh(upper_root, archive.id())?
        } else {
            Upper::open(upper_root, archive.id())?
        };
        let ((mut tree, report), base) =
            Self::layers_at(archive.clone(), defaults, &limits, served_at);
        let mut recovery = Recovery {
            took_over: acquired.took_over,
            node_local_flock: acquired.node_local_flock,
            waited_out_lease: acquired.waited_out_lease,
            ..Recovery::default()
        };
        let journal = recover(&archive, &upper, &mut tree, &mut recovery)?;
        recovery.removed_temporaries = save::remove_temporaries(archive.path());
        let rw = Writable {
            upper,
            journal: Mutex::new(journal),
            changes: AtomicU64::new(recovery.replayed as u64),
            gate: RwLock::new(()),
            lock,
            served_at: served_at.to_owned(),
            transaction,
        };
        Ok((
            Overlay {
                layers: RwLock::new(Layers { tree, base }),
                rw: Some(rw),
                limits,
                defaults,
            },
            report,
            recovery,
        ))
    }

    /// The daemon, on its way out: the upper layer tidies up (its whole directory goes when nothing
    /// is unsaved) and the writer lock's holder record is cleared.
    pub fn close(&self) {
        if let Some(rw) = &self.rw {
            if rw.lock.is_lost() {
                // The upper layer is the new holder's now: leave it exactly as it is.
                return;
            }
            let _gate = rw.gate.write().expect("gate");
            if let Err(e) = rw.journal.lock().expect("journal lock").close() {
                tracing::warn!("cannot flush the journal: {e}");
            }
            rw.upper.close(rw.changes.load(Ordering::Relaxed) == 0);
            rw.lock.clear();
        }
    }

    /// Readies this process's copy to be dropped after the daemon was forked with the original:
    /// nothing the daemon holds (the writer lock's record and flock) changes. False when it must be
    /// forgotten instead.
    pub fn disown(&self) -> bool {
        self.rw.as_ref().is_none_or(|rw| rw.lock.disown())
    }

    /// Records the calling process as the writer lock's holder (the daemon, once forked).
    pub fn claim_lock(&self) -> io::Result<()> {
        match &self.rw {
            Some(rw) => rw.lock.claim(),
            None => Ok(()),
        }
    }

    /// Refreshes the writer lock's heartbeat (a writable daemon, every `lock::holder::period()`).
    /// Once the lock is found taken, every change is refused (EROFS).
    pub fn heartbeat(&self) -> Result<(), LockLost> {
        match &self.rw {
            Some(rw) => rw.lock.beat(),
            None => Ok(()),
        }
    }

    /// Whether another mount has taken this one's writer lock over (see `heartbeat`).
    /// Re-reads the writer lock's record (see `WriterLock::confirm`); Ok on a read-only mount.
    pub fn confirm_lock(&self) -> Result<(), lock::LockLost> {
        self.rw.as_ref().map_or(Ok(()), |rw| rw.lock.confirm())
    }

    /// After a change: it is acknowledged only if the lease still holds (a holder frozen between
    /// its check and its change, and thawed after another took the lock over, must not say done).
    fn still_holding(rw: &Writable) -> Result<(), OpError> {
        if rw.lock.may_change() {
            Ok(())
        } else {
            Err(Errno::EROFS.into())
        }
    }

    pub fn lock_lost(&self) -> bool {
        self.rw.as_ref().is_some_and(|rw| rw.lock.is_lost())
    }

    pub fn is_writable(&self) -> bool {
        self.rw.is_some()
    }

    /// The tree and its archive, consistent with each other for as long as the view lives.
    pub fn view(&self) -> View<'_> {
        View(self.layers.read().expect("layers lock"))
    }

    pub fn upper_root(&self) -> Option<&Path> {
        self.rw.as_ref().map(|rw| rw.upper.root())
    }

    /// What changes go through: refused on a read-only mount, and on one whose writer lock another
    /// mount has taken over or could not be confirmed (see `lock`'s lease).
    fn writable_parts(&self) -> Result<&Writable, OpError> {
        self.rw
            .as_ref()
            .filter(|rw| rw.lock.may_change())
            .ok_or(OpError::Answer(Errno::EROFS))
    }

    /// What a change holds while it runs: the writable parts and the save gate, shared (a save
    /// waits for running changes, and changes for a save).
    fn changing(&self) -> Result<(&Writable, RwLockReadGuard<'_, ()>), OpError> {
        let rw = self.writable_parts()?;
        Ok((rw, rw.gate.read().expect("gate")))
    }

    /// What a save or a discard holds: the writable parts and the save gate, exclusively (no
    /// change runs meanwhile).
    fn frozen(&self) -> Result<(&Writable, RwLockWriteGuard<'_, ()>), OpError> {
        let rw = self.writable_parts()?;
        Ok((rw, rw.gate.write().expect("gate")))
    }

    /// Where the bytes of the regular file `ino` are, paired with the archive they belong to.
    pub fn file_data(&self, ino: Ino) -> Result<FileData, OpError> {
        let layers = self.layers.read().expect("layers lock");
        let node = layers.tree.node(ino).ok_or(Errno::ENOENT)?;
        match &node.content {
            Content::Archive(no) => Ok(FileData::Archive(layers.entry(no))),
            Content::Upper(id) => {
                let id = *id;
                drop(layers);
                Ok(FileData::Upper(self.upper_file(id)?))
            }
            Content::Dir(_) => Err(Errno::EISDIR.into()),
            Content::Symlink(_) | Content::Special => Err(Errno::EINVAL.into()),
        }
    }

    /// Where the target of the symlink `ino` is.
    pub fn link_target(&self, ino: Ino) -> Result<LinkTarget, OpError> {
        let layers = self.layers.read().expect("layers lock");
        let node = layers.tree.node(ino).ok_or(Errno::ENOENT)?;
        if node.attr.kind != crate::archive::Kind::Symlink {
            return Err(Errno::EINVAL.into());
        }
        match &node.content {
            Content::Symlink(t) => Ok(LinkTarget::Inline(t.to_vec())),
            Content::Archive(no) => Ok(LinkTarget::Archive(layers.entry(no))),
            _ => Err(Errno::EIO.into()),
        }
    }

    /// fsync(2): the file's data (if in the upper layer) and the journal reach the disk.
    pub fn fsync(&self, ino: Ino) -> Result<(), OpError> {
        let Some(rw) = &self.rw else { return Ok(()) };
        let upper_id = match self.view().tree().node(ino).map(|n| &n.content) {
            Some(Content::Upper(id)) => Some(*id),
            _ => None,
        };
        if let Some(id) = upper_id {
            rw.upper
                .file(id)
                .and_then(|f| f.sync_data())
                .map_err(OpError::upper("sync a file"))?;
            rw.upper
                .sync_dir(id)
                .map_err(OpError::upper("sync a directory"))?;
        }
        rw.journal
            .lock()
            .expect("journal lock")
            .sync()
            .map_err(OpError::upper("sync the journal"))
    }

    fn upper_file(&self, id: u64) -> Result<Arc<File>, OpError> {
        let rw = self.rw.as_ref().ok_or(Errno::EROFS)?;
        rw.upper.file(id).map_err(OpError::upper("open a file"))
    }

    /// The kernel took another reference to `ino`, which `view` shows (writable mounts count
    /// them). Counted under the same lock that found the node, so it cannot be freed in between.
    pub fn remember(&self, view: &View<'_>, ino: Ino) {
        if self.rw.is_some()
            && let Some(n) = view.tree().node(ino)
        {
            n.lookups.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The kernel dropped `n` references to `ino`; a node without names is freed at zero.
    pub fn forget(&self, ino: Ino, n: u64) {
        let Some(rw) = &self.rw else { return };
        let left = {
            let view = self.view();
            let Some(node) = view.tree().node(ino) else {
                return;
            };
            let before = node
                .lookups
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                    Some(l.saturating_sub(n))
                })
                .expect("the update always succeeds");
            before.saturating_sub(n)
        };
        if left == 0 {
            let mut layers = self.layers.write().expect("layers lock");
            Self::free_if_unused(rw, &mut layers.tree, ino);
        }
    }

    fn free_if_unused(rw: &Writable, tree: &mut Tree, ino: Ino) {
        if let Some(node) = tree.release_if_unused(ino)
            && let Content::Upper(id) = node.content
        {
            rw.upper.remove(id);
        }
    }

    /// Changes since the last save.
    pub fn pending(&self) -> Pending {
        let Some(rw) = &self.rw else {
            return Pending::default();
        };
        // Derived from the tree (the nodes whose content is an upper data file), so that data
        // files being prepared or retired in the background never count.
        let view = self.view();
        let tree = view.tree();
        let mut ids = std::collections::HashSet::new();
        let mut bytes = 0;
        for ino in 1..=tree.len() as Ino {
            if let Some(n) = tree.node(ino)
                && let Content::Upper(id) = n.content
                && ids.insert(id)
            {
                bytes += n.attr.size;
            }
        }
        Pending {
            changes: rw.changes.load(Ordering::Relaxed),
            files: ids.len() as u64,
            bytes,
        }
    }
}
