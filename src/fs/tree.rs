//! The directory tree of an archive: one node per path, inode number = position + 1. Built once from
//! the index; directories that the archive implies but does not list are created.
//!
//! Entry names are untrusted. The rules, applied while building:
//! - a leading '/' is dropped (the entry is served relative to the mount, as unzip extracts it);
//! - empty and "." components are dropped; a name with a ".." component, a NUL byte, or a component
//!   longer than 255 bytes is skipped with a warning, never served;
//! - duplicate names: the last entry in the central directory wins (how zip tools append updates);
//! - a name that is both a file and a directory (a/b and a/b/c) is a directory; the file is hidden.

use std::collections::HashMap;

use crate::archive::{Entry, Index, Kind, Meta};

pub type Ino = u64;
pub const ROOT_INO: Ino = 1;
const NAME_MAX: usize = 255;
/// What `stat` shows as a directory's size, as on ext4.
const DIR_SIZE: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub kind: Kind,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub nlink: u32,
}

#[derive(Debug)]
pub struct Node {
    pub parent: Ino,
    pub name: Box<[u8]>,
    pub attr: Attr,
    /// The archive entry holding this node's content (files, symlinks) or metadata (directories).
    pub entry: Option<u32>,
    /// Children sorted by name (directories only).
    pub children: Vec<Ino>,
}

/// Owner and time for nodes the archive does not describe (implied directories, entries without
/// Unix metadata): the mounting user and the archive's mtime.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// What was wrong with entry names, for one log line per kind at mount.
#[derive(Debug, Default, Clone)]
pub struct BuildReport {
    pub unsafe_names: Vec<String>,
    pub duplicates: Vec<String>,
    pub conflicts: Vec<String>,
    pub absolute: usize,
}

impl BuildReport {
    pub fn is_clean(&self) -> bool {
        self.unsafe_names.is_empty() && self.duplicates.is_empty() && self.conflicts.is_empty()
    }
}

pub struct Tree {
    nodes: Vec<Node>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum NameProblem {
    DotDot,
    Nul,
    TooLong,
}

/// Splits an entry name into safe components; `Ok((components, was_absolute))`.
pub fn components(name: &[u8]) -> Result<(Vec<&[u8]>, bool), NameProblem> {
    let absolute = name.first() == Some(&b'/');
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(NameProblem::DotDot),
            c if c.contains(&0) => return Err(NameProblem::Nul),
            c if c.len() > NAME_MAX => return Err(NameProblem::TooLong),
            c => out.push(c),
        }
    }
    Ok((out, absolute))
}

fn attr_of(meta: &Meta, e: &Entry, d: &Defaults) -> Attr {
    let (uid, gid) = meta.owner.unwrap_or((d.uid, d.gid));
    Attr {
        kind: meta.kind,
        perm: meta.perm,
        uid,
        gid,
        mtime: meta.mtime,
        size: if meta.kind == Kind::Dir {
            DIR_SIZE
        } else {
            e.uncompressed_size
        },
        nlink: 1,
    }
}

fn implied_dir(d: &Defaults) -> Attr {
    Attr {
        kind: Kind::Dir,
        perm: 0o755,
        uid: d.uid,
        gid: d.gid,
        mtime: d.mtime,
        size: DIR_SIZE,
        nlink: 2,
    }
}

const REPORT_EXAMPLES: usize = 5;

fn note(list: &mut Vec<String>, name: &[u8], why: &str) {
    if list.len() < REPORT_EXAMPLES {
        list.push(format!("{} ({why})", String::from_utf8_lossy(name)));
    }
}

