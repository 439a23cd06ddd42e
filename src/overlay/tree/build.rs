//! Building the tree from an archive's index. Entry names from the archive are untrusted; the
//! rules, applied while building:
//! - a leading '/' is dropped (the entry is served relative to the mount, as unzip extracts it);
//! - empty and "." components are dropped; a name with a ".." component, a NUL byte, or a component
//!   longer than 255 bytes is skipped with a warning, never served;
//! - duplicate names: the last entry in the central directory wins (how zip tools append updates);
//! - a name that is both a file and a directory (a/b and a/b/c) is a directory; the file is hidden.
//!
//! Owners and modes are served as `Defaults` say (recorded owners trusted only for root or with
//! --keep-owners; group/other write bits dropped when other users are let in).

use std::collections::HashMap;

use super::{Attr, Content, DIR_SIZE, EntryNo, Ino, NAME_MAX, Node, ROOT_INO, Tree, dir_attr};
use crate::archive::{Entry, Index, Kind, Meta};

/// How the archive's metadata is served. Owner and time for nodes the archive does not describe
/// (implied directories, entries without Unix metadata, the root) are the mounting user and the
/// archive's mtime. Owners the archive records are trusted only when `trust_owners` (root, or
/// `--keep-owners`: tar's and unzip's rule), and `perm_mask` takes bits off archive entries (the
/// group/other write bits when other users are let in).
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub trust_owners: bool,
    pub perm_mask: u32,
}

impl Defaults {
    /// The calling user, and `archive`'s mtime; recorded owners trusted only for root.
    pub fn for_archive(archive: &crate::archive::Archive) -> Defaults {
        Defaults {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            mtime: archive.mtime(),
            trust_owners: nix::unistd::geteuid().is_root(),
            perm_mask: 0o7777,
        }
    }
}

/// What was wrong with entry names, for one warning per kind at mount.
#[derive(Debug, Default, Clone)]
pub struct BuildReport {
    pub unsafe_names: Vec<String>,
    pub duplicates: Vec<String>,
    pub conflicts: Vec<String>,
    pub absolute: usize,
    /// Entries with setuid or setgid bits (the mount is nosuid: they grant nothing).
    pub setid: usize,
}

impl BuildReport {
    pub fn is_clean(&self) -> bool {
        self.unsafe_names.is_empty() && self.duplicates.is_empty() && self.conflicts.is_empty()
    }
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
    let (uid, gid) = meta
        .owner
        .filter(|_| d.trust_owners)
        .unwrap_or((d.uid, d.gid));
    let dir = meta.kind == Kind::Dir;
    Attr {
        kind: meta.kind,
        perm: meta.perm & d.perm_mask,
        uid,
        gid,
        mtime: (meta.mtime, 0),
        ctime: (meta.mtime, 0),
        size: match meta.kind {
            Kind::Dir => DIR_SIZE,
            k if k.is_special() => 0,
            _ => e.uncompressed_size,
        },
        nlink: if dir { 2 } else { 1 },
        rdev: meta.rdev,
    }
}

pub(super) fn implied_dir(d: &Defaults) -> Attr {
    dir_attr(0o755, d.uid, d.gid, (d.mtime, 0))
}

const REPORT_EXAMPLES: usize = 5;

fn note(list: &mut Vec<String>, name: &[u8], why: &str) {
    if list.len() < REPORT_EXAMPLES {
        list.push(format!("{} ({why})", crate::display::escape(name)));
    }
}

impl Tree {
    pub fn build(index: &Index, defaults: Defaults) -> (Tree, BuildReport) {
        Self::build_served(index, defaults, &|_| None)
    }

