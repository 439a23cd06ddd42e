//! Every file and directory one environment has, named in one place, so `create`, `rm`, `doctor`
//! and the listings agree on what belongs to an environment. The overlay and commit layers own
//! how each name is made (`lock::lock_path`, `upper::dir_for`, `snapshots::dir_of`); this is the
//! one list of them.

use std::path::{Path, PathBuf};

use super::{Env, Paths};
use crate::commit::snapshots;
use crate::overlay::{lock, upper};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFiles {
    /// `NAME.zip` (maybe not there yet, or any more).
    pub archive: PathBuf,
    /// The writer lock's holder record beside the archive.
    pub lock: PathBuf,
    /// Unsaved changes and their journal, in the shared state directory.
    pub upper: PathBuf,
    /// Earlier versions kept by saves.
    pub snapshots: PathBuf,
    pub mountpoint: PathBuf,
}

impl EnvFiles {
    /// The files of the environment whose archive is (or will be) `archive`, mounted at
    /// `mountpoint`. The upper layer is keyed by the archive's resolved path, as the daemon
    /// keys it.
    pub fn of(paths: &Paths, archive: &Path, mountpoint: &Path) -> EnvFiles {
        EnvFiles {
            archive: archive.to_path_buf(),
            lock: lock::lock_path(archive),
            upper: upper::dir_for(&paths.upper, &resolved(archive)),
            snapshots: snapshots::dir_of(archive),
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    /// Whether anything of the environment is left on disk besides its mount point.
    pub fn any_exist(&self) -> bool {
        [&self.archive, &self.lock, &self.upper, &self.snapshots]
            .iter()
            .any(|p| p.symlink_metadata().is_ok())
    }
}

impl Env {
    pub fn files(&self, paths: &Paths) -> EnvFiles {
        EnvFiles::of(paths, &self.archive, &self.mountpoint)
    }

    /// Who holds the environment's writer lock (a writable mount, on any node), and why it
    /// looks stale if it does; None when nobody does. Daemons lock the archive's resolved path,
    /// so that is where this looks.
    pub fn writer(&self) -> Option<(lock::Holder, Option<lock::Staleness>)> {
        lock::inspect(&self.resolved_archive())
    }

    /// The archive's path with symlinks resolved, as daemons record and lock it.
    pub fn resolved_archive(&self) -> PathBuf {
        resolved(&self.archive)
    }
}

/// `path` with symlinks resolved; as given when it does not exist (yet).
fn resolved(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_named_after_the_archive_and_the_upper_dir_is_per_path() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            archive_dirs: vec![dir.path().join("a"), dir.path().join("b")],
            mounts: dir.path().join("m"),
            state: dir.path().join("s"),
            runtime: dir.path().join("r"),
            upper: dir.path().join("s/upper"),
            tmp: dir.path().join("t"),
        };
        let ml = paths.env("ml").unwrap().files(&paths);
        assert_eq!(ml.archive, dir.path().join("a/ml.zip"));
        assert_eq!(ml.lock, dir.path().join("a/ml.zip.lock"));
        assert_eq!(ml.mountpoint, dir.path().join("m/ml"));
        assert!(ml.upper.starts_with(dir.path().join("s/upper")));
        assert!(!ml.any_exist());
        let other = EnvFiles::of(&paths, &dir.path().join("b/ml.zip"), &ml.mountpoint);
        assert_ne!(ml.upper, other.upper, "same name, other directory");
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(&ml.lock, "").unwrap();
        assert!(ml.any_exist());
    }
}
