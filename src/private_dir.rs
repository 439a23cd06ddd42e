//! Directories conda-fuse keeps for one user (state, upper layers, logs, mount records, run files):
//! created 0700 and verified before use by the rules of XDG_RUNTIME_DIR (a real directory, not a
//! symlink, owned by the user, writable by nobody else), then used only through an open descriptor.
//! Nothing inside is reached through a path another user could change, files are created 0600, and
//! no symlink is followed: inside a directory only its owner can write, only the owner could have
//! made one.
//!
//! One kind of directory is shared where sharing is the point: the snapshots of an archive in a
//! lab's directory (group-writable) are for the group (`Audience::Group`), so any member may roll
//! back, and delete an old version that counts on their quota.
//!
//! Written here rather than with a capability crate (cap-std) because what we need is narrow and
//! must hold on the kernels clusters run (RHEL 8's 4.18 has no openat2): open by descriptor with
//! O_NOFOLLOW, check owner and mode, tighten what older versions created 0755.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};

#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    #[error(
        "{path} is a symlink; conda-fuse keeps private state only in real directories it can \
         verify"
    )]
    Symlink { path: PathBuf },
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "{path} belongs to uid {owner}, not to you (uid {me}): another user could read or plant \
         what conda-fuse keeps there"
    )]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{path} is writable by other users (mode {mode:o}): someone could have planted files in it"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl crate::hint::Hint for PrivateDirError {
    fn hint(&self) -> Option<String> {
        match self {
            PrivateDirError::Symlink { .. } => {
                Some("point the variable that names it at the real directory instead".into())
            }
            PrivateDirError::NotADirectory { .. } => {
                Some("move it away or point conda-fuse elsewhere".into())
            }
            PrivateDirError::NotOwned { .. } => Some("use a directory of your own".into()),
            PrivateDirError::Writable { path, .. } => Some(format!(
                "check what is in it, then make it private (chmod 700 {}) or use another directory",
                path.display()
            )),
            PrivateDirError::Io { .. } => None,
        }
    }
}

impl PrivateDirError {
    fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> PrivateDirError + 'a {
        move |e| PrivateDirError::Io {
            what,
            path: path.to_owned(),
            source: e.into(),
        }
    }
}

pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Who a directory conda-fuse keeps is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The user alone: the user's, 0700.
    Owner,
    /// The group sharing a lab's directory: 2770 with this group. Another member's directory
    /// is used when it has this group and nobody outside the group may write it.
    Group(u32),
}

impl Audience {
    /// Who directories kept beside an archive are for, by the mode and group of the archive's
    /// directory: one its group may write, and others may not, is a lab's.
    pub fn beside(dir_mode: u32, dir_gid: u32) -> Audience {
        if dir_mode & 0o020 != 0 && dir_mode & 0o002 == 0 {
            Audience::Group(dir_gid)
        } else {
            Audience::Owner
        }
    }
}

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Opens the directory `name` relative to `at` without following a symlink there.
fn open_dir(
    at: BorrowedFd<'_>,
    name: &Path,
    shown: &Path,
) -> Result<Option<OwnedFd>, PrivateDirError> {
    match nix::fcntl::openat(at, name, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP) => Err(PrivateDirError::Symlink {
            path: shown.to_owned(),
        }),
        Err(Errno::ENOTDIR) => {
            // A symlink to a directory also fails with ENOTDIR under O_NOFOLLOW on some kernels.
            let st = nix::sys::stat::fstatat(at, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
            match st {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                    Err(PrivateDirError::Symlink {
                        path: shown.to_owned(),
                    })
                }
                _ => Err(PrivateDirError::NotADirectory {
                    path: shown.to_owned(),
                }),
            }
        }
        Err(e) => Err(PrivateDirError::io("open", shown)(e)),
    }
}

