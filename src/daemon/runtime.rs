//! The node-local runtime directory: what means something only on this node — one JSON record per
//! mount (pid, mount point, archive, mode, control socket), the control sockets, and `run`'s
//! reference counts. A pid, a socket and a mount are this node's; in a shared `$HOME` another node
//! would take them for stale and remove them, or talk to a daemon it cannot reach. So they live in
//! `$CONDA_FUSE_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/conda-fuse` (when that directory exists and
//! is ours), else `/tmp/conda-fuse-$UID` (or, where another user took that name, one nobody else
//! can foresee), verified private like every conda-fuse directory. Each
//! record also names its node (host and boot id) and file names carry a hash of it, so that even a
//! runtime directory shared by mistake never makes one node touch another's entries.

use nix::fcntl::{Flock, FlockArg};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::key_for;
use crate::node::Node;
use crate::private_dir::{PrivateDir, PrivateDirError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountRecord {
    #[serde(flatten)]
    pub node: Node,
    pub pid: u32,
    pub mountpoint: PathBuf,
    pub archive: PathBuf,
    pub read_only: bool,
    /// Unix time the mount became ready.
    pub since: u64,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// The batch job whose command made it, where jobs share the node's mounts (no job
    /// namespaces): another job must not use it, it goes when that job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// Where this node's records and sockets are.
pub fn runtime_dir() -> PathBuf {
    if let Some(d) = PINNED.get() {
        return d.clone();
    }
    if let Some(d) = &crate::settings::get().runtime_dir {
        return d.clone();
    }
    // Batch systems copy the login shell's XDG_RUNTIME_DIR into jobs on nodes where it does not
    // exist: use it only where it is there and ours. It is checked, not changed: the login
    // manager made it, not conda-fuse (our own directory in it is private).
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        && PrivateDir::is_own_and_unshared(&d)
    {
        return d.join("conda-fuse");
    }
    let mut chosen = CHOSEN_IN_TMP.lock().unwrap_or_else(|e| e.into_inner());
    chosen.get_or_insert_with(in_tmp).clone()
}

/// A daemon's runtime directory, fixed when it starts: where it keeps its record even after the
/// directory vanished (a logout deletes XDG_RUNTIME_DIR), since that is where commands look.
static PINNED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Fixes this process's runtime directory for its lifetime (daemons).
pub fn pin() {
    let _ = PINNED.set(runtime_dir());
}

/// The directory in /tmp this process settled on (every process of the user on this node settles
/// on the same one: see `in_tmp`).
static CHOSEN_IN_TMP: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

fn usual_in_tmp() -> PathBuf {
    PathBuf::from(format!("/tmp/conda-fuse-{}", nix::unistd::geteuid()))
}

/// `/tmp/conda-fuse-UID`, unless someone else took that name first (any local user can: batch jobs
/// have no XDG_RUNTIME_DIR, so this would stop every job of ours on the node). Then a name no other
/// user can foresee: `/tmp/conda-fuse-UID-HASH`, HASH made from a secret in our private state
/// directory and this boot, so every process of ours on this node finds the same directory without
/// a pointer anyone could race, and a name someone saw and took after a cleaner removed ours is
/// skipped for the next one.
fn in_tmp() -> PathBuf {
    let usual = usual_in_tmp();
    match PrivateDir::open(&usual) {
        Ok(_) => usual,
        Err(taken) => match unforeseeable_in_tmp() {
            Ok(d) => {
                let node = Node::this();
                if super::state::once(&format!("runtime-dir-taken-{}", node.boot_id)) {
                    eprintln!(
                        "conda-fuse: note: {taken}; using {} on {} instead (said once per boot)",
                        crate::display::path(&d),
                        node.host
                    );
                }
                d
            }
            Err(e) => {
                tracing::warn!("{taken}, and no other runtime directory can be made: {e}");
                usual
            }
        },
    }
}

/// The first of this node's unforeseeable names in /tmp that is ours or free (created then).
fn unforeseeable_in_tmp() -> Result<PathBuf, PrivateDirError> {
    let secret = runtime_secret()?;
    let node = Node::this();
    let uid = nix::unistd::geteuid();
    let mut last = None;
    for attempt in 0u32..16 {
        let key = crate::file_key::file_key(
            Path::new(""),
            0,
            &[&secret, node.boot_id.as_bytes(), &attempt.to_le_bytes()],
        );
        let dir = PathBuf::from(format!("/tmp/conda-fuse-{uid}{key}"));
        match PrivateDir::ensure(&dir) {
            Ok(_) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

const SECRET: &str = "runtime-name-secret";

/// 32 random bytes in the private state directory, made once (the first of racing makers wins:
/// its file is complete before it gets the name).
fn runtime_secret() -> Result<Vec<u8>, PrivateDirError> {
    let state = super::state::state()?;
    let io = |source| PrivateDirError::Io {
        what: "keep the runtime directory's secret in",
        path: state.path().to_owned(),
        source,
    };
    let read = |state: &PrivateDir| -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        io::Read::read_to_end(&mut state.open_read(SECRET)?, &mut data)?;
        Ok(data)
    };
    match read(&state) {
        Ok(data) if data.len() >= 32 => return Ok(data),
        Ok(_) | Err(_) => {}
    }
    let mut secret = [0u8; 32];
    io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").map_err(io)?,
        &mut secret,
    )
    .map_err(io)?;
    let tmp = format!(".{SECRET}.{}", std::process::id());
    let mut f = state.create_new(&tmp).map_err(io)?;
    io::Write::write_all(&mut f, &secret)
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    match crate::hostfs::rename::rename_noreplace(&state.show(&tmp), &state.show(SECRET)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = state.remove_file(&tmp);
        }
        Err(e) => {
            let _ = state.remove_file(&tmp);
            return Err(io(e));
        }
    }
    read(&state).map_err(io)
}

/// The verified runtime directory, created if needed. Where the usual name in /tmp was free when
/// looked at and someone took it before we made it, the unforeseeable name is used from then on.
pub fn runtime() -> Result<PrivateDir, PrivateDirError> {
    let dir = runtime_dir();
    match PrivateDir::ensure(&dir) {
        Err(e) if dir == usual_in_tmp() && crate::settings::get().runtime_dir.is_none() => {
            let other = unforeseeable_in_tmp().map_err(|_| e)?;
            *CHOSEN_IN_TMP.lock().unwrap_or_else(|e| e.into_inner()) = Some(other.clone());
            PrivateDir::ensure(&other)
        }
        r => r,
    }
}

const MOUNTS: &str = "mounts";

fn mounts_dir() -> Result<PrivateDir, PrivateDirError> {
    runtime()?.subdir(MOUNTS)
}

fn existing_mounts_dir() -> Option<PrivateDir> {
    PrivateDir::open(&runtime_dir())
        .ok()??
        .open_subdir(MOUNTS)
        .ok()?
}

/// Held from the check that a mount point is free until the mount is there, so that two commands
/// mounting one mount point at once (two terminals activating) never stack two mounts: the second
/// waits, then finds the first's mount. In the private runtime directory: nobody else can hold it.
/// Waits at most `CONDA_FUSE_RUN_WAIT`.
pub fn mounting_lock(mountpoint: &Path) -> io::Result<Flock<std::fs::File>> {
    let mounts = mounts_dir().map_err(io::Error::other)?;
    let name = format!("{}.mounting", key_for(mountpoint));
    let limit = crate::settings::get().run_wait;
    lock_within(&mounts, &name, limit, |_, _| {})?.map_err(|(_, waited)| {
        io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "another conda-fuse has been mounting {} for {}s",
                mountpoint.display(),
                waited.as_secs()
            ),
        )
    })
}

