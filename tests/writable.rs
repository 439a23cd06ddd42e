//! Writable mounts: the POSIX operations conda, pip and compilers use, saving, the writer lock with
//! concurrent readers, and that nothing is lost: kill -9 of the daemon, and a save interrupted at
//! every step (fault injection), on a full disk, or in a read-only directory.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tree::{self, Check};
use common::{Mount, PlainMount, World, fixture};

fn small_env(w: &World) -> (PathBuf, PathBuf) {
    let src = w.path("src");
    fs::create_dir_all(src.join("lib/pkg")).unwrap();
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("lib/pkg/__init__.py"), b"VALUE = 1\n".repeat(1000)).unwrap();
    fs::write(src.join("lib/pkg/data.bin"), fixture::noise(3 << 20, 4)).unwrap();
    fs::write(src.join("bin/tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    let archive = w.path("env.zip");
    w.pack(&src, &archive, &[]);
    (src, archive)
}

fn mount_rw<'w>(w: &'w World, archive: &Path, name: &str) -> Mount<'w> {
    let point = w.path(name);
    fs::create_dir_all(&point).unwrap();
    w.ok([OsStr::new("mount"), archive.as_os_str(), point.as_os_str()]);
    Mount { world: w, point }
}

fn status(w: &World, point: &Path) -> serde_json::Value {
    serde_json::from_str(&w.ok([
        OsStr::new("status"),
        point.as_os_str(),
        OsStr::new("--json"),
    ]))
    .unwrap()
}

