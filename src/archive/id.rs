//! An archive's identity on disk: its canonical path (symlinks resolved), made once where an
//! archive is named and taken by everything keyed by it — its writer lock, upper layer, snapshots,
//! start-up profile, the mount request. A `NAME.zip` that is a symlink therefore has one lock, one
//! upper layer and one snapshot folder, the target's, whoever reaches it by which name.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveId(PathBuf);

impl ArchiveId {
    /// The archive at `path`, which exists.
    pub fn resolve(path: &Path) -> std::io::Result<ArchiveId> {
        path.canonicalize().map(ArchiveId)
    }

    /// The archive that is at `path`, or will be (a create's, before it is written): resolved
    /// where it exists, else its resolved directory and its file name.
    pub fn of(path: &Path) -> ArchiveId {
        if let Ok(p) = path.canonicalize() {
            return ArchiveId(p);
        }
        let dir = path.parent().and_then(|d| d.canonicalize().ok());
        match (dir, path.file_name()) {
            (Some(dir), Some(name)) => ArchiveId(dir.join(name)),
            _ => ArchiveId(std::path::absolute(path).unwrap_or_else(|_| path.to_owned())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_known_by_its_resolved_path_whatever_name_reaches_it() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("ml.zip"), b"").unwrap();
        std::os::unix::fs::symlink(real.join("ml.zip"), d.path().join("ml.zip")).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("lab")).unwrap();
        let id = ArchiveId::resolve(&real.join("ml.zip")).unwrap();
        for name in ["ml.zip", "lab/ml.zip", "real/ml.zip", "real/../lab/ml.zip"] {
            assert_eq!(ArchiveId::of(&d.path().join(name)), id, "{name}");
        }
        // Not there yet: its directory resolved.
        assert_eq!(
            ArchiveId::of(&d.path().join("lab/new.zip")).path(),
            real.canonicalize().unwrap().join("new.zip")
        );
        assert!(ArchiveId::resolve(&d.path().join("lab/new.zip")).is_err());
    }
}