impl Tree {
    pub fn build(index: &Index, defaults: Defaults) -> (Tree, BuildReport) {
        let mut report = BuildReport::default();
        let mut nodes = vec![Node {
            parent: ROOT_INO,
            name: Box::new([]),
            attr: implied_dir(&defaults),
            entry: None,
            children: Vec::new(),
        }];
        let mut by_name: HashMap<(Ino, &[u8]), Ino> = HashMap::with_capacity(index.len());
        for (i, e) in index.entries().iter().enumerate() {
            let full = index.name(e);
            let (comps, absolute) = match components(full) {
                Ok(c) => c,
                Err(p) => {
                    note(
                        &mut report.unsafe_names,
                        full,
                        match p {
                            NameProblem::DotDot => "contains ..",
                            NameProblem::Nul => "contains a NUL byte",
                            NameProblem::TooLong => "component longer than 255 bytes",
                        },
                    );
                    continue;
                }
            };
            report.absolute += usize::from(absolute);
            let Some((leaf, dirs)) = comps.split_last() else {
                continue; // "/" or "./": the root itself
            };
            let mut parent = ROOT_INO;
            for (depth, comp) in dirs.iter().chain(std::iter::once(leaf)).enumerate() {
                let is_leaf = depth == dirs.len();
                let wants_dir = !is_leaf || e.meta.kind == Kind::Dir;
                let existing = by_name.get(&(parent, *comp)).copied();
                let ino = match existing {
                    Some(ino) => {
                        let node = &mut nodes[ino as usize - 1];
                        match (node.attr.kind == Kind::Dir, wants_dir) {
                            (true, true) if is_leaf => {
                                node.attr = Attr {
                                    nlink: 2,
                                    ..attr_of(&e.meta, e, &defaults)
                                };
                                node.entry = Some(i as u32);
                            }
                            (true, true) => {}
                            (true, false) => {
                                note(&mut report.conflicts, full, "a directory has this name")
                            }
                            (false, true) => {
                                note(
                                    &mut report.conflicts,
                                    full,
                                    "replaces a file of the same name",
                                );
                                node.attr = implied_dir(&defaults);
                                node.entry = None;
                                if is_leaf {
                                    node.attr = Attr {
                                        nlink: 2,
                                        ..attr_of(&e.meta, e, &defaults)
                                    };
                                    node.entry = Some(i as u32);
                                }
                            }
                            (false, false) => {
                                note(&mut report.duplicates, full, "later entry wins");
                                node.attr = attr_of(&e.meta, e, &defaults);
                                node.entry = Some(i as u32);
                            }
                        }
                        ino
                    }
                    None => {
                        let ino = nodes.len() as Ino + 1;
                        let (attr, entry) = if is_leaf {
                            let mut a = attr_of(&e.meta, e, &defaults);
                            if wants_dir {
                                a.nlink = 2;
                            }
                            (a, Some(i as u32))
                        } else {
                            (implied_dir(&defaults), None)
                        };
                        nodes.push(Node {
                            parent,
                            name: comp.to_vec().into_boxed_slice(),
                            attr,
                            entry,
                            children: Vec::new(),
                        });
                        nodes[parent as usize - 1].children.push(ino);
                        by_name.insert((parent, *comp), ino);
                        ino
                    }
                };
                parent = ino;
            }
        }
        drop(by_name);
        // Sort children by name for binary-search lookups and a stable readdir order; a directory's
        // link count is 2 plus its subdirectories, as on a native filesystem.
        for n in 0..nodes.len() {
            let mut children = std::mem::take(&mut nodes[n].children);
            children.sort_unstable_by(|a, b| {
                nodes[*a as usize - 1]
                    .name
                    .cmp(&nodes[*b as usize - 1].name)
            });
            let subdirs = children
                .iter()
                .filter(|c| nodes[**c as usize - 1].attr.kind == Kind::Dir)
                .count() as u32;
            let node = &mut nodes[n];
            if node.attr.kind == Kind::Dir {
                node.attr.nlink = 2 + subdirs;
            }
            children.shrink_to_fit();
            node.children = children;
        }
        (Tree { nodes }, report)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, ino: Ino) -> Option<&Node> {
        ino.checked_sub(1).and_then(|i| self.nodes.get(i as usize))
    }

    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Option<Ino> {
        let dir = self.node(parent)?;
        dir.children
            .binary_search_by(|c| self.nodes[*c as usize - 1].name.as_ref().cmp(name))
            .ok()
            .map(|k| dir.children[k])
    }

    /// Looks up a slash-separated path from the root (for tests and tools).
    pub fn resolve(&self, path: &[u8]) -> Option<Ino> {
        path.split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .try_fold(ROOT_INO, |ino, c| self.lookup(ino, c))
    }

    /// Bytes of heap the tree holds (reported by `status`).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self
                .nodes
                .iter()
                .map(|n| n.name.len() + n.children.capacity() * 8)
                .sum::<usize>()
    }
}
