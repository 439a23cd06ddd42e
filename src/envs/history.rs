//! An environment's versions: the current archive and the snapshots saves kept (see
//! `commit::snapshots`), with the conda packages each holds, read from the names of its
//! `NAME/conda-meta/*.json` records (`name-version-build.json`), so listing needs only the index;
//! and going back to one (`rollback`) or deleting old ones (`prune`).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::session::{self, SessionError};
use super::{Env, Paths};
use crate::archive::Index;
use crate::commit::snapshots::{self, Snapshot};
use crate::overlay::lock::{LockError, WriterLock};

#[derive(Debug, Clone)]
pub struct Version {
    /// 0 is the current archive, 1 the newest snapshot, and so on.
    pub number: usize,
    pub path: PathBuf,
    pub saved: i64,
    pub size: u64,
    /// Entries, or why the archive could not be read.
    pub entries: Result<usize, String>,
    /// Package name → (version, build).
    pub packages: BTreeMap<String, (String, String)>,
}

/// Current first, then the snapshots, newest first.
pub fn versions(env: &Env) -> Vec<Version> {
    use std::os::unix::fs::MetadataExt;
    let mut all = Vec::new();
    if let Ok(m) = std::fs::metadata(&env.archive) {
        all.push((env.archive.clone(), m.mtime(), m.len()));
    }
    all.extend(
        snapshots::list(&env.id)
            .into_iter()
            .map(|s| (s.path, s.saved, s.size)),
    );
    all.into_iter()
        .enumerate()
        .map(|(number, (path, saved, size))| {
            let read = crate::regular_file::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| Index::read(&f, &path).map_err(|e| e.to_string()));
            let (entries, packages) = match read {
                Ok(index) => (Ok(index.len()), packages(&index, &env.name)),
                Err(e) => (Err(e), BTreeMap::new()),
            };
            Version {
                number,
                path,
                saved,
                size,
                entries,
                packages,
            }
        })
        .collect()
}

fn packages(index: &Index, name: &str) -> BTreeMap<String, (String, String)> {
    let dir = format!("{name}/conda-meta/");
    index
        .entries()
        .iter()
        .filter_map(|e| {
            let file = std::str::from_utf8(index.name(e))
                .ok()?
                .strip_prefix(&dir)?;
            let stem = file.strip_suffix(".json")?;
            // name-version-build: the name may hold dashes, version and build do not.
            let (rest, build) = stem.rsplit_once('-')?;
            let (pkg, version) = rest.rsplit_once('-')?;
            // The names are an archive's, which anyone may have made: shown escaped.
            let shown = |s: &str| crate::display::escape(s.as_bytes());
            (!pkg.is_empty() && !pkg.contains('/'))
                .then(|| (shown(pkg), (shown(version), shown(build))))
        })
        .collect()
}

/// What changed from `older` to `newer`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    /// (name, old version, new version); a build change shows as version/build.
    pub updated: Vec<(String, String, String)>,
}

impl Changes {
    pub fn between(older: &Version, newer: &Version) -> Changes {
        let mut c = Changes::default();
        let shown = |(v, b): &(String, String)| format!("{v}-{b}");
        for (name, new) in &newer.packages {
            match older.packages.get(name) {
                None => c.added.push((name.clone(), new.0.clone())),
                Some(old) if old != new => {
                    let (o, n) = if old.0 == new.0 {
                        (shown(old), shown(new))
                    } else {
                        (old.0.clone(), new.0.clone())
                    };
                    c.updated.push((name.clone(), o, n));
                }
                Some(_) => {}
            }
        }
        for (name, old) in &older.packages {
            if !newer.packages.contains_key(name) {
                c.removed.push((name.clone(), old.0.clone()));
            }
        }
        c
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.updated.is_empty()
    }

