//! Where daemons record themselves: one JSON file per mount in the state directory
//! (`$CONDA_FUSE_STATE_DIR`, else `$XDG_STATE_HOME/conda-fuse`, else `~/.local/state/conda-fuse`),
//! holding the pid, mount point, archive, mode and the control socket. Written atomically; a record
//! whose pid is gone is stale and is removed by whoever finds it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

fn mounts_dir() -> PathBuf {
    state_dir().join("mounts")
}

pub fn logs_dir() -> PathBuf {
    state_dir().join("logs")
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
    format!(
        "{base}-{:08x}",
        crc32fast::hash(mountpoint.as_os_str().as_bytes())
    )
}

pub fn record_path(mountpoint: &Path) -> PathBuf {
    mounts_dir().join(format!("{}.json", key_for(mountpoint)))
}

pub fn socket_path(mountpoint: &Path) -> PathBuf {
    mounts_dir().join(format!("{}.sock", key_for(mountpoint)))
}

pub fn log_path(mountpoint: &Path) -> PathBuf {
    logs_dir().join(format!("{}.log", key_for(mountpoint)))
}

pub fn ensure_dirs() -> io::Result<()> {
    std::fs::create_dir_all(mounts_dir())?;
    std::fs::create_dir_all(logs_dir())
}

impl MountRecord {
    pub fn save(&self) -> io::Result<()> {
        let path = record_path(&self.mountpoint);
        let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &path)
    }

    pub fn load(mountpoint: &Path) -> Option<MountRecord> {
        let data = std::fs::read(record_path(mountpoint)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub fn remove(mountpoint: &Path) {
        let _ = std::fs::remove_file(record_path(mountpoint));
        let _ = std::fs::remove_file(socket_path(mountpoint));
    }

    /// Whether the recorded daemon still runs (a pid reused by an unrelated process is told apart by
    /// its command name).
    pub fn daemon_alive(&self) -> bool {
        process_is_ours(self.pid)
    }

    pub fn all() -> Vec<MountRecord> {
        let Ok(dir) = std::fs::read_dir(mounts_dir()) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect()
    }
}

pub use crate::process::is_conda_fuse as process_is_ours;