fn kill_daemon(w: &World, point: &Path) {
    let pid = status(w, point)["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while conda_fuse::process::is_conda_fuse(pid as u32) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Files in the archive's directory other than the archive and its lock (leftover temporaries).
fn strays(archive: &Path) -> Vec<String> {
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    fs::read_dir(archive.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&name) && *n != name && *n != format!("{name}.lock"))
        .collect()
}

#[test]
fn posix_operations_work_and_survive_a_save() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, archive) = small_env(&w);
    let m = mount_rw(&w, &archive, "mnt");
    let p = |s: &str| m.path(s);
    // create, write at offsets (a hole in between), append, truncate
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(p("new.txt"))
        .unwrap();
    f.write_all(b"hello").unwrap();
    f.write_all_at(b"far", 100_000).unwrap();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(b"!").unwrap();
    f.set_len(100_002).unwrap();
    drop(f);
    let data = fs::read(p("new.txt")).unwrap();
    assert_eq!(
        (data.len(), &data[..5], &data[100_000..]),
        (100_002, &b"hello"[..], &b"fa"[..])
    );
    // change a file that comes from the archive (copy-up), in the middle
    fs::OpenOptions::new()
        .write(true)
        .open(p("lib/pkg/data.bin"))
        .unwrap()
        .write_all_at(b"PATCH", 2 << 20)
        .unwrap();
    // directories from the archive: rename, and rename over an existing empty directory
    fs::create_dir(p("empty")).unwrap();
    fs::rename(p("lib/pkg"), p("lib/renamed")).unwrap();
    fs::rename(p("lib/renamed"), p("empty")).unwrap();
    assert!(p("empty/__init__.py").exists());
    // rename over an existing file, RENAME_NOREPLACE, RENAME_EXCHANGE
    fs::write(p("x"), b"x").unwrap();
    fs::write(p("y"), b"y").unwrap();
    let flags = |f| nix::fcntl::RenameFlags::from_bits_truncate(f);
    let rename2 = |a: &str, b: &str, f| {
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &p(a),
            nix::fcntl::AT_FDCWD,
            &p(b),
            flags(f),
        )
    };
    assert_eq!(
        rename2("x", "y", libc::RENAME_NOREPLACE),
        Err(nix::errno::Errno::EEXIST)
    );
    rename2("x", "bin/tool", libc::RENAME_EXCHANGE).unwrap();
    assert_eq!(fs::read(p("x")).unwrap(), b"#!/bin/sh\n");
    fs::rename(p("x"), p("y")).unwrap();
    // symlink, hard link, chmod, chown, utimens, mkdir/rmdir, unlink
    std::os::unix::fs::symlink("y", p("link")).unwrap();
    fs::hard_link(p("y"), p("y2")).unwrap();
    assert_eq!(fs::metadata(p("y")).unwrap().nlink(), 2);
    fs::set_permissions(p("y"), fs::Permissions::from_mode(0o4750)).unwrap();
    nix::unistd::chown(&p("y"), Some(1234.into()), Some(5678.into())).unwrap();
    fixture::set_mtime(&p("new.txt"), 1_234_567_890);
    fixture::set_mtime(&p("empty"), 1_111_111_111);
    fs::create_dir_all(p("d1/d2")).unwrap();
    fs::remove_dir(p("d1/d2")).unwrap();
    assert_eq!(
        fs::remove_dir(p("empty")).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    fs::remove_file(p("bin/tool")).unwrap();
    // fsync, fallocate, statfs
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(p("synced"))
        .unwrap();
    f.write_all_at(b"durable", 0).unwrap();
    f.sync_all().unwrap();
    nix::fcntl::fallocate(&f, nix::fcntl::FallocateFlags::empty(), 0, 1 << 20).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 1 << 20);
    drop(f);
    let sv = nix::sys::statvfs::statvfs(&m.point).unwrap();
    assert!(sv.blocks_available() > 0);
    // an open file survives its unlink; its content goes with the last close
    let mut open = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(p("tmpfile"))
        .unwrap();
    fs::remove_file(p("tmpfile")).unwrap();
    open.write_all(b"still here").unwrap();
    let mut back = String::new();
    open.seek(SeekFrom::Start(0)).unwrap();
    open.read_to_string(&mut back).unwrap();
    assert_eq!(back, "still here");
    drop(open);
    // mmap of a written file, read and written through the mapping
    let out = Command::new("python3")
        .arg("-c")
        .arg("import mmap,sys\nf=open(sys.argv[1],'r+b')\nm=mmap.mmap(f.fileno(),0)\nassert m[:5]==b'hello'\nm[0:5]=b'HELLO'\nm.flush()\n")
        .arg(p("new.txt"))
        .output()
        .unwrap();
    common::assert_success(&out, "python3 mmap");
    assert_eq!(&fs::read(p("new.txt")).unwrap()[..5], b"HELLO");
    fixture::set_mtime(&p("new.txt"), 1_234_567_890);

    // Save, remount read-only from the archive alone: the same tree.
    let expected = w.path("expected");
    common::run(Command::new("cp").arg("-a").arg(&m.point).arg(&expected));
    let st = status(&w, &m.point);
    assert!(st["unsaved_changes"].as_u64().unwrap() > 10, "{st}");
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    let ro = w.mount_ro(&archive, "ro");
    tree::assert_same(
        &expected,
        &ro.point,
        Check {
            dir_mtime: false,
            ..Check::ALL
        },
    );
    assert_eq!(
        fs::metadata(ro.path("empty")).unwrap().mtime(),
        1_111_111_111
    );
    // Hard links stay hard links across the save.
    assert_eq!(
        fs::metadata(ro.path("y")).unwrap().ino(),
        fs::metadata(ro.path("y2")).unwrap().ino()
    );
    // And the archive is a normal zip.
    let test = common::run(Command::new("unzip").arg("-tq").arg(&archive));
    assert!(String::from_utf8_lossy(&test.stdout).contains("No errors"));
}

#[test]
fn one_writer_many_readers_and_readers_keep_their_snapshot() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, archive) = small_env(&w);
    let writer = mount_rw(&w, &archive, "writer");
    // A second writable mount is refused, naming the holder.
    let second = w.path("second");
    fs::create_dir_all(&second).unwrap();
    let err = w.fails([OsStr::new("mount"), archive.as_os_str(), second.as_os_str()]);
    let pid = status(&w, &writer.point)["pid"].as_i64().unwrap();
    assert!(
        err.contains("already mounted writable") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    assert!(
        err.contains(&conda_fuse::node::hostname()) && err.contains("--read-only"),
        "{err}"
    );
    // Readers mount at the same time.
    let reader = w.mount_ro(&archive, "reader");
    fs::write(writer.path("lib/pkg/__init__.py"), b"VALUE = 2\n").unwrap();
    fs::write(writer.path("added"), b"new").unwrap();
    w.ok([OsStr::new("commit"), writer.point.as_os_str()]);
    // The reader keeps the archive it mounted until it remounts.
    assert_eq!(
        fs::read(reader.path("lib/pkg/__init__.py")).unwrap(),
        b"VALUE = 1\n".repeat(1000)
    );
    assert!(!reader.path("added").exists());
    let fresh = w.mount_ro(&archive, "fresh");
    assert_eq!(
        fs::read(fresh.path("lib/pkg/__init__.py")).unwrap(),
        b"VALUE = 2\n"
    );
    // The writer goes on after its save; a second save with nothing new leaves the archive alone.
    let before = fs::metadata(&archive).unwrap().ino();
    let out = w.ok([OsStr::new("commit"), writer.point.as_os_str()]);
    assert!(out.contains("nothing to save"), "{out}");
    assert_eq!(fs::metadata(&archive).unwrap().ino(), before);
    // Once the writer is gone, the lock is free again.
    drop(writer);
    let again = mount_rw(&w, &archive, "again");
    assert_eq!(fs::read(again.path("added")).unwrap(), b"new");
}

