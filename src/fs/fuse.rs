//! Thin adapter from fuser's callbacks to `ArchiveFs`, plus the kernel cache policy. The archive never
//! changes under a mount, so the kernel may cache everything for long: attributes and names (also
//! negative lookups, which Python's import system makes by the thousand), directory listings, and
//! file pages across opens (FOPEN_KEEP_CACHE). Warm access then never reaches this process.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileHandle, FileType, Filesystem, Generation, INodeNo, InitFlags, KernelConfig,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, Request,
};

use super::archive_fs::ArchiveFs;
use super::tree::{Attr, Ino};
use crate::archive::Kind;

/// How long the kernel may trust what we told it: the content under a mount never changes.
const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Largest single read or write the kernel sends (and readahead window): 1 MiB.
const MAX_IO: u32 = 1 << 20;

pub struct FuseAdapter {
    fs: Arc<ArchiveFs>,
}

impl FuseAdapter {
    pub fn new(fs: Arc<ArchiveFs>) -> Self {
        FuseAdapter { fs }
    }
}

fn errno(e: nix::errno::Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e as i32)
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

fn system_time(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

pub fn file_attr(ino: Ino, a: &Attr) -> FileAttr {
    let t = system_time(a.mtime);
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: file_type(a.kind),
        perm: a.perm as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Attributes for a negative dentry: inode 0 tells the kernel "does not exist, remember that".
fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        ..file_attr(
            0,
            &Attr {
                kind: Kind::File,
                perm: 0,
                uid: 0,
                gid: 0,
                mtime: 0,
                size: 0,
                nlink: 0,
            },
        )
    }
}

impl Filesystem for FuseAdapter {
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
        match self.fs.lookup(parent.0, name.as_bytes()) {
            Ok((ino, attr)) => reply.entry(&TTL, &file_attr(ino, &attr), Generation(0)),
            Err(nix::errno::Errno::ENOENT) => reply.entry(&TTL, &negative_attr(), Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &file_attr(ino.0, &attr)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(e)),
        }
    }

    // Answering ENOSYS to open and opendir makes the kernel open files and directories without
    // asking us from then on, with FOPEN_KEEP_CACHE (and FOPEN_CACHE_DIR) as defaults: warm imports
    // then cost no round trip per file. Nothing about opening an archive file can fail or differ.
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.error(fuser::Errno::ENOSYS);
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
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.fs.readdir(ino.0, offset, |e| {
            reply.add(
                INodeNo(e.ino),
                e.cookie,
                file_type(e.kind),
                OsStr::from_bytes(e.name),
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
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
        let result = self.fs.readdir(ino.0, offset, |e| {
            let Ok(attr) = self.fs.getattr(e.ino) else {
                return false;
            };
            reply.add(
                INodeNo(e.ino),
                e.cookie,
                OsStr::from_bytes(e.name),
                &TTL,
                &file_attr(e.ino, &attr),
                Generation(0),
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (blocks, files) = self.fs.statfs();
        reply.statfs(blocks, 0, 0, files, 0, 4096, 255, 4096);
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

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions itself (default_permissions); this is only reached for F_OK.
        reply.ok();
    }
}
