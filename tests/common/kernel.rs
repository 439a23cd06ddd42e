//! A kernel in miniature, for tests of the filesystem's semantics without FUSE (and without root):
//! it drives `conda_fuse::fs::Filesystem` the way the VFS does, resolving paths one lookup at a
//! time, following symlinks where the system call would, creating files for O_CREAT, and
//! forgetting every reference it took once the call is done (a kernel with no cache, which
//! exercises the freeing of nodes as hard as possible).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use conda_fuse::archive::{Archive, BuildOptions, CacheLimits, Compression, Kind};
use conda_fuse::fs::Filesystem;
use conda_fuse::overlay::tree::{Defaults, Ino, NodeRef, ROOT_INO};
use conda_fuse::overlay::{NewNode, OpError, Overlay, Recovery, SetAttr, upper};
use nix::errno::Errno;

/// The errno a failed request answers the kernel with (what the model predicts).
pub fn errno(e: OpError) -> Errno {
    e.errno()
}

use super::model::{self, Op};

/// Packs `src` into `archive` with the library (no mount involved).
pub fn pack(src: &Path, archive: &Path) {
    let plan = conda_fuse::archive::pack::plan_directory(src, None, &[]).unwrap();
    let opts = BuildOptions {
        compression: Compression::SAVE,
        threads: 2,
        spill_dir: archive.parent().unwrap().to_owned(),
    };
    conda_fuse::archive::build_archive(archive, &plan.entries, &opts, &mut |_| {}).unwrap();
}

/// A writable filesystem over `archive`, with its upper layer under `upper_root`: what a daemon
/// serves, built the way `daemon::mount` builds it.
pub fn open_writable(archive: &Path, upper_root: &Path) -> (Filesystem, Recovery) {
    let archive = archive.canonicalize().unwrap();
    let opened = Arc::new(Archive::open(&archive).unwrap());
    let defaults = Defaults::for_archive(&opened);
    let dir = upper::dir_for(upper_root, opened.id());
    let (overlay, _, recovery) = Overlay::writable(
        opened,
        defaults,
        CacheLimits::with_memory(16 << 20),
        &dir,
        (Path::new("/semantic-test"), Path::new("/semantic-test")),
        false,
        false,
    )
    .unwrap_or_else(|e| panic!("opening {} writable: {e}", archive.display()));
    (Filesystem::new(overlay), recovery)
}

/// Where a path leads: an existing node, or a missing last component in an existing directory.
enum Resolved {
    Found(NodeRef),
    Missing { parent: Ino, name: Vec<u8> },
}

pub struct Kernel<'a> {
    pub fs: &'a Filesystem,
    held: RefCell<Vec<Ino>>,
    uid: u32,
    gid: u32,
    umask: u32,
}

fn split(path: &str) -> VecDeque<Vec<u8>> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| c.as_bytes().to_vec())
        .collect()
}