#[test]
fn killed_daemon_loses_nothing_written() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, archive) = small_env(&w);
    let m = mount_rw(&w, &archive, "mnt");
    fs::create_dir_all(m.path("site/new")).unwrap();
    fs::write(m.path("site/new/mod.py"), b"print('kept')\n").unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(m.path("lib/pkg/data.bin"))
        .unwrap()
        .write_all_at(b"EDIT", 10)
        .unwrap();
    fs::rename(m.path("bin"), m.path("bin2")).unwrap();
    fs::set_permissions(m.path("bin2/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    let expected = w.path("expected");
    common::run(Command::new("cp").arg("-a").arg(&m.point).arg(&expected));
    kill_daemon(&w, &m.point);
    let out = w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    assert!(out.contains("died"), "{out}");
    let out = w
        .cmd([
            OsStr::new("mount"),
            archive.as_os_str(),
            m.point.as_os_str(),
        ])
        .output()
        .unwrap();
    common::assert_success(&out, "mount after kill");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("recovered"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tree::assert_same(
        &expected,
        &m.point,
        Check {
            dir_mtime: false,
            ..Check::ALL
        },
    );
}

/// Each step of a save, interrupted by the daemon's death: the archive in place is always a valid
/// zip (old or new), no temporary is left behind after the next mount, and every change is there.
#[test]
fn saves_interrupted_at_every_step_lose_nothing() {
    if common::skip_without_mounts() {
        return;
    }
    interrupted_saves(|| Some(World::new()));
}

/// The same with the archive and the upper layer on a network filesystem.
#[test]
fn saves_interrupted_on_a_network_filesystem_lose_nothing() {
    if common::skip_without_mounts() {
        return;
    }
    interrupted_saves(World::on_netfs);
}

fn interrupted_saves(world: impl Fn() -> Option<World>) {
    for point in conda_fuse::fault::Point::ALL.map(|p| p.name()) {
        let Some(w) = world() else { return };
        let (_, archive) = small_env(&w);
        let mp = w.path("mnt");
        fs::create_dir_all(&mp).unwrap();
        let out = w
            .cmd([OsStr::new("mount"), archive.as_os_str(), mp.as_os_str()])
            .env(conda_fuse::fault::ENV, point)
            .output()
            .unwrap();
        common::assert_success(&out, "mount");
        let _guard = Mount {
            world: &w,
            point: mp.clone(),
        };
        for i in 0..50 {
            fs::write(mp.join(format!("f{i}")), format!("file {i}").repeat(1000)).unwrap();
        }
        fs::write(mp.join("lib/pkg/__init__.py"), b"VALUE = 3\n").unwrap();
        let expected = w.local_path("expected");
        common::run(Command::new("cp").arg("-a").arg(&mp).arg(&expected));
        let err = w.fails([OsStr::new("commit"), mp.as_os_str()]);
        assert!(err.contains("did not answer"), "{point}: {err}");
        // Whatever the step, the archive is a valid zip.
        common::run(Command::new("unzip").arg("-tq").arg(&archive));
        w.ok([OsStr::new("unmount"), mp.as_os_str()]);
        w.ok([OsStr::new("mount"), archive.as_os_str(), mp.as_os_str()]);
        assert!(
            strays(&archive).is_empty(),
            "{point}: left {:?}",
            strays(&archive)
        );
        tree::assert_same(
            &expected,
            &mp,
            Check {
                dir_mtime: false,
                ..Check::ALL
            },
        );
        w.ok([OsStr::new("unmount"), mp.as_os_str()]);
        let ro = w.mount_ro(&archive, "ro");
        tree::assert_same(
            &expected,
            &ro.point,
            Check {
                dir_mtime: false,
                ..Check::ALL
            },
        );
    }
}

fn tmpfs(at: &Path, size: &str) -> PlainMount {
    fs::create_dir_all(at).unwrap();
    common::run(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at),
    );
    PlainMount(at.to_owned())
}

#[test]
fn a_full_disk_fails_the_save_and_keeps_everything() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, src_archive) = small_env(&w);
    let small = w.path("small");
    // Room for two copies of the archive (3 MB), not for one with 6 MB more.
    let _fs_guard = tmpfs(&small, "8m");
    let archive = small.join("env.zip");
    fs::copy(&src_archive, &archive).unwrap();
    let before = fs::read(&archive).unwrap();
    let m = mount_rw(&w, &archive, "mnt");
    fs::write(m.path("big"), fixture::noise(6 << 20, 8)).unwrap();
    let err = w.fails([OsStr::new("commit"), m.point.as_os_str()]);
    assert!(
        err.contains("No space left") && err.contains("kept"),
        "{err}"
    );
    assert!(
        fs::read(&archive).unwrap() == before,
        "the archive must be untouched"
    );
    assert!(strays(&archive).is_empty());
    // Make room; the next save works.
    fs::write(m.path("big"), b"small now").unwrap();
    w.ok([OsStr::new("commit"), m.point.as_os_str()]);
    drop(m);
    let ro = w.mount_ro(&archive, "ro");
    assert_eq!(fs::read(ro.path("big")).unwrap(), b"small now");
}