/// The exclusive flock of `name` in `dir` (made if missing), waiting at most `limit` while another
/// process holds it; `waiting` hears each time it is found held (the file, and how long so far).
/// Err((file, waited)) when the limit ran out.
pub(super) fn lock_within(
    dir: &PrivateDir,
    name: &str,
    limit: std::time::Duration,
    mut waiting: impl FnMut(&mut std::fs::File, std::time::Duration),
) -> io::Result<Result<Flock<std::fs::File>, (std::fs::File, std::time::Duration)>> {
    let started = std::time::Instant::now();
    loop {
        let file = dir.open_rw(name, true)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Ok(lock)),
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let waited = started.elapsed();
                if waited > limit {
                    return Ok(Err((file, waited)));
                }
                waiting(&mut file, waited);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err((_, e)) => return Err(e.into()),
        }
    }
}

/// Creates the runtime directory and its mounts directory (private), or says why it cannot.
pub fn ensure_dirs() -> Result<(), PrivateDirError> {
    mounts_dir().map(drop)
}

pub fn socket_path(mountpoint: &Path) -> PathBuf {
    runtime_dir()
        .join(MOUNTS)
        .join(format!("{}.sock", key_for(mountpoint)))
}

fn record_name(mountpoint: &Path) -> String {
    format!("{}.json", key_for(mountpoint))
}

