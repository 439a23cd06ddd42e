//! Shared mounts for batch jobs: concurrent `conda-fuse run` of one environment on one node share a
//! mount, counted by one pid file per run in `RUNTIME/runs/KEY/`, where KEY names the mount point
//! on this node (`state::key_for`: two mount roots with an env of the same name, or two nodes in a
//! runtime directory shared by mistake, never share counts). Decisions (mount it? unmount it?) are
//! taken under an exclusive flock on `RUNTIME/runs/KEY.lock`, so two runs never both mount or
//! unmount. A run that mounted records it (`mounted-by-run`); the last run to leave unmounts only a
//! mount that runs made, never one a user made. Pid files of runs that died are ignored; each holds
//! its run's start time, so a pid the system has since given to another process does not keep the
//! mount for ever.
//!
//! Everything lives in the node's private runtime directory (0700, files 0600): pids are this
//! node's, no other node waits on these locks, and no other user can even open one to block it; a
//! decision waits a bounded time and then names who holds it.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::runtime;
use crate::private_dir::PrivateDir;

const MOUNTED_BY_RUN: &str = "mounted-by-run";

/// Who holds a decision lock, as its holder wrote it.
fn holder_of(file: &mut File) -> String {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    if holder.is_empty() {
        "holder unknown".to_string()
    } else {
        holder
    }
}
/// Written by the last run to leave: how long its daemon keeps the mount for the next job, and
/// who asked (each leave is told apart). A run that comes removes it.
const LINGERING: &str = "lingering";

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
    /// The runs of the environment `name` (for messages) mounted at `mountpoint` on this node.
    pub fn at(mountpoint: &std::path::Path, name: &str) -> Runs {
        Runs {
            name: name.to_string(),
            key: super::state::key_for(mountpoint),
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

    /// The runs directory and this env's directory of pid files, if runs ever used this mount
    /// point.
    fn existing_dirs(&self) -> Option<(PrivateDir, PrivateDir)> {
        let runs = PrivateDir::open(&runtime::runtime_dir())
            .ok()??
            .open_subdir("runs")
            .ok()??;
        let dir = runs.open_subdir(&self.key).ok()??;
        Some((runs, dir))
    }

    /// The decision lock if nobody holds it now (for the daemon, which looks again later).
    pub fn try_decide(&self) -> Option<Decision> {
        let (runs, dir) = self.existing_dirs()?;
        let file = runs.open_rw(format!("{}.lock", self.key), true).ok()?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
        Some(Decision { _lock: lock, dir })
    }

    /// Takes the decision lock, waiting (a bounded time) for other runs deciding.
    pub fn decide(&self) -> Result<Decision, RunsError> {
        let (runs, dir) = self.dirs()?;
        let mut noted = false;
        let waiting = |file: &mut File, waited: Duration| {
            if waited > DECIDE_NOTE_AFTER && !noted {
                noted = true;
                eprintln!(
                    "conda-fuse: note: waiting for another run of '{}' ({}) to finish mounting \
                     or unmounting it",
                    self.name,
                    holder_of(file)
                );
            }
        };
        let lock_name = format!("{}.lock", self.key);
        let locked = runtime::lock_within(&runs, &lock_name, decide_timeout(), waiting);
        match locked.map_err(self.io())? {
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
                Ok(Decision { _lock: lock, dir })
            }
            Err((mut file, waited)) => Err(RunsError::Busy {
                name: self.name.clone(),
                holder: holder_of(&mut file),
                waited,
            }),
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
            let mut text = String::new();
            let _ = d
                .dir
                .open_read(&e)
                .and_then(|mut f| f.read_to_string(&mut text));
            // Empty in files of older versions: the pid alone then.
            let started = text.trim().parse().ok();
            if crate::process::is_running_since(pid, started) {
                n += 1;
            } else {
                let _ = d.dir.remove_file(&e);
            }
        }
        n
    }

    /// Counts run `pid` in; a lingering unmount is called off.
    pub fn join(&self, d: &Decision, pid: u32) -> Result<(), RunsError> {
        let _ = d.dir.remove_file(LINGERING);
        let started = crate::process::start_time(pid).map_or(String::new(), |t| t.to_string());
        d.dir
            .write_atomic(&pid.to_string(), started.as_bytes())
            .map_err(self.io())
    }

    /// Asks the runs' daemon to keep the mount `linger` for the next job; `leaver` tells this
    /// leave from an earlier one.
    pub fn ask_to_linger(
        &self,
        d: &Decision,
        linger: Duration,
        leaver: u32,
    ) -> Result<(), RunsError> {
        let text = format!("{} {leaver}", linger.as_secs());
        d.dir
            .write_atomic(LINGERING, text.as_bytes())
            .map_err(self.io())
    }

    /// What the last leaver asked (`ask_to_linger`): the linger time and the whole request, which
    /// differs from one leave to the next. None if no run asked since the last one came.
    pub fn lingering_asked(&self, d: &Decision) -> Option<(Duration, String)> {
        let mut text = String::new();
        d.dir
            .open_read(LINGERING)
            .and_then(|mut f| f.read_to_string(&mut text))
            .ok()?;
        let seconds = text.split_whitespace().next()?.parse().ok()?;
        Some((Duration::from_secs(seconds), text))
    }

    pub fn clear_lingering(&self, d: &Decision) {
        let _ = d.dir.remove_file(LINGERING);
    }

    pub fn leave(&self, d: &Decision, pid: u32) {
        let _ = d.dir.remove_file(pid.to_string());
    }

    /// The daemon of the mount runs made, if they made one. Only that mount is the runs' to
    /// unmount: a user may have unmounted it and mounted the env again since.
    pub fn mounted_by_run(&self, d: &Decision) -> Option<u32> {
        Self::read_mounted_by_run(&d.dir)
    }

    /// `mounted_by_run` without deciding: for a daemon to see cheaply whether runs made it.
    pub fn peek_mounted_by_run(&self) -> Option<u32> {
        Self::read_mounted_by_run(&self.existing_dirs()?.1)
    }

    fn read_mounted_by_run(dir: &PrivateDir) -> Option<u32> {
        let mut text = String::new();
        dir.open_read(MOUNTED_BY_RUN)
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