/// The upper layer's filesystem fills (ENOSPC, or a quota) while changes are made: the change that
/// hits the full disk fails, and every change acknowledged after space was freed survives a crash.
#[test]
fn a_full_upper_disk_tears_nothing_acknowledged_after_it() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, archive) = small_env(&w);
    let upper_fs = w.path("upper-fs");
    let _fs_guard = tmpfs(&upper_fs, "1m");
    let upper = upper_fs.join("upper");
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    let mount = || {
        w.ok([
            OsStr::new("mount"),
            archive.as_os_str(),
            point.as_os_str(),
            OsStr::new("--upper-dir"),
            upper.as_os_str(),
        ])
    };
    mount();
    let m = Mount {
        world: &w,
        point: point.clone(),
    };
    // Fill the disk, then change names until a journal record no longer fits.
    let filler = upper_fs.join("filler");
    let _ = fs::write(&filler, vec![0u8; 2 << 20]);
    let mut made = Vec::new();
    let mut failed = None;
    for i in 0..5000 {
        let name = format!("before-the-full-disk-{i:04}");
        match fs::create_dir(m.path(&name)) {
            Ok(()) => made.push(name),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let failed = failed.expect("the disk filled up");
    assert_eq!(failed.raw_os_error(), Some(libc::ENOSPC), "{failed}");
    // The user frees space and goes on: these changes are acknowledged.
    fs::remove_file(&filler).unwrap();
    for name in ["after-1", "after-2"] {
        fs::create_dir(m.path(name)).unwrap();
        made.push(name.to_string());
    }
    fs::write(m.path("after-3"), b"acknowledged").unwrap();
    kill_daemon(&w, &point);
    w.ok([OsStr::new("unmount"), point.as_os_str()]);
    mount();
    for name in &made {
        assert!(m.path(name).is_dir(), "{name} lost after the crash");
    }
    assert_eq!(fs::read(m.path("after-3")).unwrap(), b"acknowledged");
}

#[test]
fn a_read_only_archive_directory_fails_the_save_and_keeps_everything() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, src_archive) = small_env(&w);
    let dir = w.path("archives");
    fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("env.zip");
    fs::copy(&src_archive, &archive).unwrap();
    let m = mount_rw(&w, &archive, "mnt");
    fs::write(m.path("change"), b"kept").unwrap();
    // The directory becomes read-only under the running daemon (a read-only bind mount over it).
    common::run(Command::new("mount").arg("--bind").arg(&dir).arg(&dir));
    let ro_guard = PlainMount(dir.clone());
    common::run(
        Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&dir),
    );
    let err = w.fails([OsStr::new("commit"), m.point.as_os_str()]);
    assert!(
        err.contains("Read-only file system") && err.contains("kept"),
        "{err}"
    );
    let err = w.fails([OsStr::new("unmount"), m.point.as_os_str()]);
    assert!(
        err.contains("Read-only"),
        "unmount must not lose the changes: {err}"
    );
    assert!(common::is_mounted(&m.point));
    drop(ro_guard);
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    let ro = w.mount_ro(&archive, "ro");
    assert_eq!(fs::read(ro.path("change")).unwrap(), b"kept");
}

