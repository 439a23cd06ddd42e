//! The merged namespace: one node per inode, each pointing at its content (an archive entry, an
//! upper-layer file, a symlink target, a special file, or a directory of named entries). Built from
//! the archive's index (`build.rs`), then changed in memory by the overlay's operations. Pure data
//! structure: no I/O here, so the same code serves live requests and journal replay, and is
//! unit-tested directly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;

use crate::archive::Kind;

mod build;
mod rename;
use build::implied_dir;
pub use build::{BuildReport, Defaults, NameProblem, components};
pub use rename::RenameMode;

pub type Ino = u64;
pub const ROOT_INO: Ino = 1;
pub const NAME_MAX: usize = 255;
/// What `stat` shows as a directory's size, as on ext4.
const DIR_SIZE: u64 = 4096;

pub use crate::clock::Time;

/// A node as the kernel is told about it: number, generation (a reused number gets a new one) and
/// attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRef {
    pub ino: Ino,
    pub generation: u64,
    pub attr: Attr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub kind: Kind,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Time,
    pub ctime: Time,
    pub size: u64,
    pub nlink: u32,
    /// A device's number (0 for every other kind).
    pub rdev: u64,
}

/// The number of an entry in the archive the tree was built from (or rebased onto). Only the
/// overlay makes and reads these, and only together with that archive (`Overlay::view`), so an
/// entry number can never be paired with another version of the archive.
#[derive(Debug, PartialEq, Eq)]
pub struct EntryNo(u32);

impl EntryNo {
    pub(super) fn new(i: u32) -> EntryNo {
        EntryNo(i)
    }
    pub(super) fn get(&self) -> u32 {
        self.0
    }
}

#[derive(Debug)]
pub enum Content {
    /// An entry of the tree's archive (files and symlinks).
    Archive(EntryNo),
    /// A file in the upper layer, by id.
    Upper(u64),
    /// A symlink made since the last save.
    Symlink(Box<[u8]>),
    Dir(Box<Directory>),
    /// A FIFO, socket or device: its kind and number are in its attributes, it has no data.
    Special,
}

/// A directory's entries in insertion order. Removed entries leave a hole, so the position of every
/// other entry (the readdir cookie) stays valid while a program lists and deletes at the same time.
#[derive(Debug, Default)]
pub struct Directory {
    slots: Vec<Option<(Box<[u8]>, Ino)>>,
    by_name: HashMap<Box<[u8]>, u32>,
}

impl Directory {
    pub fn get(&self, name: &[u8]) -> Option<Ino> {
        self.by_name
            .get(name)
            .and_then(|&s| self.slots[s as usize].as_ref().map(|e| e.1))
    }
    pub fn len(&self) -> usize {
        self.by_name.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
    fn insert(&mut self, name: &[u8], ino: Ino) {
        let slot = self.slots.len() as u32;
        self.slots.push(Some((name.into(), ino)));
        self.by_name.insert(name.into(), slot);
    }
    fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let slot = self.by_name.remove(name)?;
        self.slots[slot as usize].take().map(|e| e.1)
    }
    fn replace(&mut self, name: &[u8], ino: Ino) {
        if let Some(&slot) = self.by_name.get(name) {
            self.slots[slot as usize] = Some((name.into(), ino));
        }
    }
    /// Entries from position `from` on: (position, name, inode).
    pub fn entries_from(&self, from: usize) -> impl Iterator<Item = (usize, &[u8], Ino)> {
        self.slots
            .iter()
            .enumerate()
            .skip(from)
            .filter_map(|(k, s)| s.as_ref().map(|(n, i)| (k, n.as_ref(), *i)))
    }
}

#[derive(Debug)]
pub struct Node {
    /// The directory holding the node's first name, and that name.
    pub parent: Ino,
    pub name: Box<[u8]>,
    /// Further names of a hard-linked file.
    pub links: Vec<(Ino, Box<[u8]>)>,
    pub attr: Attr,
    pub content: Content,
    /// References the kernel holds (lookups minus forgets); a node without names is freed at zero.
    pub lookups: AtomicU64,
    /// Told to the kernel with the inode number: a reused number comes with a new generation.
    pub generation: u64,
}

