//! pack → mount → the same tree: content, types, permissions, owners, mtimes, names.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use common::World;
use common::fixture;
use common::tree::{self, Check};

#[test]
fn packed_tree_mounts_identically() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fixture::environment_like(&src);
    let archive = w.path("env.zip");
    w.pack(&src, &archive, &[]);
    let m = w.mount_ro(&archive, "mnt");
    tree::assert_same(&src, &m.point, Check::ALL);
    // The mount is read-only for everyone, root included.
    let err = fs::write(m.path("new-file"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
}

#[test]
fn every_compression_method_round_trips() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fixture::environment_like(&src);
    for (method, level) in [("zstd", "3"), ("store", "0"), ("deflate", "1")] {
        let archive = w.path(&format!("env-{method}.zip"));
        let mut extra = vec!["--compression", method];
        if method != "store" {
            extra.extend(["--level", level]);
        }
        w.pack(&src, &archive, &extra);
        let m = w.mount_ro(&archive, &format!("mnt-{method}"));
        tree::assert_same(&src, &m.point, Check::ALL);
    }
}

#[test]
fn prefix_dir_puts_the_tree_under_name() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/python"), b"#!/bin/sh\n").unwrap();
    let archive = w.path("ml.zip");
    w.pack(&src, &archive, &["--prefix-dir", "ml"]);
    let m = w.mount_ro(&archive, "mnt");
    let top: Vec<_> = fs::read_dir(&m.point)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, vec!["ml"]);
    tree::assert_same(&src, &m.path("ml"), Check::ALL);
}

#[test]
fn random_and_concurrent_reads_return_the_right_bytes() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(&src).unwrap();
    // Large compressible data: served by the streaming decoder, then by the cache for random access.
    let mut data = Vec::new();
    for i in 0..(6u32 << 20) / 16 {
        data.extend_from_slice(format!("line {i:010}\n").as_bytes());
    }
    fs::write(src.join("big.txt"), &data).unwrap();
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let m = w.mount_ro(&archive, "mnt");
    let path = m.path("big.txt");
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (path, data) = (&path, &data);
            s.spawn(move || {
                let f = fs::File::open(path).unwrap();
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                for _ in 0..200 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let off = (x % data.len() as u64) as usize;
                    let len = ((x >> 40) % 200_000) as usize;
                    let end = (off + len).min(data.len());
                    let mut buf = vec![0u8; end - off];
                    f.read_exact_at(&mut buf, off as u64).unwrap();
                    assert!(buf == data[off..end], "bytes at {off}..{end} differ");
                }
            });
        }
    });
    // Sequential read straight through, and mmap of the whole file.
    assert!(fs::read(&path).unwrap() == data);
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import mmap,sys,zlib; f=open(sys.argv[1],'rb'); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); print(zlib.crc32(m[::-1]))")
        .arg(&path)
        .output()
        .unwrap();
    common::assert_success(&out, "python3 mmap");
    let mut rev = data.clone();
    rev.reverse();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        crc32fast::hash(&rev).to_string()
    );
}

#[test]
fn status_reports_the_mount_and_unmount_waits_for_the_daemon() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"hello").unwrap();
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let m = w.mount_ro(&archive, "mnt");
    let status: serde_json::Value =
        serde_json::from_str(&w.ok(["status".as_ref(), m.point.as_os_str(), "--json".as_ref()]))
            .unwrap();
    assert_eq!(status["read_only"], true);
    assert_eq!(status["entries"], 2);
    let pid = status["pid"].as_u64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = w.ok(["unmount".as_ref(), m.point.as_os_str()]);
    assert!(out.contains("exited"), "{out}");
    // The daemon is gone by the time unmount returns, and so is the mount.
    assert!(!std::path::Path::new(&format!("/proc/{pid}/exe")).exists());
    assert!(!common::is_mounted(&m.point));
    assert_eq!(fs::read_dir(&m.point).unwrap().count(), 0);
}

#[test]
fn pack_refuses_to_overwrite_and_names_the_fix() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("x"), b"x").unwrap();
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let err = w.fails([
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        archive.as_os_str(),
    ]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    w.pack(&src, &archive, &["--force"]);
    let err = w.fails([
        "pack".as_ref(),
        w.path("nope").as_os_str(),
        "-o".as_ref(),
        w.path("b.zip").as_os_str(),
    ]);
    assert!(err.contains("nope"), "{err}");
    // A packed archive inside the packed directory does not contain itself.
    let inner = src.join("self.zip");
    w.pack(&src, &inner, &[]);
    let listing = common::run(std::process::Command::new("unzip").arg("-Z1").arg(&inner));
    assert!(!String::from_utf8_lossy(&listing.stdout).contains("self.zip"));
}

