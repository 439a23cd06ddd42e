//! The everyday workflows as an ordinary user (uid 65534 through setpriv, mounting through
//! fusermount3, as on every cluster), and what a user's mount serves of an archive's recorded
//! owners and modes.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::World;
use common::user::{self, User};

/// A small tree owned by someone else than the mounting user (uid 1234), packed by root.
fn foreign_archive(w: &World) -> std::path::PathBuf {
    let src = w.path("src");
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("lib/mod.py"), b"x = 1\n").unwrap();
    fs::write(src.join("shared.txt"), b"everyone may write this?\n").unwrap();
    fs::set_permissions(src.join("shared.txt"), fs::Permissions::from_mode(0o666)).unwrap();
    fs::write(src.join("setuid-tool"), b"#!/bin/sh\n").unwrap();
    for p in ["", "lib", "lib/mod.py", "shared.txt", "setuid-tool"] {
        nix::unistd::chown(&src.join(p), Some(1234.into()), Some(1234.into())).unwrap();
    }
    // After chown, which clears setuid bits.
    fs::set_permissions(src.join("setuid-tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    let archive = w.path("foreign.zip");
    w.pack(&src, &archive, &[]);
    user::chown_tree(&archive);
    archive
}

/// `conda-fuse pack SRC -o ARCHIVE` as the user.
fn pack_as(u: &User, src: &std::path::Path, archive: &std::path::Path) {
    u.ok([
        OsStr::new("pack"),
        src.as_os_str(),
        OsStr::new("-o"),
        archive.as_os_str(),
    ]);
}

#[test]
fn an_ordinary_user_mounts_changes_saves_and_unmounts() {
    let Some(u) = User::new() else { return };
    let src = u.mkdir("env");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    user::chown_tree(&src);
    let archive = u.path("env.zip");
    pack_as(&u, &src, &archive);
    let m = u.mount(&archive, "mnt", &[]);
    let write = u
        .command("sh")
        .arg("-c")
        .arg("echo changed > \"$1/bin/tool\" && mkdir \"$1/new\" && echo x > \"$1/new/f\"")
        .arg("sh")
        .arg(&m.point)
        .output()
        .unwrap();
    common::assert_success(&write, "writing as the user");
    u.ok([OsStr::new("commit"), m.point.as_os_str()]);
    u.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    assert!(!common::is_mounted(&m.point));
    let ro = u.mount(&archive, "ro", &["--read-only"]);
    assert_eq!(u.read(&ro.path("bin/tool")), b"changed\n");
    assert_eq!(u.read(&ro.path("new/f")), b"x\n");
    // Owned by the user: their archive, their state.
    assert_eq!(fs::metadata(&archive).unwrap().uid(), user::UID);
    for e in walkdir::WalkDir::new(u.world.state_dir())
        .into_iter()
        .chain(walkdir::WalkDir::new(u.world.runtime_dir()))
    {
        assert_eq!(
            fs::symlink_metadata(e.unwrap().path()).unwrap().uid(),
            user::UID
        );
    }
}

#[test]
fn a_users_mount_serves_entries_as_theirs_unless_told_to_keep_owners() {
    let Some(u) = User::new() else { return };
    let archive = foreign_archive(&u.world);
    let kept = u.mount(&archive, "kept", &["--read-only", "--keep-owners"]);
    assert_eq!(u.owner(&kept.path("lib/mod.py")), (1234, 1234));
    drop(kept);
    let m = u.mount(&archive, "mnt", &[]);
    for p in ["lib", "lib/mod.py", "shared.txt"] {
        assert_eq!(u.owner(&m.path(p)), (user::UID, user::UID), "{p}");
    }
    // So the user can change their own environment.
    let write = u
        .command("sh")
        .arg("-c")
        .arg("echo mine >> \"$1/lib/mod.py\"")
        .arg("sh")
        .arg(&m.point)
        .output()
        .unwrap();
    common::assert_success(&write, "changing a file of the archive");
    drop(m);
    // Saved as the user's: the archive's owners were never trusted.
    let ro = u.mount(&archive, "ro", &["--read-only", "--keep-owners"]);
    assert_eq!(u.owner(&ro.path("lib/mod.py")), (user::UID, user::UID));
}

#[test]
fn other_users_let_in_get_no_write_bits_the_archive_carries() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = foreign_archive(&w);
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    let out = w
        .cmd([
            OsStr::new("mount"),
            archive.as_os_str(),
            point.as_os_str(),
            OsStr::new("--read-only"),
            OsStr::new("--allow-other"),
        ])
        .output()
        .unwrap();
    common::assert_success(&out, "mount --allow-other");
    let _m = common::Mount {
        world: &w,
        point: point.clone(),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("setuid or setgid"), "{stderr}");
    let mode = fs::metadata(point.join("shared.txt")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let mut dir = point.clone();
    while dir.pop() {
        let m = fs::metadata(&dir).unwrap().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(m | 0o005)).ok();
    }
    let denied = Command::new("sh")
        .arg("-c")
        .arg("echo x >> \"$1\"")
        .arg("sh")
        .arg(point.join("shared.txt"))
        .uid(user::UID)
        .gid(user::UID)
        .output()
        .unwrap();
    assert!(!denied.status.success());
}

