//! `rename OLD NEW`: an environment under another name. conda-fuse keeps env NAME at `NAME/NAME`
//! (in `NAME.zip`, entries under `NAME/`), so the archive is written again beside the old one with
//! its entries under `NEW/`, copied as stored (no recompression), and so is each snapshot. Every
//! entry that holds an install prefix records which (the "CP" field), so a mount at
//! `MOUNT_ROOT/NEW/NEW` serves it rewritten for that prefix (`conda::relocation`): the env works
//! under its new name without a file of it changed. Kernelspecs of the env follow the name.
//!
//! The writer lock of OLD is held throughout, so no save replaces OLD meanwhile; NEW appears by a
//! rename that never replaces anything, and OLD goes last: a rename cut short leaves both names,
//! never neither, and nothing is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::EnvFiles;
use super::remove::{self, Scope};
use super::{Env, Paths, kernels};
use crate::archive::build::{self, Planned, Source};
use crate::archive::{Archive, ArchiveId, BuildOptions, Compression, Kind};
use crate::commit::snapshots;
use crate::conda::relocation::Relocation;
use crate::daemon::Probe;
use crate::overlay::lock::WriterLock;

#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    #[error("there is no environment '{0}'")]
    Missing(String),
    #[error("'{name}' exists already ({path})")]
    Exists { name: String, path: PathBuf },
    #[error("'{name}' is mounted at {}", mountpoint.display())]
    Mounted { name: String, mountpoint: PathBuf },
    #[error("'{name}' has {changes} unsaved change(s) in {}", upper.display())]
    Unsaved {
        name: String,
        changes: usize,
        upper: PathBuf,
    },
    #[error("{} is a symlink to {}", link.display(), target.display())]
    Symlink { link: PathBuf, target: PathBuf },
    #[error("cannot take the writer lock of '{name}'")]
    Lock {
        name: String,
        source: crate::overlay::lock::LockError,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: crate::archive::ArchiveError,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Build(#[from] crate::archive::BuildError),
    #[error(transparent)]
    Remove(#[from] remove::RemoveError),
}

impl crate::hint::Hint for RenameError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            RenameError::Missing(_) => "see conda-fuse-env-list".into(),
            RenameError::Exists { name, .. } => {
                format!("choose another name, or delete it first (conda-fuse rm {name})")
            }
            RenameError::Mounted { name, .. } => {
                format!("unmount it first (conda-fuse-unmount {name})")
            }
            RenameError::Unsaved { name, .. } => format!(
                "mount it and save them (conda-fuse-activate {name}; conda-fuse-unmount {name}), \
                 or throw them away (conda-fuse-unmount {name} --discard), then rename it"
            ),
            RenameError::Symlink { target, .. } => format!(
                "rename the archive it names ({}) where it is, and the link",
                target.display()
            ),
            RenameError::Lock { source, .. } => return crate::hint::Hint::hint(source),
            RenameError::Read { .. } => "check it with conda-fuse doctor".into(),
            RenameError::Write { .. } | RenameError::Build(_) => {
                "free some space or fix the directory's permissions; the old name is intact".into()
            }
            RenameError::Remove(e) => return crate::hint::Hint::hint(e),
        })
    }
}

/// What a rename did.
#[derive(Debug)]
pub struct Renamed {
    pub archive: PathBuf,
    pub entries: usize,
    /// Entries recorded with the prefix they hold.
    pub prefixes_recorded: usize,
    pub snapshots: usize,
    pub kernelspecs: Vec<PathBuf>,
}

/// The environment `new` where `old` is: its archive beside `old`'s.
pub fn target(paths: &Paths, old: &Env, new: &str) -> Result<Env, super::EnvError> {
    let mut env = paths.env(new)?;
    if env.archive.symlink_metadata().is_err() {
        let dir = old.archive.parent().unwrap_or(Path::new("."));
        env.archive = dir.join(format!("{new}.zip"));
        env.id = ArchiveId::of(&env.archive);
    }
    Ok(env)
}

