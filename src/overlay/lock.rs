//! One writer per archive: a lock file beside the archive (`NAME.zip.lock`, so every host that sees
//! the archive sees the lock) held with flock(2) by the writable daemon, and naming its holder (host,
//! pid, user, since when, mount point). A holder that dies releases the flock with its process, so a
//! stale lock is simply taken over. Where the filesystem has no flock, the holder's record decides:
//! a dead process on this host is stale; a record from another host is honoured.
//!
//! The archive's directory may be shared with a group, so the lock file is handled as untrusted: it
//! is never followed if it is a symlink, never written unless it is a regular file with one name
//! that holds nothing or a holder record (a file conda-fuse made), and created 0600 (0660 where
//! the directory is group-writable or setgid, so the group's writers exclude each other) so that
//! nobody else can open it, and so hold its flock, to block you.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub since: i64,
    pub mountpoint: PathBuf,
}

impl Holder {
    fn me(mountpoint: &Path) -> Holder {
        Holder {
            host: hostname(),
            pid: std::process::id(),
            user: nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map_or_else(|| nix::unistd::getuid().to_string(), |u| u.name),
            since: crate::clock::now().0,
            mountpoint: mountpoint.to_owned(),
        }
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname().map_or_else(
        |_| "unknown-host".into(),
        |h| h.to_string_lossy().into_owned(),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{archive} is already mounted writable by pid {} on host {} (user {}) since {} at {}; \
         mount it --read-only here, or unmount it there first",
        holder.pid, holder.host, holder.user, crate::clock::local(holder.since), holder.mountpoint.display()
    )]
    Held { archive: PathBuf, holder: Holder },
    #[error(
        "cannot lock {path} for writing: {source}; the archive's directory must be writable by you"
    )]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not a conda-fuse lock file ({why}); conda-fuse never follows or overwrites such a \
         file. Look at it, and remove it if nothing needs it"
    )]
    NotALock { path: PathBuf, why: &'static str },
}

/// Opens (creating when `create`) the lock file at `path` without trusting what is there.
fn open_lock_file(path: &Path, create: bool) -> Result<Option<File>, LockError> {
    use std::os::unix::fs::MetadataExt;
    let io_err = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let open = |create_new: bool| {
        let mut o = OpenOptions::new();
        o.read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW);
        if create_new {
            o.create_new(true).mode(0o600);
        }
        o.open(path)
    };
    let (file, made) = match if create { open(true) } else { open(false) } {
        Ok(f) => (f, create),
        Err(e) if create && e.kind() == io::ErrorKind::AlreadyExists => {
            (open(false).map_err(lock_open_error(path))?, false)
        }
        Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(lock_open_error(path)(e)),
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
    if md.len() > 0 && read_holder(&mut &file).is_none() {
        return Err(refuse("it holds something else than a holder record"));
    }
    Ok(Some(file))
}

