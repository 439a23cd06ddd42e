//! Why a filesystem request failed, kept as data until the one place that answers the kernel
//! (`fs::fuse`), which logs every failure that is not simply the answer, with the operation and
//! the node (mountpoint-s3's `fuse_error!`). Answers (ENOENT, EEXIST, EROFS, ...) are expected
//! and stay quiet; a damaged archive entry or a failing upper disk is a fault the user should
//! find in the daemon log, whether a read or a copy-up ran into it.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::archive::EntryError;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The request's answer: expected, not logged.
    #[error("{0}")]
    Answer(Errno),
    /// An entry of the archive could not be read (damaged, unsupported, or an I/O error). Counted
    /// as a read error in `status`.
    #[error("cannot read {name} (entry {entry}) of {archive}: {cause}")]
    Entry {
        archive: PathBuf,
        entry: u32,
        /// The entry's name in the archive, escaped for a log line.
        name: String,
        cause: EntryError,
    },
    /// The upper layer's storage failed: a full disk or quota, an I/O error.
    #[error("cannot {what} in the upper layer: {cause}")]
    Upper {
        what: &'static str,
        cause: io::Error,
    },
}

impl OpError {
    /// What the kernel is answered with.
    pub fn errno(&self) -> Errno {
        match self {
            OpError::Answer(e) => *e,
            OpError::Entry { cause, .. } => Errno::from_raw(cause.errno()),
            OpError::Upper { cause, .. } => {
                Errno::from_raw(cause.raw_os_error().unwrap_or(libc::EIO))
            }
        }
    }

    /// Whether this is a fault worth a log line, not just the answer to the request.
    pub fn is_fault(&self) -> bool {
        !matches!(self, OpError::Answer(_))
    }

    /// A `map_err` for an upper-layer operation described by `what` ("create a file").
    pub fn upper(what: &'static str) -> impl FnOnce(io::Error) -> OpError {
        move |cause| OpError::Upper { what, cause }
    }
}

impl crate::hint::Hint for OpError {
    fn hint(&self) -> Option<String> {
        match self {
            OpError::Upper { cause, .. }
                if matches!(cause.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) =>
            {
                Some(
                    "free space (or quota) where the state directory is \
                     (CONDA_FUSE_STATE_DIR), then try again"
                        .into(),
                )
            }
            OpError::Entry { archive, .. } => Some(format!(
                "{} is damaged; restore it from a snapshot (conda-fuse history) or a backup",
                archive.display()
            )),
            _ => None,
        }
    }
}

impl From<Errno> for OpError {
    fn from(e: Errno) -> OpError {
        OpError::Answer(e)
    }
}
