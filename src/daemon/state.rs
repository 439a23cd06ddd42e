//! Where daemons record themselves: one JSON file per mount in the state directory
//! (`$CONDA_FUSE_STATE_DIR`, else `$XDG_STATE_HOME/conda-fuse`, else `~/.local/state/conda-fuse`),
//! holding the pid, mount point, archive, mode and the control socket. The state directory and
//! everything in it is private to the user (`PrivateDir`: 0700 directories, 0600 files, verified,
//! no symlink followed). Records are written atomically; a record whose pid is gone is stale and
//! is removed by whoever finds it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::private_dir::{PrivateDir, PrivateDirError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountRecord {
    pub pid: u32,
    pub mountpoint: PathBuf,
    pub archive: PathBuf,
    pub read_only: bool,
    /// Unix time the mount became ready.
    pub since: u64,
    pub socket: PathBuf,
    pub log: PathBuf,
}

pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CONDA_FUSE_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("conda-fuse");
    }
    home_dir().join(".local/state/conda-fuse")
}

/// Where writable mounts keep changes until saved: `$CONDA_FUSE_UPPER_DIR`, else the state
/// directory's `upper/` (one directory per archive below it).
pub fn upper_root() -> PathBuf {
    match std::env::var_os("CONDA_FUSE_UPPER_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => state_dir().join("upper"),
    }
}

pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
                .unwrap_or_else(|| PathBuf::from("/tmp"))
        })
}

const MOUNTS: &str = "mounts";
const LOGS: &str = "logs";

/// The verified state directory, created if needed.
pub fn state() -> Result<PrivateDir, PrivateDirError> {
    PrivateDir::ensure(&state_dir())
}

/// A verified subdirectory of the state directory, created if needed.
fn state_subdir(name: &str) -> Result<PrivateDir, PrivateDirError> {
    state()?.subdir(name)
}

/// An existing verified subdirectory of the state directory (None if there is none yet).
fn existing_subdir(name: &str) -> Option<PrivateDir> {
    let state = PrivateDir::open(&state_dir()).ok()??;
    state.open_subdir(name).ok()?
}

pub fn logs_dir() -> PathBuf {
    state_dir().join(LOGS)
}

/// A short, stable file-name key for a mount point: its last component plus a hash of the path
/// (socket paths must stay under 108 bytes).
pub fn key_for(mountpoint: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let base: String = mountpoint
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(24)
                .collect()
        })
        .unwrap_or_default();
    let hash = Sha256::digest(mountpoint.as_os_str().as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{base}-{hex}")
}

fn record_name(mountpoint: &Path) -> String {
    format!("{}.json", key_for(mountpoint))
}

pub fn socket_path(mountpoint: &Path) -> PathBuf {
    state_dir()
        .join(MOUNTS)
        .join(format!("{}.sock", key_for(mountpoint)))
}

fn log_name(mountpoint: &Path) -> String {
    format!("{}.log", key_for(mountpoint))
}

pub fn log_path(mountpoint: &Path) -> PathBuf {
    logs_dir().join(log_name(mountpoint))
}

/// Opens the log of the mount at `mountpoint` for appending (0600, in the private logs directory).
pub fn open_log(mountpoint: &Path) -> io::Result<std::fs::File> {
    let logs = state_subdir(LOGS).map_err(io::Error::other)?;
    logs.open_append(log_name(mountpoint))
}

/// Creates the state directory and its subdirectories (private), or says why it cannot.
pub fn ensure_dirs() -> Result<(), PrivateDirError> {
    let state = state()?;
    state.subdir(MOUNTS)?;
    state.subdir(LOGS)?;
    Ok(())
}

impl MountRecord {
    pub fn save(&self) -> io::Result<()> {
        let mounts = state_subdir(MOUNTS).map_err(io::Error::other)?;
        let data = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        mounts.write_atomic(&record_name(&self.mountpoint), &data)
    }

    fn read(dir: &PrivateDir, name: &std::ffi::OsStr) -> Option<MountRecord> {
        let mut data = Vec::new();
        io::Read::read_to_end(&mut dir.open_read(name).ok()?, &mut data).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub fn load(mountpoint: &Path) -> Option<MountRecord> {
        let mounts = existing_subdir(MOUNTS)?;
        Self::read(&mounts, record_name(mountpoint).as_ref())
    }

    pub fn remove(mountpoint: &Path) {
        if let Some(mounts) = existing_subdir(MOUNTS) {
            let _ = mounts.remove_file(record_name(mountpoint));
            let _ = mounts.remove_file(format!("{}.sock", key_for(mountpoint)));
        }
    }

    /// Whether the recorded daemon still runs (a pid reused by an unrelated process is told apart by
    /// its command name).
    pub fn daemon_alive(&self) -> bool {
        process_is_ours(self.pid)
    }

    pub fn all() -> Vec<MountRecord> {
        let Some(mounts) = existing_subdir(MOUNTS) else {
            return Vec::new();
        };
        mounts
            .entries()
            .unwrap_or_default()
            .iter()
            .filter(|n| n.as_encoded_bytes().ends_with(b".json"))
            .filter_map(|n| Self::read(&mounts, n))
            .collect()
    }
}

pub use crate::process::is_conda_fuse as process_is_ours;
