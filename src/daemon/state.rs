//! The shared state directory (`$CONDA_FUSE_STATE_DIR`, else `$XDG_STATE_HOME/conda-fuse`, else
//! `~/.local/state/conda-fuse`): what must outlive a node, so it lives where every node of a
//! cluster sees it — the upper layers with their journals (another node's next writable mount
//! recovers a dead node's acknowledged changes) and the daemons' logs. What belongs to one node
//! (mount records, control sockets, run counts) is in `runtime.rs`. Everything here is private to
//! the user (`PrivateDir`: 0700 directories, 0600 files, verified, no symlink followed).

use std::io;
use std::path::{Path, PathBuf};

use crate::file_key::file_key;
use crate::private_dir::{PrivateDir, PrivateDirError};

pub fn state_dir() -> PathBuf {
    if let Some(d) = &crate::settings::get().state_dir {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("conda-fuse");
    }
    home_dir().join(".local/state/conda-fuse")
}

/// Where writable mounts keep changes until saved: `$CONDA_FUSE_UPPER_DIR`, else the state
/// directory's `upper/` (one directory per archive below it).
pub fn upper_root() -> PathBuf {
    match &crate::settings::get().upper_dir {
        Some(d) => d.clone(),
        None => state_dir().join("upper"),
    }
}

/// Where transactions conda-fuse drives (create, install, remove) keep their
/// changes until their save, which is their commit: node-local, under `TMPDIR`, since no other
/// node ever needs half a transaction (what a crashed one leaves is thrown away by the next).
/// None where the user chose the place of upper layers (`CONDA_FUSE_UPPER_DIR`) or no private
/// directory can be made in `TMPDIR` (another user took the name): the shared place serves then.
pub fn transaction_upper_root() -> Option<PathBuf> {
    if crate::settings::get().upper_dir.is_some() {
        return None;
    }
    let transactions = transaction_dir();
    let dir = transactions.parent().expect("under TMPDIR");
    if let Err(e) = PrivateDir::ensure(dir) {
        tracing::debug!("transactions keep their changes in the state directory: {e}");
        return None;
    }
    // A small TMPDIR (a tmpfs /tmp) would fail a create that fits the state directory.
    let free = nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(0);
    if free < TRANSACTION_MIN_FREE {
        tracing::debug!(
            free,
            "TMPDIR is nearly full: transactions keep their changes in the state directory"
        );
        return None;
    }
    Some(transactions)
}

/// Where `transaction_upper_root` puts transactions' upper layers when it can: for cleaning up
/// after one, which must neither make that directory nor skip it because TMPDIR filled up since.
pub fn transaction_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    std::env::temp_dir().join(format!("conda-fuse-{uid}/transactions"))
}

/// Free space TMPDIR must have for transactions to keep their changes there.
const TRANSACTION_MIN_FREE: u64 = 2 << 30;

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

const LOGS: &str = "logs";

/// The verified state directory, created if needed.
pub fn state() -> Result<PrivateDir, PrivateDirError> {
    PrivateDir::ensure(&state_dir())
}

pub fn logs_dir() -> PathBuf {
    state_dir().join(LOGS)
}

/// A short, stable file-name key for a mount point on this node: its last component plus a hash of
/// the path and the node (two nodes' mounts at one path never share a record, socket or log, even
/// in a shared directory; socket paths must stay under 108 bytes).
pub fn key_for(mountpoint: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let node = crate::node::Node::this();
    let parts = [
        node.host.as_bytes(),
        node.boot_id.as_bytes(),
        mountpoint.as_os_str().as_bytes(),
    ];
    let separated: Vec<&[u8]> = parts.iter().flat_map(|p| [*p, &[0u8][..]]).collect();
    file_key(mountpoint, KEY_READABLE, &separated)
}

/// How much of a mount point's name its key keeps readable.
pub(super) const KEY_READABLE: usize = 24;

fn log_name(mountpoint: &Path) -> String {
    format!("{}.log", key_for(mountpoint))
}

/// The log of the mount at `mountpoint` on this node (in the shared state directory, so that it is
/// still there to read after the node is gone).
pub fn log_path(mountpoint: &Path) -> PathBuf {
    logs_dir().join(log_name(mountpoint))
}

/// Opens the log of the mount at `mountpoint` for appending (0600, in the private logs directory).
pub fn open_log(mountpoint: &Path) -> io::Result<std::fs::File> {
    let logs = state()
        .and_then(|s| s.subdir(LOGS))
        .map_err(io::Error::other)?;
    logs.open_append(log_name(mountpoint))
}

/// Whether a note is said for the first time in this state directory (a marker file named `key`
/// remembers it was).
pub fn once(key: &str) -> bool {
    let Ok(notes) = state().and_then(|s| s.subdir("notes")) else {
        return false;
    };
    notes.create_new(key).is_ok()
}