#[test]
fn envs_a_lab_shares_are_found_in_path_order_and_served_read_only_to_its_users() {
    let Some(u) = User::new() else { return };
    // The lab's directory belongs to someone else (root here): readable, not writable, for the user.
    let lab = u.path("lab");
    fs::create_dir(&lab).unwrap();
    let pack = |name: &str, text: &str, into: &std::path::Path| {
        let src = u.path(&format!("src-{name}-{}", text.len()));
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("bin/what"), text).unwrap();
        let archive = into.join(format!("{name}.zip"));
        u.world.pack(&src, &archive, &["--prefix-dir", name]);
        archive
    };
    let tools = pack("tools", "the lab's tools\n", &lab);
    pack("same", "the lab's\n", &lab);
    let mine = u.mkdir("mine");
    let my_same = pack("same", "mine\n", &mine);
    user::chown_tree(&my_same);
    let envs = u.mkdir("envs");
    let search = format!("{}:{}", mine.display(), lab.display());
    let cf = |args: &[&str]| {
        u.command(common::bin())
            .args(args)
            .env("CONDA_FUSE_ARCHIVE_PATH", &search)
            .env("CONDA_FUSE_MOUNT_ROOT", &envs)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = cf(args);
        common::assert_success(&out, &args.join(" "));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let fails = |args: &[&str]| {
        let out = cf(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let (list, _) = ok(&["env-list"]);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(
        line("tools").contains(&format!("in {}, read-only for you", lab.display())),
        "{list}"
    );
    assert!(
        line("same").contains(&format!("hides the one in {}", lab.display())),
        "{list}"
    );
    let (json, _) = ok(&["env-list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("tools")["writable"], false);
    assert_eq!(row("same")["writable"], true);
    assert_eq!(row("same")["archive"], my_same.to_str().unwrap());
    let (names, _) = ok(&["env-list", "--names"]);
    assert_eq!(names, "same\ntools\n");

    // Activate mounts it read-only for this user, saying so; the user's own daemon serves it.
    let (prefix, note) = ok(&["activate", "tools"]);
    assert!(
        note.contains("which you cannot write; mounting it read-only"),
        "{note}"
    );
    let prefix = std::path::PathBuf::from(prefix.trim());
    assert_eq!(u.read(&prefix.join("bin/what")), b"the lab's tools\n");
    let (status, _) = ok(&["status", "tools"]);
    assert!(status.contains("read-only"), "{status}");
    ok(&["unmount", "tools"]);

    // Batch jobs use it as any env; the first directory wins for a name both have.
    let (out, _) = ok(&[
        "run",
        "tools",
        "--",
        "cat",
        &prefix.join("bin/what").to_string_lossy(),
    ]);
    assert_eq!(out, "the lab's tools\n");
    let (out, _) = ok(&[
        "run",
        "same",
        "--",
        "cat",
        &envs.join("same/same/bin/what").to_string_lossy(),
    ]);
    assert_eq!(out, "mine\n");

    // What needs to change it is refused, naming the directory; nothing is touched.
    let before = fs::read(&tools).unwrap();
    let err = fails(&["run", "--write", "tools", "--", "true"]);
    assert!(err.contains("in a directory you cannot write"), "{err}");
    assert!(err.contains(&lab.display().to_string()), "{err}");
    let err = fails(&["rm", "-y", "tools"]);
    assert!(err.contains("only its owner can delete it"), "{err}");
    let err = fails(&["create", "tools", "python"]);
    assert!(err.contains("exists"), "{err}");
    assert_eq!(fs::read(&tools).unwrap(), before);
    assert!(!common::is_mounted(&envs.join("tools")));
}

/// Another local user who makes `/tmp/conda-fuse-UID` first (batch jobs have no XDG_RUNTIME_DIR,
/// so that is where their mounts are recorded) stops nothing: the user's commands settle on a
/// name nobody could foresee, all of them on the same one.
#[test]
fn a_runtime_directory_another_user_took_first_blocks_no_mount() {
    let Some(u) = User::new() else { return };
    let usual = std::path::PathBuf::from(format!("/tmp/conda-fuse-{}", user::UID));
    if usual.exists() {
        eprintln!("skipped: {} exists on this machine", usual.display());
        return;
    }
    // Removes the taken name and whatever the user made beside it, even when the test fails.
    struct Taken(std::path::PathBuf);
    impl Drop for Taken {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
            for e in fs::read_dir("/tmp").unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("conda-fuse-{}-", user::UID)) {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
    fs::create_dir(&usual).unwrap();
    let _taken = Taken(usual.clone());
    nix::unistd::chown(&usual, Some(1.into()), Some(1.into())).unwrap();
    fs::set_permissions(&usual, fs::Permissions::from_mode(0o755)).unwrap();

    let src = u.mkdir("env");
    fs::write(src.join("f"), b"served\n").unwrap();
    user::chown_tree(&src);
    let archive = u.path("env.zip");
    pack_as(&u, &src, &archive);
    let point = u.mkdir("mnt");
    let cf = |args: &[&OsStr]| {
        u.command(common::bin())
            .args(args)
            .env_remove("CONDA_FUSE_RUNTIME_DIR")
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap()
    };
    let mounted = cf(&[
        "mount".as_ref(),
        archive.as_os_str(),
        point.as_os_str(),
        "--read-only".as_ref(),
    ]);
    let guard = scopeguard(&point);
    common::assert_success(&mounted, "mount with the usual runtime directory taken");
    let note = String::from_utf8_lossy(&mounted.stderr);
    assert!(note.contains("belongs to uid 1, not to you"), "{note}");
    assert_eq!(u.read(&point.join("f")), b"served\n");
    // The other user's directory got nothing of ours; ours is private.
    assert_eq!(fs::read_dir(&usual).unwrap().count(), 0);
    let ours: Vec<_> = fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("conda-fuse-{}-", user::UID))
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "one directory for all of the user's commands"
    );
    let md = fs::symlink_metadata(ours[0].path()).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (user::UID, 0o700));
    // Another command finds the mount's record there, and says the note only once.
    let status = cf(&["status".as_ref(), point.as_os_str()]);
    common::assert_success(&status, "status");
    assert!(String::from_utf8_lossy(&status.stdout).contains("read-only"));
    assert!(!String::from_utf8_lossy(&status.stderr).contains("belongs to uid 1"));
    let out = cf(&["unmount".as_ref(), point.as_os_str()]);
    common::assert_success(&out, "unmount");
    assert!(!common::is_mounted(&point));
    drop(guard);
}

/// Unmounts `point` (lazily, as root) if a test leaves it mounted.
fn scopeguard(point: &std::path::Path) -> impl Drop + '_ {
    struct Guard<'a>(&'a std::path::Path);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if common::is_mounted(self.0) {
                let _ = Command::new("umount").arg("-l").arg(self.0).status();
            }
        }
    }
    Guard(point)
}

