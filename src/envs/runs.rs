//! Shared mounts for batch jobs: concurrent `conda-fuse run` of one environment on one node share a
//! mount, counted by one pid file per run in `RUNTIME/runs/KEY/`, where KEY names the mount point
//! on this node (`state::key_for`: two mount roots with an env of the same name, or two nodes in a
//! runtime directory shared by mistake, never share counts). Decisions (mount it? unmount it?) are
//! taken under an exclusive flock on `RUNTIME/runs/KEY.lock`, so two runs never both mount or
//! unmount. A run that mounted records it (`mounted-by-run`); the last run to leave unmounts only a
//! mount that runs made, never one a user made. Pid files of runs that died are ignored.
//!
//! Everything lives in the node's private runtime directory (0700, files 0600): pids are this
//! node's, no other node waits on these locks, and no other user can even open one to block it; a
//! decision waits a bounded time and then names who holds it.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use super::Env;
use crate::daemon::runtime;
use crate::private_dir::PrivateDir;

const MOUNTED_BY_RUN: &str = "mounted-by-run";
/// The pid of the process that will unmount the runs' mount once the linger time is over, if no
/// run has come by then (a run that comes removes it).
const LINGERER: &str = "lingerer";

/// How long a mount made by runs stays after the last run left, so that the next job on the node
/// finds it with its caches warm: CONDA_FUSE_RUN_LINGER seconds; 0 unmounts at once. By default
/// 60 s, but 0 inside a batch job: batch systems end a job by killing everything it started (the
/// daemon too, perhaps with SIGKILL, which would leave a stale mount behind), so a mount cannot
/// outlive its job there anyway.
pub fn linger() -> Duration {
    let settings = crate::settings::get();
    let in_batch_job = settings.job.is_some();
    settings
        .run_linger
        .unwrap_or(Duration::from_secs(if in_batch_job { 0 } else { 60 }))
}
/// How long a run waits for another to finish deciding (a decision may include a save):
/// CONDA_FUSE_RUN_WAIT.
fn decide_timeout() -> Duration {
    crate::settings::get().run_wait
}
/// When a waiting run says what it waits for.
const DECIDE_NOTE_AFTER: Duration = Duration::from_secs(5);

pub struct Runs {
    name: String,
    /// The file names of this env's records: its mount point on this node.
    key: String,
}

/// Held while deciding; dropping it releases the flock.
pub struct Decision {
    _lock: Flock<File>,
    dir: PrivateDir,
}

#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error(transparent)]
    Dir(#[from] crate::private_dir::PrivateDirError),
    #[error("cannot use the run records of '{name}' in the state directory: {source}")]
    Io { name: String, source: io::Error },
    #[error(
        "another conda-fuse run of '{name}' ({holder}) has been mounting or unmounting it for {}s",
        waited.as_secs()
    )]
    Busy {
        name: String,
        holder: String,
        waited: Duration,
    },
}

impl crate::hint::Hint for RunsError {
    fn hint(&self) -> Option<String> {
        match self {
            RunsError::Dir(e) => e.hint(),
            RunsError::Io { .. } => None,
            RunsError::Busy { .. } => Some("wait for it, or stop it if it hangs".into()),
        }
    }
}

impl Runs {
    pub fn of(env: &Env) -> Runs {
        Runs {
            name: env.name.clone(),
            key: crate::daemon::state::key_for(&env.mountpoint),
        }
    }

