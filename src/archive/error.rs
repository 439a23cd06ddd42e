//! What goes wrong reading an archive: as a whole (`ArchiveError`: cannot be used at all) or one
//! entry (`EntryError`: corrupt or unreadable data, mapped to an errno for the kernel).

use std::io;
use std::path::PathBuf;

use super::format::FormatError;

/// Why an archive as a whole cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read archive {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a zip archive ({reason})")]
    NotZip { path: PathBuf, reason: FormatError },
    #[error("{path}: central directory is damaged at entry {entry} ({reason})")]
    Corrupt {
        path: PathBuf,
        entry: u64,
        reason: FormatError,
    },
}

impl crate::hint::Hint for ArchiveError {
    fn hint(&self) -> Option<String> {
        match self {
            ArchiveError::Io { .. } => None,
            ArchiveError::NotZip { .. } => Some(
                "check the path, or restore the archive from a backup if it was truncated".into(),
            ),
            ArchiveError::Corrupt { .. } => Some(
                "the archive is corrupt: restore it from a backup or pack the environment again"
                    .into(),
            ),
        }
    }
}

/// Why one entry's data cannot be read. The daemon answers EIO for that read and keeps serving.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntryError {
    #[error("I/O error: {0}")]
    Io(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("compression method {0} is not supported (conda-fuse reads stored, deflate and zstd)")]
    UnsupportedMethod(u16),
    #[error("entry is encrypted; conda-fuse does not read encrypted entries")]
    Encrypted,
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                EntryError::Corrupt(e.to_string())
            }
            _ => EntryError::Io(e.to_string()),
        }
    }
}

impl EntryError {
    pub fn errno(&self) -> i32 {
        match self {
            EntryError::Io(_) | EntryError::Corrupt(_) => libc::EIO,
            EntryError::UnsupportedMethod(_) | EntryError::Encrypted => libc::EOPNOTSUPP,
        }
    }
}
