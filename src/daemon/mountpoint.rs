//! Facts about mount points: what is mounted where (the table is `crate::mountinfo`'s), whether a directory
//! can take a mount, whether a FUSE mount is stale, who keeps one busy, and how to detach one.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::mountinfo::{MountInfo, mounts};

/// The topmost mount at exactly `path`, if any.
pub fn mounted_at(path: &Path) -> Option<MountInfo> {
    mounts().into_iter().rev().find(|m| m.point == path)
}

/// Our mounts show this prefix before the archive path in the mount table's source field (fuser's
/// direct mount always reports the type as plain "fuse", so the type cannot tell them apart).
pub const SOURCE_PREFIX: &str = "conda-fuse:";

impl MountInfo {
    pub fn is_conda_fuse(&self) -> bool {
        self.fstype.starts_with("fuse") && self.source.starts_with(SOURCE_PREFIX)
    }

    /// The archive a conda-fuse mount serves, as its daemon named it.
    pub fn archive(&self) -> &str {
        self.source.trim_start_matches(SOURCE_PREFIX)
    }

    /// The user who made a FUSE mount.
    pub fn user_id(&self) -> Option<u32> {
        self.options
            .split(',')
            .find_map(|o| o.strip_prefix("user_id="))
            .and_then(|u| u.parse().ok())
    }

    /// "the user NAME (uid N)" who made the mount, for messages.
    pub fn owner(&self) -> String {
        match self.user_id() {
            Some(uid) => crate::display::user(uid),
            None => "an unknown user".into(),
        }
    }
}

/// A FUSE mount whose daemon is gone answers ENOTCONN ("Transport endpoint is not connected") or,
/// on newer kernels once the connection is aborted, ECONNABORTED. Asked with statfs, which the
/// kernel always forwards to the daemon: stat may be answered from its attribute cache long after
/// the daemon died.
pub fn is_stale(path: &Path) -> bool {
    matches!(
        nix::sys::statfs::statfs(path),
        Err(nix::errno::Errno::ENOTCONN | nix::errno::Errno::ECONNABORTED)
    )
}

#[derive(Debug, thiserror::Error)]
pub enum MountPointError {
    #[error("FUSE is not available: /dev/fuse is missing")]
    NoFuseDevice,
    #[error("fusermount3 is not installed; non-root users need it to mount FUSE filesystems")]
    NoFusermount,
    #[error("mount point {0} does not exist")]
    Missing(String),
    #[error("mount point {0} is not a directory")]
    NotADirectory(String),
    #[error("mount point {path} is not empty ({count} entries); mounting would hide its files")]
    NotEmpty { path: String, count: usize },
    #[error("{path} is already a mount point ({what})")]
    AlreadyMounted { path: String, what: String },
    #[error("{0} is a stale mount whose daemon died (Transport endpoint is not connected)")]
    Stale(String),
    #[error("cannot use mount point {path}: {source}")]
    Io { path: String, source: io::Error },
}

impl crate::hint::Hint for MountPointError {
    fn hint(&self) -> Option<String> {
        match self {
            MountPointError::NoFuseDevice => Some(
                "install FUSE (apt-get install fuse3) and load the module (modprobe fuse), or ask \
                 your administrator"
                    .into(),
            ),
            MountPointError::NoFusermount => {
                Some("apt-get install fuse3, or dnf install fuse3".into())
            }
            MountPointError::Missing(p) => Some(format!("create it first (mkdir -p {p})")),
            MountPointError::NotADirectory(_) | MountPointError::NotEmpty { .. } => {
                Some("choose an empty directory".into())
            }
            MountPointError::AlreadyMounted { path, .. } => {
                Some(format!("unmount it first (conda-fuse unmount {path})"))
            }
            MountPointError::Stale(p) => Some(format!("run: conda-fuse unmount {p}")),
            MountPointError::Io { .. } => None,
        }
    }
}

