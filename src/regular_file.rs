//! Opening a file another user may have planted (a lab's shared archive directory, a kernelspec
//! directory). A FIFO there blocks open(2) until someone writes to it, so `env-list`, `doctor` or
//! `kernel list` would hang for ever; a device could do worse. Such files are opened with
//! O_NONBLOCK (which returns at once for a FIFO, and changes nothing for a regular file) and
//! refused unless they are regular files.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The regular file at `path`, opened for reading (symlinks are followed: archives may be links).
pub fn open(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// The text of the regular file at `path`.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    io::Read::read_to_string(&mut open(path)?, &mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_directory_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("env.zip");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = open(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(open(dir.path()).is_err());
        std::fs::write(dir.path().join("kernel.json"), "{}").unwrap();
        assert_eq!(
            read_to_string(&dir.path().join("kernel.json")).unwrap(),
            "{}"
        );
    }
}
