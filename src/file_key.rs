//! Short, stable file names for things named by a path (a mount point's record, socket and log;
//! an archive's upper layer): the path's last component, reduced to characters safe in any file
//! name, plus 16 hex digits of a SHA-256 over what must tell two of them apart. Readable in a
//! listing, unique without a registry, and short enough for a Unix socket path (108 bytes).
//! These names are on disk: changing how they are made orphans existing state.

use std::path::Path;

use sha2::{Digest, Sha256};

/// `path`'s last component, at most `max` safe characters, `-`, and the hash of `parts`
/// concatenated.
pub fn file_key(path: &Path, max: usize, parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    let hex: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hex}", readable(path, max))
}

/// `path`'s last component, at most `max` characters safe in any file name.
pub fn readable(path: &Path, max: usize) -> String {
    path.file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .take(max)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: these names exist on users' disks.
    #[test]
    fn names_stay_what_they_were() {
        assert_eq!(
            file_key(Path::new("/h/envs/ml.zip"), 40, &[b"/h/envs/ml.zip"]),
            format!("ml.zip-{}", &sha256_hex(b"/h/envs/ml.zip")[..16])
        );
        assert_eq!(
            file_key(Path::new("/m/my env$"), 24, &[b"a", b"\0", b"b", b"\0"]),
            format!("myenv-{}", &sha256_hex(b"a\0b\0")[..16])
        );
        assert_eq!(
            file_key(Path::new("/m/x"), 24, &[b"p"]),
            "x-148de9c5a7a44d19"
        );
        let long = format!("/m/{}", "n".repeat(60));
        assert_eq!(
            file_key(Path::new(&long), 24, &[]).len(),
            24 + 1 + 16,
            "the readable part is cut"
        );
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
