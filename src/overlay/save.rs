//! The overlay's side of recovery and saving: replaying a journal, planning the merged tree as a new
//! archive, and rebasing onto that archive once it is in place (content refs switch to its entries,
//! the journal restarts, the upper layer empties). The archive itself is written by `commit`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockWriteGuard};

use nix::errno::Errno;

use super::base::Base;
use super::journal::{Identity, Journal, Op, Record};
use super::tree::{Content, Defaults, EntryNo, Ino, Tree};
use super::upper::Upper;
use super::{OpError, Overlay, Writable, apply};
use crate::archive::build::dir_name;
use crate::archive::{Archive, Kind, Meta, Planned, Source};
use crate::clock;
use crate::conda::relocation::Relocation;

/// Replays journal records over a tree freshly built from the archive; returns how many applied.
pub(super) fn replay(tree: &mut Tree, records: &[Record], upper: &Upper) -> usize {
    let mut applied = 0;
    for r in records {
        // Ids are never reused within a journal: new files get ids above every id it mentions.
        if let Op::Create { id, .. } | Op::CopyUp { id, .. } = r.op {
            upper.reserve_above(id);
        }
        match apply::apply(tree, &r.op, r.t) {
            Ok(a) => {
                applied += usize::from(!matches!(r.op, Op::Committing(_)));
                // Data files are swept once at the end, by what the final tree refers to.
                if let Some(ino) = a.unlinked {
                    tree.release_if_unused(ino);
                }
            }
            // The live daemon journaled it, then found it impossible: it changed nothing then either.
            Err(e) => tracing::debug!("journal record {:?} does not apply: {e}", r.op),
        }
    }
    // Sizes and mtimes of upper files live in the data files themselves.
    let mut referenced = std::collections::HashSet::new();
    for (_, ino) in tree.walk() {
        let Some(Content::Upper(id)) = tree.node(ino).map(|n| &n.content) else {
            continue;
        };
        let id = *id;
        referenced.insert(id);
        let state = upper.stat(id);
        let n = tree.node_mut(ino).expect("walked");
        match state {
            Ok((size, mtime)) => {
                n.attr.size = size;
                n.attr.mtime = mtime;
            }
            Err(e) => {
                tracing::warn!(
                    "upper data file {} of {} is missing ({e}); the file is empty",
                    crate::display::path(&upper.shown_path(id)),
                    crate::display::escape(&n.name)
                );
                n.attr.size = 0;
            }
        }
    }
    for id in upper.ids().unwrap_or_default() {
        if !referenced.contains(&id) {
            upper.remove(id); // written before its journal record, then the daemon died
        }
    }
    applied
}

/// Removes every data file: the tree was built fresh from the archive and refers to none.
pub(super) fn clear_data(upper: &Upper) {
    for id in upper.ids().unwrap_or_default() {
        upper.remove(id);
    }
}

/// Removes temporary archives (`NAME.zip.tmp-*`) left by saves that were interrupted. Only the
/// holder of the writer lock calls this, so none of them belongs to a save in progress.
pub(super) fn remove_temporaries(archive: &Path) -> usize {
    let (Some(dir), Some(name)) = (archive.parent(), archive.file_name()) else {
        return 0;
    };
    let prefix = format!("{}.tmp-", name.to_string_lossy());
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// The merged tree as archive entries, in directory order.
pub struct SavePlan {
    pub entries: Vec<Planned>,
    pub inos: Vec<Ino>,
    /// Whether anything changed since the last save.
    pub changed: bool,
    /// The archive the unchanged entries are copied from (the one being replaced).
    pub archive: Arc<Archive>,
}

/// Holds off every change while a save runs; reads go on.
pub struct SaveGuard<'a>(#[allow(dead_code)] RwLockWriteGuard<'a, ()>);

impl Overlay {
    /// Freezes changes and plans the merged tree as a new archive of the tree's own base.
    pub fn plan_save(&self) -> Result<(SaveGuard<'_>, SavePlan), OpError> {
        let (rw, gate) = self.frozen()?;
        let guard = SaveGuard(gate);
        // Files deleted while open still read from the archive; give them their own copy first,
        // since the archive they read from is about to be replaced.
        {
            let mut layers = self.layers.write().expect("layers lock");
            let tree = &layers.tree;
            let orphans: Vec<Ino> = (1..=tree.len() as Ino)
                .filter(|&i| {
                    tree.node(i)
                        .is_some_and(|n| !n.is_named() && matches!(n.content, Content::Archive(_)))
                })
                .collect();
            for ino in orphans {
                self.ensure_upper(rw, &mut layers, ino, true)?;
            }
        }
        let view = self.view();
        let (tree, base) = (view.tree(), view.base());
        let archive = base.archive().clone();
        // Files written here hold this mount's prefix; copied entries keep theirs.
        let written_here = base.written_here();
        let mut entries = Vec::new();
        let mut inos = Vec::new();
        for (path, ino) in tree.walk() {
            let n = tree.node(ino).expect("walked");
            let a = n.attr;
            let meta = Meta {
                kind: a.kind,
                perm: a.perm,
                owner: Some((a.uid, a.gid)),
                mtime: a.mtime.0,
                rdev: a.rdev,
            };
            let (name, source) = match &n.content {
                Content::Dir(_) => (dir_name(path), Source::Dir),
                Content::Archive(no) => (
                    path,
                    Source::Raw {
                        archive: archive.clone(),
                        entry: no.get(),
                    },
                ),
                Content::Upper(id) => (
                    path,
                    Source::Open {
                        open: rw.upper.opener(*id),
                        size: a.size,
                        shown: rw.upper.shown_path(*id),
                    },
                ),
                Content::Symlink(target) => (path, Source::Symlink(target.to_vec())),
                Content::Special => (path, Source::Bytes(Vec::new())),
            };
            let link_group = (a.kind != Kind::Dir && a.nlink > 1).then_some(ino);
            let prefix = match &n.content {
                Content::Archive(no) => base.held_prefix(no.get()),
                Content::Upper(_) | Content::Symlink(_) => written_here,
                Content::Dir(_) | Content::Special => None,
            };
            entries.push(Planned {
                name,
                meta,
                source,
                link_group,
                prefix: prefix.map(<[u8]>::to_vec),
            });
            inos.push(ino);
        }
        let changed = rw.changes.load(Ordering::Relaxed) > 0;
        Ok((
            guard,
            SavePlan {
                entries,
                inos,
                changed,
                archive,
            },
        ))
    }

