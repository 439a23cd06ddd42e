//! Snapshots kept by saves, and `history`, `diff`, `rollback`, `prune` on them (real mounts).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::World;

struct Envs {
    w: World,
    archives: PathBuf,
    mounts: PathBuf,
}

impl Envs {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.w.cmd(args);
        c.env("CONDA_FUSE_ARCHIVE_PATH", &self.archives)
            .env("CONDA_FUSE_MOUNT_ROOT", &self.mounts);
        c
    }
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }
    fn ok_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut c = self.cmd(args);
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        common::assert_success(&out, &args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
    fn prefix(&self) -> PathBuf {
        self.mounts.join("demo/demo")
    }
    /// Mounts writable, changes what `change` does, saves and unmounts.
    fn save(&self, env: &[(&str, &str)], change: impl FnOnce(&Path)) {
        self.ok_with(&["activate", "demo"], env);
        change(&self.prefix());
        self.ok_with(&["unmount", "demo"], env);
    }
}

impl Drop for Envs {
    fn drop(&mut self) {
        common::force_unmount(&self.w, &self.mounts.join("demo"));
    }
}

/// A world with the env `demo`, whose `version.txt` says v1.
fn demo_at_v1() -> Envs {
    let w = World::new();
    let e = Envs {
        archives: w.path("archives"),
        mounts: w.path("envs"),
        w,
    };
    let src = e.w.path("src");
    fs::create_dir_all(src.join("conda-meta")).unwrap();
    fs::write(src.join("version.txt"), b"v1\n").unwrap();
    fs::create_dir_all(&e.archives).unwrap();
    let archive = e.archives.join("demo.zip");
    e.w.pack(&src, &archive, &["--prefix-dir", "demo"]);
    e
}

fn meta(prefix: &Path, pkg: &str) -> PathBuf {
    prefix.join("conda-meta").join(format!("{pkg}.json"))
}

#[test]
fn saves_keep_snapshots_that_history_diff_rollback_and_prune_work_on() {
    if common::skip_without_mounts() {
        return;
    }
    snapshots_story(World::new());
}

/// The same with archives and state on a network filesystem (sshfs: no renameat2 flags, inode
/// numbers made up by the client, mtimes in whole seconds).
#[test]
fn snapshots_work_with_the_home_on_a_network_filesystem() {
    if common::skip_without_mounts() {
        return;
    }
    if let Some(w) = World::on_netfs() {
        snapshots_story(w);
    }
}

