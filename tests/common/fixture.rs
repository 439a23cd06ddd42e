//! Fixture trees holding what conda environments hold, and the awkward cases around them.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

/// Deterministic pseudo-random bytes (xorshift), incompressible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32, gid: u32) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Sets the mtime of `p` (not following symlinks).
pub fn set_mtime(p: &Path, secs: i64) {
    let t = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// A tree like a small environment: files of every size class and compressibility, empty and
/// crowded directories, symlinks of every kind, special permission bits, foreign owners, old and
/// new mtimes, long and non-UTF-8 names, and a hard link.
pub fn environment_like(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("lib/python3.11/site-packages/pkg/__pycache__")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::create_dir_all(root.join("conda-meta")).unwrap();
    fs::write(root.join("conda-meta/history"), b"").unwrap();
    fs::write(root.join("empty-file"), b"").unwrap();
    let script = b"#!/usr/bin/env python3\nimport sys\nprint(sys.argv)\n";
    fs::write(root.join("bin/tool"), script).unwrap();
    chmod(&root.join("bin/tool"), 0o755);
    let pkg = root.join("lib/python3.11/site-packages/pkg");
    fs::write(pkg.join("__init__.py"), b"VALUE = 42\n".repeat(50)).unwrap();
    fs::write(
        pkg.join("__pycache__/__init__.cpython-311.pyc"),
        noise(700, 7),
    )
    .unwrap();
    // Compressible and incompressible, below and above the 1 MiB whole-decode threshold and the
    // 8 MiB in-memory compression threshold.
    fs::write(
        pkg.join("text.json"),
        b"{\"key\": [1, 2, 3]}\n".repeat(200_000),
    )
    .unwrap();
    fs::write(pkg.join("lib.so"), noise(3 << 20, 11)).unwrap();
    fs::write(pkg.join("big.so"), noise(9 << 20, 13)).unwrap();
    let mut mixed = noise(5 << 20, 17);
    mixed.extend(b"padding ".repeat(1 << 20));
    fs::write(pkg.join("mixed.a"), mixed).unwrap();
    // A sparse file: a hole with data at both ends.
    let sparse = fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    sparse.write_all_at(b"head", 0).unwrap();
    sparse.write_all_at(b"tail", (64 << 20) - 4).unwrap();
    // Symlinks: relative, absolute, dangling, to a directory.
    symlink("tool", root.join("bin/tool-link")).unwrap();
    symlink("/usr/bin/env", root.join("bin/abs-link")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink("lib/python3.11", root.join("pylib")).unwrap();
    // Permission bits.
    fs::write(root.join("bin/suid"), b"x").unwrap();
    chmod(&root.join("bin/suid"), 0o4755);
    fs::write(root.join("bin/sgid"), b"y").unwrap();
    chmod(&root.join("bin/sgid"), 0o2711);
    fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    fs::write(root.join("readonly.txt"), b"do not edit\n").unwrap();
    chmod(&root.join("readonly.txt"), 0o444);
    fs::create_dir(root.join("private")).unwrap();
    fs::write(root.join("private/secret"), b"s").unwrap();
    chmod(&root.join("private/secret"), 0o600);
    chmod(&root.join("private"), 0o700);
    // Names: long, non-UTF-8, with spaces and shell metacharacters.
    let long = "n".repeat(255);
    fs::write(root.join(&long), b"long name").unwrap();
    let mut deep = root.to_path_buf();
    for i in 0..20 {
        deep.push(format!("{}{i}", "d".repeat(150)));
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("leaf"), b"deep").unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9")),
        b"non-utf8",
    )
    .unwrap();
    fs::write(root.join("caf\u{e9} \u{1F40D}.txt"), b"utf8").unwrap();
    fs::write(root.join("with space & $dollar;'quote'"), b"meta").unwrap();
    // A hard link (comes back as a separate file with the same content).
    fs::write(root.join("conda-meta/linked"), b"shared content").unwrap();
    fs::hard_link(
        root.join("conda-meta/linked"),
        root.join("conda-meta/linked2"),
    )
    .unwrap();
    // A crowded directory.
    let crowd = root.join("crowd");
    fs::create_dir(&crowd).unwrap();
    for i in 0..20_000 {
        fs::write(crowd.join(format!("f{i:05}")), i.to_string()).unwrap();
    }
    // Owners other than the test's user (the tests run as root, as CI does).
    if nix::unistd::geteuid().is_root() {
        chown(&root.join("bin/tool"), 1234, 5678);
        chown(&root.join("bin/tool-link"), 4321, 8765);
        chown(&root.join("empty-dir"), 1000, 1000);
    }
    // Mtimes last (creating entries changes directory mtimes): old, recent, per node.
    set_mtime(&root.join("readonly.txt"), 400_000_000);
    set_mtime(&root.join("bin/tool-link"), 1_000_000_000);
    set_mtime(&root.join("dangling"), 1_100_000_000);
    set_mtime(&root.join("empty-dir"), 1_200_000_000);
    set_mtime(&root.join("bin"), 1_300_000_000);
}
