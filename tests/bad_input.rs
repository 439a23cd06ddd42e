//! Bad input gets a clear error and loses nothing: damaged or hostile archives, unusable mount
//! points, missing FUSE, dead daemons, busy mounts.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{World, run};
use conda_fuse::archive::Archive;

fn small_archive(w: &World) -> PathBuf {
    let src = w.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(
        src.join("d/text.txt"),
        b"some text that compresses well\n".repeat(4000),
    )
    .unwrap();
    fs::write(src.join("d/other.txt"), b"still readable\n".repeat(100)).unwrap();
    fs::write(src.join("big.txt"), b"0123456789abcdef".repeat(200_000)).unwrap();
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    archive
}

fn mount_args(archive: &Path, point: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "mount".into(),
        archive.into(),
        point.into(),
        "--read-only".into(),
    ]
}

fn fresh_dir(w: &World, name: &str) -> PathBuf {
    let p = w.path(name);
    fs::create_dir_all(&p).unwrap();
    p
}

/// Index of the entry named `name` and the byte range of its data.
fn entry_data(archive: &Path, name: &str) -> (u32, std::ops::Range<u64>) {
    let a = Archive::open(archive).unwrap();
    let i = (0..a.index().len() as u32)
        .find(|&i| a.index().name(a.index().entry(i)) == name.as_bytes())
        .unwrap();
    (i, a.data_range(i).unwrap())
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

#[test]
fn broken_archives_are_refused_with_a_clear_error() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let good = small_archive(&w);
    let bytes = fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.zip", Vec::new(), "too short"),
        (
            "text.zip",
            b"this is not a zip archive at all, just some text\n".repeat(3),
            "not a zip archive",
        ),
        (
            "truncated.zip",
            bytes[..bytes.len() * 6 / 10].to_vec(),
            "not a zip archive",
        ),
        (
            "torn-cd.zip",
            {
                let mut b = bytes.clone();
                // Damage the central directory: 120 bytes before the end record.
                let at = b.len() - 22 - 120;
                b[at..at + 8].copy_from_slice(b"GARBAGE!");
                b
            },
            "damaged",
        ),
    ];
    for (name, content, expect) in cases {
        let archive = w.path(name);
        fs::write(&archive, content).unwrap();
        let point = fresh_dir(&w, &format!("mnt-{name}"));
        let err = w.fails(mount_args(&archive, &point));
        assert!(
            err.contains(expect),
            "{name}: expected '{expect}' in: {err}"
        );
        assert!(
            err.contains(name),
            "{name}: the error must name the file: {err}"
        );
        assert!(
            !common::is_mounted(&point),
            "{name}: nothing may stay mounted"
        );
    }
    let err = w.fails(mount_args(
        &w.path("missing.zip"),
        &fresh_dir(&w, "mnt-missing"),
    ));
    assert!(
        err.contains("does not exist") && err.contains("missing.zip"),
        "{err}"
    );
}

/// `small_archive` with two damaged entries: `d/text.txt`'s data and `d/other.txt`'s local
/// header.
fn damaged_archive(w: &World) -> PathBuf {
    let archive = small_archive(w);
    let (_, range) = entry_data(&archive, "d/text.txt");
    patch(
        &archive,
        range.start + (range.end - range.start) / 2,
        b"\xde\xad\xbe\xef\x00\xff",
    );
    let (other, _) = entry_data(&archive, "d/other.txt");
    let a = Archive::open(&archive).unwrap();
    patch(
        &archive,
        a.index().entry(other).local_header_offset,
        b"XXXX",
    );
    archive
}