/// The directory XDG_RUNTIME_DIR names belongs to the login manager: conda-fuse uses it where it
/// is the user's, and never changes its mode.
#[test]
fn the_directory_xdg_runtime_dir_names_is_never_changed() {
    let Some(u) = User::new() else { return };
    let xdg = u.mkdir("xdg");
    fs::set_permissions(&xdg, fs::Permissions::from_mode(0o755)).unwrap();
    let out = u
        .command(common::bin())
        .arg("paths")
        .env_remove("CONDA_FUSE_RUNTIME_DIR")
        .env("XDG_RUNTIME_DIR", &xdg)
        .output()
        .unwrap();
    common::assert_success(&out, "paths");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&xdg.join("conda-fuse").display().to_string()),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fs::metadata(&xdg).unwrap().mode() & 0o7777, 0o755);
}

/// A lab's env: root's writer died with unsaved changes (only root can read them: they are in
/// root's private state directory). The user's writable mount does not strand them: it is
/// refused naming whose they are, root's next writable mount recovers and saves them, and after
/// that, or with --steal-lock, the user writes.
#[test]
fn a_takeover_by_another_user_strands_no_unsaved_changes() {
    let Some(u) = User::new() else { return };
    // The lab's directory: setgid, shared with the group both are in (nogroup here).
    let lab = u.path("lab");
    fs::create_dir(&lab).unwrap();
    nix::unistd::chown(&lab, Some(0.into()), Some(user::UID.into())).unwrap();
    fs::set_permissions(&lab, fs::Permissions::from_mode(0o2770)).unwrap();
    let src = u.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"v1\n").unwrap();
    let archive = lab.join("tools.zip");
    u.world.pack(&src, &archive, &[]);
    nix::unistd::chown(&archive, Some(0.into()), Some(user::UID.into())).unwrap();
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o660)).unwrap();
    let root = |args: &[&OsStr]| as_root(&u, args);
    let root_point = u.path("root-mnt");
    fs::create_dir(&root_point).unwrap();
    let _root_guard = scopeguard(&root_point);
    let root_dies_with_a_change = |text: &[u8]| {
        let out = root(&[
            "mount".as_ref(),
            archive.as_os_str(),
            root_point.as_os_str(),
        ]);
        common::assert_success(&out, "root's writable mount");
        fs::write(root_point.join("f"), text).unwrap();
        let out = root(&["status".as_ref(), root_point.as_os_str(), "--json".as_ref()]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let pid = status["pid"].as_i64().unwrap() as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "daemon {pid} lives on"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = Command::new("umount").arg("-l").arg(&root_point).status();
    };
    root_dies_with_a_change(b"root's change\n");

    let point = u.mkdir("mnt");
    let _guard = scopeguard(&point);
    let mount = |extra: &[&str]| {
        let mut c = u.command(common::bin());
        c.args([OsStr::new("mount"), archive.as_os_str(), point.as_os_str()]);
        c.args(extra);
        c.output().unwrap()
    };
    let refused = mount(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("left changes unsaved that only user root can recover")
            && err.contains("--steal-lock"),
        "{err}"
    );
    assert!(!common::is_mounted(&point));

    // Root comes back: the changes are recovered and saved.
    let out = root(&[
        "mount".as_ref(),
        archive.as_os_str(),
        root_point.as_os_str(),
    ]);
    common::assert_success(&out, "root's second writable mount");
    assert_eq!(fs::read(root_point.join("f")).unwrap(), b"root's change\n");
    common::assert_success(
        &root(&["unmount".as_ref(), root_point.as_os_str()]),
        "root's unmount",
    );
    let out = mount(&[]);
    common::assert_success(&out, "the user's writable mount after root saved");
    assert_eq!(u.read(&point.join("f")), b"root's change\n");
    u.ok([OsStr::new("unmount"), point.as_os_str()]);

    // Or the user takes it over knowingly: told what stays behind.
    root_dies_with_a_change(b"root's second change\n");
    let out = mount(&["--steal-lock"]);
    common::assert_success(&out, "the user's --steal-lock");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("the changes root left unsaved stay in root's state directory"),
        "{note}"
    );
    u.ok([OsStr::new("unmount"), point.as_os_str()]);
}