/// Checks owner and mode of an opened directory; takes group and other access away from one that
/// only older versions of conda-fuse made readable (0755), and refuses one others can write.
fn verify(fd: &OwnedFd, path: &Path) -> Result<(), PrivateDirError> {
    let st = fstat(fd).map_err(PrivateDirError::io("inspect", path))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(PrivateDirError::NotADirectory {
            path: path.to_owned(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        return Err(PrivateDirError::NotOwned {
            path: path.to_owned(),
            owner: st.st_uid,
            me,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(PrivateDirError::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    if mode & 0o077 != 0 {
        fchmod(fd, Mode::from_bits_truncate(0o700))
            .map_err(PrivateDirError::io("make private", path))?;
        tracing::info!(dir = %crate::display::path(path), "made private (was {mode:o}, now 700)");
    }
    Ok(())
}

/// Checks an opened directory for `audience`. One of the user's own is given the group and mode
/// it should have (2770); another member's is used as it is if it has the group and nobody outside
/// may write it.
fn verify_for(fd: &OwnedFd, path: &Path, audience: Audience) -> Result<(), PrivateDirError> {
    let Audience::Group(gid) = audience else {
        return verify(fd, path);
    };
    let st = fstat(fd).map_err(PrivateDirError::io("inspect", path))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(PrivateDirError::NotADirectory {
            path: path.to_owned(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    let mode = st.st_mode & 0o7777;
    if st.st_uid == me {
        if st.st_gid != gid {
            nix::unistd::fchown(fd, None, Some(gid.into()))
                .map_err(PrivateDirError::io("give to the directory's group", path))?;
        }
        if mode != 0o2770 {
            fchmod(fd, Mode::from_bits_truncate(0o2770))
                .map_err(PrivateDirError::io("share with the group", path))?;
        }
        return Ok(());
    }
    if st.st_gid != gid {
        return Err(PrivateDirError::NotOwned {
            path: path.to_owned(),
            owner: st.st_uid,
            me,
        });
    }
    if mode & 0o002 != 0 {
        return Err(PrivateDirError::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

impl PrivateDir {
    /// The directory `name` in the open directory `parent` (shown as `parent_path`), reached
    /// without following a symlink, for `audience`; created if missing and `create`.
    pub fn open_in(
        parent: BorrowedFd<'_>,
        parent_path: &Path,
        name: &Path,
        audience: Audience,
        create: bool,
    ) -> Result<Option<PrivateDir>, PrivateDirError> {
        let path = parent_path.join(name);
        let mut fd = open_dir(parent, name, &path)?;
        if fd.is_none() && create {
            match mkdirat(parent, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(PrivateDirError::io("create", &path)(e)),
            }
            fd = open_dir(parent, name, &path)?;
        }
        let Some(fd) = fd else { return Ok(None) };
        verify_for(&fd, &path, audience)?;
        Ok(Some(PrivateDir { fd, path }))
    }

    /// The directory at `path`, created (0700; missing parents as `mkdir -p` makes them) if needed,
    /// and verified.
    pub fn ensure(path: &Path) -> Result<PrivateDir, PrivateDirError> {
        if let Some(d) = Self::open(path)? {
            return Ok(d);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| PrivateDirError::Io {
                what: "create",
                path: parent.to_owned(),
                source,
            })?;
        }
        match mkdirat(AT_FDCWD, path, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(PrivateDirError::io("create", path)(e)),
        }
        Self::open(path)?.ok_or_else(|| PrivateDirError::Io {
            what: "open",
            path: path.to_owned(),
            source: io::ErrorKind::NotFound.into(),
        })
    }

    /// Whether `path` is a real directory of ours that no other user can write: checked, never
    /// changed (for a directory conda-fuse did not make, such as the one XDG_RUNTIME_DIR names).
    pub fn is_own_and_unshared(path: &Path) -> bool {
        // SAFETY: AT_FDCWD is a valid "descriptor" for the *at calls.
        let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
        let Ok(Some(fd)) = open_dir(cwd, path, path) else {
            return false;
        };
        fstat(&fd).is_ok_and(|st| {
            st.st_mode & libc::S_IFMT == libc::S_IFDIR
                && st.st_uid == nix::unistd::geteuid().as_raw()
                && st.st_mode & 0o022 == 0
        })
    }

    /// The existing directory at `path`, verified; None if there is none.
    pub fn open(path: &Path) -> Result<Option<PrivateDir>, PrivateDirError> {
        // SAFETY: AT_FDCWD is a valid "descriptor" for the *at calls.
        let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
        let Some(fd) = open_dir(cwd, path, path)? else {
            return Ok(None);
        };
        verify(&fd, path)?;
        Ok(Some(PrivateDir {
            fd,
            path: path.to_owned(),
        }))
    }

    /// The subdirectory `name` (created 0700 if missing), verified.
    pub fn subdir(&self, name: impl AsRef<Path>) -> Result<PrivateDir, PrivateDirError> {
        let name = name.as_ref();
        if let Some(d) = self.open_subdir(name)? {
            return Ok(d);
        }
        let path = self.path.join(name);
        match mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(PrivateDirError::io("create", &path)(e)),
        }
        self.open_subdir(name)?.ok_or_else(|| PrivateDirError::Io {
            what: "open",
            path,
            source: io::ErrorKind::NotFound.into(),
        })
    }

    /// The existing subdirectory `name`, verified; None if there is none.
    pub fn open_subdir(
        &self,
        name: impl AsRef<Path>,
    ) -> Result<Option<PrivateDir>, PrivateDirError> {
        let name = name.as_ref();
        let path = self.path.join(name);
        let Some(fd) = open_dir(self.fd.as_fd(), name, &path)? else {
            return Ok(None);
        };
        verify(&fd, &path)?;
        Ok(Some(PrivateDir { fd, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside, for messages (never for opening).
    pub fn show(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    fn open_at(&self, name: &Path, flags: OFlag) -> io::Result<File> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))?;
        Ok(File::from(fd))
    }

    /// Creates the file `name` (0600); fails if it exists.
    pub fn create_new(&self, name: impl AsRef<Path>) -> io::Result<File> {
        self.open_at(
            name.as_ref(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
        )
    }

    /// Opens the file `name` for reading and writing, creating it (0600) when `create`.
    pub fn open_rw(&self, name: impl AsRef<Path>, create: bool) -> io::Result<File> {
        let create = if create {
            OFlag::O_CREAT
        } else {
            OFlag::empty()
        };
        self.open_at(name.as_ref(), OFlag::O_RDWR | create)
    }

    /// Opens the file `name` for appending, creating it (0600) if needed.
    pub fn open_append(&self, name: impl AsRef<Path>) -> io::Result<File> {
        self.open_at(
            name.as_ref(),
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
        )
    }

    /// Opens the file `name` for reading (non-blocking: a FIFO in a shared directory must not
    /// hang the open; nothing changes for a regular file).
    pub fn open_read(&self, name: impl AsRef<Path>) -> io::Result<File> {
        self.open_at(name.as_ref(), OFlag::O_RDONLY | OFlag::O_NONBLOCK)
    }

    /// Writes `data` as the file `name`, atomically (a temporary file, fsync, rename).
    pub fn write_atomic(&self, name: &str, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        // Unique per process and moment: nodes sharing this directory may have the same pid.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = format!(".{name}.tmp-{}-{nanos:x}", std::process::id());
        let mut f = self.create_new(&tmp)?;
        let written = f.write_all(data).and_then(|()| f.sync_all());
        if let Err(e) = written.and_then(|()| self.rename(&tmp, name)) {
            let _ = self.remove_file(&tmp);
            return Err(e);
        }
        Ok(())
    }

    /// lstat of `name` inside.
    pub fn stat(&self, name: impl AsRef<Path>) -> io::Result<nix::sys::stat::FileStat> {
        nix::sys::stat::fstatat(
            &self.fd,
            name.as_ref(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io::Error::from)
    }

    pub fn remove_file(&self, name: impl AsRef<Path>) -> io::Result<()> {
        nix::unistd::unlinkat(
            &self.fd,
            name.as_ref(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(io::Error::from)
    }

    /// Removes the empty subdirectory `name`.
    pub fn remove_dir(&self, name: impl AsRef<Path>) -> io::Result<()> {
        nix::unistd::unlinkat(
            &self.fd,
            name.as_ref(),
            nix::unistd::UnlinkatFlags::RemoveDir,
        )
        .map_err(io::Error::from)
    }

    /// Removes the subdirectory `name` and everything below it (without following symlinks).
    pub fn remove_tree(&self, name: &str) -> io::Result<()> {
        let sub = match self.open_subdir(name) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(()),
            Err(e) => return Err(io::Error::other(e)),
        };
        for entry in sub.entries()? {
            if sub.remove_file(&entry).is_err() {
                sub.remove_tree(&entry.to_string_lossy())?;
            }
        }
        self.remove_dir(name)
    }

    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
        self.rename_out(from, self.fd(), to)
    }

    /// Renames `from` in here to `to` in the directory `dir`.
    pub fn rename_out(
        &self,
        from: impl AsRef<Path>,
        dir: BorrowedFd<'_>,
        to: impl AsRef<Path>,
    ) -> io::Result<()> {
        nix::fcntl::renameat(&self.fd, from.as_ref(), dir, to.as_ref()).map_err(io::Error::from)
    }

    /// Names in the directory ("." and ".." left out).
    pub fn entries(&self) -> io::Result<Vec<std::ffi::OsString>> {
        let mut dir = nix::dir::Dir::openat(&self.fd, ".", DIR_FLAGS, Mode::empty())?;
        Ok(dir
            .iter()
            .filter_map(|e| e.ok())
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect())
    }

    /// Flushes the directory itself (new and removed names).
    pub fn sync(&self) -> io::Result<()> {
        nix::unistd::fsync(&self.fd).map_err(io::Error::from)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn created_private_and_older_readable_ones_are_tightened() {
        let t = tempfile::tempdir().unwrap();
        let d = PrivateDir::ensure(&t.path().join("a/b/state")).unwrap();
        assert_eq!(std::fs::metadata(d.path()).unwrap().mode() & 0o777, 0o700);
        let f = d.create_new("f").unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
        let old = t.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        PrivateDir::ensure(&old).unwrap();
        assert_eq!(std::fs::metadata(&old).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_directory_checked_as_is_keeps_its_mode() {
        let t = tempfile::tempdir().unwrap();
        let xdg = t.path().join("xdg");
        std::fs::create_dir(&xdg).unwrap();
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(PrivateDir::is_own_and_unshared(&xdg));
        assert_eq!(std::fs::metadata(&xdg).unwrap().mode() & 0o777, 0o755);
        std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!PrivateDir::is_own_and_unshared(&xdg));
        std::os::unix::fs::symlink(t.path(), t.path().join("link")).unwrap();
        assert!(!PrivateDir::is_own_and_unshared(&t.path().join("link")));
        assert!(!PrivateDir::is_own_and_unshared(&t.path().join("missing")));
    }

    #[test]
    fn a_labs_directory_shares_what_is_kept_beside_its_archives() {
        for (mode, want) in [
            (0o2770, Audience::Group(7)),
            (0o775, Audience::Group(7)),
            (0o755, Audience::Owner),
            (0o700, Audience::Owner),
            (0o1777, Audience::Owner),
            (0o777, Audience::Owner),
        ] {
            assert_eq!(Audience::beside(mode, 7), want, "{mode:o}");
        }
    }

    #[test]
    fn a_group_directory_of_ones_own_is_made_the_groups() {
        let t = tempfile::tempdir().unwrap();
        let parent = File::open(t.path()).unwrap();
        let gid = nix::unistd::getegid().as_raw();
        let d = PrivateDir::open_in(
            parent.as_fd(),
            t.path(),
            Path::new("snaps"),
            Audience::Group(gid),
            true,
        )
        .unwrap()
        .unwrap();
        let md = std::fs::metadata(d.path()).unwrap();
        assert_eq!((md.mode() & 0o7777, md.gid()), (0o2770, gid));
        // A symlink in its place is never followed, for either audience.
        std::os::unix::fs::symlink(t.path(), t.path().join("link")).unwrap();
        for audience in [Audience::Owner, Audience::Group(gid)] {
            assert!(matches!(
                PrivateDir::open_in(parent.as_fd(), t.path(), Path::new("link"), audience, true),
                Err(PrivateDirError::Symlink { .. })
            ));
        }
    }

    #[test]
    fn symlinks_and_writable_directories_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, t.path().join("link")).unwrap();
        assert!(matches!(
            PrivateDir::ensure(&t.path().join("link")),
            Err(PrivateDirError::Symlink { .. })
        ));
        let shared = t.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(matches!(
            PrivateDir::ensure(&shared),
            Err(PrivateDirError::Writable { .. })
        ));
        // Inside a private directory, a symlink where a file should be is never followed.
        let d = PrivateDir::ensure(&real).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", real.join("journal")).unwrap();
        assert_eq!(
            d.open_rw("journal", true).unwrap_err().raw_os_error(),
            Some(libc::ELOOP)
        );
        std::os::unix::fs::symlink(&real, real.join("sub")).unwrap();
        assert!(matches!(
            d.subdir("sub"),
            Err(PrivateDirError::Symlink { .. })
        ));
    }
}