impl MountRecord {
    pub fn save(&self) -> io::Result<()> {
        let mounts = mounts_dir().map_err(io::Error::other)?;
        let data = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        mounts.write_atomic(&record_name(&self.mountpoint), &data)
    }

    /// A record of this node's, or nothing (another node's record is not ours to read or act on).
    fn read(dir: &PrivateDir, name: &std::ffi::OsStr, here: &Node) -> Option<MountRecord> {
        let mut data = Vec::new();
        io::Read::read_to_end(&mut dir.open_read(name).ok()?, &mut data).ok()?;
        serde_json::from_slice::<MountRecord>(&data)
            .ok()
            .filter(|r| r.node == *here)
    }

    pub fn load(mountpoint: &Path) -> Option<MountRecord> {
        existing_mounts_dir()
            .and_then(|mounts| Self::read(&mounts, record_name(mountpoint).as_ref(), &Node::this()))
            .or_else(|| legacy::load(mountpoint))
    }

    /// Removes this node's record and socket of `mountpoint` (the names are this node's: see
    /// `key_for`).
    pub fn remove(mountpoint: &Path) {
        if let Some(mounts) = existing_mounts_dir() {
            let _ = mounts.remove_file(record_name(mountpoint));
            let _ = mounts.remove_file(format!("{}.sock", key_for(mountpoint)));
        }
    }

    /// Whether the recorded daemon still runs (a pid reused by an unrelated process is told apart by
    /// its command name).
    pub fn daemon_alive(&self) -> bool {
        crate::process::is_conda_fuse(self.pid)
    }

    /// This node's records.
    pub fn all() -> Vec<MountRecord> {
        let Some(mounts) = existing_mounts_dir() else {
            return Vec::new();
        };
        let here = Node::this();
        mounts
            .entries()
            .unwrap_or_default()
            .iter()
            .filter(|n| n.as_encoded_bytes().ends_with(b".json"))
            .filter_map(|n| Self::read(&mounts, n, &here))
            .collect()
    }
}

/// Versions before node-local runtime directories recorded their daemons in the shared state
/// directory's `mounts/`, without naming the node. Such a daemon keeps running across an upgrade,
/// and its record is still how to reach it (to save and unmount it). It is used only when it can
/// be nobody else's: its mount is visible here, its pid is a conda-fuse process here, and its
/// control socket answers here (a Unix socket in a shared directory connects only to a process of
/// the node that bound it). It is never removed from here: it may be another node's.
mod legacy {
    use std::path::{Path, PathBuf};

    use serde::Deserialize;

    use super::MountRecord;
    use crate::daemon::{mountpoint, state};
    use crate::node::Node;
    use crate::private_dir::PrivateDir;

    #[derive(Deserialize)]
    struct Record {
        pid: u32,
        mountpoint: PathBuf,
        archive: PathBuf,
        read_only: bool,
        since: u64,
        socket: PathBuf,
        log: PathBuf,
    }

    /// The name those versions gave a mount point's record (without the node).
    fn name(mountpoint: &Path) -> String {
        use std::os::unix::ffi::OsStrExt;
        let path = mountpoint.as_os_str().as_bytes();
        let key = crate::file_key::file_key(mountpoint, state::KEY_READABLE, &[path]);
        format!("{key}.json")
    }

    pub(super) fn load(mountpoint: &Path) -> Option<MountRecord> {
        if !mountpoint::mounted_at(mountpoint).is_some_and(|m| m.is_conda_fuse()) {
            return None;
        }
        let dir = PrivateDir::open(&state::state_dir())
            .ok()??
            .open_subdir("mounts")
            .ok()??;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut dir.open_read(name(mountpoint)).ok()?, &mut data).ok()?;
        let r: Record = serde_json::from_slice(&data).ok()?;
        let ours = r.mountpoint == mountpoint
            && crate::process::is_conda_fuse(r.pid)
            && std::os::unix::net::UnixStream::connect(&r.socket).is_ok();
        ours.then(|| MountRecord {
            node: Node::this(),
            pid: r.pid,
            mountpoint: r.mountpoint,
            archive: r.archive,
            read_only: r.read_only,
            since: r.since,
            socket: r.socket,
            log: r.log,
            job: None,
        })
    }
}