/// conda-fuse as root beside the user, with a state and runtime directory of its own.
fn as_root(u: &User, args: &[&OsStr]) -> std::process::Output {
    u.world
        .cmd(args)
        .env("CONDA_FUSE_STATE_DIR", u.path("root-state"))
        .env("CONDA_FUSE_RUNTIME_DIR", u.path("root-runtime"))
        .output()
        .unwrap()
}

/// A lab's snapshots are the lab's: the version of a member that another member's save kept is
/// never pinned where only the saver may enter (it counts on the member's quota): every member
/// sees it, rolls back to it and may delete it.
#[test]
fn a_labs_snapshots_are_shared_with_the_lab() {
    let Some(u) = User::new() else { return };
    let lab = u.path("lab");
    fs::create_dir(&lab).unwrap();
    nix::unistd::chown(&lab, Some(0.into()), Some(user::UID.into())).unwrap();
    fs::set_permissions(&lab, fs::Permissions::from_mode(0o2770)).unwrap();
    let src = u.mkdir("src");
    fs::write(src.join("f"), b"v1\n").unwrap();
    user::chown_tree(&src);
    let archive = lab.join("tools.zip");
    pack_as(&u, &src, &archive);
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o664)).unwrap();

    // Root, another member, saves a change: the user's version is kept as a snapshot.
    let root_point = u.path("root-mnt");
    fs::create_dir(&root_point).unwrap();
    let _root_guard = scopeguard(&root_point);
    let mount = [
        OsStr::new("mount"),
        archive.as_os_str(),
        root_point.as_os_str(),
    ];
    common::assert_success(&as_root(&u, &mount), "root's writable mount");
    fs::write(root_point.join("f"), b"v2\n").unwrap();
    let unmount = [OsStr::new("unmount"), root_point.as_os_str()];
    common::assert_success(&as_root(&u, &unmount), "root's save");
    let snaps = lab.join(".snapshots/tools.zip");
    let md = fs::metadata(&snaps).unwrap();
    assert_eq!((md.mode() & 0o7777, md.gid()), (0o2770, user::UID));
    let kept: Vec<_> = fs::read_dir(&snaps).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].metadata().unwrap().uid(),
        user::UID,
        "the user's version"
    );

    let as_user =
        |args: &[&str]| String::from_utf8_lossy(&u.ok_in_lab(&lab, args).stdout).into_owned();
    let history = as_user(&["history", "tools"]);
    assert_eq!(history.lines().count(), 3, "{history}");
    as_user(&["rollback", "tools"]);
    assert_eq!(fs::metadata(&archive).unwrap().uid(), user::UID);
    assert!(as_user(&["prune", "tools", "--keep", "0"]).contains("0 kept"));
    assert_eq!(fs::read_dir(&snaps).unwrap().count(), 0);
}
