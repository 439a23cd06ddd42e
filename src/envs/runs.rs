//! Shared mounts for batch jobs: concurrent `conda-fuse run` of one environment on one host share a
//! mount, counted by one pid file per run in `STATE/runs/NAME/`. Decisions (mount it? unmount it?)
//! are taken under an exclusive flock on `STATE/runs/NAME.lock`, so two runs never both mount or
//! unmount. A run that mounted records it (`mounted-by-run`); the last run to leave unmounts only a
//! mount that runs made, never one a user made. Pid files of runs that died are ignored.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use super::{Env, Paths};

const MOUNTED_BY_RUN: &str = "mounted-by-run";

pub struct Runs {
    dir: PathBuf,
    lock: PathBuf,
}

/// Held while deciding; dropping it releases the flock.
pub struct Decision {
    _lock: Flock<File>,
}

impl Runs {
    pub fn of(paths: &Paths, env: &Env) -> Runs {
        let base = paths.state.join("runs");
        Runs {
            dir: base.join(&env.name),
            lock: base.join(format!("{}.lock", env.name)),
        }
    }

    /// Takes the decision lock (waits for other runs deciding).
    pub fn decide(&self) -> io::Result<Decision> {
        std::fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(Decision { _lock: lock })
    }

    /// Live runs other than `except`, dropping the pid files of dead ones.
    pub fn others(&self, _d: &Decision, except: u32) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut n = 0;
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == except {
                continue;
            }
            if crate::process::is_running(pid) {
                n += 1;
            } else {
                let _ = std::fs::remove_file(e.path());
            }
        }
        n
    }

    pub fn join(&self, _d: &Decision, pid: u32) -> io::Result<()> {
        std::fs::write(self.dir.join(pid.to_string()), b"")
    }

    pub fn leave(&self, _d: &Decision, pid: u32) {
        let _ = std::fs::remove_file(self.dir.join(pid.to_string()));
    }

    /// Whether the current mount was made by a run (and so is the runs' to unmount).
    pub fn mounted_by_run(&self, _d: &Decision) -> bool {
        self.dir.join(MOUNTED_BY_RUN).exists()
    }

    pub fn set_mounted_by_run(&self, _d: &Decision, yes: bool) -> io::Result<()> {
        let marker = self.dir.join(MOUNTED_BY_RUN);
        if yes {
            std::fs::write(marker, b"")
        } else {
            match std::fs::remove_file(marker) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
    }
}
