//! Thin adapter from fuser's callbacks to `Filesystem`, plus the kernel cache policy. Every change
//! goes through the kernel, so the kernel's caches stay right however long it keeps them: names and
//! attributes (also negative lookups, which Python's import system makes by the thousand),
//! directory listings, and file pages across opens. Warm access never reaches this process.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileHandle, FileType, Filesystem as FuseFilesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow,
};

use super::filesystem::Filesystem;
use crate::archive::Kind;
use crate::overlay::tree::{Attr, Ino, NodeRef};
use crate::overlay::{NewNode, OpError, SetAttr};

/// How long the kernel may trust what we told it: nothing changes behind its back.
const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Largest single read or write the kernel sends (and readahead window): 1 MiB.
const MAX_IO: u32 = 1 << 20;
/// Entries gathered per readdir request (the kernel's buffer holds fewer; it asks again).
const READDIR_BATCH: usize = 512;

pub struct FuseAdapter {
    fs: Arc<Filesystem>,
}

impl FuseAdapter {
    pub fn new(fs: Arc<Filesystem>) -> Self {
        FuseAdapter { fs }
    }

    /// The one place a failed request is answered. Faults (a damaged archive entry, a failing
    /// upper disk) are logged with the operation and the node, and damaged entries counted for
    /// `status`, whichever request ran into them; answers (ENOENT, EEXIST, ...) are not logged.
    fn fail(&self, op: &'static str, ino: u64, e: OpError) -> fuser::Errno {
        if e.is_fault() {
            if matches!(e, OpError::Entry { .. }) {
                self.fs.read_errors.fetch_add(1, Ordering::Relaxed);
            }
            tracing::error!(op, ino, path = %self.fs.path_of(ino), "{e}");
        }
        fuser::Errno::from_i32(e.errno() as i32)
    }

    fn entry(&self, op: &'static str, ino: u64, reply: ReplyEntry, r: Result<NodeRef, OpError>) {
        match r {
            Ok(n) => reply.entry(&TTL, &file_attr(n.ino, &n.attr), Generation(n.generation)),
            Err(e) => reply.error(self.fail(op, ino, e)),
        }
    }

    fn empty(&self, op: &'static str, ino: u64, reply: ReplyEmpty, r: Result<(), OpError>) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail(op, ino, e)),
        }
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
    }
}

fn system_time((secs, nanos): (i64, u32)) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    }
}

fn to_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            if d.subsec_nanos() == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

pub fn file_attr(ino: Ino, a: &Attr) -> FileAttr {
    let mtime = system_time(a.mtime);
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: system_time(a.ctime),
        crtime: mtime,
        kind: file_type(a.kind),
        perm: a.perm as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}

/// Attributes for a negative dentry: inode 0 tells the kernel "does not exist, remember that".
fn negative_attr() -> FileAttr {
    let none = Attr {
        kind: Kind::File,
        perm: 0,
        uid: 0,
        gid: 0,
        mtime: (0, 0),
        ctime: (0, 0),
        size: 0,
        nlink: 0,
        rdev: 0,
    };
    FileAttr {
        ino: INodeNo(0),
        ..file_attr(0, &none)
    }
}

fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_bytes()
}

/// The node a request makes, for the user who made the request.
fn new_node<'a>(req: &Request, parent: INodeNo, name: &'a OsStr, mode: u32) -> NewNode<'a> {
    NewNode {
        parent: parent.0,
        name: name.as_bytes(),
        perm: mode & 0o7777,
        uid: req.uid(),
        gid: req.gid(),
    }
}

