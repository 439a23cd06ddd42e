//! Applying a journal operation to the tree. Live changes and journal replay both go through
//! `apply`, so a replayed journal rebuilds exactly the state the live daemon had.

use nix::errno::Errno;

use super::journal::Op;
use super::tree::{Attr, Content, Ino, ROOT_INO, Time, Tree, dir_attr};
use crate::archive::Kind;

/// What applying an operation did, for the caller to reply or clean up.
#[derive(Debug, Default)]
pub struct Applied {
    /// The node created or changed.
    pub ino: Option<Ino>,
    /// A node that lost a name (it may now be free).
    pub unlinked: Option<Ino>,
}

/// Splits "a/b/c" into ("a/b", "c").
fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn parent_of<'p>(tree: &Tree, path: &'p [u8]) -> Result<(Ino, &'p [u8]), Errno> {
    let (dir, name) = split(path);
    let parent = if dir.is_empty() {
        ROOT_INO
    } else {
        tree.resolve(dir).ok_or(Errno::ENOENT)?
    };
    Ok((parent, name))
}

pub fn file_attr(kind: Kind, perm: u32, uid: u32, gid: u32, size: u64, t: Time) -> Attr {
    Attr {
        kind,
        perm,
        uid,
        gid,
        mtime: t,
        ctime: t,
        size,
        nlink: 1,
        rdev: 0,
    }
}

pub fn apply(tree: &mut Tree, op: &Op, t: Time) -> Result<Applied, Errno> {
    let created = |ino| Applied {
        ino: Some(ino),
        unlinked: None,
    };
    match op {
        Op::Committing(_) => Ok(Applied::default()),
        Op::Mkdir {
            path,
            perm,
            uid,
            gid,
        } => {
            let (parent, name) = parent_of(tree, path)?;
            let attr = dir_attr(*perm, *uid, *gid, t);
            tree.create(parent, name, attr, Content::Dir(Box::default()), t)
                .map(created)
        }
        Op::Create {
            path,
            id,
            perm,
            uid,
            gid,
        } => {
            let (parent, name) = parent_of(tree, path)?;
            let attr = file_attr(Kind::File, *perm, *uid, *gid, 0, t);
            tree.create(parent, name, attr, Content::Upper(*id), t)
                .map(created)
        }
        Op::Mknod {
            path,
            kind,
            perm,
            uid,
            gid,
            rdev,
        } => {
            let kind = Kind::from_mode(*kind);
            if !kind.is_special() {
                return Err(Errno::EINVAL);
            }
            let (parent, name) = parent_of(tree, path)?;
            let attr = Attr {
                rdev: *rdev,
                ..file_attr(kind, *perm, *uid, *gid, 0, t)
            };
            tree.create(parent, name, attr, Content::Special, t)
                .map(created)
        }
        Op::Symlink {
            path,
            target,
            uid,
            gid,
        } => {
            let (parent, name) = parent_of(tree, path)?;
            let attr = file_attr(Kind::Symlink, 0o777, *uid, *gid, target.len() as u64, t);
            tree.create(
                parent,
                name,
                attr,
                Content::Symlink(target.clone().into_boxed_slice()),
                t,
            )
            .map(created)
        }
        Op::Link { from, to } => {
            let ino = tree.resolve(from).ok_or(Errno::ENOENT)?;
            let (parent, name) = parent_of(tree, to)?;
            tree.link(ino, parent, name, t).map(|_| created(ino))
        }
        Op::Unlink { path } | Op::Rmdir { path } => {
            let (parent, name) = parent_of(tree, path)?;
            let ino = tree.remove(parent, name, matches!(op, Op::Rmdir { .. }), t)?;
            Ok(Applied {
                ino: None,
                unlinked: Some(ino),
            })
        }
        Op::Rename { from, to, mode } => {
            let (from_dir, from_name) = parent_of(tree, from)?;
            let (to_dir, to_name) = parent_of(tree, to)?;
            let replaced = tree.rename(from_dir, from_name, to_dir, to_name, *mode, t)?;
            Ok(Applied {
                ino: None,
                unlinked: replaced,
            })
        }
        Op::SetAttr {
            path,
            perm,
            uid,
            gid,
            mtime,
        } => {
            let ino = tree.resolve(path).ok_or(Errno::ENOENT)?;
            let n = tree.node_mut(ino).ok_or(Errno::ENOENT)?;
            if let Some(p) = perm {
                n.attr.perm = p & 0o7777;
            }
            if let Some(u) = uid {
                n.attr.uid = *u;
            }
            if let Some(g) = gid {
                n.attr.gid = *g;
            }
            if let Some(m) = mtime {
                n.attr.mtime = *m;
            }
            n.attr.ctime = t;
            Ok(created(ino))
        }
        Op::CopyUp { path, id } => {
            let ino = tree.resolve(path).ok_or(Errno::ENOENT)?;
            let n = tree.node_mut(ino).ok_or(Errno::ENOENT)?;
            match n.content {
                Content::Archive(_) | Content::Upper(_) => n.content = Content::Upper(*id),
                _ => return Err(Errno::EINVAL),
            }
            Ok(created(ino))
        }
    }
}