impl<'a> Kernel<'a> {
    pub fn new(fs: &'a Filesystem) -> Kernel<'a> {
        let mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(mask);
        Kernel {
            fs,
            held: RefCell::new(Vec::new()),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            umask: mask.bits(),
        }
    }

    fn hold(&self, r: Result<NodeRef, Errno>) -> Result<NodeRef, Errno> {
        if let Ok(n) = &r {
            self.held.borrow_mut().push(n.ino);
        }
        r
    }

    fn lookup(&self, parent: Ino, name: &[u8]) -> Result<NodeRef, Errno> {
        self.hold(self.fs.lookup(parent, name).map_err(errno))
    }

    /// Ends a system call: every reference it took is forgotten.
    fn done<T>(&self, r: T) -> T {
        for ino in self.held.borrow_mut().drain(..) {
            self.fs.forget(ino, 1);
        }
        r
    }

    /// Walks `path` from the root, following symlinks in the middle, and at the end if `follow`.
    fn resolve(&self, path: &str, follow: bool) -> Result<Resolved, Errno> {
        let mut comps = split(path);
        let mut dir = ROOT_INO;
        let mut last = None;
        let mut links = 0;
        while let Some(c) = comps.pop_front() {
            let node = match self.lookup(dir, &c) {
                Err(Errno::ENOENT) if comps.is_empty() => {
                    return Ok(Resolved::Missing {
                        parent: dir,
                        name: c,
                    });
                }
                other => other?,
            };
            if node.attr.kind == Kind::Symlink && (follow || !comps.is_empty()) {
                links += 1;
                if links > 40 {
                    return Err(Errno::ELOOP);
                }
                let target = String::from_utf8(self.fs.readlink(node.ino).map_err(errno)?).unwrap();
                if target.starts_with('/') {
                    dir = ROOT_INO;
                }
                for t in split(&target).into_iter().rev() {
                    comps.push_front(t);
                }
                last = None;
                continue;
            }
            if !comps.is_empty() && node.attr.kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            dir = node.ino;
            last = Some(node);
        }
        match last {
            Some(n) => Ok(Resolved::Found(n)),
            // The path named the directory it started from (a symlink to ".").
            None => self.lookup(dir, b".").map(Resolved::Found),
        }
    }

    fn existing(&self, path: &str, follow: bool) -> Result<NodeRef, Errno> {
        match self.resolve(path, follow)? {
            Resolved::Found(n) => Ok(n),
            Resolved::Missing { .. } => Err(Errno::ENOENT),
        }
    }

    /// The directory that holds the last component of `path`, and that component.
    fn parent_of(&self, path: &str) -> Result<(Ino, Vec<u8>), Errno> {
        let mut comps = split(path);
        let name = comps.pop_back().ok_or(Errno::EEXIST)?;
        let dir = if comps.is_empty() {
            ROOT_INO
        } else {
            let rest: Vec<String> = comps
                .iter()
                .map(|c| String::from_utf8(c.clone()).unwrap())
                .collect();
            let d = self.existing(&rest.join("/"), true)?;
            if d.attr.kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            d.ino
        };
        Ok((dir, name))
    }

    /// What the VFS does before a write or truncate by a caller without CAP_FSETID: the setuid
    /// bit, and the setgid bit of a group-executable file, go (should_remove_suid).
    fn kill_privileges(&self, ino: Ino) -> Result<(), Errno> {
        let a = self.fs.getattr(ino).map_err(errno)?;
        let mut kill = a.perm & 0o4000;
        if a.perm & 0o2010 == 0o2010 {
            kill |= 0o2000;
        }
        if kill == 0 || self.uid == 0 || a.kind != Kind::File {
            return Ok(());
        }
        let s = SetAttr {
            perm: Some(a.perm & !kill),
            ..SetAttr::default()
        };
        self.fs.setattr(ino, s).map_err(errno).map(|_| ())
    }

    /// open(path, O_WRONLY | O_CREAT) and pwrite.
    pub fn write(&self, path: &str, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let r = (|| {
            let ino = match self.resolve(path, true)? {
                Resolved::Found(n) if n.attr.kind == Kind::Dir => return Err(Errno::EISDIR),
                // open(O_WRONLY | O_NONBLOCK) of a FIFO without a reader, or of a socket.
                Resolved::Found(n) if n.attr.kind.is_special() => return Err(Errno::ENXIO),
                Resolved::Found(n) => n.ino,
                Resolved::Missing { parent, name } => {
                    let new = self.new_node(parent, &name, 0o666);
                    self.hold(self.fs.create(&new).map_err(errno))?.ino
                }
            };
            self.kill_privileges(ino)?;
            let mut done = 0;
            while done < data.len() {
                let n = self
                    .fs
                    .write(ino, offset + done as u64, &data[done..])
                    .map_err(errno)?;
                if n == 0 {
                    return Err(Errno::EIO);
                }
                done += n as usize;
            }
            Ok(())
        })();
        self.done(r)
    }

    /// open(path, O_WRONLY) and ftruncate.
    pub fn truncate(&self, path: &str, len: u64) -> Result<(), Errno> {
        let r = (|| {
            let n = self.existing(path, true)?;
            if n.attr.kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            if n.attr.kind.is_special() {
                return Err(Errno::ENXIO);
            }
            self.kill_privileges(n.ino)?;
            let s = SetAttr {
                size: Some(len),
                ..SetAttr::default()
            };
            self.fs.setattr(n.ino, s).map_err(errno).map(|_| ())
        })();
        self.done(r)
    }

    /// A node the caller makes, with the umask applied (as the kernel does before asking FUSE).
    fn new_node<'n>(&self, parent: Ino, name: &'n [u8], mode: u32) -> NewNode<'n> {
        NewNode {
            parent,
            name,
            perm: mode & !self.umask,
            uid: self.uid,
            gid: self.gid,
        }
    }

    pub fn mkdir(&self, path: &str) -> Result<(), Errno> {
        let r = (|| {
            let (dir, name) = self.parent_of(path)?;
            self.hold(
                self.fs
                    .mkdir(&self.new_node(dir, &name, 0o777))
                    .map_err(errno),
            )
            .map(|_| ())
        })();
        self.done(r)
    }

    /// mkfifo(path, 0666) (the umask applies).
    pub fn mkfifo(&self, path: &str) -> Result<(), Errno> {
        let r = (|| {
            let (dir, name) = self.parent_of(path)?;
            let new = self.new_node(dir, &name, 0o666);
            self.hold(self.fs.mknod(&new, libc::S_IFIFO | 0o666, 0).map_err(errno))
                .map(|_| ())
        })();
        self.done(r)
    }

    pub fn rmdir(&self, path: &str) -> Result<(), Errno> {
        let r = self
            .parent_of(path)
            .and_then(|(dir, name)| self.fs.rmdir(dir, &name).map_err(errno));
        self.done(r)
    }

    pub fn unlink(&self, path: &str) -> Result<(), Errno> {
        let r = self
            .parent_of(path)
            .and_then(|(dir, name)| self.fs.unlink(dir, &name).map_err(errno));
        self.done(r)
    }

    pub fn rename(&self, from: &str, to: &str, flags: u32) -> Result<(), Errno> {
        let r = (|| {
            let (fd, f) = self.parent_of(from)?;
            let (td, t) = self.parent_of(to)?;
            self.fs.rename(fd, &f, td, &t, flags).map_err(errno)
        })();
        self.done(r)
    }

    /// link(2): the source's symlink is not followed.
    pub fn link(&self, from: &str, to: &str) -> Result<(), Errno> {
        let r = (|| {
            let src = self.existing(from, false)?;
            let (dir, name) = self.parent_of(to)?;
            self.hold(self.fs.link(src.ino, dir, &name).map_err(errno))
                .map(|_| ())
        })();
        self.done(r)
    }

    pub fn symlink(&self, target: &str, path: &str) -> Result<(), Errno> {
        let r = (|| {
            let (dir, name) = self.parent_of(path)?;
            let new = self.new_node(dir, &name, 0o777);
            self.hold(self.fs.symlink(&new, target.as_bytes()).map_err(errno))
                .map(|_| ())
        })();
        self.done(r)
    }

    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), Errno> {
        let r = (|| {
            let n = self.existing(path, true)?;
            let s = SetAttr {
                perm: Some(mode),
                ..SetAttr::default()
            };
            self.fs.setattr(n.ino, s).map_err(errno).map(|_| ())
        })();
        self.done(r)
    }

    /// The whole content of the file at `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, Errno> {
        let r = (|| {
            let n = self.existing(path, true)?;
            self.read_ino(n.ino, n.attr.size)
        })();
        self.done(r)
    }

    fn read_ino(&self, ino: Ino, size: u64) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        while (out.len() as u64) < size {
            let chunk = self
                .fs
                .read(ino, out.len() as u64, 1 << 20)
                .map_err(errno)?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// (seconds of mtime) of the node at `path`, not following a final symlink.
    pub fn mtime(&self, path: &str) -> Result<i64, Errno> {
        let r = self.existing(path, false).map(|n| n.attr.mtime.0);
        self.done(r)
    }

    /// Runs one model operation, as `model::run` does on a native directory.
    pub fn run(&self, op: &Op) -> Result<(), i32> {
        let r = match op {
            Op::Write {
                path,
                offset,
                len,
                seed,
            } => self.write(path, *offset, &model::bytes(*len, *seed)),
            Op::Truncate { path, len } => self.truncate(path, *len),
            Op::Mkdir { path } => self.mkdir(path),
            Op::Rmdir { path } => self.rmdir(path),
            Op::Unlink { path } => self.unlink(path),
            Op::Rename { from, to, flags } => self.rename(from, to, *flags),
            Op::Link { from, to } => self.link(from, to),
            Op::Symlink { target, path } => self.symlink(target, path),
            Op::Mkfifo { path } => self.mkfifo(path),
            Op::Chmod { path, mode } => {
                let r = self.existing(path, false);
                match self.done(r) {
                    Ok(n) if n.attr.kind == Kind::Symlink => Ok(()),
                    Ok(n) => self.chmod(path, model::chmod_mode(*mode, n.attr.kind == Kind::Dir)),
                    Err(e) => Err(e),
                }
            }
        };
        r.map_err(|e| e as i32)
    }

    /// The tree as `model::snapshot` describes a native one.
    pub fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(ROOT_INO, PathBuf::new())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = self
                .fs
                .readdir(dir, 0, usize::MAX, false)
                .map_err(errno)
                .unwrap();
            for e in entries
                .into_iter()
                .filter(|e| e.name != b"." && e.name != b"..")
            {
                let r = rel.join(String::from_utf8(e.name.clone()).unwrap());
                let a = e.attr;
                let mode = a.perm;
                let desc = match a.kind {
                    Kind::Dir => {
                        stack.push((e.ino, r.clone()));
                        model::describe_dir(mode, u64::from(a.nlink))
                    }
                    Kind::Symlink => {
                        model::describe_symlink(&self.fs.readlink(e.ino).map_err(errno).unwrap())
                    }
                    k if k.is_special() => {
                        model::describe_special(k.type_bits() | mode, u64::from(a.nlink))
                    }
                    _ => {
                        let data = self.read_ino(e.ino, a.size).unwrap();
                        model::describe_file(mode, u64::from(a.nlink), &data)
                    }
                };
                out.push(format!("{}: {desc}", r.display()));
            }
        }
        out.sort();
        out
    }

    /// "path kind mtime" of every node, root included.
    pub fn mtimes(&self) -> Vec<String> {
        let mut out = vec![format!(
            "/ dir {}",
            self.fs.getattr(ROOT_INO).map_err(errno).unwrap().mtime.0
        )];
        let mut stack = vec![(ROOT_INO, PathBuf::new())];
        while let Some((dir, rel)) = stack.pop() {
            for e in self
                .fs
                .readdir(dir, 0, usize::MAX, false)
                .map_err(errno)
                .unwrap()
            {
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                let r = rel.join(String::from_utf8(e.name.clone()).unwrap());
                if e.attr.kind == Kind::Dir {
                    stack.push((e.ino, r.clone()));
                }
                out.push(format!(
                    "{} {:?} {}",
                    r.display(),
                    e.attr.kind,
                    e.attr.mtime.0
                ));
            }
        }
        out.sort();
        out
    }
}
