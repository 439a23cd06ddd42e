//! Opening the lock file without trusting it. The archive's directory may be shared with a group,
//! so the lock file is never followed if it is a symlink, never written unless it is a regular file
//! with one name that holds nothing or a holder record (a file conda-fuse made), and created 0600
//! (0660 where the directory is group-writable or setgid, so the group's writers exclude each
//! other) so that nobody else can open it, and so hold its flock, to block you.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::LockError;
use super::holder::{self, Read};

/// Opens (creating when `create`) the lock file at `path` to take or hold the lock; None when it
/// does not exist and `create` is false.
pub(super) fn open(path: &Path, create: bool) -> Result<Option<File>, LockError> {
    open_as(path, true, create)
}

/// Opens the lock file at `path` only to read its record (who holds it), which needs no write
/// access: a lock beside an archive this user may only read still says who writes it.
pub(super) fn open_to_read(path: &Path) -> Result<Option<File>, LockError> {
    open_as(path, false, false)
}

fn open_as(path: &Path, write: bool, create: bool) -> Result<Option<File>, LockError> {
    use std::os::unix::fs::MetadataExt;
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let open = |create_new: bool| {
        let mut o = OpenOptions::new();
        o.read(true)
            .write(write)
            // Non-blocking: a FIFO planted as the lock would block open(2) for ever (it is
            // refused below: not a regular file).
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK);
        if create_new {
            crate::hostfs::create_new(o.mode(0o600), path)
        } else {
            o.open(path)
        }
    };
    let (file, made) = match open(create) {
        Ok(f) => (f, create),
        Err(e) if create && e.kind() == io::ErrorKind::AlreadyExists => {
            (open(false).map_err(open_error(path))?, false)
        }
        Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path)(e)),
    };
    if made {
        // Where the archive is shared with a group, its writers must be able to lock it.
        let dir_mode = path
            .parent()
            .and_then(|d| std::fs::metadata(d).ok())
            .map_or(0, |m| m.mode());
        if dir_mode & (0o020 | 0o2000) != 0 {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o660))
                .map_err(io_err)?;
        }
        return Ok(Some(file));
    }
    let md = file.metadata().map_err(io_err)?;
    let refuse = |why| LockError::NotALock {
        path: path.to_owned(),
        why,
    };
    if !md.is_file() {
        return Err(refuse("it is not a regular file"));
    }
    if md.nlink() != 1 {
        return Err(refuse("it has other names (hard links)"));
    }
    if let Read::Foreign = holder::read(&file) {
        return Err(refuse("it holds something else than a holder record"));
    }
    Ok(Some(file))
}

fn open_error(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            LockError::NotALock {
                path: path.to_owned(),
                why: "it is a symlink",
            }
        } else {
            LockError::Io {
                path: path.to_owned(),
                source: e,
            }
        }
    }
}
