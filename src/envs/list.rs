//! What each environment's archive holds: size, entries, and whether it has the `NAME/` layout.
//! (Whether it is mounted is the daemon layer's to say; the CLI puts the two together.)

use std::path::PathBuf;

use serde::Serialize;

use super::{Env, Paths};
use crate::archive::Index;

#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    pub name: String,
    pub archive: PathBuf,
    pub size: u64,
    /// Earlier versions kept by saves, and the bytes they take.
    pub snapshots: usize,
    pub snapshot_bytes: u64,
    /// Entries in the archive, or why it could not be read.
    pub entries: Result<usize, String>,
    /// Whether the environment sits in the folder `NAME/` (the layout `conda-fuse create` and the
    /// old bash tool make); other archives mount, but their prefix is elsewhere.
    pub named_layout: bool,
}

pub fn info(env: &Env) -> EnvInfo {
    let size = std::fs::metadata(&env.archive).map_or(0, |m| m.len());
    let (entries, named_layout) = match crate::regular_file::open(&env.archive)
        .map_err(|e| e.to_string())
        .and_then(|f| Index::read(&f, &env.archive).map_err(|e| e.to_string()))
    {
        Ok(index) => {
            let prefix = format!("{}/", env.name);
            let named = index
                .entries()
                .iter()
                .any(|e| index.name(e).starts_with(prefix.as_bytes()));
            (Ok(index.len()), named)
        }
        Err(e) => (Err(e), false),
    };
    let snapshots = crate::commit::snapshots::list(&env.id);
    EnvInfo {
        name: env.name.clone(),
        archive: env.archive.clone(),
        size,
        snapshots: snapshots.len(),
        snapshot_bytes: snapshots.iter().map(|s| s.size).sum(),
        entries,
        named_layout,
    }
}

pub fn all(paths: &Paths) -> Vec<EnvInfo> {
    paths
        .names()
        .iter()
        .filter_map(|n| paths.env(n).ok())
        .map(|e| info(&e))
        .collect()
}
