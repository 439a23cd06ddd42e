//! How errors reach the user: one `conda-fuse: error:` line (what failed, where, and why, the
//! cause chain joined by ": ") and at most one `conda-fuse: hint:` line, what to do. The hint
//! comes from the outermost layer that has one: a `Hinted` attached here in the CLI, or the
//! `Hint` of a library error.

use std::error::Error;
use std::fmt;

use crate::hint::{self, Hint, RemoteError};

/// An error with what to do about it, attached by the CLI layer that knows. Shows as the error it
/// wraps; its hint replaces any the wrapped error has.
#[derive(Debug)]
pub struct Hinted {
    error: anyhow::Error,
    hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl Error for Hinted {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

pub trait WithHint<T> {
    /// Attaches what the user can do about this error.
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
    fn with_hint(self, hint: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> WithHint<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| hinted(e, hint))
    }
    fn with_hint(self, hint: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| hinted(e, hint()))
    }
}

/// `error` with `hint` attached.
pub fn hinted(error: impl Into<anyhow::Error>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        error: error.into(),
        hint: hint.into(),
    })
}

/// An error made here, with what to do about it.
pub fn error_with_hint(message: impl fmt::Display, hint: impl Into<String>) -> anyhow::Error {
    hinted(anyhow::anyhow!("{message}"), hint)
}

/// The hint of one link of a chain. Every library error type that has hints is listed here; a
/// wrapper type asks what it wraps, so only the types that reach the CLI need to be.
fn hint_of(link: &(dyn Error + 'static)) -> Option<String> {
    macro_rules! first_hint {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = link.downcast_ref::<$t>() {
                return e.hint();
            })*
        };
    }
    if let Some(h) = link.downcast_ref::<Hinted>() {
        return Some(h.hint.clone());
    }
    first_hint!(
        RemoteError,
        crate::archive::ArchiveError,
        crate::archive::BuildError,
        crate::archive::pack::PlanError,
        crate::commit::SaveError,
        crate::conda::CondaError,
        crate::conda::relocate::RelocateError,
        crate::daemon::DaemonError,
        crate::daemon::mountpoint::MountPointError,
        crate::envs::EnvError,
        crate::envs::create::CreateError,
        crate::envs::remove::RemoveError,
        crate::envs::remove::RmRefused,
        crate::envs::rename::RenameError,
        crate::daemon::runs::RunsError,
        crate::envs::session::SessionError,
        crate::envs::history::HistoryError,
        crate::envs::kernels::InstallError,
        crate::overlay::OverlayError,
        crate::overlay::OpError,
        crate::overlay::lock::LockError,
        crate::overlay::lock::LockLost,
        crate::overlay::journal::JournalError,
        crate::overlay::upper::UpperError,
        crate::private_dir::PrivateDirError,
        crate::settings::SettingsError,
    );
    None
}

/// The lines the user sees for `error`, without a trailing newline.
pub fn render(error: &anyhow::Error) -> String {
    let root: &(dyn Error + 'static) = error.as_ref();
    let mut text = format!("conda-fuse: error: {}", hint::messages(root).join(": "));
    let mut link = Some(root);
    while let Some(e) = link {
        if let Some(h) = hint_of(e) {
            text.push_str("\nconda-fuse: hint: ");
            text.push_str(&h);
            break;
        }
        link = e.source();
    }
    text
}

/// The summary line of a save that changed the archive (None when nothing changed).
pub fn saved_line(what: &str, s: &crate::daemon::control::SaveSummary) -> Option<String> {
    if !s.changed {
        return None;
    }
    let holes = if s.holes > 0 {
        format!(", {} of holes not read", super::progress::bytes(s.holes))
    } else {
        String::new()
    };
    Some(format!(
        "{what}: {} entries, {} of data{holes}, archive {} ({:.1}s)",
        s.entries,
        super::progress::bytes(s.bytes_in),
        super::progress::bytes(s.bytes_out),
        s.seconds
    ))
}
