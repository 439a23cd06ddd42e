//! Nothing leaks and nothing can be planted: on a login node with hundreds of users, what
//! conda-fuse keeps for one user (state, upper layers with the bytes of files written into a mount,
//! journals, logs, records) is private to that user, roots another user controls are refused, and
//! what an attacker plants is never replayed, followed or written.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::{Mount, World};

fn small_archive(w: &World) -> std::path::PathBuf {
    let src = w.path("src");
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("lib/mod.py"), b"x = 1\n").unwrap();
    let archive = w.path("env.zip");
    w.pack(&src, &archive, &[]);
    archive
}

fn mount_rw<'w>(w: &'w World, archive: &Path, name: &str, extra: &[&OsStr]) -> Mount<'w> {
    let point = w.path(name);
    fs::create_dir_all(&point).unwrap();
    let mut args = vec![OsStr::new("mount"), archive.as_os_str(), point.as_os_str()];
    args.extend_from_slice(extra);
    w.ok(args);
    Mount { world: w, point }
}

/// Every directory and file below `root`: (path, mode).
fn modes(root: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        let md = fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path().display().to_string(), md.mode()));
    }
    out
}

#[test]
fn state_upper_layers_and_logs_are_private_to_their_user() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let m = mount_rw(&w, &archive, "mnt", &[]);
    fs::write(m.path("secret.txt"), b"my private data").unwrap();
    fs::set_permissions(m.path("secret.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(m.path("dir")).unwrap();
    let state = w.state_dir();
    let runtime = w.runtime_dir();
    assert!(runtime.join("mounts").is_dir());
    for (path, mode) in modes(&state).into_iter().chain(modes(&runtime)) {
        let kind = mode & libc::S_IFMT;
        let expected = match kind {
            libc::S_IFDIR => 0o700,
            libc::S_IFSOCK => 0o600,
            _ => 0o600,
        };
        assert_eq!(
            mode & 0o777,
            expected,
            "{path} has mode {:o}",
            mode & 0o7777
        );
    }
    // Another user on the host can read nothing of it, even with the directories above it open.
    let mut dir = state.clone();
    while dir.pop() {
        let mode = fs::metadata(&dir).unwrap().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o005)).ok();
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg("grep -r 'my private data' \"$1\"; ls -R \"$1\"")
        .arg("sh")
        .arg(&state)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("my private data"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
}

#[test]
fn readable_state_left_by_older_versions_is_made_private() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let dirs = [
        w.state_dir(),
        w.state_dir().join("upper"),
        w.state_dir().join("logs"),
        w.runtime_dir(),
        w.runtime_dir().join("mounts"),
    ];
    for d in &dirs {
        fs::create_dir_all(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let m = mount_rw(&w, &archive, "mnt", &[]);
    fs::write(m.path("f"), b"x").unwrap();
    for d in &dirs {
        let mode = fs::metadata(d).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
}

#[test]
fn upper_roots_other_users_control_are_refused() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    let mount_with = |upper: &Path| {
        w.cmd([OsStr::new("mount"), archive.as_os_str(), point.as_os_str()])
            .env("CONDA_FUSE_UPPER_DIR", upper)
            .output()
            .unwrap()
    };
    // Owned by someone else (created by them in a shared /tmp before we came).
    let theirs = w.path("theirs");
    fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(65534.into()), Some(65534.into())).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o700)).unwrap();
    let out = mount_with(&theirs);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to uid 65534"), "{err}");
    // World-writable (a shared scratch directory itself).
    let shared = w.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = String::from_utf8_lossy(&mount_with(&shared).stderr).into_owned();
    assert!(err.contains("writable by other users"), "{err}");
    // A symlink to somewhere else.
    let real = w.path("real");
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, w.path("link")).unwrap();
    let err = String::from_utf8_lossy(&mount_with(&w.path("link")).stderr).into_owned();
    assert!(err.contains("is a symlink"), "{err}");
    assert!(!common::is_mounted(&point));
    assert_eq!(
        fs::read_dir(&real).unwrap().count(),
        0,
        "nothing written there"
    );
}

#[test]
fn a_journal_of_another_archive_is_never_replayed() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let other = w.path("other.zip");
    fs::copy(&archive, &other).unwrap();
    // Unsaved changes of `other`...
    let m = mount_rw(&w, &other, "mnt", &[]);
    fs::write(m.path("planted.sh"), b"#!/bin/sh\necho owned\n").unwrap();
    let pid = common::daemon_pid(&w, &m.point);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    while conda_fuse::process::is_conda_fuse(pid.as_raw() as u32) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    drop(m);
    // ...put where `archive`'s upper layer would be (a planted, or colliding, directory).
    let upper = w.state_dir().join("upper");
    let dir_of = |a: &Path| {
        conda_fuse::overlay::upper::dir_for(
            &upper,
            &conda_fuse::archive::ArchiveId::resolve(a).unwrap(),
        )
    };
    fs::rename(dir_of(&other), dir_of(&archive)).unwrap();
    let point = w.path("mnt2");
    fs::create_dir_all(&point).unwrap();
    let err = w.fails([OsStr::new("mount"), archive.as_os_str(), point.as_os_str()]);
    assert!(err.contains("holds changes of"), "{err}");
    assert!(!common::is_mounted(&point));
    // Read-only, the archive is served as it is.
    let ro = w.mount_ro(&archive, "ro");
    assert!(!ro.path("planted.sh").exists());
}

/// `unmount` from a runtime directory that has no record of a live mount (another user's when run
/// as root, or one made with another CONDA_FUSE_RUNTIME_DIR) must neither detach it unsaved nor call
/// its daemon dead.
#[test]
fn a_live_mount_this_runtime_directory_does_not_know_is_never_detached() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let m = mount_rw(&w, &archive, "mnt", &[]);
    fs::write(m.path("unsaved"), b"keep me").unwrap();
    let out = w
        .cmd([OsStr::new("unmount"), m.point.as_os_str()])
        .env("CONDA_FUSE_RUNTIME_DIR", w.path("other-runtime"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has no record of") && err.contains("uid 0"),
        "{err}"
    );
    assert!(common::is_mounted(&m.point));
    assert_eq!(fs::read(m.path("unsaved")).unwrap(), b"keep me");
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    let ro = w.mount_ro(&archive, "ro");
    assert_eq!(fs::read(ro.path("unsaved")).unwrap(), b"keep me");
}

/// The daemon outlives the command that started it: it must not keep that command's descriptors
/// (a batch run's lock, a pipe a caller waits on, a file it had open).
#[test]
fn the_daemon_keeps_no_descriptor_of_the_command_that_started_it() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w);
    let held = w.path("held-by-the-caller");
    fs::write(&held, b"x").unwrap();
    let file = fs::File::open(&held).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: dup2 is async-signal-safe; it gives the child the file as descriptor 7, inheritable.
    let m = w.mount_with(&archive, "mnt", |c| unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    let pid = common::daemon_pid(&w, &m.point);
    let open: Vec<_> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
        .collect();
    assert!(
        !open.iter().any(|p| p == &held),
        "the daemon holds {}: {open:?}",
        held.display()
    );
}
