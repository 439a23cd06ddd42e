//! Why an environment could not be made usable, or let go of: what failed and where, with what
//! to do as the hint.

use std::path::PathBuf;

use super::plan::Refusal;
use crate::daemon::DaemonError;
use crate::daemon::runs::RunsError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("there is no environment '{name}' (no archive {})", archive.display())]
    Missing { name: String, archive: PathBuf },
    #[error("{spec} is a snapshot: it runs read-only")]
    SnapshotIsReadOnly { spec: String, name: String },
    #[error(
        "'{name}' is {}, in a directory you cannot write ({}): it can only be used read-only \
         (conda-fuse-activate {name} or conda-fuse run {name})",
        archive.display(), dir.display()
    )]
    NotWritableByYou {
        name: String,
        archive: PathBuf,
        dir: PathBuf,
    },
    #[error(
        "{} has another filesystem mounted ({fstype} from {source_name}), perhaps fuse-zip of the \
         old conda-fuse.sh",
        mountpoint.display()
    )]
    Foreign {
        mountpoint: PathBuf,
        fstype: String,
        source_name: String,
    },
    #[error(
        "{} is mounted by a conda-fuse daemon that this node's runtime directory ({}) has no \
         record of (archive {archive}): another user's, or one started with another \
         CONDA_FUSE_RUNTIME_DIR or XDG_RUNTIME_DIR",
        mountpoint.display(), runtime_dir.display()
    )]
    Unrecorded {
        mountpoint: PathBuf,
        runtime_dir: PathBuf,
        archive: String,
    },
    #[error("{} serves {}, not {}", mountpoint.display(), serves.display(), archive.display())]
    ServesAnother {
        mountpoint: PathBuf,
        serves: PathBuf,
        archive: PathBuf,
    },
    #[error(
        "'{name}' is mounted read-only at {} (daemon pid {pid}), and this needs it writable",
        mountpoint.display()
    )]
    MountedReadOnly {
        name: String,
        mountpoint: PathBuf,
        pid: u32,
    },
    #[error("'{name}' is mounted at {} (daemon pid {pid})", mountpoint.display())]
    Mounted {
        name: String,
        mountpoint: PathBuf,
        pid: u32,
    },
    #[error("'{name}' is {}, in a directory you cannot write", archive.display())]
    NotMine {
        name: String,
        archive: PathBuf,
        /// What was refused: "delete", "roll back".
        what: &'static str,
    },
    #[error("cannot create the mount point {}", path.display())]
    MountPoint {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "'{name}' is mounted by job {job}'s command (daemon pid {pid}) and still was after {}s; \
         it goes when that job's commands end",
        waited.as_secs()
    )]
    AnotherJobs {
        name: String,
        job: String,
        pid: u32,
        waited: std::time::Duration,
    },
    #[error("saving '{name}' after the run failed; its changes stay in the mount")]
    SaveAfterRun { name: String, source: DaemonError },
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Runs(#[from] RunsError),
}

impl SessionError {
    /// The error for `refusal` of the environment `env`.
    pub(super) fn refused(env: &crate::envs::Env, refusal: Refusal, serves: PathBuf) -> Self {
        let name = env.name.clone();
        match refusal {
            Refusal::Missing => SessionError::Missing {
                name,
                archive: env.archive.clone(),
            },
            Refusal::SnapshotIsReadOnly => SessionError::SnapshotIsReadOnly {
                spec: format!("{name}@{}", env.snapshot.unwrap_or(0)),
                name,
            },
            Refusal::NotWritableByYou => SessionError::NotWritableByYou {
                name,
                archive: env.archive.clone(),
                dir: env
                    .archive
                    .parent()
                    .map_or_else(|| PathBuf::from("/"), |d| d.to_path_buf()),
            },
            Refusal::Foreign { fstype, source } => SessionError::Foreign {
                mountpoint: env.mountpoint.clone(),
                fstype,
                source_name: source,
            },
            Refusal::Unrecorded { archive } => SessionError::Unrecorded {
                mountpoint: env.mountpoint.clone(),
                runtime_dir: crate::daemon::runtime::runtime_dir(),
                archive,
            },
            Refusal::ServesAnother => SessionError::ServesAnother {
                mountpoint: env.mountpoint.clone(),
                serves,
                archive: env.id.path().to_path_buf(),
            },
            Refusal::MountedReadOnly { pid } => SessionError::MountedReadOnly {
                name,
                mountpoint: env.mountpoint.clone(),
                pid,
            },
            Refusal::AnotherJobs { job, pid } => SessionError::AnotherJobs {
                name,
                job,
                pid,
                waited: std::time::Duration::ZERO,
            },
        }
    }
}

impl crate::hint::Hint for SessionError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            SessionError::Missing { name, .. } => format!(
                "list them with conda-fuse-env-list, or create it with conda-fuse-create {name}"
            ),
            SessionError::SnapshotIsReadOnly { name, .. } => format!(
                "to change the environment, roll back to it: conda-fuse rollback {name} --to N"
            ),
            SessionError::NotWritableByYou { .. } => "to change it, ask its owner, or copy it \
                                                      into your own first directory of \
                                                      CONDA_FUSE_ARCHIVE_PATH under another name"
                .into(),
            SessionError::Foreign { mountpoint, .. } => format!(
                "unmount it (fusermount3 -u {}) and try again",
                mountpoint.display()
            ),
            SessionError::Unrecorded { mountpoint, .. } => format!(
                "use that directory, or unmount it (fusermount3 -u {}) and try again",
                mountpoint.display()
            ),
            SessionError::ServesAnother { mountpoint, .. } => format!(
                "unmount it first (conda-fuse unmount {})",
                mountpoint.display()
            ),
            SessionError::MountedReadOnly { name, .. } => format!(
                "unmount it (conda-fuse-unmount {name}) and try again; if another mount holds the \
                 writer lock, conda-fuse-env-list shows it"
            ),
            SessionError::Mounted { name, .. } => {
                format!("unmount it first (conda-fuse-unmount {name})")
            }
            SessionError::NotMine { what, .. } => format!("only its owner can {what} it"),
            SessionError::AnotherJobs { .. } => "jobs on this node cannot have mounts of their \
                                                 own (conda-fuse doctor says why): run this job \
                                                 when that one is done, or raise \
                                                 CONDA_FUSE_RUN_WAIT"
                .into(),
            SessionError::MountPoint { .. } => {
                "check CONDA_FUSE_MOUNT_ROOT and its permissions".into()
            }
            // What failed says what to do (a full disk, a lost lock).
            SessionError::SaveAfterRun { .. } => return None,
            SessionError::Daemon(e) => return crate::hint::Hint::hint(e),
            SessionError::Runs(e) => return crate::hint::Hint::hint(e),
        })
    }
}