    /// Records that a save wrote the archive `identity` and is about to rename it into place; from
    /// here on, recovery knows the changes are in that archive once it is there.
    pub fn mark_committing(
        &self,
        _guard: &SaveGuard<'_>,
        identity: Identity,
    ) -> Result<(), OpError> {
        let rw = self.writable_parts()?;
        let mut j = rw.journal.lock().expect("journal lock");
        j.append(&Record {
            t: clock::now(),
            op: Op::Committing(identity),
        })
        .map_err(OpError::upper("append to the journal"))?;
        j.sync().map_err(OpError::upper("sync the journal"))
    }

    /// After the new archive is in place: every node's content becomes an entry of `archive`, in
    /// the same step the tree's base becomes `archive` (one write of the layers), then the journal
    /// restarts from it and data files nobody refers to any more are removed.
    pub fn rebase(
        &self,
        _guard: &SaveGuard<'_>,
        archive: Arc<Archive>,
        plan: &SavePlan,
    ) -> Result<(), OpError> {
        let rw = self.writable_parts()?;
        let index = archive.index();
        let by_name = index.by_name();
        // Every planned file and symlink is in the new archive (it was written from the plan);
        // find all of them before changing anything, so the tree never points into two archives.
        let mut moves = Vec::with_capacity(plan.entries.len());
        for (p, &ino) in plan.entries.iter().zip(&plan.inos) {
            if p.meta.kind == Kind::Dir || p.meta.kind.is_special() {
                continue;
            }
            let Some(&i) = by_name.get(p.name.as_slice()) else {
                tracing::error!(
                    "the saved archive lacks {}; still serving the previous one",
                    crate::display::escape(&p.name)
                );
                return Err(Errno::EIO.into());
            };
            moves.push((ino, i));
        }
        drop(by_name);
        // The new version's files hold the prefixes the save recorded: served as before. Planned
        // before reads stop.
        let relocation = Relocation::plan(&archive, &rw.served_at);
        let mut layers = self.layers.write().expect("layers lock");
        let before = upper_ids(&layers.tree);
        for (ino, i) in moves {
            layers.tree.node_mut(ino).expect("planned").content = Content::Archive(EntryNo::new(i));
        }
        // Files unlinked but still open have their upper copy (plan_save made one): no node refers
        // to an entry of the old archive any more, and the base changes in the same step.
        layers.tree.reset_root(&Defaults {
            mtime: archive.mtime(),
            ..self.defaults
        });
        layers.base = Arc::new(Base::new(archive, self.limits.clone(), relocation));
        let tree = &layers.tree;
        match Journal::create(
            rw.upper.dir(),
            &super::header_for(layers.base.archive()),
            &[],
        ) {
            Ok(j) => *rw.journal.lock().expect("journal lock") = j,
            // The old journal stays valid: what follows its committing record applies on top of
            // the new archive, which is how the next mount reads it.
            Err(e) => tracing::warn!(
                "cannot start a new journal after the save, going on with the old one: {e}"
            ),
        }
        rw.changes.store(0, Ordering::Relaxed);
        note_saved(rw);
        // Exactly the data files the old tree used and the new one does not: derived from the
        // trees, never from a listing, which would also catch files the janitor is preparing.
        let after = upper_ids(tree);
        rw.upper
            .retire(before.difference(&after).copied().collect());
        Ok(())
    }

    /// Throws away every change since the last save (unmount --discard): the journal restarts and
    /// the data files go. The caller unmounts right after.
    pub fn discard(&self) -> Result<(), OpError> {
        let (rw, _gate) = self.frozen()?;
        let header = super::header_for(self.view().base().archive());
        let journal = Journal::create(rw.upper.dir(), &header, &[])
            .map_err(OpError::upper("start a new journal"))?;
        *rw.journal.lock().expect("journal lock") = journal;
        rw.changes.store(0, Ordering::Relaxed);
        note_saved(rw);
        let used = upper_ids(self.view().tree());
        rw.upper.retire(used.into_iter().collect());
        Ok(())
    }
}

/// The upper data files the nodes of `tree` (named or not) refer to.
fn upper_ids(tree: &Tree) -> HashSet<u64> {
    (1..=tree.len() as Ino)
        .filter_map(|i| match tree.node(i).map(|n| &n.content) {
            Some(Content::Upper(id)) => Some(*id),
            _ => None,
        })
        .collect()
}

/// Nothing is unsaved any more: the lock record says so (a failure only makes a takeover by
/// another user ask for --steal-lock where it need not).
fn note_saved(rw: &Writable) {
    if let Err(e) = rw.lock.note_unsaved(false) {
        tracing::warn!("cannot update the writer lock's record: {e}");
    }
}
