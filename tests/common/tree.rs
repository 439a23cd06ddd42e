//! Walks two trees and lists every difference in type, permissions, owner, mtime, size, content or
//! symlink target.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    /// crc32 of the content (files) or the target (symlinks).
    pub digest: u32,
    pub target: Vec<u8>,
}

fn digest_file(p: &Path) -> u32 {
    let mut f = fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize()
}

/// Every node under `root` by relative path (bytes), root itself excluded.
pub fn scan(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.unwrap();
            let rel_child = rel.join(e.file_name());
            let path = root.join(&rel_child);
            let md = fs::symlink_metadata(&path).unwrap();
            let ft = md.file_type();
            let (kind, digest, target) = if ft.is_dir() {
                stack.push(rel_child.clone());
                ('d', 0, Vec::new())
            } else if ft.is_symlink() {
                let t = fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec();
                ('l', crc32fast::hash(&t), t)
            } else {
                ('f', digest_file(&path), Vec::new())
            };
            out.insert(
                rel_child.as_os_str().as_bytes().to_vec(),
                Node {
                    kind,
                    perm: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime: md.mtime(),
                    size: if kind == 'd' { 0 } else { md.size() },
                    digest,
                    target,
                },
            );
        }
    }
    out
}

/// What a comparison checks beyond names, types, sizes and content.
#[derive(Clone, Copy)]
pub struct Check {
    pub perm: bool,
    pub owner: bool,
    pub file_mtime: bool,
    pub dir_mtime: bool,
    pub symlink_mtime: bool,
}

impl Check {
    pub const ALL: Check = Check {
        perm: true,
        owner: true,
        file_mtime: true,
        dir_mtime: true,
        symlink_mtime: true,
    };
}

/// Differences between `expected` and `actual`, as readable lines (empty when equal).
pub fn diff(expected: &Path, actual: &Path, check: Check) -> Vec<String> {
    let a = scan(expected);
    let b = scan(actual);
    let mut out = Vec::new();
    for (name, x) in &a {
        let shown = String::from_utf8_lossy(name);
        let Some(y) = b.get(name) else {
            out.push(format!("missing: {shown}"));
            continue;
        };
        let mut d = Vec::new();
        if x.kind != y.kind {
            d.push(format!("type {} vs {}", x.kind, y.kind));
        }
        if x.size != y.size {
            d.push(format!("size {} vs {}", x.size, y.size));
        }
        if x.digest != y.digest {
            d.push(format!(
                "content differs ({:?} vs {:?})",
                String::from_utf8_lossy(&x.target),
                String::from_utf8_lossy(&y.target)
            ));
        }
        if check.perm && x.kind != 'l' && x.perm != y.perm {
            d.push(format!("mode {:o} vs {:o}", x.perm, y.perm));
        }
        if check.owner && (x.uid, x.gid) != (y.uid, y.gid) {
            d.push(format!("owner {}:{} vs {}:{}", x.uid, x.gid, y.uid, y.gid));
        }
        let mtime_checked = match x.kind {
            'd' => check.dir_mtime,
            'l' => check.symlink_mtime,
            _ => check.file_mtime,
        };
        if mtime_checked && x.mtime != y.mtime {
            d.push(format!("mtime {} vs {}", x.mtime, y.mtime));
        }
        if !d.is_empty() {
            out.push(format!("{shown}: {}", d.join(", ")));
        }
    }
    for name in b.keys().filter(|n| !a.contains_key(*n)) {
        out.push(format!("unexpected: {}", String::from_utf8_lossy(name)));
    }
    out
}

pub fn assert_same(expected: &Path, actual: &Path, check: Check) {
    let d = diff(expected, actual, check);
    assert!(
        d.is_empty(),
        "{} differs from {} in {} places:\n{}",
        actual.display(),
        expected.display(),
        d.len(),
        d.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}
