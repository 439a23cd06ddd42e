//! Seeing what another node did. A network filesystem's client answers from its caches: a size,
//! or "no such name", may be what it saw before another node changed the file. Where that would
//! mislead conda-fuse, the server is asked.

/// The length of `file` as its filesystem's server knows it now. A client of a network filesystem
/// may answer stat(2) from its cache, and after another node replaced the file by rename that
/// cache can hold the old file's size (sshfs for 20 s; NFS until its attribute cache expires):
/// reading an archive's end record at the old size finds none. `statx` with
/// `AT_STATX_FORCE_SYNC` asks the server; where the kernel lacks statx, the cached answer is used.
pub fn fresh_len(file: &std::fs::File) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statx is a valid value for the kernel to fill.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor, an empty NUL-terminated path with AT_EMPTY_PATH, and a pointer
    // to a statx the kernel may write. Called through syscall(2): older C libraries have no
    // wrapper.
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_FORCE_SYNC,
            libc::STATX_SIZE,
            &mut st as *mut libc::statx,
        )
    };
    if r == 0 && st.stx_mask & libc::STATX_SIZE != 0 {
        return Ok(st.stx_size);
    }
    Ok(file.metadata()?.len())
}

/// Creates `path` exclusively with `options` (which this sets to create a new file). Where the
/// name exists, this is AlreadyExists, as on a local disk: an SFTP server (sshfs) answers an
/// exclusive create of an existing file with a generic failure (EPERM), which a client sends when
/// its cache still says the name is free (another node made it meanwhile); the directory listing,
/// which no client caches, then tells.
pub fn create_new(
    options: &mut std::fs::OpenOptions,
    path: &std::path::Path,
) -> std::io::Result<std::fs::File> {
    let err = match options.create_new(true).open(path) {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    if err.kind() == std::io::ErrorKind::AlreadyExists
        || !matches!(
            err.raw_os_error(),
            Some(libc::EPERM | libc::EACCES | libc::EIO)
        )
    {
        return Err(err);
    }
    let listed = path
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .is_some_and(|entries| {
            entries
                .flatten()
                .any(|e| Some(e.file_name().as_os_str()) == path.file_name())
        });
    if listed {
        Err(std::io::Error::from_raw_os_error(libc::EEXIST))
    } else {
        Err(err)
    }
}