impl Node {
    /// Drops the name (`parent`, `name`) from this node's names, promoting another to first.
    fn forget_name(&mut self, parent: Ino, name: &[u8]) {
        if self.parent == parent && *self.name == *name {
            if let Some((p, n)) = self.links.pop() {
                self.parent = p;
                self.name = n;
            }
        } else {
            self.links.retain(|(p, n)| !(*p == parent && **n == *name));
        }
    }

    /// Whether the node still has a name (an unlinked file may live on while open).
    pub fn is_named(&self) -> bool {
        self.attr.nlink > 0
    }

    pub fn dir(&self) -> Option<&Directory> {
        match &self.content {
            Content::Dir(d) => Some(d),
            _ => None,
        }
    }
    fn dir_mut(&mut self) -> Option<&mut Directory> {
        match &mut self.content {
            Content::Dir(d) => Some(d),
            _ => None,
        }
    }
}

pub fn dir_attr(perm: u32, uid: u32, gid: u32, t: Time) -> Attr {
    Attr {
        kind: Kind::Dir,
        perm,
        uid,
        gid,
        mtime: t,
        ctime: t,
        size: DIR_SIZE,
        nlink: 2,
        rdev: 0,
    }
}

/// A validated single path component for new names.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    match name {
        b"" | b"." | b".." => Err(Errno::EINVAL),
        n if n.len() > NAME_MAX => Err(Errno::ENAMETOOLONG),
        n if n.contains(&b'/') || n.contains(&0) => Err(Errno::EINVAL),
        _ => Ok(()),
    }
}

pub struct Tree {
    nodes: Vec<Option<Node>>,
    /// Freed inode numbers and the generation their next node gets, reused before new ones so a
    /// long-lived mount with a build loop does not grow without bound.
    free: Vec<(Ino, u64)>,
}

impl Tree {
    fn with_root(attr: Attr) -> Tree {
        Tree {
            nodes: vec![Some(Node {
                parent: ROOT_INO,
                name: Box::new([]),
                attr,
                content: Content::Dir(Box::default()),
                links: Vec::new(),
                lookups: AtomicU64::new(0),
                generation: 0,
            })],
            free: Vec::new(),
        }
    }

    fn add(&mut self, parent: Ino, name: &[u8], attr: Attr, content: Content) -> Ino {
        let (ino, generation) = self.free.pop().unwrap_or((self.nodes.len() as Ino + 1, 0));
        let node = Some(Node {
            parent,
            name: name.into(),
            links: Vec::new(),
            attr,
            content,
            lookups: AtomicU64::new(0),
            generation,
        });
        match self.nodes.get_mut(ino as usize - 1) {
            Some(slot) => *slot = node,
            None => self.nodes.push(node),
        }
        self.node_mut(parent)
            .and_then(Node::dir_mut)
            .expect("parent is a directory")
            .insert(name, ino);
        ino
    }