    /// One line: `+rich 13.7, -six 1.16, numpy 1.26 -> 2.0`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.added.iter().map(|(n, v)| format!("+{n} {v}")));
        parts.extend(self.removed.iter().map(|(n, v)| format!("-{n} {v}")));
        parts.extend(
            self.updated
                .iter()
                .map(|(n, o, v)| format!("{n} {o} -> {v}")),
        );
        if parts.is_empty() {
            "no package changes".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Why a rollback or prune did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("cannot roll back '{name}'")]
    Locked { name: String, source: LockError },
    #[error("cannot tell whether '{name}' has unsaved changes: {why}")]
    UnreadableChanges { name: String, why: String },
    #[error("'{name}' has {count} unsaved changes (from a mount that ended without saving)")]
    Unsaved { name: String, count: usize },
    #[error("there is no snapshot {n}: there are {count} (see conda-fuse history)")]
    NoSnapshot { n: usize, count: usize },
    #[error("cannot roll back {}", archive.display())]
    Restore { archive: PathBuf, source: io::Error },
    #[error("cannot prune {}", dir.display())]
    Prune { dir: PathBuf, source: io::Error },
}

impl crate::hint::Hint for HistoryError {
    fn hint(&self) -> Option<String> {
        match self {
            HistoryError::Session(e) => e.hint(),
            HistoryError::Locked { source, .. } => source.hint(),
            HistoryError::UnreadableChanges { .. } => Some(
                "mount it with a conda-fuse that reads that journal, and save or discard them"
                    .into(),
            ),
            HistoryError::Unsaved { name, .. } => Some(format!(
                "mount it and save or discard them first (conda-fuse-activate {name}, then \
                 conda-fuse-unmount {name} or conda-fuse unmount --discard)"
            )),
            HistoryError::NoSnapshot { .. } | HistoryError::Restore { .. } => None,
            HistoryError::Prune { .. } => None,
        }
    }
}

/// The version `n` of `all` (`versions`): 1 is the newest snapshot.
pub fn pick(all: &[Version], n: usize) -> Result<&Version, HistoryError> {
    all.get(n)
        .filter(|_| n > 0)
        .ok_or(HistoryError::NoSnapshot {
            n,
            count: all.len().saturating_sub(1),
        })
}

/// What a rollback did.
#[derive(Debug)]
pub struct RolledBack {
    pub restored: Snapshot,
    /// The number the replaced version has now (None: pruned away at once).
    pub replaced: Option<usize>,
    /// The package changes from the version that was current to the restored one.
    pub changes: String,
}

/// Makes snapshot `to` of `env` the current version. Refused while the env is mounted on this
/// node, written anywhere (the writer lock), not this user's to change, or holding unsaved changes
/// (or a journal this version cannot read, which may hold some).
pub fn rollback(paths: &Paths, env: &Env, to: usize) -> Result<RolledBack, HistoryError> {
    session::require_archive(env)?;
    session::refuse_if_not_mine(env, "roll back")?;
    session::reclaim_lingering(env)?;
    session::refuse_if_mounted(env)?;
    // The writer lock keeps every writable mount out while the archive changes under it.
    let acquired = WriterLock::acquire(&env.id, &env.mountpoint, false).map_err(|source| {
        HistoryError::Locked {
            name: env.name.clone(),
            source,
        }
    })?;
    let unsaved = crate::overlay::unsaved_on_disk(&paths.upper, &env.id).map_err(|why| {
        HistoryError::UnreadableChanges {
            name: env.name.clone(),
            why,
        }
    })?;
    if unsaved > 0 {
        return Err(HistoryError::Unsaved {
            name: env.name.clone(),
            count: unsaved,
        });
    }
    let all = versions(env);
    let changes = Changes::between(&all[0], pick(&all, to)?).summary();
    let (restored, replaced) = snapshots::restore(&env.id, to, snapshots::keep_from_env())
        .map_err(|source| HistoryError::Restore {
            archive: env.archive.clone(),
            source,
        })?;
    drop(acquired);
    Ok(RolledBack {
        restored,
        replaced,
        changes,
    })
}

/// What pruning did: snapshots deleted, bytes freed, snapshots kept.
pub struct Pruned {
    pub gone: usize,
    pub freed: u64,
    pub kept: usize,
}

/// Deletes all but the newest `keep` snapshots of `env`.
pub fn prune(env: &Env, keep: u32) -> Result<Pruned, HistoryError> {
    session::require_archive(env)?;
    let bytes = || snapshots::list(&env.id).iter().map(|s| s.size).sum::<u64>();
    let before = bytes();
    let gone = snapshots::prune(&env.id, keep).map_err(|source| HistoryError::Prune {
        dir: snapshots::dir_of(&env.id),
        source,
    })?;
    Ok(Pruned {
        gone,
        freed: before.saturating_sub(bytes()),
        kept: snapshots::list(&env.id).len(),
    })
}