fn snapshots_story(w: World) {
    let e = Envs {
        archives: w.path("archives"),
        mounts: w.path("envs"),
        w,
    };
    let src = e.w.path("src");
    fs::create_dir_all(src.join("conda-meta")).unwrap();
    for pkg in ["numpy-1.0-py_0", "six-1.0-0", "python-3.11.7-0"] {
        fs::write(meta(&src, pkg), b"{}").unwrap();
    }
    fs::write(src.join("version.txt"), b"v1\n").unwrap();
    fs::create_dir_all(&e.archives).unwrap();
    let archive = e.archives.join("demo.zip");
    e.w.pack(&src, &archive, &["--prefix-dir", "demo"]);
    assert!(e.ok(&["history", "demo"]).contains("(no snapshots"));

    // An install: six removed, rich added, numpy updated.
    e.save(&[], |p| {
        fs::remove_file(meta(p, "six-1.0-0")).unwrap();
        fs::remove_file(meta(p, "numpy-1.0-py_0")).unwrap();
        fs::write(meta(p, "numpy-2.0-py_0"), b"{}").unwrap();
        fs::write(meta(p, "rich-13.0-0"), b"{}").unwrap();
        fs::write(p.join("version.txt"), b"v2\n").unwrap();
    });
    let history = e.ok(&["history", "demo"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(lines[1].starts_with("now "), "{history}");
    assert!(
        lines[1].contains("+rich 13.0, -six 1.0, numpy 1.0 -> 2.0"),
        "{history}"
    );
    assert!(
        lines[2].starts_with("1 ") && lines[2].contains("3 packages"),
        "{history}"
    );
    assert_eq!(
        e.ok(&["diff", "demo"]),
        "+ rich 13.0\n- six 1.0\n~ numpy 1.0 -> 2.0\n"
    );
    assert!(e.ok(&["env-list"]).contains("1 snapshot: +"));

    // By default one is kept; CONDA_FUSE_SNAPSHOTS=3 keeps more.
    e.save(&[], |p| fs::write(p.join("version.txt"), b"v3\n").unwrap());
    assert_eq!(e.ok(&["history", "demo"]).lines().count(), 3);
    e.save(&[("CONDA_FUSE_SNAPSHOTS", "3")], |p| {
        fs::write(p.join("version.txt"), b"v4\n").unwrap()
    });
    assert_eq!(e.ok(&["history", "demo"]).lines().count(), 4);

    // A link an older conda-fuse's crash left (named by mtime, told by inode) is never listed.
    let snaps = e.archives.join(".snapshots/demo.zip");
    if e.w.netfs.is_none() {
        fs::hard_link(&archive, snaps.join("99999999999999999999.zip")).unwrap();
        assert_eq!(e.ok(&["history", "demo"]).lines().count(), 4);
        fs::remove_file(snaps.join("99999999999999999999.zip")).unwrap();
    }

    // Rollback: refused while mounted; then version 2 (v3) comes back, and v4 is snapshot 1.
    e.ok(&["activate", "demo"]);
    let err = e.fails(&["rollback", "demo", "--to", "2"]);
    assert!(err.contains("unmount it first"), "{err}");
    e.ok(&["unmount", "demo"]);
    let err = e.fails(&["rollback", "demo", "--to", "7"]);
    assert!(err.contains("there is no snapshot 7"), "{err}");
    let out = e.ok_with(
        &["rollback", "demo", "--to", "2"],
        &[("CONDA_FUSE_SNAPSHOTS", "3")],
    );
    assert!(out.contains("rolled 'demo' back"), "{out}");
    assert!(
        out.contains("the version it replaced is snapshot 1"),
        "{out}"
    );
    e.ok(&["activate", "demo"]);
    assert_eq!(fs::read(e.prefix().join("version.txt")).unwrap(), b"v2\n");
    e.ok(&["unmount", "demo"]);
    let out = e.ok_with(&["rollback", "demo"], &[("CONDA_FUSE_SNAPSHOTS", "3")]);
    // v2 was saved before v3, so it sorts after it: the message says which number it got.
    assert!(
        out.contains("is snapshot 2 (conda-fuse rollback demo --to 2"),
        "{out}"
    );
    e.ok(&["activate", "demo"]);
    assert_eq!(
        fs::read(e.prefix().join("version.txt")).unwrap(),
        b"v4\n",
        "undone"
    );
    e.ok(&["unmount", "demo"]);

    // An old version runs read-only beside the current one, at a mount point of its own.
    let old = e.mounts.join("demo@1/demo/version.txt");
    let out = e.ok(&["run", "demo@1", "--", "cat", old.to_str().unwrap()]);
    assert_eq!(out, "v3\n");
    assert!(!common::is_mounted(&e.mounts.join("demo@1")));
    let err = e.fails(&["run", "demo@9", "--", "true"]);
    assert!(err.contains("there is no snapshot 'demo@9'"), "{err}");
    let err = e.fails(&["run", "--write", "demo@1", "--", "true"]);
    assert!(err.contains("is a snapshot: it runs read-only"), "{err}");

    // A save killed between its snapshot link and its rename leaves a link of the current
    // archive: never listed, and the save that recovers the change keeps it instead of a copy.
    // Nothing was pruned yet (with the default of one kept, the older ones would have gone
    // although the archive they were kept for is still the current one).
    let listed = e.ok(&["history", "demo"]).lines().count();
    assert!(listed > 3, "more than one snapshot to lose");
    let keep = &[("CONDA_FUSE_SNAPSHOTS", "9")];
    e.ok_with(
        &["activate", "demo"],
        &[("CONDA_FUSE_FAULT", "save:before-rename")],
    );
    fs::write(e.prefix().join("version.txt"), b"v6\n").unwrap();
    let err = e.fails(&["unmount", "demo"]);
    assert!(err.contains("did not answer"), "{err}");
    assert_eq!(e.ok(&["history", "demo"]).lines().count(), listed);
    e.ok(&["unmount", "demo"]); // the stale mount
    e.save(keep, |p| {
        assert_eq!(
            fs::read(p.join("version.txt")).unwrap(),
            b"v6\n",
            "recovered"
        )
    });
    assert_eq!(e.ok(&["history", "demo"]).lines().count(), listed + 1);
    assert_eq!(fs::read_dir(&snaps).unwrap().count(), listed + 1 - 2);

    // Prune, then rm takes the snapshots with the env.
    assert!(e.ok(&["prune", "demo", "--keep", "1"]).contains("1 kept"));
    assert!(e.ok(&["prune", "demo"]).contains("0 kept"));
    assert!(e.ok(&["history", "demo"]).contains("(no snapshots"));
    e.save(&[], |p| fs::write(p.join("version.txt"), b"v5\n").unwrap());
    e.ok(&["rm", "-y", "demo"]);
    assert!(!e.archives.join(".snapshots").exists());
}

/// `NAME.zip` may be a symlink to the archive elsewhere (a scratch or project directory): the
/// archive has one identity, so its lock, upper layer and snapshots are the target's whichever
/// name reaches it, and history, `run NAME@N`, rollback and rm all find them.
#[test]
fn a_symlinked_archive_has_one_lock_one_upper_layer_and_one_snapshot_folder() {
    if common::skip_without_mounts() {
        return;
    }
    let e = demo_at_v1();
    let elsewhere = e.w.path("scratch");
    fs::create_dir_all(&elsewhere).unwrap();
    let real = elsewhere.join("real.zip");
    fs::rename(e.archives.join("demo.zip"), &real).unwrap();
    std::os::unix::fs::symlink(&real, e.archives.join("demo.zip")).unwrap();

    e.save(&[], |p| fs::write(p.join("version.txt"), b"v2\n").unwrap());
    // Everything keyed by the archive is beside the target.
    assert!(elsewhere.join("real.zip.lock").exists());
    assert!(!e.archives.join("demo.zip.lock").exists());
    assert!(!e.archives.join(".snapshots").exists());
    let history = e.ok(&["history", "demo"]);
    assert_eq!(history.lines().count(), 3, "{history}");
    let old = e.mounts.join("demo@1/demo/version.txt");
    assert_eq!(
        e.ok(&["run", "demo@1", "--", "cat", old.to_str().unwrap()]),
        "v1\n"
    );

    // A writable mount through the symlink holds the one lock: rollback waits for it.
    e.ok(&["activate", "demo"]);
    assert!(e.ok(&["env-list"]).contains("rw (pid"));
    let err = e.fails(&["rollback", "demo"]);
    assert!(err.contains("unmount it first"), "{err}");
    e.ok(&["unmount", "demo"]);
    let out = e.ok(&["rollback", "demo"]);
    assert!(
        out.contains("the version it replaced is snapshot 1"),
        "{out}"
    );
    let now = e.mounts.join("demo/demo/version.txt");
    assert_eq!(
        e.ok(&["run", "demo", "--", "cat", now.to_str().unwrap()]),
        "v1\n"
    );

    // rm takes the archive it names, the name, and everything beside the target.
    let out = e.ok(&["rm", "demo", "--yes"]);
    assert!(out.contains("deleted 'demo'"), "{out}");
    let left: Vec<_> = fs::read_dir(&elsewhere)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left beside the target: {left:?}");
    assert!(e.archives.join("demo.zip").symlink_metadata().is_err());
}

/// Who may read an environment is decided on its archive (a `chmod 600`, a lab's group): saves
/// keep its mode and group, and a rollback gives the version coming back the current ones, not
/// those it had when it was replaced.
#[test]
fn saves_and_rollbacks_keep_the_archives_mode_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if common::skip_without_mounts() {
        return;
    }
    let e = demo_at_v1();
    let archive = e.archives.join("demo.zip");
    e.save(&[], |p| fs::write(p.join("version.txt"), b"v2\n").unwrap());
    // Now the owner decides: private, and the lab's group (gid 1, "daemon" on Debian).
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&archive, None, Some(1)).unwrap();
    let access = || {
        let m = fs::metadata(&archive).unwrap();
        (m.mode() & 0o7777, m.gid())
    };
    e.save(&[], |p| fs::write(p.join("version.txt"), b"v3\n").unwrap());
    assert_eq!(access(), (0o640, 1), "after a save");
    e.ok(&["rollback", "demo"]);
    assert_eq!(access(), (0o640, 1), "after a rollback");
    let now = e.mounts.join("demo/demo/version.txt");
    assert_eq!(
        e.ok(&["run", "demo", "--", "cat", now.to_str().unwrap()]),
        "v2\n"
    );
}

