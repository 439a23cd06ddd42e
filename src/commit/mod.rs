//! Saving: the merged tree (archive + upper layer) becomes a new archive, written beside the old
//! one and renamed over it. Unchanged entries are copied as they are stored (no recompression); new
//! data is compressed on all cores. The sequence, and what a crash at each step leaves:
//!
//! 1. freeze changes, plan the tree;       crash: old archive + journal (replayed at next mount)
//! 2. write `NAME.zip.tmp-*`, fsync;        crash: same; the temporary is removed at next mount
//! 3. journal "committing <new identity>";  crash: same (the identity is not yet in place)
//!    link the old archive in as a snapshot;  crash: a snapshot equal to the archive (not listed)
//! 4. rename over the archive, fsync dir;   crash: new archive in place; the next mount sees the
//!    journal's committing record match it and retires the journal and data files
//! 5. rebase the tree on the new archive, restart the journal, drop the data files.

pub mod snapshots;

use std::sync::Arc;

use crate::archive::{BuildError, BuildOptions, BuildStats, write_pending};
use crate::fault::{self, Point};
use crate::overlay::{OpError, Overlay, identity_of};

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("this mount is read-only; nothing to save")]
    ReadOnly,
    #[error("cannot prepare the save")]
    Prepare(#[source] OpError),
    #[error(
        "nothing was saved (the changes are kept in the upper layer, the archive is unchanged)"
    )]
    Build(#[from] BuildError),
    #[error("cannot record the save in the journal (the changes are kept in the upper layer)")]
    Journal(#[source] OpError),
    #[error(
        "this mount's writer lock on {0} was taken over by another mount, so it saves nothing (its \
         changes went to that mount's upper layer)"
    )]
    TakenOver(std::path::PathBuf),
}

impl crate::hint::Hint for SaveError {
    fn hint(&self) -> Option<String> {
        match self {
            SaveError::Build(e) => e.hint(),
            SaveError::TakenOver(_) => Some("unmount it".into()),
            // The OpError they wrap has the hint, and the chain reaches it.
            SaveError::ReadOnly | SaveError::Prepare(_) | SaveError::Journal(_) => None,
        }
    }
}

#[derive(Debug)]
pub struct Saved {
    /// None when there was nothing to save (the archive was left alone).
    pub stats: Option<BuildStats>,
    /// Why the replaced version was not kept as a snapshot, when it was not.
    pub snapshot_skipped: Option<snapshots::SnapshotError>,
}

impl Saved {
    pub fn changed(&self) -> bool {
        self.stats.is_some()
    }
}

/// Saves the overlay's changes into its archive, keeping the `keep_snapshots` newest earlier
/// versions (see `snapshots`). `progress(done, total)` follows the uncompressed bytes written.
/// Once the new archive is in place, the overlay serves it (tree and archive switch together).
pub fn save(
    overlay: &Overlay,
    opts: &BuildOptions,
    keep_snapshots: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Saved, SaveError> {
    if !overlay.is_writable() {
        return Err(SaveError::ReadOnly);
    }
    let started = std::time::Instant::now();
    let (guard, plan) = overlay.plan_save().map_err(SaveError::Prepare)?;
    let archive = plan.archive.clone();
    let planned = started.elapsed();
    if !plan.changed {
        return Ok(Saved {
            stats: None,
            snapshot_skipped: None,
        });
    }
    let total: u64 = plan.entries.iter().map(|p| p.size_hint()).sum();
    let half = plan.entries.len() / 2;
    let (mut done, mut count) = (0u64, 0usize);
    let pending = write_pending(archive.path(), &plan.entries, opts, &mut |bytes| {
        done += bytes;
        count += 1;
        if count == half {
            fault::point(Point::SaveDuringBuild);
        }
        progress(done, total);
    })?;
    fault::point(Point::SaveBeforeIntent);
    let wrote = started.elapsed();
    overlay
        .mark_committing(&guard, identity_of(pending.written.index()))
        .map_err(SaveError::Journal)?;
    // A snapshot is a safety net: failing to keep one (a full quota, a filesystem without hard
    // links) is logged and reported, and the save goes on.
    let current = identity_of(archive.index());
    let snapshot_skipped = snapshots::keep_current(archive.id(), current, keep_snapshots).err();
    if let Some(e) = &snapshot_skipped {
        tracing::warn!("{}", crate::hint::messages(e).join(": "));
    }
    fault::point(Point::SaveBeforeRename);
    // The fence: another holder that took the lock (a steal) must not find its upper layer
    // replayed onto an archive this one renamed in after it took over.
    if overlay.confirm_lock().is_err() {
        return Err(SaveError::TakenOver(archive.path().to_path_buf()));
    }
    let (stats, new) = pending.install()?;
    fault::point(Point::SaveAfterRename);
    // Only now is the version the snapshot keeps replaced: the oldest beyond `keep` may go.
    if keep_snapshots > 0
        && let Err(e) = snapshots::prune(new.id(), keep_snapshots)
    {
        tracing::warn!(
            "cannot prune the snapshots of {}: {e}",
            new.path().display()
        );
    }
    let installed = started.elapsed();
    let new = Arc::new(new);
    // The upper layer is the current holder's alone: one that took over meanwhile finds this
    // save's committing record matching the archive and retires the journal itself.
    if overlay.confirm_lock().is_err() {
        tracing::warn!(
            "the writer lock was taken over during the save; its upper layer is left to the new holder"
        );
        return Ok(Saved {
            stats: Some(stats),
            snapshot_skipped,
        });
    }
    overlay
        .rebase(&guard, new, &plan)
        .map_err(SaveError::Journal)?;
    fault::point(Point::SaveAfterRebase);
    tracing::info!(
        plan = ?planned,
        write = ?(wrote - planned),
        install = ?(installed - wrote),
        rebase = ?(started.elapsed() - installed),
        "save phases"
    );
    Ok(Saved {
        stats: Some(stats),
        snapshot_skipped,
    })
}