/// The comparison used above notices each kind of difference (so a passing test means something).
#[test]
fn tree_comparison_detects_every_kind_of_difference() {
    if common::skip_without_mounts() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let a = w.path("a");
    fs::create_dir_all(a.join("d")).unwrap();
    fs::write(a.join("d/f"), b"one").unwrap();
    std::os::unix::fs::symlink("d/f", a.join("l")).unwrap();
    let copy = |name: &str| {
        let b = w.path(name);
        common::run(std::process::Command::new("cp").arg("-a").arg(&a).arg(&b));
        b
    };
    type Change = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "content",
            Box::new(|b| fs::write(b.join("d/f"), b"two").unwrap()),
        ),
        (
            "mode",
            Box::new(|b| {
                fs::set_permissions(b.join("d/f"), fs::Permissions::from_mode(0o600)).unwrap()
            }),
        ),
        (
            "mtime",
            Box::new(|b| fixture::set_mtime(&b.join("d/f"), 12345)),
        ),
        (
            "missing",
            Box::new(|b| fs::remove_file(b.join("l")).unwrap()),
        ),
        (
            "target",
            Box::new(|b| {
                fs::remove_file(b.join("l")).unwrap();
                std::os::unix::fs::symlink("d/g", b.join("l")).unwrap();
            }),
        ),
        (
            "extra",
            Box::new(|b| fs::write(b.join("new"), b"").unwrap()),
        ),
    ];
    for (name, change) in cases {
        let b = copy(name);
        assert!(
            tree::diff(&a, &b, Check::ALL).is_empty(),
            "{name}: copy should be equal"
        );
        change(&b);
        assert!(
            !tree::diff(&a, &b, Check::ALL).is_empty(),
            "{name}: change not detected"
        );
    }
}

#[test]
fn the_first_mount_records_its_start_up_and_the_next_mounts_prefetch_it() {
    use std::os::unix::fs::PermissionsExt;
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(src.join("lib")).unwrap();
    let text = |k: u8| -> Vec<u8> {
        (0..200_000u32)
            .map(|i| b'a' + ((i / 9) as u8 + k) % 26)
            .collect()
    };
    for (k, name) in ["lib/a.py", "lib/b.py", "lib/unread.py"].iter().enumerate() {
        fs::write(src.join(name), text(k as u8)).unwrap();
    }
    let archive = w.path("a.zip");
    w.pack(&src, &archive, &[]);
    let status = |point: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&w.ok(["status".as_ref(), point.as_os_str(), "--json".as_ref()]))
            .unwrap()
    };

    // First mount: no profile yet, so it records; a mount shorter than the window writes at unmount.
    let m = w.mount_with(&archive, "first", |c| {
        c.arg("--read-only").env("CONDA_FUSE_STARTUP_WINDOW", "600");
    });
    assert_eq!(status(&m.point)["prefetched_parts"], 0);
    assert_eq!(fs::read(m.path("lib/b.py")).unwrap(), text(1));
    assert_eq!(fs::read(m.path("lib/a.py")).unwrap(), text(0));
    w.ok(["unmount".as_ref(), m.point.as_os_str()]);
    let profiles: Vec<_> = fs::read_dir(w.state_dir().join("startup"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let mode = fs::metadata(&profiles[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the profile is private");

    // The next mount prefetches the two files read, not the third, and serves the same bytes.
    let m = w.mount_ro(&archive, "second");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(&m.point)["prefetched_parts"] != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no prefetch: {}",
            status(&m.point)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status(&m.point)["prefetched_bytes"], 400_000);
    assert!(
        w.ok(["status".as_ref(), m.point.as_os_str()])
            .contains("prefetched:    2 parts")
    );
    for (k, name) in ["lib/a.py", "lib/b.py", "lib/unread.py"].iter().enumerate() {
        assert_eq!(fs::read(m.path(name)).unwrap(), text(k as u8), "{name}");
    }
    w.ok(["unmount".as_ref(), m.point.as_os_str()]);

    // CONDA_FUSE_PREFETCH=off: neither prefetch nor recording.
    let before = fs::read(&profiles[0]).unwrap();
    let m = w.mount_with(&archive, "third", |c| {
        c.arg("--read-only").env("CONDA_FUSE_PREFETCH", "off");
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(status(&m.point)["prefetched_parts"], 0);
    w.ok(["unmount".as_ref(), m.point.as_os_str()]);
    assert_eq!(fs::read(&profiles[0]).unwrap(), before);
}
