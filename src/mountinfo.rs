//! The mount table as /proc/self/mountinfo gives it: mount point, filesystem type, source and
//! superblock options of every mount this process sees. A leaf module: the daemon layer asks what
//! is mounted where, and `node` asks which filesystem holds a path.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub point: PathBuf,
    pub fstype: String,
    pub source: String,
    /// The superblock options (for FUSE: `user_id=`, the user who mounted it).
    pub options: String,
}

/// Undoes the octal escapes (`\040` for space) of mountinfo fields.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

pub fn mounts() -> Vec<MountInfo> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = r.next().unwrap_or("").to_string();
            let options = r.next().unwrap_or("").to_string();
            Some(MountInfo {
                point: unescape(point),
                fstype,
                source,
                options,
            })
        })
        .collect()
}

/// The deepest mount containing `path` (which should be canonical).
pub fn containing(path: &Path) -> Option<MountInfo> {
    mounts()
        .into_iter()
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.as_os_str().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape("/end\\04"), PathBuf::from("/end\\04"));
    }

    #[test]
    fn the_deepest_mount_holds_a_path() {
        let root = containing(Path::new("/")).expect("/ is mounted");
        assert_eq!(root.point, Path::new("/"));
        let proc_self = containing(Path::new("/proc/self")).expect("/proc is mounted");
        assert_eq!(proc_self.point, Path::new("/proc"));
    }
}
