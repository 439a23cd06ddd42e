//! Interoperability with the real tools: archives we write are read identically by Info-ZIP unzip,
//! Python's zipfile and fuse-zip; archives they write (including the old bash tool's, made by
//! fuse-zip with the environment under NAME/) mount identically with conda-fuse.

mod common;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use common::fixture;
use common::tree::{self, Check};
use common::{World, run};

/// A tree without the cases that only conda-fuse's own pipeline is required to keep (it keeps them,
/// see roundtrip.rs), sized so that the external tools run quickly. Its script names the tree's
/// prefix, so `pack` records it ("CP", a field the other tools must skip).
fn portable_tree(root: &Path) {
    fixture::environment_like(root);
    fs::remove_dir_all(root.join("crowd")).unwrap();
    let script = root.join("bin/cf-tool");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    fs::write(
        &script,
        format!("#!{}/bin/python3\nprint(1)\n", root.display()),
    )
    .unwrap();
}

fn remove_non_utf8_names(root: &Path) {
    fs::remove_file(root.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9"))).unwrap();
}

#[test]
fn unzip_extracts_our_archives_identically() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    portable_tree(&src);
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let info = Command::new("zipinfo")
        .arg("-v")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("0x5043"),
        "the archive records a prefix (\"CP\")"
    );
    let out = w.path("out");
    fs::create_dir(&out).unwrap();
    // -X restores owners, -K the setuid/setgid/sticky bits (unzip drops them without it).
    run(Command::new("unzip")
        .arg("-q")
        .arg("-X")
        .arg("-K")
        .arg(&archive)
        .arg("-d")
        .arg(&out));
    // unzip does not set the mtime of symlinks themselves.
    tree::assert_same(
        &src,
        &out,
        Check {
            symlink_mtime: false,
            ..Check::ALL
        },
    );
}

#[test]
fn python_zipfile_reads_our_archives() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(src.join("pkg/sub")).unwrap();
    fs::write(src.join("pkg/a.py"), b"print('a')\n".repeat(100)).unwrap();
    fs::write(src.join("pkg/sub/b.bin"), fixture::noise(100_000, 5)).unwrap();
    std::os::unix::fs::symlink("a.py", src.join("pkg/link")).unwrap();
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let script = r#"
import zipfile, sys, os, stat, zlib
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
for i in z.infolist():
    mode = i.external_attr >> 16
    data = z.read(i)
    kind = 'd' if stat.S_ISDIR(mode) else 'l' if stat.S_ISLNK(mode) else 'f'
    print(i.filename, kind, oct(mode & 0o7777), zlib.crc32(data) if kind != 'l' else data.decode())
"#;
    let out = run(Command::new("python3").arg("-c").arg(script).arg(&archive));
    let listing = String::from_utf8_lossy(&out.stdout);
    let expect = |line: &str| {
        assert!(
            listing.lines().any(|l| l == line),
            "missing '{line}' in:\n{listing}"
        )
    };
    let crc = |p: &str| crc32fast::hash(&fs::read(src.join(p)).unwrap());
    expect("pkg/ d 0o755 0");
    expect(&format!("pkg/a.py f 0o644 {}", crc("pkg/a.py")));
    expect(&format!("pkg/sub/b.bin f 0o644 {}", crc("pkg/sub/b.bin")));
    expect("pkg/link l 0o777 a.py");
}

#[test]
fn fuse_zip_mounts_our_archives_identically() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    portable_tree(&src);
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let m = common::fuse_zip(&archive, &w.path("fz"), false);
    tree::assert_same(&src, &m.point, Check::ALL);
}

#[test]
fn info_zip_archives_mount_identically() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    portable_tree(&src);
    let archive = w.path("infozip.zip");
    run(Command::new("zip")
        .arg("-q")
        .arg("-r")
        .arg("-y")
        .arg(&archive)
        .arg(".")
        .current_dir(&src));
    let m = w.mount_ro(&archive, "mnt");
    tree::assert_same(&src, &m.point, Check::ALL);
}

#[test]
fn python_zipfile_archives_mount_with_sensible_defaults() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    portable_tree(&src);
    // zipfile cannot write names that are not valid UTF-8.
    remove_non_utf8_names(&src);
    let archive = w.path("py.zip");
    // ZipFile.write() of every file records Unix modes (but DOS times, two-second steps) and no owner.
    let script = r#"
import zipfile, sys, os
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            if os.path.islink(p):
                info = zipfile.ZipInfo(os.path.relpath(p, root))
                info.create_system = 3
                info.external_attr = (0o120777 << 16)
                z.writestr(info, os.readlink(p))
            else:
                z.write(p, os.path.relpath(p, root))
    # Entries without any Unix metadata, as written on Windows: defaults apply.
    bare = zipfile.ZipInfo('windows/readme.txt', (2020, 1, 2, 3, 4, 6))
    bare.create_system = 0
    z.writestr(bare, 'hello')
"#;
    run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&src)
        .arg(&archive));
    let m = w.mount_ro(&archive, "mnt");
    let mut d = tree::diff(
        &src,
        &m.point,
        Check {
            owner: false,
            file_mtime: false,
            dir_mtime: false,
            symlink_mtime: false,
            ..Check::ALL
        },
    );
    d.retain(|l| !l.starts_with("unexpected: windows"));
    assert!(d.is_empty(), "{d:#?}");
    use std::os::unix::fs::MetadataExt;
    // DOS times: within the two-second step of the source mtime.
    let (a, b) = (
        fs::metadata(src.join("readonly.txt")).unwrap(),
        fs::metadata(m.path("readonly.txt")).unwrap(),
    );
    assert!(
        (a.mtime() - b.mtime()).abs() <= 2,
        "{} vs {}",
        a.mtime(),
        b.mtime()
    );
    let readme = fs::metadata(m.path("windows/readme.txt")).unwrap();
    assert_eq!(readme.mode() & 0o7777, 0o644);
    assert_eq!(readme.uid(), nix::unistd::getuid().as_raw());
    let dir = fs::metadata(m.path("windows")).unwrap();
    assert!(dir.is_dir());
    assert_eq!(dir.mode() & 0o7777, 0o755);
    assert_eq!(fs::read(m.path("windows/readme.txt")).unwrap(), b"hello");
}

#[test]
fn archives_of_the_old_bash_tool_mount_identically() {
    if common::skip_without_mounts() {
        return;
    }
    // The old tool mounted NAME.zip with fuse-zip and ran `conda create --prefix MOUNT/NAME`, so
    // the environment sits under NAME/ inside the archive.
    let w = World::new();
    let src = w.path("src");
    portable_tree(&src);
    // fuse-zip cannot make hard links (conda falls back to copies there), nor save names that are
    // not valid UTF-8 (libzip refuses them, and the whole archive is lost at unmount).
    remove_non_utf8_names(&src);
    fs::remove_file(src.join("conda-meta/linked2")).unwrap();
    fs::copy(
        src.join("conda-meta/linked"),
        src.join("conda-meta/linked2"),
    )
    .unwrap();
    let archive = w.path("oldenv.zip");
    let fz = common::fuse_zip(&archive, &w.path("fz"), true);
    run(Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(fz.point.join("oldenv")));
    common::fuse_zip_unmount(fz);
    assert!(
        archive.exists(),
        "fuse-zip did not write {}",
        archive.display()
    );
    let m = w.mount_ro(&archive, "mnt");
    tree::assert_same(&src, &m.path("oldenv"), Check::ALL);
}
