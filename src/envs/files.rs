//! Every file and directory one environment has, named in one place, so `create`, `rm`, `doctor`
//! and the listings agree on what belongs to an environment. The layers below own how each name
//! is made from the archive's identity (`lock::lock_path`, `upper::dir_for`, `snapshots::dir_of`,
//! `startup::profile_path`); this is the one list of them.

use std::path::{Path, PathBuf};

use super::{Env, Paths};
use crate::archive::ArchiveId;
use crate::commit::snapshots;
use crate::overlay::{lock, upper};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFiles {
    /// `NAME.zip` (maybe not there yet, or any more; maybe a symlink to the archive).
    pub archive: PathBuf,
    /// The archive itself, which everything below is named after.
    pub id: ArchiveId,
    /// The writer lock's holder record beside the archive.
    pub lock: PathBuf,
    /// Unsaved changes and their journal, in the shared state directory.
    pub upper: PathBuf,
    /// Earlier versions kept by saves.
    pub snapshots: PathBuf,
    /// What its mounts read first, in the shared state directory.
    pub startup_profile: PathBuf,
    pub mountpoint: PathBuf,
}

impl EnvFiles {
    /// The files of the environment whose archive is (or will be) reached as `archive`, with
    /// the identity `id`, mounted at `mountpoint`.
    pub fn of(paths: &Paths, archive: &Path, id: &ArchiveId, mountpoint: &Path) -> EnvFiles {
        EnvFiles {
            archive: archive.to_path_buf(),
            id: id.clone(),
            lock: lock::lock_path(id),
            upper: upper::dir_for(&paths.upper, id),
            snapshots: snapshots::dir_of(id),
            startup_profile: crate::daemon::startup::profile_path(id),
            mountpoint: mountpoint.to_path_buf(),
        }
    }

    /// Whether anything of the environment is left on disk besides its mount point.
    pub fn any_exist(&self) -> bool {
        [
            &self.archive,
            self.id.path(),
            &self.lock,
            &self.upper,
            &self.snapshots,
        ]
        .iter()
        .any(|p| p.symlink_metadata().is_ok())
    }
}

impl Env {
    pub fn files(&self, paths: &Paths) -> EnvFiles {
        EnvFiles::of(paths, &self.archive, &self.id, &self.mountpoint)
    }

    /// Who holds the environment's writer lock (a writable mount, on any node), and why it
    /// looks stale if it does; None when nobody does.
    pub fn writer(&self) -> Option<(lock::Holder, Option<lock::Staleness>)> {
        lock::inspect(&self.id)
    }
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
        let b = dir.path().join("b/ml.zip");
        let other = EnvFiles::of(&paths, &b, &ArchiveId::of(&b), &ml.mountpoint);
        assert_ne!(ml.upper, other.upper, "same name, other directory");
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(&ml.lock, "").unwrap();
        assert!(ml.any_exist());
    }
}
