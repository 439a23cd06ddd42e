//! Environments by name, laid out as the original bash tool laid them out:
//! `$CONDA_FUSE_ARCHIVE_PATH/NAME.zip` (default `~/miniconda_fuse/archives`), mounted at
//! `$CONDA_FUSE_MOUNT_ROOT/NAME` (default `~/miniconda_fuse/envs`), with the environment in the
//! archive's folder `NAME/`, so the conda prefix is `$CONDA_FUSE_MOUNT_ROOT/NAME/NAME`.
//!
//! `CONDA_FUSE_ARCHIVE_PATH` may list several directories, `:`-separated like PATH (a lab's
//! `/proj/lab/envs`, a site's collection): new environments go into the first, a name is found in
//! the first directory that has it. Mount points stay per user, so an env from a directory
//! another user owns is mounted by each user's own daemon, read-only when its archive or directory
//! is not writable for them.

pub mod create;
pub mod files;
pub mod history;
pub mod kernels;
pub mod list;
pub mod remove;
pub mod rename;
pub mod session;

use std::path::{Path, PathBuf};

use crate::archive::ArchiveId;
use crate::daemon::state;

#[derive(Debug, Clone)]
pub struct Paths {
    /// Where archives are looked for, in order; never empty. The first is where new ones go.
    pub archive_dirs: Vec<PathBuf>,
    pub mounts: PathBuf,
    pub state: PathBuf,
    /// This node's mount records, sockets and run counts.
    pub runtime: PathBuf,
    pub upper: PathBuf,
    pub tmp: PathBuf,
}

/// Absolute, with symlinks resolved when it exists (daemons record canonical paths), and free of
/// newlines (shell functions read the prefix as one line).
fn settle(var: &str, path: PathBuf) -> Result<PathBuf, EnvError> {
    let path = path
        .canonicalize()
        .or_else(|_| std::path::absolute(&path))
        .unwrap_or(path);
    if path.to_str().is_none_or(|s| s.contains('\n')) {
        return Err(EnvError::BadPath {
            var: var.to_string(),
            path,
        });
    }
    Ok(path)
}

impl Paths {
    pub fn from_env() -> Result<Paths, EnvError> {
        let home = state::home_dir();
        let settings = crate::settings::get();
        let mut archive_dirs = Vec::new();
        for dir in settings.archive_path.iter().cloned() {
            let dir = settle("CONDA_FUSE_ARCHIVE_PATH", dir)?;
            if !archive_dirs.contains(&dir) {
                archive_dirs.push(dir);
            }
        }
        if archive_dirs.is_empty() {
            archive_dirs.push(settle(
                "CONDA_FUSE_ARCHIVE_PATH",
                home.join("miniconda_fuse/archives"),
            )?);
        }
        let mounts = settings
            .mount_root
            .clone()
            .unwrap_or_else(|| home.join("miniconda_fuse/envs"));
        Ok(Paths {
            archive_dirs,
            mounts: settle("CONDA_FUSE_MOUNT_ROOT", mounts)?,
            state: state::state_dir(),
            runtime: crate::daemon::runtime::runtime_dir(),
            upper: state::upper_root(),
            tmp: std::env::temp_dir(),
        })
    }

    /// Where new environments go: the first directory of `CONDA_FUSE_ARCHIVE_PATH`.
    pub fn archives(&self) -> &Path {
        &self.archive_dirs[0]
    }

    /// The environment `name`: its archive in the first directory that has one, else (for
    /// `create`) where a new one would go.
    pub fn env(&self, name: &str) -> Result<Env, EnvError> {
        validate_name(name)?;
        let file = format!("{name}.zip");
        let archive = self
            .archive_dirs
            .iter()
            .map(|d| d.join(&file))
            .find(|a| a.symlink_metadata().is_ok())
            .unwrap_or_else(|| self.archives().join(&file));
        Ok(Env {
            name: name.to_string(),
            id: ArchiveId::of(&archive),
            snapshot: None,
            archive,
            mountpoint: self.mounts.join(name),
            prefix: self.mounts.join(name).join(name),
        })
    }

