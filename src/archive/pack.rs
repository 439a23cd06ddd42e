//! Planning the archive of a directory tree: a sorted walk (so the same tree always gives the same
//! archive) that records every directory, file, symlink, FIFO, socket and device with its metadata.
//! Hard links become one link group (what that means: `format::link_group`).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::build::{self, Planned, Source};
use super::meta::Kind;

pub struct PackPlan {
    pub entries: Vec<Planned>,
    /// Uncompressed bytes of all files and symlink targets.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Walk {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl crate::hint::Hint for PlanError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            PlanError::NotADirectory { .. } => "pack takes the directory of an environment".into(),
            PlanError::Walk { .. } => "fix its permissions or remove it, then pack again".into(),
        })
    }
}

/// Plans the archive of `root`. Entries go under `prefix/` when a prefix is given (the layout of
/// environments by name, `NAME/...`); paths listed in `exclude` (such as the archive being
/// written) are left out.
pub fn plan_directory(
    root: &Path,
    prefix: Option<&str>,
    exclude: &[PathBuf],
) -> Result<PackPlan, PlanError> {
    let root_md = std::fs::metadata(root).map_err(|source| PlanError::Walk {
        path: root.to_owned(),
        source,
    })?;
    if !root_md.is_dir() {
        return Err(PlanError::NotADirectory {
            path: root.to_owned(),
        });
    }
    let prefix: Vec<u8> = prefix
        .map(|p| p.trim_matches('/').as_bytes().to_vec())
        .unwrap_or_default();
    let mut plan = PackPlan {
        entries: Vec::new(),
        bytes: 0,
    };
    if !prefix.is_empty() {
        plan.entries.push(Planned {
            name: build::dir_name(prefix.clone()),
            meta: build::meta_from_fs(&root_md),
            source: Source::Dir,
            link_group: None,
            prefix: None,
        });
    }
    // Hard links (same device and inode) become one link group.
    let mut groups: std::collections::HashMap<(u64, u64), u64> = std::collections::HashMap::new();
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for item in walker {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(root).to_owned();
            let source = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            PlanError::Walk { path, source }
        })?;
        let path = item.path();
        if exclude.iter().any(|x| x == path) {
            continue;
        }
        let md = item.metadata().map_err(|e| PlanError::Walk {
            path: path.to_owned(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("metadata unavailable")),
        })?;
        let rel = path.strip_prefix(root).expect("walk stays under root");
        let mut name = prefix.clone();
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend_from_slice(rel.as_os_str().as_bytes());
        let meta = build::meta_from_fs(&md);
        let (name, source) = entry_source(path, &md, name)?;
        plan.bytes += match &source {
            Source::Symlink(target) => target.len() as u64,
            Source::File { size, .. } => *size,
            _ => 0,
        };
        debug_assert!(meta.kind == Kind::Dir || !matches!(source, Source::Dir));
        let link_group = (!md.is_dir() && md.nlink() > 1).then(|| {
            let next = groups.len() as u64 + 1;
            *groups.entry((md.dev(), md.ino())).or_insert(next)
        });
        plan.entries.push(Planned {
            name,
            meta,
            source,
            link_group,
            prefix: None,
        });
    }
    Ok(plan)
}

/// The entry name and where its data comes from, by the file's type: a directory (its name ends
/// in `/`), a symlink (its target), a regular file (read at build time), or a FIFO, socket or
/// device (an entry of its kind, without data).
fn entry_source(
    path: &Path,
    md: &std::fs::Metadata,
    name: Vec<u8>,
) -> Result<(Vec<u8>, Source), PlanError> {
    let ft = md.file_type();
    Ok(if ft.is_dir() {
        (build::dir_name(name), Source::Dir)
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(|source| PlanError::Walk {
            path: path.to_owned(),
            source,
        })?;
        (
            name,
            Source::Symlink(target.as_os_str().as_bytes().to_vec()),
        )
    } else if ft.is_file() {
        let file = Source::File {
            path: path.to_owned(),
            size: md.len(),
        };
        (name, file)
    } else {
        (name, Source::Bytes(Vec::new()))
    })
}
