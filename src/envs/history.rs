//! An environment's versions: the current archive and the snapshots saves kept (see
//! `commit::snapshots`), with the conda packages each holds, read from the names of its
//! `NAME/conda-meta/*.json` records (`name-version-build.json`), so listing needs only the index.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Env;
use crate::archive::Index;
use crate::commit::snapshots;

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
            let read = std::fs::File::open(&path)
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
            (!pkg.is_empty() && !pkg.contains('/'))
                .then(|| (pkg.to_string(), (version.to_string(), build.to_string())))
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