impl FuseFilesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            // Older kernels lack some of these; the mount works without them, only slower.
            let _ = config.add_capabilities(flag);
        }
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.fs.lookup(parent.0, name_bytes(name)) {
            Err(OpError::Answer(nix::errno::Errno::ENOENT)) => {
                reply.entry(&TTL, &negative_attr(), Generation(0))
            }
            r => self.entry("lookup", parent.0, reply, r),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &file_attr(ino.0, &attr)),
            Err(e) => reply.error(self.fail("getattr", ino.0, e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mtime = mtime.map(|t| match t {
            TimeOrNow::SpecificTime(t) => to_time(t),
            TimeOrNow::Now => crate::clock::now(),
        });
        let s = SetAttr {
            perm: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            mtime,
        };
        match self.fs.setattr(ino.0, s) {
            Ok(attr) => reply.attr(&TTL, &file_attr(ino.0, &attr)),
            Err(e) => reply.error(self.fail("setattr", ino.0, e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(self.fail("readlink", ino.0, e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let new = new_node(req, parent, name, mode);
        self.entry(
            "mknod",
            parent.0,
            reply,
            self.fs.mknod(&new, mode, u64::from(rdev)),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(
            "mkdir",
            parent.0,
            reply,
            self.fs.mkdir(&new_node(req, parent, name, mode)),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(
            "unlink",
            parent.0,
            reply,
            self.fs.unlink(parent.0, name_bytes(name)),
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(
            "rmdir",
            parent.0,
            reply,
            self.fs.rmdir(parent.0, name_bytes(name)),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let new = new_node(req, parent, link_name, 0o777);
        self.entry(
            "symlink",
            parent.0,
            reply,
            self.fs.symlink(&new, target.as_os_str().as_bytes()),
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.fs.rename(
            parent.0,
            name_bytes(name),
            newparent.0,
            name_bytes(newname),
            flags.bits(),
        );
        self.empty("rename", parent.0, reply, r);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.entry(
            "link",
            ino.0,
            reply,
            self.fs.link(ino.0, newparent.0, name_bytes(newname)),
        );
    }

    // Answering ENOSYS to open and opendir makes the kernel open files and directories without
    // asking us from then on, with FOPEN_KEEP_CACHE (and FOPEN_CACHE_DIR) as defaults: warm imports
    // cost no round trip per file. Reads and writes then name the inode, which is all we need.
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        if mode & libc::S_IFMT != 0 && mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(fuser::Errno::EINVAL);
        }
        match self.fs.create(&new_node(req, parent, name, mode)) {
            Ok(n) => reply.created(
                &TTL,
                &file_attr(n.ino, &n.attr),
                Generation(n.generation),
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(self.fail("create", parent.0, e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        match self.fs.read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(self.fail("read", ino.0, e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.fs.write(ino.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(self.fail("write", ino.0, e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.empty("fsync", ino.0, reply, self.fs.fsync(ino.0));
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.empty("fsyncdir", ino.0, reply, self.fs.fsync(ino.0));
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.empty(
            "fallocate",
            ino.0,
            reply,
            self.fs.fallocate(ino.0, mode, offset, length),
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.fs.readdir(ino.0, offset, READDIR_BATCH, false) {
            Ok(entries) => {
                for e in entries {
                    if reply.add(
                        INodeNo(e.ino),
                        e.cookie,
                        file_type(e.attr.kind),
                        OsStr::from_bytes(&e.name),
                    ) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(self.fail("readdir", ino.0, e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.fs.readdir(ino.0, offset, READDIR_BATCH, true) {
            Ok(entries) => {
                let mut full = false;
                for e in entries {
                    // The kernel counts a lookup for every entry it receives but "." and "..";
                    // readdir counted one for each, so entries that did not fit are forgotten.
                    let counted = e.name != b"." && e.name != b"..";
                    if !full {
                        let attr = file_attr(e.ino, &e.attr);
                        full = reply.add(
                            INodeNo(e.ino),
                            e.cookie,
                            OsStr::from_bytes(&e.name),
                            &TTL,
                            &attr,
                            Generation(e.generation),
                        );
                    }
                    if full && counted {
                        self.fs.forget(e.ino, 1);
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(self.fail("readdirplus", ino.0, e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks,
            s.blocks_free,
            s.blocks_available,
            s.files,
            s.files_free,
            s.block_size,
            255,
            s.block_size,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions itself (default_permissions); this is only reached for F_OK.
        reply.ok();
    }

    // The callbacks below answer what fuser would answer by default, but without its per-call
    // warning: Python 3.11 asks isatty() (ioctl TCGETS) on every file it opens.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        reply.error(fuser::Errno::ENOTTY);
    }

    /// ENOSYS tells the kernel once and for all that there are no extended attributes.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: fuser::ReplyLseek,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: fuser::CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }
}