/// Renames `old` to `new` (from `target`): see the module's comment.
pub fn rename(paths: &Paths, old: &Env, new: &Env, threads: usize) -> Result<Renamed, RenameError> {
    let old_files = old.files(paths);
    let new_files = new.files(paths);
    check(paths, old, &old_files, new, &new_files)?;
    // Held until OLD is gone: no writable mount, and so no save, in between.
    let lock = WriterLock::acquire(&old.id, &old.mountpoint, false).map_err(|source| {
        RenameError::Lock {
            name: old.name.clone(),
            source,
        }
    })?;
    let opts = BuildOptions {
        compression: Compression::PACK,
        threads,
        spill_dir: new.archive.parent().unwrap_or(Path::new(".")).to_owned(),
    };
    let current = open(old.id.path())?;
    let (plan, recorded) = renamed_plan(current, old, new);
    let pending = build::write_pending(&new.archive, &plan, &opts, &mut |_| {})?;
    let write_err = |source| RenameError::Write {
        path: new.archive.clone(),
        source,
    };
    let replaced = std::fs::metadata(old.id.path()).map_err(write_err)?;
    build::take_access(pending.written_file(), &replaced).map_err(write_err)?;
    pending.install_new().map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => RenameError::Exists {
            name: new.name.clone(),
            path: new.archive.clone(),
        },
        _ => write_err(e),
    })?;
    let new_id = ArchiveId::of(&new.archive);
    // Oldest first, each beside the new archive, then moved in.
    let kept = snapshots::list(&old.id);
    for snapshot in kept.iter().rev() {
        let version = open(&snapshot.path)?;
        let (plan, _) = renamed_plan(version, old, new);
        let pending = build::write_pending(&new.archive, &plan, &opts, &mut |_| {})?;
        let replaced = std::fs::metadata(&snapshot.path).map_err(write_err)?;
        build::take_access(pending.written_file(), &replaced).map_err(write_err)?;
        let file = pending.keep().map_err(write_err)?;
        snapshots::adopt(&new_id, &file, snapshot).map_err(write_err)?;
    }
    let kernelspecs = rename_kernelspecs(old, new);
    // The lock goes with the rest; held until then.
    remove::remove(&old_files, Scope::Everything)?;
    drop(lock);
    Ok(Renamed {
        archive: new.archive.clone(),
        entries: plan.len(),
        prefixes_recorded: recorded,
        snapshots: kept.len(),
        kernelspecs,
    })
}

fn open(path: &Path) -> Result<Arc<Archive>, RenameError> {
    Archive::open(path)
        .map(Arc::new)
        .map_err(|source| RenameError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Nothing of `new` exists, and `old` is there, not mounted here, not written anywhere, with
/// nothing unsaved, and its own (not a link to an archive elsewhere).
fn check(
    paths: &Paths,
    old: &Env,
    old_files: &EnvFiles,
    new: &Env,
    new_files: &EnvFiles,
) -> Result<(), RenameError> {
    if !old.archive.is_file() {
        return Err(RenameError::Missing(old.name.clone()));
    }
    if old.archive.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
        return Err(RenameError::Symlink {
            link: old.archive.clone(),
            target: old.id.path().to_owned(),
        });
    }
    let taken = [
        &new_files.archive,
        &new_files.upper,
        &new_files.snapshots,
        &new_files.lock,
    ]
    .into_iter()
    .find(|p| p.symlink_metadata().is_ok());
    if let Some(path) = taken {
        return Err(RenameError::Exists {
            name: new.name.clone(),
            path: path.clone(),
        });
    }
    if matches!(
        crate::daemon::probe(&old.mountpoint),
        Probe::Live(_) | Probe::Stale
    ) {
        return Err(RenameError::Mounted {
            name: old.name.clone(),
            mountpoint: old.mountpoint.clone(),
        });
    }
    let changes = crate::overlay::unsaved_on_disk(&paths.upper, &old.id).unwrap_or(0);
    if changes > 0 {
        return Err(RenameError::Unsaved {
            name: old.name.clone(),
            changes,
            upper: old_files.upper.clone(),
        });
    }
    Ok(())
}

/// Every entry of `archive` as it is stored, the environment's under `NEW/` instead of `OLD/`,
/// each holding a prefix recording it; returns the plan and how many record one.
fn renamed_plan(archive: Arc<Archive>, old: &Env, new: &Env) -> (Vec<Planned>, usize) {
    // The prefix each entry holds, as a mount at the new place sees it (none holds that one).
    let relocation = Relocation::plan(&archive, &new.mountpoint);
    let index = archive.index();
    let (from, to) = (format!("{}/", old.name), format!("{}/", new.name));
    let mut recorded = 0;
    let plan = (0..index.len() as u32)
        .map(|i| {
            let e = index.entry(i);
            let name = index.name(e);
            let name = match name.strip_prefix(from.as_bytes()) {
                Some(rest) => [to.as_bytes(), rest].concat(),
                None if name == old.name.as_bytes() => new.name.as_bytes().to_vec(),
                None => name.to_vec(),
            };
            let held = index
                .held_prefix(i)
                .or_else(|| relocation.as_ref()?.held(i))
                .map(<[u8]>::to_vec);
            recorded += usize::from(held.is_some());
            let source = match e.meta.kind {
                Kind::Dir => Source::Dir,
                k if k.is_special() => Source::Bytes(Vec::new()),
                _ => Source::Raw {
                    archive: archive.clone(),
                    entry: i,
                },
            };
            Planned {
                name,
                meta: e.meta,
                source,
                link_group: e.link_group,
                prefix: held,
            }
        })
        .collect();
    (plan, recorded)
}

/// Points the kernelspecs of `old` in the user's Jupyter directory at `new`: each is written
/// again under the new name, then the old one goes. Returns the new spec directories.
fn rename_kernelspecs(old: &Env, new: &Env) -> Vec<PathBuf> {
    let kernels = kernels::kernels_dir(&kernels::user_data_dir());
    let mut renamed = Vec::new();
    for (env, dir) in kernels::list(&kernels) {
        if env != old.name {
            continue;
        }
        match kernels::rename_spec(&dir, &kernels, old, new) {
            Ok(new_dir) => renamed.push(new_dir),
            Err(e) => tracing::warn!("kernelspec {} not renamed: {e}", dir.display()),
        }
    }
    renamed
}
