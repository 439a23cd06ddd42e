//! Showing untrusted bytes (entry names from archives, file names, process names) to people: a
//! name may hold terminal control sequences that would rewrite the user's screen, so control
//! characters and invalid UTF-8 are escaped, never printed raw.

use std::fmt::Write;

/// `bytes` as printable text: valid UTF-8 stays as it is, except control characters (C0, DEL, C1)
/// and backslashes, which become `\xNN` / `\u{NN}` / `\\`; invalid bytes become `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if (0x80..0xa0).contains(&(c as u32)) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A path as printable text (see `escape`).
pub fn path(p: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    escape(p.as_os_str().as_bytes())
}

/// "user NAME (uid N)", for messages that name another user.
pub fn user(uid: u32) -> String {
    let name = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| "?".to_string(), |u| u.name);
    format!("user {name} (uid {uid})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(escape(b"plain/name.py"), "plain/name.py");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escape(b"\x1b[2Jevil\x07"), "\\x1b[2Jevil\\x07");
        assert_eq!(escape(b"a\nb\rc\x7f"), "a\\x0ab\\x0dc\\x7f");
        assert_eq!(escape("\u{9b}31m".as_bytes()), "\\u{9b}31m");
        assert_eq!(escape(b"latin1-\xe9"), "latin1-\\xe9");
        assert_eq!(escape(b"back\\slash"), "back\\\\slash");
    }
}