fn lock_open_error(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
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

enum Held {
    Flock(Flock<File>),
    /// The filesystem has no flock: the record alone marks the lock.
    Record(File),
}

pub struct WriterLock {
    held: Option<Held>,
    path: PathBuf,
    mountpoint: PathBuf,
}

pub fn lock_path(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    archive.with_file_name(name)
}

/// The holder recorded in `archive`'s lock file when nobody holds the lock any more (its daemon
/// died without clearing the record). The next writable mount takes such a lock over by itself.
pub fn stale_holder(archive: &Path) -> Option<Holder> {
    let file = open_lock_file(&lock_path(archive), false).ok()??;
    let locked = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    read_holder(&mut &*locked)
}

fn read_holder(mut file: &mut &File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    io::Read::take(&mut file, 4096)
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn write_holder(file: &File, holder: &Holder) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.set_len(0)?;
    file.write_all_at(
        &serde_json::to_vec_pretty(holder).map_err(io::Error::other)?,
        0,
    )?;
    file.sync_data()
}

impl WriterLock {
    /// Takes the writer lock of `archive` for a mount at `mountpoint`. Returns the holder it took
    /// over, if a stale one was found.
    pub fn acquire(
        archive: &Path,
        mountpoint: &Path,
    ) -> Result<(WriterLock, Option<Holder>), LockError> {
        let path = lock_path(archive);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = open_lock_file(&path, true)?.expect("created or opened");
        let me = Holder::me(mountpoint);
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => {
                let stale = read_holder(&mut &*locked);
                write_holder(&locked, &me).map_err(io_err)?;
                let held = Some(Held::Flock(locked));
                Ok((
                    WriterLock {
                        held,
                        path,
                        mountpoint: mountpoint.to_owned(),
                    },
                    stale,
                ))
            }
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = read_holder(&mut &file).unwrap_or(Holder {
                    host: "unknown".into(),
                    pid: 0,
                    user: "unknown".into(),
                    since: 0,
                    mountpoint: PathBuf::from("?"),
                });
                Err(LockError::Held {
                    archive: archive.to_owned(),
                    holder,
                })
            }
            Err((file, _unsupported)) => {
                // No flock on this filesystem: decide from the record.
                let stale = match read_holder(&mut &file) {
                    Some(h) if h.host == me.host && !crate::process::is_conda_fuse(h.pid) => {
                        Some(h)
                    }
                    Some(h) => {
                        return Err(LockError::Held {
                            archive: archive.to_owned(),
                            holder: h,
                        });
                    }
                    None => None,
                };
                write_holder(&file, &me).map_err(io_err)?;
                let held = Some(Held::Record(file));
                Ok((
                    WriterLock {
                        held,
                        path,
                        mountpoint: mountpoint.to_owned(),
                    },
                    stale,
                ))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clears the holder record; the flock itself goes with the process. Daemons end with `_exit`,
    /// which runs no destructors, so they call this on the way out.
    pub fn clear(&self) {
        match &self.held {
            Some(Held::Flock(f)) => {
                let _ = f.set_len(0);
            }
            Some(Held::Record(f)) => {
                let _ = f.set_len(0);
            }
            None => {}
        }
    }

    /// Names this process as the holder (the daemon, after `mount` forked it).
    pub fn claim(&self) -> io::Result<()> {
        let me = Holder::me(&self.mountpoint);
        match &self.held {
            Some(Held::Flock(f)) => write_holder(f, &me),
            Some(Held::Record(f)) => write_holder(f, &me),
            None => Ok(()),
        }
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Clear the record before releasing, so nobody reads a holder that has gone.
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_is_private_and_planted_files_are_never_written() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("env.zip");
        let (lock, _) = WriterLock::acquire(&archive, Path::new("/mnt/a")).unwrap();
        assert_eq!(
            std::fs::metadata(lock_path(&archive)).unwrap().mode() & 0o777,
            0o600
        );
        drop(lock);
        // A colleague's symlink in a shared directory: never followed, the target untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::remove_file(lock_path(&archive)).unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(&archive)).unwrap();
        assert!(matches!(
            WriterLock::acquire(&archive, Path::new("/mnt/a")),
            Err(LockError::NotALock { .. })
        ));
        // A hard link to it, or a file of another kind of content: never truncated.
        std::fs::remove_file(lock_path(&archive)).unwrap();
        std::fs::hard_link(&victim, lock_path(&archive)).unwrap();
        assert!(matches!(
            WriterLock::acquire(&archive, Path::new("/mnt/a")),
            Err(LockError::NotALock { .. })
        ));
        std::fs::remove_file(lock_path(&archive)).unwrap();
        std::fs::write(lock_path(&archive), b"my notes").unwrap();
        assert!(matches!(
            WriterLock::acquire(&archive, Path::new("/mnt/a")),
            Err(LockError::NotALock { .. })
        ));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(lock_path(&archive)).unwrap(), b"my notes");
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holder_and_a_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("env.zip");
        let (lock, stale) = WriterLock::acquire(&archive, Path::new("/mnt/a")).unwrap();
        assert!(stale.is_none());
        match WriterLock::acquire(&archive, Path::new("/mnt/b")) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.mountpoint, Path::new("/mnt/a"));
            }
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        drop(lock);
        // A record left by a process that died (its flock went with it) is taken over.
        std::fs::write(
            lock_path(&archive),
            br#"{"host":"h","pid":1,"user":"u","since":0,"mountpoint":"/x"}"#,
        )
        .unwrap();
        let (_lock, stale) = WriterLock::acquire(&archive, Path::new("/mnt/c")).unwrap();
        assert_eq!(stale.map(|h| h.host), Some("h".to_string()));
    }
}
