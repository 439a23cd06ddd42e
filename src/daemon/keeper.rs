//! What a daemon looks after while it serves, once a second:
//!
//! - Its mount record and control socket. systemd-logind deletes `/run/user/UID` at a user's last
//!   logout, and /tmp cleaners delete old directories, while the daemon lives on; without its
//!   record no command finds the mount (`commit` and `status` said "not mounted", `unmount`
//!   refused). Where they vanished they are made again, in the same runtime directory, as soon as
//!   its parent is there again and ours (at the next login); never is a parent made.
//! - The runs in it, for a mount runs made (`runs`). Once none is left, because they left or
//!   because they died without leaving (a batch job or a Jupyter kernel killed with SIGKILL), the
//!   mount lingers as the last leaver asked, or `runs::linger()` where nobody could ask, and then
//!   the daemon unmounts itself. A run that comes calls that off. The daemon does this itself
//!   because it is the one process that lives exactly as long as the mount: a separate lingerer
//!   could be killed along with the job, and a killed run could name none.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::runs::{self, Decision, Runs};
use super::runtime::{self, MountRecord};

const PERIOD: Duration = Duration::from_secs(1);

/// Set while the daemon ends: from then on its record goes and is never made again.
#[derive(Clone, Default)]
pub struct Ending(Arc<Mutex<bool>>);

impl Ending {
    /// Marks the end; the keeper is not restoring anything once this returns.
    pub fn begin(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}

/// Binds the control socket anew and serves it (the old one's file is gone).
pub type Rebind = Box<dyn Fn() -> io::Result<()> + Send>;

pub fn start(record: MountRecord, ending: Ending, rebind: Rebind) -> io::Result<()> {
    std::thread::Builder::new()
        .name("keeper".into())
        .spawn(move || keep(&record, &ending, &rebind))
        .map(drop)
}

fn keep(record: &MountRecord, ending: &Ending, rebind: &Rebind) {
    let name = crate::file_key::readable(&record.mountpoint, 64);
    let runs = Runs::at(&record.mountpoint, &name);
    let mut lingering = None;
    let mut restore_failed = false;
    loop {
        std::thread::sleep(PERIOD);
        {
            let ended = ending.0.lock().unwrap_or_else(|e| e.into_inner());
            if *ended {
                return;
            }
            if !record_is_there(record) {
                match restore(record, rebind) {
                    Ok(()) => {
                        restore_failed = false;
                        tracing::info!("made this mount's record and control socket again");
                    }
                    Err(e) if !restore_failed => {
                        restore_failed = true;
                        tracing::warn!("this mount's record is gone and cannot be made yet: {e}");
                    }
                    Err(_) => {}
                }
            }
        }
        if let Some(_decided) = linger_is_over(&runs, record.pid, &mut lingering) {
            // Detached while still deciding: a run that comes next finds no mount, not one
            // about to go.
            tracing::info!("no run has used this mount for its linger time: unmounting");
            if let Err(e) = super::mountpoint::detach(&record.mountpoint, true) {
                tracing::error!("detaching {}: {e}", record.mountpoint.display());
            }
            return;
        }
    }
}

fn record_is_there(record: &MountRecord) -> bool {
    MountRecord::load(&record.mountpoint).is_some_and(|r| r.pid == record.pid)
        && std::fs::symlink_metadata(&record.socket).is_ok_and(|m| m.file_type().is_socket())
}

fn restore(record: &MountRecord, rebind: &Rebind) -> io::Result<()> {
    let dir = runtime::runtime_dir();
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if !std::fs::symlink_metadata(parent).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not there (logged out?)", parent.display()),
        ));
    }
    runtime::ensure_dirs().map_err(io::Error::other)?;
    rebind()?;
    record.save()
}

/// Since when, and at whose request, the runs' mount has had no run in it.
struct Lingering {
    asked: Option<String>,
    since: Instant,
}

/// Whether the mount runs made of this daemon (`me`) has had no run in it for its linger time;
/// then it is no longer the runs', and the runs' decision is held until it is gone.
fn linger_is_over(runs: &Runs, me: u32, lingering: &mut Option<Lingering>) -> Option<Decision> {
    if runs.peek_mounted_by_run() != Some(me) {
        *lingering = None;
        return None;
    }
    // Busy: a run is deciding (joining or leaving); look again next time.
    let decision = runs.try_decide()?;
    if runs.mounted_by_run(&decision) != Some(me) || runs.others(&decision, 0) > 0 {
        *lingering = None;
        return None;
    }
    let (linger, asked) = match runs.lingering_asked(&decision) {
        Some((linger, asked)) => (linger, Some(asked)),
        // Every run in it died without leaving.
        None => (runs::linger(), None),
    };
    let current = lingering.get_or_insert_with(|| Lingering {
        asked: asked.clone(),
        since: Instant::now(),
    });
    if current.asked != asked {
        // Another run came and left between two looks: its leave starts the time anew.
        *current = Lingering {
            asked,
            since: Instant::now(),
        };
    }
    if current.since.elapsed() < linger {
        return None;
    }
    runs.clear_lingering(&decision);
    if let Err(e) = runs.set_mounted_by_run(&decision, None) {
        tracing::warn!("{e}");
    }
    Some(decision)
}