    /// The tree of `index`, with the sizes files are served with where they differ from the
    /// archive's (`served_size`: files rewritten for a mount at another prefix).
    pub fn build_served(
        index: &Index,
        defaults: Defaults,
        served_size: &dyn Fn(u32) -> Option<u64>,
    ) -> (Tree, BuildReport) {
        let mut report = BuildReport::default();
        let mut links: HashMap<u64, Ino> = HashMap::new();
        let mut tree = Tree::with_root(implied_dir(&defaults));
        for (i, e) in index.entries().iter().enumerate() {
            let full = index.name(e);
            let (comps, absolute) = match components(full) {
                Ok(c) => c,
                Err(p) => {
                    let why = match p {
                        NameProblem::DotDot => "contains ..",
                        NameProblem::Nul => "contains a NUL byte",
                        NameProblem::TooLong => "component longer than 255 bytes",
                    };
                    note(&mut report.unsafe_names, full, why);
                    continue;
                }
            };
            report.absolute += usize::from(absolute);
            report.setid += usize::from(e.meta.kind != Kind::Dir && e.meta.perm & 0o6000 != 0);
            let Some((leaf, dirs)) = comps.split_last() else {
                continue; // "/" or "./": the root itself
            };
            let parent = tree.parent_dirs(dirs, full, &defaults, &mut report);
            // Further names of a hard-linked file join the node of the group's first entry.
            if let Some(g) = e.link_group.filter(|_| e.meta.kind != Kind::Dir)
                && let Some(&ino) = links.get(&g)
                && tree.lookup(parent, leaf).is_none()
            {
                let parent_mtime = tree.node(parent).expect("parent").attr.mtime;
                if tree.link(ino, parent, leaf, parent_mtime).is_ok() {
                    continue;
                }
            }
            let mut attr = attr_of(&e.meta, e, &defaults);
            if let Some(size) =
                served_size(i as u32).filter(|_| matches!(e.meta.kind, Kind::File | Kind::Symlink))
            {
                attr.size = size;
            }
            let content = match e.meta.kind {
                Kind::Dir => Content::Dir(Box::default()),
                k if k.is_special() => Content::Special,
                _ => Content::Archive(EntryNo(i as u32)),
            };
            let added = tree.place(parent, leaf, attr, content, full, &mut report);
            if let Some(ino) = added
                && let Some(g) = e.link_group.filter(|_| e.meta.kind != Kind::Dir)
            {
                links.insert(g, ino);
            }
        }
        tree.count_dir_links();
        (tree, report)
    }

    /// The directory `dirs` names, made (as implied directories) where the archive has no entry
    /// for it. A file in the way becomes a directory, and is reported.
    fn parent_dirs(
        &mut self,
        dirs: &[&[u8]],
        full: &[u8],
        defaults: &Defaults,
        report: &mut BuildReport,
    ) -> Ino {
        let mut parent = ROOT_INO;
        for dir in dirs {
            parent = match self.lookup(parent, dir) {
                Some(ino) if self.kind(ino) == Kind::Dir => ino,
                Some(ino) => {
                    note(
                        &mut report.conflicts,
                        full,
                        "a file of this name is hidden by the directory",
                    );
                    let n = self.node_mut(ino).expect("found");
                    n.attr = implied_dir(defaults);
                    n.content = Content::Dir(Box::default());
                    ino
                }
                None => self.add(
                    parent,
                    dir,
                    implied_dir(defaults),
                    Content::Dir(Box::default()),
                ),
            };
        }
        parent
    }

    /// Gives the entry its name in `parent`; where the name is taken, the rules the report
    /// states decide. Returns the new node, if one was made.
    fn place(
        &mut self,
        parent: Ino,
        leaf: &[u8],
        attr: Attr,
        content: Content,
        full: &[u8],
        report: &mut BuildReport,
    ) -> Option<Ino> {
        let Some(ino) = self.lookup(parent, leaf) else {
            return Some(self.add(parent, leaf, attr, content));
        };
        let node = self.node_mut(ino).expect("found");
        match (node.attr.kind == Kind::Dir, attr.kind == Kind::Dir) {
            (true, true) => node.attr = attr, // an explicit entry for an implied directory
            (true, false) => note(&mut report.conflicts, full, "a directory has this name"),
            (false, true) => {
                note(
                    &mut report.conflicts,
                    full,
                    "replaces a file of the same name",
                );
                node.attr = attr;
                node.content = content;
            }
            (false, false) => {
                note(&mut report.duplicates, full, "later entry wins");
                node.attr = attr;
                node.content = content;
            }
        }
        None
    }

    /// A directory's link count is 2 plus its subdirectories, as on a native filesystem.
    fn count_dir_links(&mut self) {
        for ino in 1..=self.nodes.len() as Ino {
            let subdirs = self.node(ino).and_then(Node::dir).map(|d| {
                d.entries_from(0)
                    .filter(|(_, _, c)| self.kind(*c) == Kind::Dir)
                    .count()
            });
            if let Some(n) = subdirs {
                self.node_mut(ino).expect("exists").attr.nlink = 2 + n as u32;
            }
        }
    }
}
