//! Deleting an environment for good: what `rm` would delete (to show before asking), and the
//! deletion. Whether it is mounted, and by whom, the caller has settled.

use std::io;
use std::path::PathBuf;

use super::files::EnvFiles;
use super::{Env, Paths, list};
use crate::commit::snapshots;
use crate::daemon::Probe;

/// One thing `rm` deletes, with what the user needs to judge it.
#[derive(Debug, Clone)]
pub enum Doomed {
    Archive {
        path: PathBuf,
        size: u64,
        /// Entries, or why the archive could not be read.
        entries: Result<usize, String>,
    },
    Upper {
        path: PathBuf,
        unsaved: usize,
    },
    Snapshots {
        dir: PathBuf,
        count: usize,
        bytes: u64,
    },
    Lock(PathBuf),
    /// Removed only if empty: another node may have a mount on it.
    MountPoint(PathBuf),
}

/// What deleting `env` deletes, in the order it is deleted.
pub fn doomed(paths: &Paths, env: &Env) -> Vec<Doomed> {
    let files = env.files(paths);
    let mut doomed = Vec::new();
    if files.archive.exists() {
        let info = list::info(env);
        doomed.push(Doomed::Archive {
            path: files.archive.clone(),
            size: info.size,
            entries: info.entries,
        });
    }
    if files.upper.exists() {
        doomed.push(Doomed::Upper {
            path: files.upper.clone(),
            unsaved: crate::overlay::unsaved_on_disk(&paths.upper, &files.id).unwrap_or(0),
        });
    }
    let kept = snapshots::list(&files.id);
    if !kept.is_empty() {
        doomed.push(Doomed::Snapshots {
            dir: files.snapshots.clone(),
            count: kept.len(),
            bytes: kept.iter().map(|s| s.size).sum(),
        });
    }
    if files.lock.exists() {
        doomed.push(Doomed::Lock(files.lock.clone()));
    }
    if files.mountpoint.exists() {
        doomed.push(Doomed::MountPoint(files.mountpoint.clone()));
    }
    doomed
}

/// Why `rm` does not delete an environment now.
#[derive(Debug, thiserror::Error)]
pub enum RmRefused {
    #[error("'{name}' is mounted at {} ({}, daemon pid {pid})", mountpoint.display(), if *read_only { "read-only" } else { "writable" })]
    Mounted {
        name: String,
        mountpoint: PathBuf,
        read_only: bool,
        pid: u32,
    },
    #[error("'{name}' is mounted writable by {holder}")]
    WrittenElsewhere { name: String, holder: String },
}

impl crate::hint::Hint for RmRefused {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RmRefused::Mounted { name, .. } => format!(
                "unmount it first (conda-fuse-unmount {name}), or pass --force to throw its \
                 unsaved changes away and unmount it"
            ),
            RmRefused::WrittenElsewhere { .. } => "unmount it there first".into(),
        })
    }
}

/// Whether `env` may be deleted now, with what is at its mount point (`probe`): not while it is
/// mounted here unless `force` (which unmounts it, throwing changes away), and never while a
/// writer elsewhere (another node, or a mount this node does not know) works in the upper layer
/// and lock this would delete.
pub fn refuse(env: &Env, probe: &Probe, force: bool) -> Result<(), RmRefused> {
    if let Probe::Live(r) = probe
        && !force
    {
        return Err(RmRefused::Mounted {
            name: env.name.clone(),
            mountpoint: env.mountpoint.clone(),
            read_only: r.read_only,
            pid: r.pid,
        });
    }
    let ours_writable = matches!(probe, Probe::Live(r) if !r.read_only);
    if let Some((holder, None)) = env.writer()
        && !ours_writable
    {
        return Err(RmRefused::WrittenElsewhere {
            name: env.name.clone(),
            holder: holder.describe(),
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot delete {what} {path}")]
pub struct RemoveError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl crate::hint::Hint for RemoveError {
    fn hint(&self) -> Option<String> {
        Some("check the permissions of its directory, then run conda-fuse-rm again".into())
    }
}

/// Deletes every file of the environment: the archive first (so a deletion cut short leaves no
/// environment that looks whole; through a symlinked `NAME.zip`, the archive it names and then
/// the name), then its snapshots, upper layer and lock, and the mount point if it is empty.
pub fn remove(files: &EnvFiles) -> Result<(), RemoveError> {
    let fail = |what, path: &PathBuf| {
        let path = path.clone();
        move |source| RemoveError { what, path, source }
    };
    let missing_is_fine = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    let real = files.id.path().to_path_buf();
    missing_is_fine(std::fs::remove_file(&real)).map_err(fail("the archive", &real))?;
    missing_is_fine(std::fs::remove_file(&files.archive))
        .map_err(fail("the archive", &files.archive))?;
    snapshots::remove_all(&files.id).map_err(fail("the snapshots in", &files.snapshots))?;
    missing_is_fine(std::fs::remove_dir_all(&files.upper))
        .map_err(fail("the upper layer", &files.upper))?;
    missing_is_fine(std::fs::remove_file(&files.lock)).map_err(fail("the lock", &files.lock))?;
    let _ = std::fs::remove_file(&files.startup_profile); // a cache: nothing lost if it stays
    let _ = std::fs::remove_dir(&files.mountpoint);
    Ok(())
}