    /// `NAME` as `env` gives it, or `NAME@N`: snapshot N of it (1 = the newest), served at a
    /// mount point of its own (`MOUNT_ROOT/NAME@N`, a name no environment can have), for running
    /// an old version read-only next to the current one.
    pub fn env_version(&self, spec: &str) -> Result<Env, EnvError> {
        let Some((name, n)) = spec.split_once('@') else {
            return self.env(spec);
        };
        let env = self.env(name)?;
        let snapshots = crate::commit::snapshots::list(&env.id);
        let number = n.parse::<usize>().ok();
        let snapshot = number
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| snapshots.get(i))
            .ok_or_else(|| EnvError::NoSnapshot {
                spec: spec.to_string(),
                count: snapshots.len(),
            })?;
        let mountpoint = self.mounts.join(spec);
        Ok(Env {
            name: env.name.clone(),
            id: ArchiveId::of(&snapshot.path),
            snapshot: number,
            archive: snapshot.path.clone(),
            prefix: mountpoint.join(&env.name),
            mountpoint,
        })
    }

    /// Archives named like `env` in later directories, which `env` hides.
    pub fn shadowed(&self, env: &Env) -> Vec<PathBuf> {
        let file = format!("{}.zip", env.name);
        self.archive_dirs
            .iter()
            .map(|d| d.join(&file))
            .filter(|a| *a != env.archive && a.is_file())
            .collect()
    }

    /// Names of the environments (archives) present in any directory, sorted, each once.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .archive_dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".zip").map(str::to_string))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone)]
pub struct Env {
    pub name: String,
    /// The archive as found (`DIR/NAME.zip`, maybe a symlink): for messages and existence.
    pub archive: PathBuf,
    /// What every file of the environment is keyed by (its lock, upper layer, snapshots) and
    /// what a mount serves: the archive's resolved path.
    pub id: ArchiveId,
    /// `NAME@N`: snapshot N of the environment, which runs read-only beside it.
    pub snapshot: Option<usize>,
    pub mountpoint: PathBuf,
    pub prefix: PathBuf,
}

impl Env {
    /// Whether this user may change the environment: a save writes a new archive beside the old
    /// one and renames it in, so both the archive and its directory must be writable. Archives a
    /// lab or a site shares are mounted read-only for whoever cannot.
    pub fn writable_by_me(&self) -> bool {
        use nix::unistd::{AccessFlags, access};
        let dir = self.archive.parent().unwrap_or(Path::new("/"));
        let dir_ok = access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok();
        dir_ok && (!self.archive.exists() || access(&self.archive, AccessFlags::W_OK).is_ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("'{0}' is not a usable environment name")]
    BadName(String),
    #[error(
        "{var} is {path:?}, which conda-fuse cannot use: it must be valid UTF-8 without newlines"
    )]
    BadPath { var: String, path: PathBuf },
    #[error(
        "there is no snapshot '{spec}': NAME@N names snapshot N (1 = the newest) and there are \
         {count}"
    )]
    NoSnapshot { spec: String, count: usize },
}

impl crate::hint::Hint for EnvError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            EnvError::BadName(_) => "use letters, digits and . _ + - (starting with a letter or \
                                     digit, at most 64 characters)"
                .into(),
            EnvError::BadPath { var, .. } => format!("point {var} at another directory"),
            EnvError::NoSnapshot { spec, .. } => {
                let name = spec.split('@').next().unwrap_or(spec);
                format!("see conda-fuse history {name}")
            }
        })
    }
}

/// Names end up in paths, shell code and completion lists: letters, digits, `.`, `_`, `+`, `-`,
/// starting with a letter or digit. Anything else (spaces, quotes, `$`, `/`) is refused rather than
/// quoted, so no shell ever sees it.
pub fn validate_name(name: &str) -> Result<(), EnvError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(EnvError::BadName(name.to_string()))
    }
}

/// A command's target, given as an environment name or a mount point path.
pub fn mountpoint_of(paths: &Paths, arg: &str) -> Result<PathBuf, EnvError> {
    let p = Path::new(arg);
    if arg.contains('/') || (p.is_dir() && validate_name(arg).is_err()) {
        return Ok(p.to_path_buf());
    }
    Ok(paths.env(arg)?.mountpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_for_paths_and_shells() {
        for good in ["ml", "py3.11", "a_b-c+d", "X1"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a b",
            "a/b",
            "a$b",
            "a'b",
            "a\"b",
            "a;b",
            "ünï",
            &"x".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
