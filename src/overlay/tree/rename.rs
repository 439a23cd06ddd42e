//! rename(2) on the tree: its modes (RENAME_NOREPLACE, RENAME_EXCHANGE) and its checks, in the
//! order Linux makes them, so every caller gets the errno a native filesystem gives.

use nix::errno::Errno;

use super::{Ino, Node, ROOT_INO, Time, Tree, check_name};
use crate::archive::Kind;

/// What rename(2) does with an existing target, from the flags the kernel passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    Replace,
    /// RENAME_NOREPLACE: EEXIST if the target exists.
    NoReplace,
    /// RENAME_EXCHANGE: swap the two names atomically.
    Exchange,
}

impl RenameMode {
    /// EINVAL for flags this filesystem does not do (RENAME_WHITEOUT) or that exclude each other.
    pub fn from_flags(flags: u32) -> Result<RenameMode, Errno> {
        match flags {
            0 => Ok(RenameMode::Replace),
            libc::RENAME_NOREPLACE => Ok(RenameMode::NoReplace),
            libc::RENAME_EXCHANGE => Ok(RenameMode::Exchange),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The rename(2) flags (as the journal records them).
    pub fn flags(self) -> u32 {
        match self {
            RenameMode::Replace => 0,
            RenameMode::NoReplace => libc::RENAME_NOREPLACE,
            RenameMode::Exchange => libc::RENAME_EXCHANGE,
        }
    }
}

impl Tree {
    /// Whether `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: Ino, ancestor: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            if ino == ROOT_INO {
                return false;
            }
            match self.node(ino) {
                Some(n) => ino = n.parent,
                None => return false,
            }
        }
    }

    /// rename(2) in the given mode. Returns the node that lost its name when the target was
    /// replaced.
    pub fn rename(
        &mut self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        mode: RenameMode,
        t: Time,
    ) -> Result<Option<Ino>, Errno> {
        let noreplace = mode == RenameMode::NoReplace;
        let exchange = mode == RenameMode::Exchange;
        check_name(to)?;
        // The checks in the order Linux makes them (fs/namei.c, do_renameat2), so every caller gets
        // the errno a native filesystem gives.
        let src = self.dir_of(from_dir)?.get(from).ok_or(Errno::ENOENT)?;
        let dst = self.dir_of(to_dir)?.get(to);
        if noreplace && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        if exchange && dst.is_none() {
            return Err(Errno::ENOENT);
        }
        let src_dir = self.kind(src) == Kind::Dir;
        if src_dir && self.is_within(to_dir, src) {
            return Err(Errno::EINVAL); // into itself
        }
        if let Some(d) = dst
            && d != src
            && self.kind(d) == Kind::Dir
            && self.is_within(from_dir, d)
        {
            // The target is an ancestor of the source.
            return Err(if exchange {
                Errno::EINVAL
            } else {
                Errno::ENOTEMPTY
            });
        }
        if dst == Some(src) {
            return Ok(None); // two names of the same file: nothing to do
        }
        if exchange {
            let dst = dst.expect("checked");
            let dst_dir = self.kind(dst) == Kind::Dir;
            self.node_mut(from_dir)
                .and_then(Node::dir_mut)
                .expect("checked")
                .replace(from, dst);
            self.node_mut(to_dir)
                .and_then(Node::dir_mut)
                .expect("checked")
                .replace(to, src);
            self.reparent(src, from_dir, from, to_dir, to, t);
            self.reparent(dst, to_dir, to, from_dir, from, t);
            if src_dir != dst_dir && from_dir != to_dir {
                let (gains, loses) = if src_dir {
                    (to_dir, from_dir)
                } else {
                    (from_dir, to_dir)
                };
                self.node_mut(gains).expect("dir").attr.nlink += 1;
                self.node_mut(loses).expect("dir").attr.nlink -= 1;
            }
            self.touch_dir(from_dir, t);
            self.touch_dir(to_dir, t);
            return Ok(None);
        }
        let mut replaced = None;
        if let Some(d) = dst {
            let dst_node = self.node(d).expect("listed");
            match (src_dir, dst_node.attr.kind == Kind::Dir) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                (true, true) if !dst_node.dir().expect("dir").is_empty() => {
                    return Err(Errno::ENOTEMPTY);
                }
                _ => {}
            }
            replaced = Some(self.remove(to_dir, to, src_dir, t)?);
        }
        self.node_mut(from_dir)
            .and_then(Node::dir_mut)
            .expect("checked")
            .remove(from);
        self.node_mut(to_dir)
            .and_then(Node::dir_mut)
            .expect("checked")
            .insert(to, src);
        if src_dir && from_dir != to_dir {
            self.node_mut(from_dir).expect("dir").attr.nlink -= 1;
            self.node_mut(to_dir).expect("dir").attr.nlink += 1;
        }
        self.reparent(src, from_dir, from, to_dir, to, t);
        self.touch_dir(from_dir, t);
        self.touch_dir(to_dir, t);
        Ok(replaced)
    }

    /// Records that `ino`'s name `old_name` in `old_parent` is now `name` in `parent`.
    fn reparent(
        &mut self,
        ino: Ino,
        old_parent: Ino,
        old_name: &[u8],
        parent: Ino,
        name: &[u8],
        t: Time,
    ) {
        let n = self.node_mut(ino).expect("exists");
        if n.parent == old_parent && *n.name == *old_name {
            n.parent = parent;
            n.name = name.into();
        } else if let Some(l) = n
            .links
            .iter_mut()
            .find(|(p, m)| *p == old_parent && **m == *old_name)
        {
            *l = (parent, name.into());
        }
        n.attr.ctime = t;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{empty, mkdir, mkfile};
    use super::*;

    #[test]
    fn rename_flags_are_one_mode_or_einval() {
        for mode in [
            RenameMode::Replace,
            RenameMode::NoReplace,
            RenameMode::Exchange,
        ] {
            assert_eq!(RenameMode::from_flags(mode.flags()), Ok(mode));
        }
        for bad in [
            libc::RENAME_WHITEOUT,
            libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE,
            1 << 20,
        ] {
            assert_eq!(RenameMode::from_flags(bad), Err(Errno::EINVAL), "{bad:#x}");
        }
    }

    #[test]
    fn rename_follows_posix() {
        let mut t = empty();
        let a = mkdir(&mut t, ROOT_INO, "a");
        let b = mkdir(&mut t, ROOT_INO, "b");
        let f = mkfile(&mut t, a, "f");
        let g = mkfile(&mut t, b, "g");
        assert_eq!(t.node(ROOT_INO).unwrap().attr.nlink, 4);
        // A directory into itself, over a non-empty directory, a file over a directory and a
        // directory over a file are refused.
        for (from_dir, from, to_dir, to, errno) in [
            (ROOT_INO, &b"a"[..], a, &b"x"[..], Errno::EINVAL),
            (ROOT_INO, b"a", ROOT_INO, b"b", Errno::ENOTEMPTY),
            (a, b"f", ROOT_INO, b"b", Errno::EISDIR),
            (ROOT_INO, b"a", b, b"g", Errno::ENOTDIR),
        ] {
            let r = t.rename(from_dir, from, to_dir, to, RenameMode::Replace, (2, 0));
            assert_eq!(r, Err(errno));
        }
        // Over an existing file: the old one loses its name.
        assert_eq!(
            t.rename(a, b"f", b, b"g", RenameMode::Replace, (2, 0)),
            Ok(Some(g))
        );
        assert_eq!(t.lookup(b, b"g"), Some(f));
        assert_eq!(t.node(g).unwrap().attr.nlink, 0);
        assert!(t.release_if_unused(g).is_some());
        // NOREPLACE and EXCHANGE.
        let h = mkfile(&mut t, a, "h");
        assert_eq!(
            t.rename(a, b"h", b, b"g", RenameMode::NoReplace, (3, 0)),
            Err(Errno::EEXIST)
        );
        t.rename(a, b"h", b, b"g", RenameMode::Exchange, (3, 0))
            .unwrap();
        assert_eq!((t.lookup(a, b"h"), t.lookup(b, b"g")), (Some(f), Some(h)));
        // Exchanging a directory with a file moves the subdirectory count.
        let d = mkdir(&mut t, a, "d");
        t.rename(a, b"d", b, b"g", RenameMode::Exchange, (4, 0))
            .unwrap();
        assert_eq!(t.lookup(b, b"g"), Some(d));
        assert_eq!(
            (t.node(a).unwrap().attr.nlink, t.node(b).unwrap().attr.nlink),
            (2, 3)
        );
        assert_eq!(t.dir_path(d), b"b/g");
    }
}
