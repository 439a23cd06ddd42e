//! A home directory on a network filesystem (the stand-in of `tests/support/netfs.sh`: an SFTP
//! server and sshfs, which like NFS answers renameat2 flags with EINVAL, keeps whole seconds, makes
//! up inode numbers and keeps files removed while open as `.fuse_hidden*`): the commands that take
//! paths, `doctor` naming the filesystem and what it measured, two nodes creating one name at
//! once, and archives on a filesystem that refuses hard links. The stories of the other suites run
//! there too (`*_on_a_network_filesystem`).

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::conda::EnvWorld;
use common::node::{self, Node, both};
use common::{World, is_mounted};

fn netfs_world() -> Option<World> {
    if common::skip_without_mounts() {
        return None;
    }
    World::on_netfs()
}

/// Every name below `dir` (recursively) that a network filesystem's client gives a file removed
/// while open.
fn silly_names(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| conda_fuse::hostfs::is_silly_renamed(e.file_name()))
        .map(|e| e.path().to_owned())
        .collect()
}

#[test]
fn archives_by_path_and_doctor_on_a_network_filesystem() {
    let Some(w) = netfs_world() else { return };
    let src = w.local_path("src");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("lib/mod.py"), b"x = 1\n").unwrap();
    let archive = w.path("archives/env.zip");
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    w.pack(&src, &archive, &[]);

    let mount = w.mount_with(&archive, "mnt", |_| {});
    let mp = mount.point.clone();
    std::fs::write(mount.path("new.txt"), b"new\n").unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&w.ok([OsStr::new("status"), mp.as_os_str(), OsStr::new("--json")]))
            .unwrap();
    assert!(status["unsaved_changes"].as_u64().unwrap() > 0, "{status}");
    assert!(
        w.ok([OsStr::new("commit"), mp.as_os_str()])
            .contains("saved")
    );
    std::fs::write(mount.path("later.txt"), b"later\n").unwrap();
    w.ok([OsStr::new("unmount"), mp.as_os_str()]);
    assert!(!is_mounted(&mp));
    drop(mount);

    let ro = w.mount_ro(&archive, "ro");
    assert_eq!(std::fs::read(ro.path("new.txt")).unwrap(), b"new\n");
    assert_eq!(std::fs::read(ro.path("later.txt")).unwrap(), b"later\n");
    drop(ro);

    // A clean unmount leaves no upper layer, and nothing removed while open lingers.
    let upper = w.state_dir().join("upper");
    let left: Vec<_> = std::fs::read_dir(&upper)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", upper.display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !silly_names(w.dir.path()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(silly_names(w.dir.path()), Vec::<PathBuf>::new());

    // doctor names the filesystem of each place and what a probe of the archives measured.
    let out = w
        .cmd(["doctor"])
        .env("CONDA_FUSE_ARCHIVE_PATH", archive.parent().unwrap())
        .env("CONDA_FUSE_MOUNT_ROOT", w.path("envs"))
        .env("HOME", w.path("home"))
        .output()
        .unwrap();
    let text = both(&out);
    for expected in [
        "sshfs (shared with other nodes)",
        "renameat2 answers EINVAL here, so creates use link + unlink",
        "hard links into .snapshots/ work here",
        "node-local: the heartbeat decides",
        "whole seconds of mtimes here",
        "`.fuse_hiddenXXXX` until closed",
    ] {
        assert!(text.contains(expected), "want {expected:?} in:\n{text}");
    }
    let paths = w.ok(["paths"]);
    assert!(paths.contains(w.state_dir().to_str().unwrap()), "{paths}");
}

/// The world's environment for a command run on a node (which starts from an empty one).
fn with_conda(w: &EnvWorld, mut c: Command) -> Command {
    let mut probe = Command::new("true");
    w.apply_env(&mut probe);
    for (k, v) in probe.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    // The node's own runtime directory (its XDG_RUNTIME_DIR), not the world's.
    c.env_remove("CONDA_FUSE_RUNTIME_DIR");
    c
}

