//! What the user can do about an error, kept apart from what failed (uv's `Hint` pattern): an error
//! type's message says what failed and where; its `Hint` says what to do, once, and `cli::report`
//! prints it on its own `hint:` line. `RemoteError` carries an error with its cause chain and hint
//! across a process boundary (the daemon's control socket and its start-up report).

use std::error::Error;
use std::fmt;

use serde::{Deserialize, Serialize};

pub trait Hint {
    /// What to do about this error, if this layer knows; a wrapper asks what it wraps.
    fn hint(&self) -> Option<String>;
}

/// An error received from another process: its message, its cause chain, its hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    pub message: String,
    #[serde(default)]
    pub cause: Option<Box<RemoteError>>,
    #[serde(default)]
    pub hint: Option<String>,
}

impl RemoteError {
    /// `error` and its sources as they would be shown here, with `hint`.
    pub fn new(error: &(dyn Error + 'static), hint: Option<String>) -> RemoteError {
        let messages = messages(error);
        let cause = messages.iter().skip(1).rev().fold(None, |cause, m| {
            Some(Box::new(RemoteError {
                message: m.clone(),
                cause,
                hint: None,
            }))
        });
        RemoteError {
            message: messages.into_iter().next().unwrap_or_default(),
            cause,
            hint,
        }
    }

    /// This error as the cause of `message` (same hint).
    pub fn within(self, message: impl Into<String>) -> RemoteError {
        RemoteError {
            message: message.into(),
            hint: self.hint.clone(),
            cause: Some(Box::new(self)),
        }
    }

    pub fn plain(message: impl Into<String>) -> RemoteError {
        RemoteError {
            message: message.into(),
            cause: None,
            hint: None,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for RemoteError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
    }
}

impl Hint for RemoteError {
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// The messages of `error` and its sources, leaving out a source whose message its wrapper already
/// ends with (thiserror messages often say "what: {source}" and also name it as their source).
pub fn messages(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut link = Some(error);
    while let Some(e) = link {
        let message = e.to_string();
        if !message.is_empty() && !out.last().is_some_and(|prev| prev.ends_with(&message)) {
            out.push(message);
        }
        link = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_error_keeps_its_chain_and_hint_through_json() {
        let io = std::io::Error::other("disk full");
        let outer = crate::private_dir::PrivateDirError::Io {
            what: "write",
            path: "/x".into(),
            source: io,
        };
        let remote = RemoteError::new(&outer, Some("free space".into()));
        let back: RemoteError =
            serde_json::from_str(&serde_json::to_string(&remote).unwrap()).unwrap();
        assert_eq!(back, remote);
        assert_eq!(
            messages(&back),
            vec!["cannot write /x: disk full".to_string()]
        );
        assert_eq!(back.hint().as_deref(), Some("free space"));
    }
}
