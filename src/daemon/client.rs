//! The client side of the control socket: `unmount` (saving or discarding first), `save` and
//! `status`, and waiting for a daemon to exit by its pid (a pidfd, never by polling `ps`).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::control::{self, Reply, Request, SaveSummary, Status};
use super::runtime::MountRecord;
use super::{DaemonError, mountpoint};
use crate::mountinfo::MountInfo;
use crate::process::PidFd;

/// What `unmount` found and did.
#[derive(Debug)]
pub enum Unmounted {
    /// The daemon unmounted and exited (after saving, when `saved` says what).
    Clean {
        pid: u32,
        saved: Option<SaveSummary>,
    },
    /// The daemon was gone; its stale mount and record were cleaned up. A writable mount's unsaved
    /// changes stay in its upper layer for the next mount.
    Stale,
    /// Lazily detached: the daemon serves the remaining users, then exits.
    Detached {
        pid: u32,
        saved: Option<SaveSummary>,
    },
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// The record of the live daemon serving `path`.
fn live_record(path: &Path) -> Result<MountRecord, DaemonError> {
    let canonical = canonical(path);
    find_record(&canonical, mountpoint::mounted_at(&canonical).as_ref())
        .filter(|r| r.daemon_alive())
        .ok_or(DaemonError::NotMounted(canonical))
}

fn unresponsive(record: &MountRecord, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Unresponsive {
        mountpoint: record.mountpoint.clone(),
        pid: record.pid,
        message: e.to_string(),
    }
}

/// Unmounts the conda-fuse mount at `path` and waits for its daemon to exit. A writable mount is
/// saved first, unless `discard` throws its changes away.
pub fn unmount(
    path: &Path,
    lazy: bool,
    discard: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Unmounted, DaemonError> {
    let canonical = canonical(path);
    let mounted = mountpoint::mounted_at(&canonical);
    let record = find_record(&canonical, mounted.as_ref());
    match (&record, &mounted) {
        (_, Some(m)) if !m.is_conda_fuse() => {
            return Err(DaemonError::NotOurs {
                path: canonical,
                fstype: format!("{} from {}", m.fstype, m.source),
            });
        }
        (None, None) => return Err(DaemonError::NotMounted(canonical)),
        _ => {}
    }
    let Some(record) = record.filter(|r| r.daemon_alive()) else {
        return clean_up_stale(canonical, mounted);
    };
    let pidfd = PidFd::open(record.pid);
    let (reply, _conn) = control::call(
        &record.socket,
        &Request::Unmount { lazy, discard },
        progress,
    )
    .map_err(|e| unresponsive(&record, e))?;
    let saved = match reply {
        Reply::Unmounted { saved } => saved,
        Reply::Busy { processes } => {
            return Err(DaemonError::Busy {
                path: canonical,
                users: users_of(&processes),
            });
        }
        Reply::Error { error } => {
            return Err(DaemonError::UnmountFailed {
                mountpoint: canonical,
                source: error,
            });
        }
        other => return Err(unresponsive(&record, format!("unexpected reply {other:?}"))),
    };
    if lazy {
        return Ok(Unmounted::Detached {
            pid: record.pid,
            saved,
        });
    }
    wait_for_exit(pidfd, record.pid, Duration::from_secs(120))
        .map_err(|e| unresponsive(&record, e))?;
    Ok(Unmounted::Clean {
        pid: record.pid,
        saved,
    })
}

/// A mount without a live daemon of ours: detached if its daemon is provably gone, refused if
/// a daemon this runtime directory does not know serves it (that one must save first).
fn clean_up_stale(
    canonical: PathBuf,
    mounted: Option<MountInfo>,
) -> Result<Unmounted, DaemonError> {
    if let Some(m) = mounted {
        if !mountpoint::is_stale(&canonical) {
            return Err(DaemonError::Unrecorded {
                path: canonical,
                archive: m.archive().to_string(),
                owner: m.owner(),
                runtime_dir: super::runtime::runtime_dir(),
            });
        }
        mountpoint::detach(&canonical, true).map_err(super::io_err(format!(
            "cannot detach the stale mount {}",
            canonical.display()
        )))?;
    }
    MountRecord::remove(&canonical);
    Ok(Unmounted::Stale)
}

/// "python (pid 4242), jupyter (pid 4343)": the processes that keep a mount busy.
fn users_of(processes: &[(u32, String)]) -> String {
    if processes.is_empty() {
        return "some process still uses it".to_string();
    }
    processes
        .iter()
        .map(|(p, c)| format!("{} (pid {p})", crate::display::escape(c.as_bytes())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Saves the changes of the writable mount at `path` into its archive; it stays mounted.
pub fn save(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<SaveSummary, DaemonError> {
    let record = live_record(path)?;
    match control::call(&record.socket, &Request::Save, progress) {
        Ok((Reply::Saved(s), _)) => Ok(s),
        Ok((Reply::Error { error }, _)) => Err(DaemonError::SaveFailed {
            mountpoint: record.mountpoint.clone(),
            source: error,
        }),
        Ok((other, _)) => Err(unresponsive(&record, format!("unexpected reply {other:?}"))),
        Err(e) => Err(unresponsive(&record, e)),
    }
}

/// Asks the daemon serving `path` for its status.
pub fn status(path: &Path) -> Result<Status, DaemonError> {
    let record = live_record(path)?;
    match control::call(&record.socket, &Request::Status, &mut |_, _| {}) {
        Ok((Reply::Status(s), _)) => Ok(*s),
        Ok((other, _)) => Err(unresponsive(&record, format!("unexpected reply {other:?}"))),
        Err(e) => Err(unresponsive(&record, e)),
    }
}

/// A pidfd lets us wait for an unrelated process to exit without polling (Linux 5.3+).
fn wait_for_exit(pidfd: PidFd, pid: u32, timeout: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    let Some(fd) = pidfd.0 else {
        // No pidfd (old kernel): check the pid itself until it is gone.
        while crate::process::is_conda_fuse(pid) {
            if std::time::Instant::now() > deadline {
                return Err(format!("still running after {}s", timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        return Ok(());
    };
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(format!("still running after {}s", timeout.as_secs()));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            // SAFETY: `fd` outlives this borrow.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) },
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// What is at a mount point.
#[derive(Debug)]
pub enum Probe {
    NotMounted,
    /// Served by a live conda-fuse daemon.
    Live(MountRecord),
    /// A conda-fuse mount whose daemon is gone ("Transport endpoint is not connected"): `unmount`
    /// cleans it up.
    Stale,
    /// Something else is mounted there (fuse-zip of the old tool, a bind mount, ...).
    Foreign(mountpoint::MountInfo),
    /// A live conda-fuse mount this state directory has no record of (another user's, or one made
    /// with another CONDA_FUSE_STATE_DIR): not ours to control.
    Unrecorded(mountpoint::MountInfo),
}

/// Looks at `path` without changing anything, except forgetting the record of a daemon that died
/// after its mount was already gone.
pub fn probe(path: &Path) -> Probe {
    let canonical = canonical(path);
    let mounted = mountpoint::mounted_at(&canonical);
    let record = find_record(&canonical, mounted.as_ref());
    match (mounted, record) {
        (Some(m), _) if !m.is_conda_fuse() => Probe::Foreign(m),
        (Some(_), Some(r)) if r.daemon_alive() => Probe::Live(r),
        // Without a live daemon of ours (no record in this state directory, or one whose daemon
        // is gone): stale only when provably dead, else someone else's daemon serves it.
        (Some(_), _) if mountpoint::is_stale(&canonical) => Probe::Stale,
        (Some(m), _) => Probe::Unrecorded(m),
        // Mounting or unmounting right now.
        (None, Some(r)) if r.daemon_alive() => Probe::Live(r),
        (None, Some(_)) => {
            MountRecord::remove(&canonical);
            Probe::NotMounted
        }
        (None, None) => Probe::NotMounted,
    }
}

/// The record of the mount at `canonical` (`mounted` is what the mount table shows there). Where
/// the user's live conda-fuse mount has none, its daemon may be making it again (a logout deleted
/// the runtime directory: `keeper`), which is waited for a little longer than it takes.
fn find_record(canonical: &Path, mounted: Option<&mountpoint::MountInfo>) -> Option<MountRecord> {
    MountRecord::load(canonical).or_else(|| {
        mounted
            .is_some_and(is_ours_unrecorded)
            .then(|| wait_for_record(canonical))
            .flatten()
    })
}

fn is_ours_unrecorded(m: &mountpoint::MountInfo) -> bool {
    m.is_conda_fuse()
        && m.user_id() == Some(nix::unistd::geteuid().as_raw())
        && !mountpoint::is_stale(&m.point)
}

fn wait_for_record(mountpoint: &Path) -> Option<MountRecord> {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(r) = MountRecord::load(mountpoint) {
            return Some(r);
        }
    }
    None
}