    fn io(&self) -> impl FnOnce(io::Error) -> RunsError + '_ {
        move |source| RunsError::Io {
            name: self.name.clone(),
            source,
        }
    }

    /// The runs directory of this node and this env's directory of pid files in it.
    fn dirs(&self) -> Result<(PrivateDir, PrivateDir), RunsError> {
        let runs = runtime::runtime()?.subdir("runs")?;
        let dir = runs.subdir(&self.key)?;
        Ok((runs, dir))
    }

    /// Takes the decision lock, waiting (a bounded time) for other runs deciding.
    pub fn decide(&self) -> Result<Decision, RunsError> {
        let (runs, dir) = self.dirs()?;
        let lock_name = format!("{}.lock", self.key);
        let started = Instant::now();
        let timeout = decide_timeout();
        let mut noted = false;
        loop {
            let file = runs.open_rw(&lock_name, true).map_err(self.io())?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    // Name the holder for whoever waits next.
                    let me = format!(
                        "pid {} on {} since {}",
                        std::process::id(),
                        crate::node::hostname(),
                        crate::clock::local(crate::clock::now().0)
                    );
                    let written = lock
                        .set_len(0)
                        .and_then(|()| lock.rewind())
                        .and_then(|()| lock.write_all(me.as_bytes()));
                    written.map_err(self.io())?;
                    return Ok(Decision { _lock: lock, dir });
                }
                Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                    let waited = started.elapsed();
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder
                    };
                    if waited > timeout {
                        return Err(RunsError::Busy {
                            name: self.name.clone(),
                            holder,
                            waited,
                        });
                    }
                    if waited > DECIDE_NOTE_AFTER && !noted {
                        noted = true;
                        eprintln!(
                            "conda-fuse: note: waiting for another run of '{}' ({holder}) to finish \
                             mounting or unmounting it",
                            self.name
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, e)) => return Err(self.io()(e.into())),
            }
        }
    }

    /// Live runs other than `except`, dropping the pid files of dead ones.
    pub fn others(&self, d: &Decision, except: u32) -> usize {
        let mut n = 0;
        for e in d.dir.entries().unwrap_or_default() {
            let Some(pid) = e.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == except {
                continue;
            }
            if crate::process::is_running(pid) {
                n += 1;
            } else {
                let _ = d.dir.remove_file(&e);
            }
        }
        n
    }

    /// Counts run `pid` in; a lingering unmount is called off.
    pub fn join(&self, d: &Decision, pid: u32) -> Result<(), RunsError> {
        let _ = d.dir.remove_file(LINGERER);
        d.dir
            .open_rw(pid.to_string(), true)
            .map(drop)
            .map_err(self.io())
    }

    /// Names `pid` as the process that unmounts once the linger time is over.
    pub fn set_lingerer(&self, d: &Decision, pid: u32) -> Result<(), RunsError> {
        d.dir
            .write_atomic(LINGERER, pid.to_string().as_bytes())
            .map_err(self.io())
    }

    /// Whether `pid` is still the lingerer (no run came, no later lingerer took over).
    pub fn is_lingerer(&self, d: &Decision, pid: u32) -> bool {
        Self::names_lingerer(&d.dir, pid)
    }

    /// `is_lingerer` without deciding: for a lingerer to see early that it was called off.
    pub fn still_lingerer(&self, pid: u32) -> bool {
        self.dirs()
            .is_ok_and(|(_, dir)| Self::names_lingerer(&dir, pid))
    }

    fn names_lingerer(dir: &PrivateDir, pid: u32) -> bool {
        let mut text = String::new();
        dir.open_read(LINGERER)
            .and_then(|mut f| f.read_to_string(&mut text))
            .is_ok()
            && text.trim() == pid.to_string()
    }

    pub fn clear_lingerer(&self, d: &Decision) {
        let _ = d.dir.remove_file(LINGERER);
    }

    pub fn leave(&self, d: &Decision, pid: u32) {
        let _ = d.dir.remove_file(pid.to_string());
    }

    /// The daemon of the mount runs made, if they made one. Only that mount is the runs' to
    /// unmount: a user may have unmounted it and mounted the env again since.
    pub fn mounted_by_run(&self, d: &Decision) -> Option<u32> {
        let mut text = String::new();
        d.dir
            .open_read(MOUNTED_BY_RUN)
            .and_then(|mut f| f.read_to_string(&mut text))
            .ok()?;
        text.trim().parse().ok()
    }

    /// Records `daemon` as the mount runs made (None: they have none).
    pub fn set_mounted_by_run(&self, d: &Decision, daemon: Option<u32>) -> Result<(), RunsError> {
        if let Some(pid) = daemon {
            return d
                .dir
                .write_atomic(MOUNTED_BY_RUN, pid.to_string().as_bytes())
                .map_err(self.io());
        }
        match d.dir.remove_file(MOUNTED_BY_RUN) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io()(e)),
            _ => Ok(()),
        }
    }
}