/// Checks that `path` can take a new mount and returns its canonical form.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf, MountPointError> {
    let shown = path.display().to_string();
    if is_stale(path) {
        return Err(MountPointError::Stale(shown));
    }
    let md = match std::fs::metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(MountPointError::Missing(shown));
        }
        Err(source) => {
            return Err(MountPointError::Io {
                path: shown,
                source,
            });
        }
    };
    if !md.is_dir() {
        return Err(MountPointError::NotADirectory(shown));
    }
    let canonical = path.canonicalize().map_err(|source| MountPointError::Io {
        path: shown.clone(),
        source,
    })?;
    if let Some(m) = mounted_at(&canonical) {
        return Err(MountPointError::AlreadyMounted {
            path: canonical.display().to_string(),
            what: format!("{} from {}", m.fstype, m.source),
        });
    }
    let count = std::fs::read_dir(&canonical)
        .map_err(|source| MountPointError::Io {
            path: shown.clone(),
            source,
        })?
        .count();
    if count > 0 {
        return Err(MountPointError::NotEmpty {
            path: canonical.display().to_string(),
            count,
        });
    }
    Ok(canonical)
}

/// What FUSE needs from the host, as a message naming the fix when it is missing.
pub fn check_fuse_available() -> Result<(), MountPointError> {
    if !Path::new("/dev/fuse").exists() {
        return Err(MountPointError::NoFuseDevice);
    }
    if !nix::unistd::geteuid().is_root()
        && which::which("fusermount3").is_err()
        && which::which("fusermount").is_err()
    {
        return Err(MountPointError::NoFusermount);
    }
    Ok(())
}

/// Detaches the mount at `path`: umount2 as root, `fusermount3 -u` otherwise; `lazy` detaches even
/// while busy (used for stale mounts, whose daemon is gone).
pub fn detach(path: &Path, lazy: bool) -> io::Result<()> {
    // Directly where this process may (root, or a batch job's own mount namespace, where it has
    // the capability); else through the setuid helper, as FUSE users do.
    // Never through a symlink someone put in place of the mount point.
    let mut flags = nix::mount::MntFlags::UMOUNT_NOFOLLOW;
    if lazy {
        flags |= nix::mount::MntFlags::MNT_DETACH;
    }
    match nix::mount::umount2(path, flags) {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EPERM) if !nix::unistd::geteuid().is_root() => {}
        Err(e) => return Err(e.into()),
    }
    let tool = if which::which("fusermount3").is_ok() {
        "fusermount3"
    } else {
        "fusermount"
    };
    let mut cmd = Command::new(tool);
    cmd.arg("-u").arg("-q");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg(path).output()?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let busy = msg.contains("busy");
        Err(io::Error::new(
            if busy {
                io::ErrorKind::ResourceBusy
            } else {
                io::ErrorKind::Other
            },
            format!("{tool} -u failed: {msg}"),
        ))
    }
}

/// Processes with a file, working directory, root or mapping under `path` (what keeps it busy).
pub fn busy_processes(path: &Path) -> Vec<(u32, String)> {
    let me = std::process::id();
    let under = |p: &Path| p.starts_with(path);
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let base = p.path();
        let mut uses = ["cwd", "root"]
            .iter()
            .any(|l| std::fs::read_link(base.join(l)).is_ok_and(|t| under(&t)));
        if !uses {
            uses = std::fs::read_dir(base.join("fd"))
                .map(|fds| {
                    fds.flatten()
                        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| under(&t)))
                })
                .unwrap_or(false);
        }
        if !uses {
            let needle = path.as_os_str().as_bytes();
            uses = std::fs::read(base.join("maps"))
                .map(|m| m.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false);
        }
        if uses {
            let comm = std::fs::read_to_string(base.join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_point_checks_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            check_mountpoint(&missing),
            Err(MountPointError::Missing(_))
        ));
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            check_mountpoint(&file),
            Err(MountPointError::NotADirectory(_))
        ));
        assert!(matches!(
            check_mountpoint(dir.path()),
            Err(MountPointError::NotEmpty { count: 1, .. })
        ));
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert_eq!(
            check_mountpoint(&empty).unwrap(),
            empty.canonicalize().unwrap()
        );
        assert!(matches!(
            check_mountpoint(Path::new("/proc")),
            Err(MountPointError::AlreadyMounted { .. })
        ));
    }
}