/// A `.snapshots` a lab member planted as a symlink to another directory of mine: saves, prune and
/// rm never follow it (they would link into it, prune and delete my snapshots of another archive
/// there); the save goes on without a snapshot.
#[test]
fn a_planted_snapshots_symlink_is_never_followed() {
    if common::skip_without_mounts() {
        return;
    }
    let e = demo_at_v1();
    let mine = e.w.path("project/.snapshots/demo.zip");
    fs::create_dir_all(&mine).unwrap();
    let names = [
        "00000000000000000001-10-deadbeef-1.zip",
        "00000000000000000002-10-deadbeef-2.zip",
    ];
    for n in names {
        fs::write(mine.join(n), b"my older version").unwrap();
    }
    std::os::unix::fs::symlink(
        e.w.path("project/.snapshots"),
        e.archives.join(".snapshots"),
    )
    .unwrap();
    let untouched = || {
        let mut left: Vec<_> = fs::read_dir(&mine)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, names);
    };
    let out = e.cmd(&["activate", "demo"]).output().unwrap();
    common::assert_success(&out, "activate");
    fs::write(e.prefix().join("version.txt"), b"v2\n").unwrap();
    let out = e.cmd(&["unmount", "demo"]).output().unwrap();
    common::assert_success(&out, "the save");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is a symlink"), "{said}");
    untouched();
    assert!(e.ok(&["history", "demo"]).contains("(no snapshots"));
    assert!(
        e.fails(&["prune", "demo", "--keep", "0"])
            .contains("is a symlink")
    );
    untouched();
    e.ok(&["rm", "demo", "--yes"]);
    untouched();
}