    /// Number of inode slots (live nodes and freed ones).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Live nodes.
    pub fn live(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_some()).count()
    }

    pub fn node(&self, ino: Ino) -> Option<&Node> {
        ino.checked_sub(1)
            .and_then(|i| self.nodes.get(i as usize))
            .and_then(Option::as_ref)
    }
    pub fn node_mut(&mut self, ino: Ino) -> Option<&mut Node> {
        ino.checked_sub(1)
            .and_then(|i| self.nodes.get_mut(i as usize))
            .and_then(Option::as_mut)
    }
    fn kind(&self, ino: Ino) -> Kind {
        self.node(ino).map_or(Kind::File, |n| n.attr.kind)
    }

    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Option<Ino> {
        self.node(parent)?.dir()?.get(name)
    }

    /// Looks up a slash-separated path from the root.
    pub fn resolve(&self, path: &[u8]) -> Option<Ino> {
        path.split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .try_fold(ROOT_INO, |ino, c| self.lookup(ino, c))
    }

    /// The path of directory `dir` from the root, without a leading slash.
    pub fn dir_path(&self, mut dir: Ino) -> Vec<u8> {
        let mut parts = Vec::new();
        while dir != ROOT_INO {
            let Some(n) = self.node(dir) else { break };
            parts.push(&n.name[..]);
            dir = n.parent;
        }
        parts.reverse();
        parts.join(&b'/')
    }

    /// The path of `name` in directory `parent`.
    pub fn child_path(&self, parent: Ino, name: &[u8]) -> Vec<u8> {
        let mut p = self.dir_path(parent);
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    }

    fn dir_of(&self, parent: Ino) -> Result<&Directory, Errno> {
        let n = self.node(parent).ok_or(Errno::ENOENT)?;
        n.dir().ok_or(Errno::ENOTDIR)
    }

    fn touch_dir(&mut self, dir: Ino, t: Time) {
        if let Some(n) = self.node_mut(dir) {
            n.attr.mtime = t;
            n.attr.ctime = t;
        }
    }

    /// Adds a new node named `name` in `parent`.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &[u8],
        attr: Attr,
        content: Content,
        t: Time,
    ) -> Result<Ino, Errno> {
        check_name(name)?;
        if self.dir_of(parent)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let is_dir = attr.kind == Kind::Dir;
        let ino = self.add(parent, name, attr, content);
        if is_dir {
            self.node_mut(parent).expect("parent").attr.nlink += 1;
        }
        self.touch_dir(parent, t);
        Ok(ino)
    }

    /// Adds another name for the non-directory `ino`.
    pub fn link(&mut self, ino: Ino, parent: Ino, name: &[u8], t: Time) -> Result<(), Errno> {
        check_name(name)?;
        let kind = self.node(ino).ok_or(Errno::ENOENT)?.attr.kind;
        // An existing target is refused before a directory source, as Linux does (do_linkat).
        if self.dir_of(parent)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        if kind == Kind::Dir {
            return Err(Errno::EPERM);
        }
        self.node_mut(parent)
            .and_then(Node::dir_mut)
            .expect("checked")
            .insert(name, ino);
        let n = self.node_mut(ino).expect("checked");
        if n.attr.nlink == 0 {
            // Linking a file back from having no name (linkat of an O_TMPFILE-like file).
            n.parent = parent;
            n.name = name.into();
        } else {
            n.links.push((parent, name.into()));
        }
        n.attr.nlink += 1;
        n.attr.ctime = t;
        self.touch_dir(parent, t);
        Ok(())
    }

    /// Removes the name `name` of a non-directory (`dir == false`) or an empty directory; returns
    /// the node, which lives on (without names) while the kernel still references it.
    pub fn remove(&mut self, parent: Ino, name: &[u8], dir: bool, t: Time) -> Result<Ino, Errno> {
        let ino = self.dir_of(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let node = self.node(ino).expect("listed nodes exist");
        match (node.attr.kind == Kind::Dir, dir) {
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            (true, true) if !node.dir().expect("dir").is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.node_mut(parent)
            .and_then(Node::dir_mut)
            .expect("checked")
            .remove(name);
        let n = self.node_mut(ino).expect("exists");
        if dir {
            n.attr.nlink = 0;
        } else {
            n.attr.nlink = n.attr.nlink.saturating_sub(1);
            n.attr.ctime = t;
            n.forget_name(parent, name);
        }
        if dir {
            self.node_mut(parent).expect("parent").attr.nlink -= 1;
        }
        self.touch_dir(parent, t);
        Ok(ino)
    }

    /// Frees `ino` when it has neither names nor kernel references; returns the freed node.
    pub fn release_if_unused(&mut self, ino: Ino) -> Option<Node> {
        let n = self.node(ino)?;
        if ino == ROOT_INO || n.attr.nlink > 0 || n.lookups.load(Ordering::Acquire) > 0 {
            return None;
        }
        let node = self.nodes[ino as usize - 1].take()?;
        self.free.push((ino, node.generation + 1));
        Some(node)
    }

    /// The root directory is not stored in archives: it shows what `defaults` give (the archive's
    /// mtime). A save resets it so, so that the live root agrees with every later mount's.
    pub fn reset_root(&mut self, defaults: &Defaults) {
        let root = self.node_mut(ROOT_INO).expect("root");
        let nlink = root.attr.nlink;
        root.attr = Attr {
            nlink,
            ..implied_dir(defaults)
        };
    }

    /// The generation of the node at `ino` (0 for a number never reused).
    pub fn generation(&self, ino: Ino) -> u64 {
        self.node(ino).map_or(0, |n| n.generation)
    }

    /// Every named node in pre-order (each directory followed by everything below it, entries in
    /// directory order): (path, inode). This is the order `pack` writes, so saving an archive keeps
    /// unchanged entries in long runs that copy as one. A file with several names appears under each.
    pub fn walk(&self) -> Vec<(Vec<u8>, Ino)> {
        let mut out = Vec::new();
        // (directory, its path, position to resume from)
        let mut stack: Vec<(Ino, Vec<u8>, usize)> = vec![(ROOT_INO, Vec::new(), 0)];
        while let Some((dir, path, from)) = stack.pop() {
            let Some(d) = self.node(dir).and_then(Node::dir) else {
                continue;
            };
            for (pos, name, ino) in d.entries_from(from) {
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                out.push((p.clone(), ino));
                if self.kind(ino) == Kind::Dir {
                    // Finish this directory after the subdirectory.
                    stack.push((dir, path, pos + 1));
                    stack.push((ino, p, 0));
                    break;
                }
            }
        }
        out
    }

    /// Bytes of heap the tree holds, roughly (reported by `status`).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Option<Node>>()
            + self
                .nodes
                .iter()
                .flatten()
                .map(|n| {
                    n.name.len()
                        + n.dir()
                            .map_or(0, |d| d.slots.capacity() * 40 + d.by_name.capacity() * 40)
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn file_attr() -> Attr {
        Attr {
            kind: Kind::File,
            perm: 0o644,
            uid: 0,
            gid: 0,
            mtime: (0, 0),
            ctime: (0, 0),
            size: 0,
            nlink: 1,
            rdev: 0,
        }
    }

    pub(super) fn empty() -> Tree {
        Tree::with_root(dir_attr(0o755, 0, 0, (0, 0)))
    }

    pub(super) fn mkdir(t: &mut Tree, parent: Ino, name: &str) -> Ino {
        t.create(
            parent,
            name.as_bytes(),
            dir_attr(0o755, 0, 0, (1, 0)),
            Content::Dir(Box::default()),
            (1, 0),
        )
        .unwrap()
    }
    pub(super) fn mkfile(t: &mut Tree, parent: Ino, name: &str) -> Ino {
        t.create(
            parent,
            name.as_bytes(),
            file_attr(),
            Content::Upper(0),
            (1, 0),
        )
        .unwrap()
    }

    #[test]
    fn names_are_validated() {
        assert!(components(b"a/../b").is_err());
        assert_eq!(
            components(b"/abs/./x").unwrap(),
            (vec![&b"abs"[..], b"x"], true)
        );
        let mut t = empty();
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert!(
                t.create(ROOT_INO, bad, file_attr(), Content::Upper(0), (0, 0))
                    .is_err()
            );
        }
        let long = vec![b'x'; 256];
        assert_eq!(
            t.create(ROOT_INO, &long, file_attr(), Content::Upper(0), (0, 0)),
            Err(Errno::ENAMETOOLONG)
        );
    }

    #[test]
    fn positions_stay_valid_while_entries_go() {
        let mut t = empty();
        for i in 0..10 {
            mkfile(&mut t, ROOT_INO, &format!("f{i}"));
        }
        let d = t.node(ROOT_INO).unwrap().dir().unwrap();
        let (pos, _, _) = d.entries_from(0).nth(4).unwrap();
        for i in 0..4 {
            t.remove(ROOT_INO, format!("f{i}").as_bytes(), false, (1, 0))
                .unwrap();
        }
        let d = t.node(ROOT_INO).unwrap().dir().unwrap();
        let rest: Vec<_> = d.entries_from(pos).map(|(_, n, _)| n.to_vec()).collect();
        assert_eq!(rest.first().map(|n| n.as_slice()), Some(&b"f4"[..]));
        assert_eq!(rest.len(), 6);
    }

    #[test]
    fn hard_links_share_a_node() {
        let mut t = empty();
        let f = mkfile(&mut t, ROOT_INO, "f");
        t.link(f, ROOT_INO, b"g", (1, 0)).unwrap();
        assert_eq!(t.node(f).unwrap().attr.nlink, 2);
        assert_eq!(t.remove(ROOT_INO, b"f", false, (2, 0)), Ok(f));
        assert!(t.release_if_unused(f).is_none());
        assert_eq!(t.walk(), vec![(b"g".to_vec(), f)]);
        // The remaining name is now the node's first name (journal records use it).
        assert_eq!(&*t.node(f).unwrap().name, b"g");
    }
}
