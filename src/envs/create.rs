//! Creating an environment as one transaction: the archive is built under a hidden name
//! (`.NAME.creating.zip`), mounted and filled by conda, saved, and renamed to `NAME.zip` only
//! once all of that succeeded, without replacing a `NAME.zip` another create made meanwhile. A
//! failed or interrupted create never leaves `NAME.zip` behind; what it did leave (the temporary
//! archive, its lock and upper layer, the mount point) is removed by the guard, or by the next
//! create of that name.

use std::io;
use std::path::{Path, PathBuf};

use super::files::EnvFiles;
use super::{Env, Paths};
use crate::archive::{ArchiveId, BuildError, BuildOptions, Compression, build_archive};
use crate::daemon::{self, DaemonError, MountRequest, Probe};

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("an environment named '{name}' exists already ({})", archive.display())]
    Exists { name: String, archive: PathBuf },
    #[error("{} is already a mount (of {}, daemon pid {pid})", mountpoint.display(), serves.display())]
    MountPointInUse {
        mountpoint: PathBuf,
        serves: PathBuf,
        pid: u32,
    },
    #[error("the mount point {} is not empty", mountpoint.display())]
    MountPointNotEmpty { mountpoint: PathBuf },
    #[error("conda create failed ({status}); nothing was kept")]
    CondaFailed {
        name: String,
        status: std::process::ExitStatus,
    },
    #[error("conda exited successfully but made no environment at {}; nothing was kept", prefix.display())]
    NothingMade { prefix: PathBuf },
    #[error(transparent)]
    Session(#[from] super::session::SessionError),
    #[error("cannot create the directory {path}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot create {path}")]
    Temporary { path: PathBuf, source: io::Error },
    #[error("another conda-fuse-create {name} is running ({by})")]
    Busy { name: String, by: String },
    #[error("cannot write {path}")]
    Build { path: PathBuf, source: BuildError },
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("cannot rename {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
}

impl crate::hint::Hint for CreateError {
    fn hint(&self) -> Option<String> {
        match self {
            CreateError::Exists { name, .. } => Some(format!(
                "see conda-fuse-env-list, choose another name, or delete it first with \
                 conda-fuse-rm {name}"
            )),
            CreateError::MountPointInUse { mountpoint, .. } => Some(format!(
                "unmount it first (conda-fuse unmount {})",
                mountpoint.display()
            )),
            CreateError::MountPointNotEmpty { .. } => {
                Some("move its contents away (or pick another name) and try again".into())
            }
            CreateError::CondaFailed { name, .. } => Some(format!(
                "fix the problem conda reported and run conda-fuse-create {name} again"
            )),
            CreateError::NothingMade { .. } => {
                Some("answer conda's question with yes, or pass -y".into())
            }
            CreateError::Session(e) => e.hint(),
            CreateError::Dir { .. } => Some(
                "check CONDA_FUSE_ARCHIVE_PATH and CONDA_FUSE_MOUNT_ROOT and their permissions"
                    .into(),
            ),
            CreateError::Temporary { .. } => None,
            CreateError::Busy { .. } => Some("wait for it, or stop it".into()),
            // Their sources carry the hints (a transparent variant is skipped by the chain).
            CreateError::Build { .. } => None,
            CreateError::Daemon(e) => e.hint(),
            CreateError::Rename { from, to, source } => {
                Some(if source.kind() == io::ErrorKind::AlreadyExists {
                    format!(
                        "another create made {} meanwhile; the environment this one made is kept in \
                     {}: rename it to another NAME.zip to keep it",
                        to.display(),
                        from.display()
                    )
                } else {
                    format!(
                        "the new environment is kept in {}: rename it to {} yourself",
                        from.display(),
                        to.display()
                    )
                })
            }
        }
    }
}

/// Whether `env` can be created: no archive of that name, and its mount point free (a stale mount
/// is cleaned up, `tell` hears so) and empty.
pub fn check_new(
    env: &Env,
    tell: &mut dyn FnMut(super::session::Event<'_>),
) -> Result<(), CreateError> {
    if env.archive.exists() {
        return Err(CreateError::Exists {
            name: env.name.clone(),
            archive: env.archive.clone(),
        });
    }
    let (probe, said) = super::session::settle_mount_point(env)?;
    for s in said {
        tell(super::session::Event::Said(s));
    }
    if let Probe::Live(r) = probe {
        return Err(CreateError::MountPointInUse {
            mountpoint: env.mountpoint.clone(),
            serves: r.archive,
            pid: r.pid,
        });
    }
    if std::fs::read_dir(&env.mountpoint).is_ok_and(|mut d| d.next().is_some()) {
        return Err(CreateError::MountPointNotEmpty {
            mountpoint: env.mountpoint.clone(),
        });
    }
    Ok(())
}

/// What conda's run in a create came to: an error unless it made an environment.
pub fn check_made(env: &Env, status: std::process::ExitStatus) -> Result<(), CreateError> {
    if !status.success() {
        return Err(CreateError::CondaFailed {
            name: env.name.clone(),
            status,
        });
    }
    if !env.prefix.join("conda-meta").is_dir() {
        return Err(CreateError::NothingMade {
            prefix: env.prefix.clone(),
        });
    }
    Ok(())
}

/// A create under way, mounted writable at the environment's mount point. Dropped before
/// `finish`, it unmounts (discarding) and removes everything the create made.
pub struct Creation<'a> {
    env: &'a Env,
    /// The files of the temporary archive (its lock, its upper layer), mounted at the env's
    /// mount point.
    temporary: EnvFiles,
    armed: bool,
}

impl<'a> Creation<'a> {
    /// Claims the temporary archive name, writes an empty archive there and mounts it. The
    /// caller has checked that `env` has no archive and its mount point is free.
    pub fn begin(paths: &Paths, env: &'a Env) -> Result<Creation<'a>, CreateError> {
        for dir in [paths.archives(), paths.mounts.as_path()] {
            std::fs::create_dir_all(dir).map_err(|source| CreateError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let archive = paths.archives().join(format!(".{}.creating.zip", env.name));
        let mut creation = Creation {
            env,
            temporary: EnvFiles::of(paths, &archive, &ArchiveId::of(&archive), &env.mountpoint),
            armed: false,
        };
        creation.claim()?;
        creation.armed = true;
        let opts = BuildOptions {
            compression: Compression::PACK,
            threads: 1,
            spill_dir: paths.archives().to_path_buf(),
        };
        build_archive(&archive, &[], &opts, &mut |_| {}).map_err(|source| CreateError::Build {
            path: archive.clone(),
            source,
        })?;
        std::fs::create_dir_all(&env.mountpoint).map_err(|source| CreateError::Dir {
            path: env.mountpoint.clone(),
            source,
        })?;
        let mut req = MountRequest::new(ArchiveId::of(&archive), env.mountpoint.clone(), false);
        // The empty archive is no version of the env (and a snapshot of the temporary's name
        // would be left behind by the rename to the final one).
        req.snapshots = 0;
        req.as_transaction();
        daemon::mount(&req, &mut |_| {})?;
        Ok(creation)
    }

    /// Renames the saved (and unmounted) temporary archive to the environment's name. If that
    /// fails the temporary archive is kept (it holds the user's new environment) and the error
    /// says where.
    pub fn finish(mut self) -> Result<(), CreateError> {
        let result = rename_noreplace(&self.temporary.archive, &self.env.archive);
        self.armed = false;
        result?;
        self.remove_leftovers();
        Ok(())
    }

    /// Takes the temporary archive name exclusively; one left by a create that died is cleaned
    /// up, one a running create holds is refused.
    fn claim(&self) -> Result<(), CreateError> {
        let path = &self.temporary.archive;
        for attempt in 0..2 {
            match crate::hostfs::create_new(std::fs::OpenOptions::new().write(true), path) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt == 0 => {
                    if let Some(by) = running_create(&self.temporary.id) {
                        return Err(CreateError::Busy {
                            name: self.env.name.clone(),
                            by,
                        });
                    }
                    eprintln!(
                        "conda-fuse: note: removing what an interrupted create of '{}' left",
                        self.env.name
                    );
                    if matches!(daemon::probe(&self.env.mountpoint), Probe::Stale) {
                        daemon::unmount(&self.env.mountpoint, false, true, &mut |_, _| {})?;
                    }
                    self.remove_leftovers();
                }
                Err(source) => {
                    return Err(CreateError::Temporary {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    /// The temporary archive, its lock and upper layers, and the mount point if empty.
    fn remove_leftovers(&self) {
        let t = &self.temporary;
        let _ = std::fs::remove_file(&t.archive);
        let _ = std::fs::remove_file(&t.lock);
        let _ = std::fs::remove_dir_all(&t.upper);
        // The create's own changes, on this node (`MountRequest::as_transaction`).
        let transactions = crate::daemon::state::transaction_dir();
        let _ = std::fs::remove_dir_all(crate::overlay::upper::dir_for(&transactions, &t.id));
        let _ = std::fs::remove_dir(&t.mountpoint);
    }
}

impl Drop for Creation<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if matches!(
            daemon::probe(&self.env.mountpoint),
            Probe::Live(_) | Probe::Stale
        ) {
            let _ = daemon::unmount(&self.env.mountpoint, false, true, &mut |_, _| {});
        }
        self.remove_leftovers();
    }
}

/// How long a temporary archive that has no lock file yet counts as a create that is starting:
/// it is claimed, written and then mounted, which makes the lock file and takes it.
const STARTING: std::time::Duration = std::time::Duration::from_secs(10);

/// Who is creating the temporary archive `path` now, if anyone: the writer of its lock (on any
/// node: the lock's heartbeat says), or a create that claimed it moments ago and has not mounted
/// it yet. Anything else (a lock nobody holds any more) is what an interrupted create left.
fn running_create(temporary: &ArchiveId) -> Option<String> {
    if crate::overlay::lock::lock_path(temporary).exists() {
        return match crate::overlay::lock::inspect(temporary) {
            Some((holder, None)) => Some(format!("its mount's daemon is {}", holder.describe())),
            _ => None,
        };
    }
    let age = std::fs::metadata(temporary.path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())?;
    (age < STARTING).then(|| format!("it began {}s ago and is not mounted yet", age.as_secs()))
}

/// Renames without replacing (another create of the same name may have won meanwhile; on
/// filesystems whose renameat2 has no flags, through `hostfs`'s fallbacks), then makes the rename
/// durable.
fn rename_noreplace(from: &Path, to: &Path) -> Result<(), CreateError> {
    crate::hostfs::rename_noreplace(from, to).map_err(|source| CreateError::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}
