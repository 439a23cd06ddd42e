//! Deleting an environment for good: what `rm` would delete (to show before asking), and the
//! deletion. Whether it is mounted, and by whom, the caller has settled.
//!
//! Two things `rm` never deletes. The mount point: on a shared `$HOME` another node (or a batch
//! job's own mount namespace on this one) may have a mount on it, which deleting the directory
//! would detach under the job; it is an empty directory the next `create` reuses. And what a
//! symlink another user made names: a lab member's `evil.zip -> ~/envs/work.zip` in a shared
//! directory must not make `rm evil` delete my archive and unsaved changes (`scope`).

use std::io;
use std::os::unix::fs::MetadataExt;
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
    /// Only the name: a symlink another user made, to an archive that stays.
    Name {
        path: PathBuf,
        target: PathBuf,
        owner: u32,
    },
}

/// How far `rm NAME` reaches, by what `NAME.zip` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The archive (through a symlink of the user's own, the archive it names), its snapshots,
    /// upper layer and lock.
    Everything,
    /// Only the name: a symlink of another user's. What it names is not theirs to have deleted
    /// by whoever runs `rm` (it may be the archive of that user's unsaved work).
    NameOnly { owner: u32 },
}

/// The scope for a `NAME.zip` that is a symlink owned by `link_owner` (None: not a symlink, or
/// not there), when `me` runs `rm`. Root's links are trusted as the user's own (an admin made it).
pub fn scope(link_owner: Option<u32>, me: u32) -> Scope {
    match link_owner {
        Some(owner) if owner != me && owner != 0 => Scope::NameOnly { owner },
        _ => Scope::Everything,
    }
}

/// The scope of `rm` for `files`, by who made `NAME.zip` if it is a symlink.
pub fn scope_of(files: &EnvFiles) -> Scope {
    let owner = std::fs::symlink_metadata(&files.archive)
        .ok()
        .filter(|m| m.file_type().is_symlink())
        .map(|m| m.uid());
    scope(owner, nix::unistd::geteuid().as_raw())
}

/// What deleting `env` deletes, in the order it is deleted.
pub fn doomed(paths: &Paths, env: &Env) -> Vec<Doomed> {
    let files = env.files(paths);
    if let Scope::NameOnly { owner } = scope_of(&files) {
        return vec![Doomed::Name {
            path: files.archive.clone(),
            target: files.id.path().to_owned(),
            owner,
        }];
    }
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

/// Whether `env` may be deleted now (to `scope`), with what is at its mount point (`probe`): not
/// while it is mounted here unless `force` (which unmounts it, throwing changes away), and never
/// while a writer elsewhere (another node, or a mount this node does not know) works in the upper
/// layer and lock this would delete. Only a name is never worth unsaved changes: while mounted,
/// it is refused even with `force`.
pub fn refuse(env: &Env, probe: &Probe, force: bool, scope: Scope) -> Result<(), RmRefused> {
    let force = force && scope == Scope::Everything;
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
    if scope == Scope::Everything
        && let Some((holder, None)) = env.writer()
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

/// Deletes every file of the environment (to `scope`): the archive first (so a deletion cut short
/// leaves no environment that looks whole; through a symlinked `NAME.zip` of the user's own, the
/// archive it names and then the name), then its snapshots, upper layer and lock. The mount point
/// stays (see the module's comment).
pub fn remove(files: &EnvFiles, scope: Scope) -> Result<(), RemoveError> {
    let fail = |what, path: &PathBuf| {
        let path = path.clone();
        move |source| RemoveError { what, path, source }
    };
    let missing_is_fine = |r: io::Result<()>| match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    };
    if let Scope::NameOnly { .. } = scope {
        return missing_is_fine(std::fs::remove_file(&files.archive))
            .map_err(fail("the name", &files.archive));
    }
    let real = files.id.path().to_path_buf();
    missing_is_fine(std::fs::remove_file(&real)).map_err(fail("the archive", &real))?;
    missing_is_fine(std::fs::remove_file(&files.archive))
        .map_err(fail("the archive", &files.archive))?;
    snapshots::remove_all(&files.id).map_err(fail("the snapshots in", &files.snapshots))?;
    missing_is_fine(std::fs::remove_dir_all(&files.upper))
        .map_err(fail("the upper layer", &files.upper))?;
    missing_is_fine(std::fs::remove_file(&files.lock)).map_err(fail("the lock", &files.lock))?;
    let _ = std::fs::remove_file(&files.startup_profile); // a cache: nothing lost if it stays
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_name_of_another_users_goes_alone() {
        let me = 1000;
        for (link_owner, want) in [
            (None, Scope::Everything),
            (Some(me), Scope::Everything),
            (Some(0), Scope::Everything),
            (Some(1001), Scope::NameOnly { owner: 1001 }),
        ] {
            assert_eq!(scope(link_owner, me), want, "{link_owner:?}");
        }
        assert_eq!(scope(Some(1000), 0), Scope::NameOnly { owner: 1000 });
    }

    #[test]
    fn a_name_planted_by_another_user_is_all_that_goes() {
        if nix::unistd::geteuid().as_raw() != 0 {
            return; // lchown to another uid needs root
        }
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("work.zip");
        std::fs::write(&mine, b"my archive").unwrap();
        let planted = dir.path().join("evil.zip");
        std::os::unix::fs::symlink(&mine, &planted).unwrap();
        std::os::unix::fs::lchown(&planted, Some(1234), Some(1234)).unwrap();
        let id = crate::archive::ArchiveId::of(&planted);
        let paths = Paths {
            archive_dirs: vec![dir.path().to_owned()],
            mounts: dir.path().join("m"),
            state: dir.path().join("s"),
            runtime: dir.path().join("r"),
            upper: dir.path().join("s/upper"),
            tmp: dir.path().join("t"),
        };
        let files = EnvFiles::of(&paths, &planted, &id, &dir.path().join("m/evil"));
        assert_eq!(scope_of(&files), Scope::NameOnly { owner: 1234 });
        remove(&files, scope_of(&files)).unwrap();
        assert!(!planted.exists() && std::fs::read(&mine).unwrap() == b"my archive");
    }
}