/// The mount's read error count, and its daemon log.
fn read_errors_and_log(w: &World, m: &common::Mount) -> (u64, String) {
    let status: serde_json::Value =
        serde_json::from_str(&w.ok(["status".as_ref(), m.point.as_os_str(), "--json".as_ref()]))
            .unwrap();
    let log = fs::read_to_string(
        fs::read_dir(w.state_dir().join("logs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    (status["read_errors"].as_u64().unwrap(), log)
}

#[test]
fn a_corrupt_entry_gives_eio_and_the_rest_stays_readable() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = damaged_archive(&w);
    let m = w.mount_ro(&archive, "mnt");
    for name in ["d/text.txt", "d/other.txt"] {
        let err = fs::read(m.path(name)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{name}: {err}");
    }
    // The daemon keeps serving everything else.
    assert_eq!(
        fs::read(m.path("big.txt")).unwrap(),
        b"0123456789abcdef".repeat(200_000)
    );
    let (errors, log) = read_errors_and_log(&w, &m);
    assert!(errors >= 2, "{errors} read errors");
    assert!(
        log.contains("cannot read d/text.txt") && log.contains("op=\"read\""),
        "{log}"
    );
}

/// Copying a damaged entry up (the first write to it) fails the same way a read does: EIO,
/// logged with the operation and the file, counted; nothing half-copied is left in its place.
#[test]
fn a_corrupt_entry_found_by_a_copy_up_is_logged_and_counted_as_on_read() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = damaged_archive(&w);
    let m = w.mount_with(&archive, "mnt", |_| {});
    for name in ["d/text.txt", "d/other.txt"] {
        let err = fs::OpenOptions::new()
            .append(true)
            .open(m.path(name))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"more"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{name}: {err}");
    }
    let (errors, log) = read_errors_and_log(&w, &m);
    assert!(errors >= 2, "{errors} read errors\n{log}");
    assert!(
        log.contains("cannot read d/text.txt") && log.contains("op=\"write\""),
        "{log}"
    );
    // The failed copy-ups changed nothing: the files still fail to read as damaged, and an
    // intact file is still writable.
    assert_eq!(
        fs::read(m.path("d/text.txt")).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    fs::write(m.path("big.txt"), b"new").unwrap();
    assert_eq!(fs::read(m.path("big.txt")).unwrap(), b"new");
}

#[test]
fn a_corrupt_segment_fails_alone() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    // big.txt (3.2 MB) is stored in independently readable 1 MiB segments; damage the third.
    let a = Archive::open(&archive).unwrap();
    let (i, range) = entry_data(&archive, "big.txt");
    let table = a
        .index()
        .entry(i)
        .seek
        .clone()
        .expect("a large entry has a seek table");
    assert_eq!(table.segments.len(), 4, "{table:?}");
    patch(
        &archive,
        range.start + table.segments[2].0 + 100,
        b"\x00\xff\x00\xff\x12\x34",
    );
    drop(a);
    let m = w.mount_ro(&archive, "mnt");
    let expected = b"0123456789abcdef".repeat(200_000);
    let f = fs::File::open(m.path("big.txt")).unwrap();
    use std::os::unix::fs::FileExt;
    let mut head = vec![0u8; 2 << 20];
    f.read_exact_at(&mut head, 0).unwrap();
    assert!(head == expected[..2 << 20]);
    let mut tail = vec![0u8; expected.len() - (3 << 20)];
    f.read_exact_at(&mut tail, 3 << 20).unwrap();
    assert!(tail == expected[3 << 20..]);
    let mut mid = vec![0u8; 4096];
    let err = f.read_exact_at(&mut mid, (2 << 20) + 5000).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
}

#[test]
fn lying_sizes_never_hang_or_exhaust_memory() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let a = Archive::open(&archive).unwrap();
    let cd_start = a.index().cd_start;
    drop(a);
    // Rewrite the uncompressed size in the central headers: one claims 3 GiB, one claims 10 bytes.
    let mut bytes = fs::read(&archive).unwrap();
    let mut pos = cd_start as usize;
    while pos + 46 <= bytes.len() && bytes[pos..pos + 4] == [0x50, 0x4b, 0x01, 0x02] {
        let name_len = u16::from_le_bytes([bytes[pos + 28], bytes[pos + 29]]) as usize;
        let extra_len = u16::from_le_bytes([bytes[pos + 30], bytes[pos + 31]]) as usize;
        let comment_len = u16::from_le_bytes([bytes[pos + 32], bytes[pos + 33]]) as usize;
        let name = bytes[pos + 46..pos + 46 + name_len].to_vec();
        let claim: Option<u32> = match name.as_slice() {
            b"d/text.txt" => Some(3 << 30),
            b"big.txt" => Some(10),
            _ => None,
        };
        if let Some(c) = claim {
            bytes[pos + 24..pos + 28].copy_from_slice(&c.to_le_bytes());
        }
        pos += 46 + name_len + extra_len + comment_len;
    }
    fs::write(&archive, bytes).unwrap();
    let m = w.mount_ro(&archive, "mnt");
    assert_eq!(fs::metadata(m.path("d/text.txt")).unwrap().len(), 3 << 30);
    let mut f = fs::File::open(m.path("d/text.txt")).unwrap();
    let mut sink = Vec::new();
    let err = f.read_to_end(&mut sink).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    let err = fs::read(m.path("big.txt")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(
        fs::read(m.path("d/other.txt")).unwrap(),
        b"still readable\n".repeat(100)
    );
}

#[test]
fn hostile_entry_names_are_never_served_outside_the_mount() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = w.path("hostile.zip");
    let script = r#"
import zipfile, sys
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('../evil.txt', 'escape')
    z.writestr('a/../../evil2.txt', 'escape')
    z.writestr('/abs/file.txt', 'absolute')
    z.writestr('./dot/./file.txt', 'dots')
    z.writestr('dup.txt', 'first')
    z.writestr('dup.txt', 'second')
    z.writestr('both', 'a file')
    z.writestr('both/inner.txt', 'in a directory')
    z.writestr('ok.txt', 'fine')
    z.writestr('../\x1b]0;owned\x07\x1b[2Jclear-screen', 'terminal escape')
"#;
    let out = Command::new("python3")
        .arg("-W")
        .arg("ignore")
        .arg("-c")
        .arg(script)
        .arg(&archive)
        .output()
        .unwrap();
    common::assert_success(&out, "python3");
    let point = fresh_dir(&w, "mnt");
    let out = w.cmd(mount_args(&archive, &point)).output().unwrap();
    let _guard = common::Mount {
        world: &w,
        point: point.clone(),
    };
    common::assert_success(&out, "mount");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.contains("evil.txt (contains ..)"), "{warnings}");
    assert!(
        warnings.contains("dup.txt (later entry wins)"),
        "{warnings}"
    );
    assert!(warnings.contains("both"), "{warnings}");
    // A name that would rewrite the user's terminal is shown escaped, never raw.
    assert!(
        !warnings.contains('\x1b') && !warnings.contains('\x07'),
        "{warnings:?}"
    );
    assert!(warnings.contains("\\x1b[2Jclear-screen"), "{warnings}");
    let mut names: Vec<String> = common::tree::scan(&point)
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "abs",
            "abs/file.txt",
            "both",
            "both/inner.txt",
            "dot",
            "dot/file.txt",
            "dup.txt",
            "ok.txt"
        ]
    );
    assert_eq!(fs::read(point.join("dup.txt")).unwrap(), b"second");
    assert_eq!(fs::read(point.join("abs/file.txt")).unwrap(), b"absolute");
    assert!(
        !w.path("evil.txt").exists() && !w.dir.path().parent().unwrap().join("evil.txt").exists()
    );
}

