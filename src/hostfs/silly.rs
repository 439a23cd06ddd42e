//! Files removed while open: an NFS client keeps such a file as `.nfsXXXX`, FUSE (sshfs) as
//! `.fuse_hiddenXXXX`, in the same directory, until its last close; then it goes by itself.

/// Whether `name` is what a network filesystem's client calls a file that was unlinked while it
/// was open on this node (NFS `.nfsXXXX`, FUSE `.fuse_hiddenXXXX`): it goes by itself when closed,
/// and unlinking it fails (EBUSY), so cleanups leave it alone.
pub fn is_silly_renamed(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.starts_with(b".nfs") || b.starts_with(b".fuse_hidden")
}

/// Removes the empty directory `name` of `parent`. A file unlinked while it was open stays as a
/// silly-renamed name until its last close reaches the server (FUSE sends that asynchronously, so
/// shortly after the close(2)): while nothing else is left in the directory, this waits for such
/// names to go, up to `patience`.
pub fn remove_dir_when_released(
    parent: &crate::private_dir::PrivateDir,
    name: &std::ffi::OsStr,
    patience: std::time::Duration,
) -> std::io::Result<()> {
    let until = std::time::Instant::now() + patience;
    loop {
        let err = match parent.remove_dir(name) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let waiting = matches!(err.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST))
            && std::time::Instant::now() < until
            && parent
                .open_subdir(name)
                .ok()
                .flatten()
                .and_then(|d| d.entries().ok())
                .is_some_and(|e| e.iter().all(|n| is_silly_renamed(n)));
        if !waiting {
            return Err(err);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