#[test]
fn unmount_discard_throws_changes_away() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (src, archive) = small_env(&w);
    let m = mount_rw(&w, &archive, "mnt");
    fs::write(m.path("junk"), b"x").unwrap();
    fs::remove_file(m.path("bin/tool")).unwrap();
    let out = w.ok([
        OsStr::new("unmount"),
        m.point.as_os_str(),
        OsStr::new("--discard"),
    ]);
    assert!(out.contains("discarded"), "{out}");
    let again = mount_rw(&w, &archive, "mnt2");
    tree::assert_same(&src, &again.point, Check::ALL);
    assert_eq!(status(&w, &again.point)["unsaved_files"], 0);
}

#[test]
fn permissions_are_enforced_for_other_users() {
    if common::skip_without_mounts() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let w = World::new();
    let (_, archive) = small_env(&w);
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    w.ok([
        OsStr::new("mount"),
        archive.as_os_str(),
        point.as_os_str(),
        OsStr::new("--allow-other"),
    ]);
    let m = Mount { world: &w, point };
    fs::write(m.path("private"), b"secret").unwrap();
    fs::set_permissions(m.path("private"), fs::Permissions::from_mode(0o600)).unwrap();
    // The temporary directories above the mount must be traversable by the other user.
    let mut dir = m.point.clone();
    while dir.pop() {
        let mode = fs::metadata(&dir).unwrap().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o005)).ok();
    }
    let as_nobody = |script: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir("/")
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    let tool = m.path("bin/tool");
    let ok = as_nobody(&format!("cat '{}'", tool.display()));
    common::assert_success(&ok, "reading a 0755 file as nobody");
    let denied = as_nobody(&format!("cat '{}'", m.path("private").display()));
    assert!(
        !denied.status.success()
            && String::from_utf8_lossy(&denied.stderr).contains("Permission denied")
    );
    let denied = as_nobody(&format!("touch '{}'", m.path("bin/new").display()));
    assert!(
        !denied.status.success()
            && String::from_utf8_lossy(&denied.stderr).contains("Permission denied")
    );
}

#[test]
fn saving_archives_made_by_other_tools_keeps_them_standard() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fixture::environment_like(&src);
    fs::remove_dir_all(src.join("crowd")).unwrap();
    let archive = w.path("infozip.zip");
    common::run(
        Command::new("zip")
            .args(["-q", "-r", "-y"])
            .arg(&archive)
            .arg(".")
            .current_dir(&src),
    );
    let m = mount_rw(&w, &archive, "mnt");
    fs::write(m.path("bin/tool"), b"#!/bin/sh\necho changed\n").unwrap();
    fs::write(m.path("added.txt"), b"added").unwrap();
    for _ in 0..2 {
        w.ok([OsStr::new("commit"), m.point.as_os_str()]);
        let test = common::run(Command::new("unzip").arg("-tq").arg(&archive));
        assert!(String::from_utf8_lossy(&test.stdout).contains("No errors"));
    }
    let expected = w.path("expected");
    common::run(Command::new("cp").arg("-a").arg(&m.point).arg(&expected));
    drop(m);
    let out = w.path("out");
    fs::create_dir(&out).unwrap();
    common::run(
        Command::new("unzip")
            .args(["-q", "-X", "-K"])
            .arg(&archive)
            .arg("-d")
            .arg(&out),
    );
    tree::assert_same(
        &expected,
        &out,
        Check {
            symlink_mtime: false,
            dir_mtime: false,
            ..Check::ALL
        },
    );
}