#[test]
fn unusable_mount_points_are_refused_with_the_fix() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let missing = w.path("nope");
    let err = w.fails(mount_args(&archive, &missing));
    assert!(
        err.contains("does not exist") && err.contains("mkdir -p"),
        "{err}"
    );
    let file = w.path("file");
    fs::write(&file, b"").unwrap();
    assert!(
        w.fails(mount_args(&archive, &file))
            .contains("not a directory")
    );
    let full = fresh_dir(&w, "full");
    fs::write(full.join("x"), b"").unwrap();
    let err = w.fails(mount_args(&archive, &full));
    assert!(err.contains("not empty"), "{err}");
    let m = w.mount_ro(&archive, "mnt");
    let err = w.fails(mount_args(&archive, &m.point));
    assert!(
        err.contains("already a mount point") && err.contains("unmount"),
        "{err}"
    );
    let err = w.fails(["unmount".as_ref(), full.as_os_str()]);
    assert!(err.contains("not mounted"), "{err}");
}

#[test]
fn missing_fuse_is_explained() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let point = fresh_dir(&w, "mnt");
    // A private mount namespace where /dev is an empty tmpfs: no /dev/fuse.
    let script = format!(
        "mount -t tmpfs none /dev && exec {} mount {} {} --read-only",
        common::bin(),
        archive.display(),
        point.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("CONDA_FUSE_STATE_DIR", w.state_dir())
        .env("CONDA_FUSE_RUNTIME_DIR", w.runtime_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/fuse") && err.contains("fuse3"), "{err}");
    // Without fusermount3, users other than root cannot mount.
    use std::os::unix::process::CommandExt;
    let out = Command::new(common::bin())
        .uid(65534)
        .gid(65534)
        .arg("mount")
        .arg(&archive)
        .arg(&point)
        .arg("--read-only")
        .env("PATH", "/nonexistent")
        .env("HOME", w.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fusermount3"), "{err}");
}

#[test]
fn a_dead_daemon_is_detected_and_cleaned_up() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let m = w.mount_ro(&archive, "mnt");
    let status: serde_json::Value =
        serde_json::from_str(&w.ok(["status".as_ref(), m.point.as_os_str(), "--json".as_ref()]))
            .unwrap();
    let pid = status["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while Path::new(&format!("/proc/{pid}/exe")).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // "Transport endpoint is not connected" (older kernels) or "Software caused connection abort".
    let err = fs::read_dir(&m.point).unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENOTCONN | libc::ECONNABORTED)
        ),
        "{err}"
    );
    let err = w.fails(mount_args(&archive, &m.point));
    assert!(
        err.contains("stale") && err.contains("conda-fuse unmount"),
        "{err}"
    );
    let out = w.ok(["unmount".as_ref(), m.point.as_os_str()]);
    assert!(out.contains("died"), "{out}");
    assert!(!common::is_mounted(&m.point));
    // And it mounts again.
    w.ok(mount_args(&archive, &m.point));
    assert!(m.path("big.txt").exists());
}

#[test]
fn busy_mounts_name_their_users_and_lazy_unmount_detaches() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let m = w.mount_ro(&archive, "mnt");
    let mut holder = Command::new("sleep")
        .arg("60")
        .current_dir(&m.point)
        .spawn()
        .unwrap();
    let err = w.fails(["unmount".as_ref(), m.point.as_os_str()]);
    assert!(
        err.contains("busy") && err.contains(&format!("sleep (pid {})", holder.id())),
        "{err}"
    );
    assert!(common::is_mounted(&m.point));
    w.ok(["unmount".as_ref(), m.point.as_os_str(), "--lazy".as_ref()]);
    assert!(!common::is_mounted(&m.point));
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn foreign_mounts_are_left_alone() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let fz = common::fuse_zip(&archive, &w.path("fz"), false);
    let err = w.fails(["unmount".as_ref(), fz.point.as_os_str()]);
    assert!(
        err.contains("not a conda-fuse mount") && err.contains("fusermount3 -u"),
        "{err}"
    );
    assert!(common::is_mounted(&fz.point));
    let _ = run;
}