/// Two nodes create the same environment at the same moment: one creates it, the other is told
/// another create is running; neither removes or replaces what the other made.
#[test]
fn two_nodes_creating_one_name_at_once_never_step_on_each_other() {
    let Some(world) = netfs_world() else { return };
    if !node::available() {
        eprintln!("skipping: cannot make mount + pid + uts namespaces here (unshare)");
        return;
    }
    let w = EnvWorld::in_world(world, "envs");
    let nodes = [
        Node::boot(&w.world, "login1"),
        Node::boot(&w.world, "login2"),
    ];
    let runs: Vec<_> = nodes
        .iter()
        .map(|n| {
            with_conda(&w, n.cf(["create", "dup", "-y", "python"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = runs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let texts: Vec<String> = outs.iter().map(both).collect();
    let won: Vec<bool> = outs.iter().map(|o| o.status.success()).collect();
    assert_eq!(
        won.iter().filter(|&&ok| ok).count(),
        1,
        "exactly one create wins:\n{}",
        texts.join("\n---\n")
    );
    let lost = &texts[won.iter().position(|ok| !ok).unwrap()];
    assert!(
        lost.contains("another conda-fuse-create dup is running")
            || lost.contains("already exists"),
        "{lost}"
    );
    // The winner's env is whole, and nothing else of either create is left.
    let out = with_conda(
        &w,
        nodes[1].cf(["run", "dup", "--", "python", "-c", "print(6*7)"]),
    )
    .output()
    .unwrap();
    assert!(both(&out).contains("42"), "{}", both(&out));
    let names: Vec<String> = std::fs::read_dir(&w.archives)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !conda_fuse::hostfs::is_silly_renamed(OsStr::new(n)))
        .collect();
    assert!(
        names.iter().all(|n| n == "dup.zip" || n == "dup.zip.lock"),
        "{names:?}"
    );
    let again = with_conda(&w, nodes[0].cf(["create", "dup", "-y", "python"]))
        .output()
        .unwrap();
    assert!(!again.status.success());
}

/// A second client of the stand-in that refuses hard links (`-o disable_hardlink`), unmounted
/// however the test ends.
struct NoLinks(PathBuf);

impl NoLinks {
    fn mount(w: &World) -> NoLinks {
        let at = w.local_path("nolinks");
        std::fs::create_dir_all(&at).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/netfs.sh");
        common::run(
            Command::new(script)
                .arg("client")
                .arg(w.netfs.as_ref().unwrap())
                .arg(&at)
                .args(["-o", "disable_hardlink"]),
        );
        NoLinks(at)
    }

    /// Where `world`'s shared directory is seen through this client.
    fn of(&self, w: &World) -> PathBuf {
        let state = w.netfs.as_ref().unwrap();
        self.0
            .join(w.dir.path().strip_prefix(state.join("home")).unwrap())
    }
}

impl Drop for NoLinks {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
        if is_mounted(&self.0) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
        // The world's temporary directory could not delete its mount point while it was mounted
        // (it goes first: its mounts use archives here); what is left goes now.
        let _ = std::fs::remove_dir(&self.0);
        if let Some(world) = self.0.parent() {
            let _ = std::fs::remove_dir(world);
        }
    }
}

/// Archives on a filesystem without hard links: creates still never replace (an exclusive claim,
/// then a rename), saves keep no snapshots and say so once, doctor says why.
#[test]
fn archives_where_hard_links_are_refused() {
    let Some(world) = netfs_world() else { return };
    // Declared first, so that it goes last: the mounts of the world use archives on it.
    let nolinks = NoLinks::mount(&world);
    let mut w = EnvWorld::in_world(world, "envs");
    w.archives = nolinks.of(&w.world).join("archives");
    let run = |args: &[&str]| {
        let out = w.cf(args).output().unwrap();
        (out.status.success(), both(&out))
    };
    let (ok, text) = run(&["create", "lone", "-y", "python"]);
    assert!(ok, "{text}");
    assert!(w.archives.join("lone.zip").is_file());
    let (ok, text) = run(&["install", "lone", "-y", "six"]);
    assert!(ok, "{text}");
    let note = "saves keep no snapshots here";
    assert!(text.contains(note) && text.contains("said once"), "{text}");
    let (ok, text) = run(&["install", "lone", "-y", "idna"]);
    assert!(ok && !text.contains(note), "said once only:\n{text}");
    let (_, history) = run(&["history", "lone"]);
    assert!(history.contains("(no snapshots"), "{history}");
    let (_, doctor) = run(&["doctor"]);
    assert!(
        doctor.contains("refuses hard links into another directory here"),
        "{doctor}"
    );
    let (ok, text) = run(&["rm", "lone", "--yes"]);
    assert!(ok, "{text}");
    drop(w);
    drop(nolinks);
}

/// A runtime directory set to a place on the network filesystem (sshfs cannot hold Unix
/// sockets): the mount fails naming the filesystem and what to set instead, and leaves nothing.
#[test]
fn a_runtime_directory_on_a_network_filesystem_is_named_with_the_fix() {
    let Some(w) = netfs_world() else { return };
    let src = w.local_path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let archive = w.path("env.zip");
    w.pack(&src, &archive, &[]);
    let mp = w.path("mnt");
    std::fs::create_dir_all(&mp).unwrap();
    let out = w
        .cmd([OsStr::new("mount"), archive.as_os_str(), mp.as_os_str()])
        .env("CONDA_FUSE_RUNTIME_DIR", w.path("runtime"))
        .output()
        .unwrap();
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("(the runtime directory is on sshfs)")
            && text.contains("hint: set CONDA_FUSE_RUNTIME_DIR to a node-local directory"),
        "{text}"
    );
    assert!(!is_mounted(&mp));
}
