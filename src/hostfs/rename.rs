//! Giving a file a name that must not exist yet, on any filesystem. Local filesystems do it in one
//! call, `renameat2(RENAME_NOREPLACE)`; the NFS, CephFS and Lustre clients, sshfs and most FUSE
//! filesystems answer any renameat2 flag with EINVAL. `link` fails with EEXIST when the name
//! exists, atomically on the server, so link + unlink keeps the guarantee there; where hard links
//! are refused too, an exclusive create claims the name first and a plain rename replaces only that.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;

/// Renames `from` to `to` unless `to` exists (EEXIST then; `from` is left as it was).
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2_noreplace(from, to) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => link_then_unlink(from, to),
        Err(e) => Err(e.into()),
    }
}

/// The system call itself: glibc has a `renameat2` wrapper only since 2.28, and the binary we ship
/// runs on glibc 2.17 (tests/packaging.sh checks the symbols it needs).
pub(super) fn renameat2_noreplace(from: &Path, to: &Path) -> nix::Result<()> {
    use nix::NixPath;
    from.with_nix_path(|from| {
        to.with_nix_path(|to| {
            // SAFETY: both are NUL-terminated paths that outlive the call; the flags are known.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    libc::RENAME_NOREPLACE,
                )
            };
            Errno::result(r).map(drop)
        })
    })??
}

/// Errors of `link` that mean "no such hard links here" rather than "cannot do this now" (a full
/// disk, a quota).
pub fn no_hard_links(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EXDEV | libc::EMLINK)
    )
}

/// Whether `a` and `b` are one file (by device and inode, which NFS keeps stable).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

pub(super) fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    if let Err(e) = std::fs::hard_link(from, to) {
        // NFS over an unreliable transport may retransmit a LINK that succeeded and then answer
        // EEXIST: what tells is whether `to` is now `from` (open(2)'s advice for lock files).
        if !same_file(from, to) {
            return if no_hard_links(&e) {
                claim_then_rename(from, to)
            } else {
                Err(e)
            };
        }
    }
    std::fs::remove_file(from)
}

/// Without hard links: `to` is claimed by an exclusive create (which fails if it exists), then
/// replaced by the rename. A crash in between leaves an empty `to`, never another's file replaced.
pub(super) fn claim_then_rename(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    std::fs::rename(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of renaming without replacing keeps both files when the target exists, and moves
    /// the file when it does not (the fallbacks are run directly: this disk has renameat2).
    #[test]
    fn no_way_of_renaming_replaces_an_existing_file() {
        type Way = fn(&Path, &Path) -> io::Result<()>;
        let ways: [(&str, Way); 3] = [
            ("renameat2", rename_noreplace),
            ("link + unlink", link_then_unlink),
            ("claim + rename", claim_then_rename),
        ];
        for (name, way) in ways {
            let dir = tempfile::tempdir().unwrap();
            let (from, to) = (dir.path().join("new"), dir.path().join("env.zip"));
            std::fs::write(&from, b"mine").unwrap();
            std::fs::write(&to, b"theirs").unwrap();
            let err = way(&from, &to).expect_err(name);
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{name}");
            assert_eq!(std::fs::read(&to).unwrap(), b"theirs", "{name}");
            assert_eq!(std::fs::read(&from).unwrap(), b"mine", "{name}");

            std::fs::remove_file(&to).unwrap();
            way(&from, &to).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(std::fs::read(&to).unwrap(), b"mine", "{name}");
            assert!(!from.exists(), "{name}");
        }
    }

    #[test]
    fn a_link_that_already_happened_counts_as_done() {
        // What a retransmitted NFS LINK looks like: EEXIST, and the name is already ours.
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("new"), dir.path().join("env.zip"));
        std::fs::write(&from, b"mine").unwrap();
        std::fs::hard_link(&from, &to).unwrap();
        link_then_unlink(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"mine");
        assert!(!from.exists());
    }
}