/// Inodes are what conda-fuse saves: a writable mount that writes nothing creates (almost)
/// nothing in the state directory, and a clean unmount leaves nothing of its upper layer.
#[test]
fn upper_layers_cost_no_inodes_beyond_what_is_unsaved() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, archive) = small_env(&w);
    let upper = w.state_dir().join("upper");
    let count = || walkdir::WalkDir::new(&upper).into_iter().count();
    let m = mount_rw(&w, &archive, "mnt");
    // The root, this archive's directory, its data directory and the journal.
    assert!(count() <= 4, "{} entries before any write", count());
    for i in 0..50 {
        fs::write(m.path(&format!("f{i}")), b"data").unwrap();
    }
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    assert_eq!(count(), 1, "only the (empty) upper root is left");
    // With unsaved changes left behind (a detach), only what holds them stays.
    let m = mount_rw(&w, &archive, "mnt");
    fs::write(m.path("unsaved"), b"kept").unwrap();
    let pid = common::daemon_pid(&w, &m.point);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    while conda_fuse::process::is_conda_fuse(pid.as_raw() as u32) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(count() <= 6, "{} entries for one unsaved file", count());
    drop(m);
    let again = mount_rw(&w, &archive, "mnt2");
    assert_eq!(fs::read(again.path("unsaved")).unwrap(), b"kept");
}

/// `truncate -s 64G` costs nothing on disk; its save must cost neither a read of 64 GiB of zeros
/// nor memory that grows with the size or the cores (a 64-core node, emulated through rayon).
#[test]
fn huge_sparse_files_save_in_bounded_memory_without_reading_their_holes() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let (_, archive) = small_env(&w);
    let m = w.mount_with(&archive, "mnt", |c| {
        c.env("RAYON_NUM_THREADS", "64");
    });
    let point = m.point.clone();
    let f = fs::File::create(m.path("huge.img")).unwrap();
    f.set_len(64 << 30).unwrap();
    f.write_all_at(b"data at the end", (64 << 30) - 15).unwrap();
    drop(f);
    let saved = w.ok([OsStr::new("commit"), point.as_os_str()]);
    assert!(saved.contains("GiB of holes not read"), "{saved}");
    let pid = common::daemon_pid(&w, &point);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        peak_kib < 400 << 10,
        "the daemon peaked at {} MiB saving a sparse file",
        peak_kib >> 10
    );
    assert_eq!(fs::metadata(m.path("huge.img")).unwrap().len(), 64 << 30);
}

/// FIFOs, sockets and devices (root may make them; the mount is nodev) survive saves and remounts
/// as entries of their type.
#[test]
fn fifos_sockets_and_devices_are_kept_across_saves() {
    if common::skip_without_mounts() {
        return;
    }
    use std::os::unix::fs::FileTypeExt;
    let w = World::new();
    let (_, archive) = small_env(&w);
    let m = mount_rw(&w, &archive, "mnt");
    nix::unistd::mkfifo(
        &m.path("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    let sock = std::os::unix::net::UnixListener::bind(m.path("sock")).unwrap();
    drop(sock);
    nix::sys::stat::mknod(
        &m.path("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    // nodev: the device node is kept, but it opens nothing.
    assert!(fs::File::open(m.path("null")).is_err());
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    let ro = w.mount_ro(&archive, "ro");
    let ft = |p: &str| fs::symlink_metadata(ro.path(p)).unwrap();
    assert!(ft("fifo").file_type().is_fifo());
    assert_eq!(ft("fifo").mode() & 0o777, 0o640);
    assert!(ft("sock").file_type().is_socket());
    assert!(ft("null").file_type().is_char_device());
    assert_eq!(ft("null").rdev(), nix::sys::stat::makedev(1, 3));
    // Other zip tools see them as empty files.
    let list = common::run(Command::new("unzip").arg("-Z").arg(&archive));
    assert!(String::from_utf8_lossy(&list.stdout).contains("prw-r-----"));
}

/// A save names every changed file, far more than a process may have open (a fresh environment is
/// tens of thousands): it must open each only when it compresses it.
#[test]
fn saving_more_changed_files_than_open_descriptors_allowed_works() {
    if common::skip_without_mounts() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let w = World::new();
    let (_, archive) = small_env(&w);
    // SAFETY: setrlimit is async-signal-safe.
    let m = w.mount_with(&archive, "mnt", |c| unsafe {
        c.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 256,
                rlim_max: 256,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    });
    let point = m.point.clone();
    fs::create_dir(m.path("many")).unwrap();
    for i in 0..2000 {
        fs::write(m.path(&format!("many/f{i:04}")), format!("{i}")).unwrap();
    }
    w.ok([OsStr::new("commit"), point.as_os_str()]);
    drop(m);
    let ro = w.mount_ro(&archive, "ro");
    assert_eq!(fs::read_to_string(ro.path("many/f1999")).unwrap(), "1999");
}
