//! Test support: isolated state and temporary directories per test, real mounts that are always
//! unmounted (even when the test fails), fixture trees with everything a conda environment holds,
//! and a tree comparison that reports every difference.
#![allow(dead_code)]

pub mod conda;
pub mod fixture;
pub mod jupyter;
pub mod kernel;
pub mod model;
pub mod node;
pub mod tree;
pub mod user;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_conda-fuse")
}

/// A test's private world: a temporary directory holding its state directory and scratch space.
/// `dir` is what the nodes of a cluster would share (archives, state, homes): local, or on the
/// network-filesystem stand-in (`on_netfs`); what belongs to one node (the runtime directory,
/// TMPDIR) is always on local disk.
pub struct World {
    pub dir: tempfile::TempDir,
    /// This node's own directory, when `dir` is shared.
    local: Option<tempfile::TempDir>,
    /// The stand-in's state directory (`tests/support/netfs.sh`), when `dir` is on it.
    pub netfs: Option<PathBuf>,
}

impl World {
    pub fn new() -> World {
        World {
            dir: local_tempdir(),
            local: None,
            netfs: None,
        }
    }

    /// A world whose shared part is on the network-filesystem stand-in that tests/run-all.sh
    /// starts (CONDA_FUSE_TEST_NETFS); None, saying why, when there is none.
    pub fn on_netfs() -> Option<World> {
        let Some(state) = std::env::var_os("CONDA_FUSE_TEST_NETFS").map(PathBuf::from) else {
            eprintln!(
                "skipped: no network-filesystem stand-in (CONDA_FUSE_TEST_NETFS is unset; \
                 tests/run-all.sh starts one as root)"
            );
            return None;
        };
        let home = state.join("home");
        assert!(
            is_mounted(&home),
            "CONDA_FUSE_TEST_NETFS={} but nothing is mounted at {} (tests/support/netfs.sh up)",
            state.display(),
            home.display()
        );
        Some(World {
            dir: tempfile::Builder::new()
                .prefix("t-")
                .tempdir_in(&home)
                .expect("temp dir on the stand-in"),
            local: Some(local_tempdir()),
            netfs: Some(state),
        })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// This node's own scratch directory (TMPDIR, runtime directories).
    pub fn local_path(&self, rel: &str) -> PathBuf {
        self.local
            .as_ref()
            .map_or(self.dir.path(), |l| l.path())
            .join(rel)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// This world's stand-in for the node-local runtime directory (records, sockets, runs).
    pub fn runtime_dir(&self) -> PathBuf {
        self.local_path("runtime")
    }

    /// TMPDIR: node-local.
    pub fn tmp_dir(&self) -> PathBuf {
        self.local_path("")
    }

    /// `conda-fuse ARGS` with this world's state directory.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(bin());
        c.args(args)
            .env("CONDA_FUSE_STATE_DIR", self.state_dir())
            .env("CONDA_FUSE_RUNTIME_DIR", self.runtime_dir())
            // Runs unmount at once, so that a test ends every process it started.
            .env("CONDA_FUSE_RUN_LINGER", "0")
            .env("TMPDIR", self.tmp_dir());
        c
    }

    /// Runs `conda-fuse ARGS`, asserting success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd(args).output().expect("run conda-fuse");
        assert_success(&out, "conda-fuse");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `conda-fuse ARGS`, asserting failure; returns stderr.
    pub fn fails<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd(args).output().expect("run conda-fuse");
        assert!(
            !out.status.success(),
            "expected failure, got success; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn pack(&self, dir: &Path, archive: &Path, extra: &[&str]) {
        let mut args: Vec<&OsStr> = vec![
            "pack".as_ref(),
            dir.as_os_str(),
            "-o".as_ref(),
            archive.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| OsStr::new(*s)));
        self.ok(args);
    }

    /// Mounts `archive` read-only at a fresh directory; unmounted when the guard drops.
    pub fn mount_ro(&self, archive: &Path, name: &str) -> Mount<'_> {
        let point = self.path(name);
        std::fs::create_dir_all(&point).unwrap();
        self.ok([
            "mount".as_ref(),
            archive.as_os_str(),
            point.as_os_str(),
            "--read-only".as_ref(),
        ]);
        Mount { world: self, point }
    }
}

impl World {
    /// Mounts `archive` writable at a fresh directory `name`, the mount command first given to
    /// `configure` (extra arguments, environment, limits); unmounted when the guard drops.
    pub fn mount_with(
        &self,
        archive: &Path,
        name: &str,
        configure: impl FnOnce(&mut Command),
    ) -> Mount<'_> {
        let point = self.path(name);
        std::fs::create_dir_all(&point).unwrap();
        let mut cmd = self.cmd(["mount".as_ref(), archive.as_os_str(), point.as_os_str()]);
        configure(&mut cmd);
        assert_success(&cmd.output().unwrap(), "conda-fuse mount");
        Mount { world: self, point }
    }
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs an external tool, asserting success, with a hint when it is missing.
pub fn run(cmd: &mut Command) -> Output {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {name}: {e}; the tests need zip, unzip, fuse-zip, python3 and fuse3 (see .ci/run)")
    });
    assert_success(&out, &name);
    out
}

/// A mount that is unmounted when dropped, whatever happened in between.
pub struct Mount<'w> {
    pub world: &'w World,
    pub point: PathBuf,
}

impl Mount<'_> {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.point.join(rel)
    }
}

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        force_unmount(self.world, &self.point);
    }
}

/// Unmounts through conda-fuse, falling back to a lazy detach so nothing leaks.
pub fn force_unmount(world: &World, point: &Path) {
    let ok = world
        .cmd(["unmount".as_ref(), point.as_os_str()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && is_mounted(point) {
        let _ = Command::new("umount").arg("-l").arg(point).status();
        let _ = Command::new("fusermount3").arg("-uz").arg(point).status();
    }
}

/// Under target/ rather than /tmp, which may be a small tmpfs.
fn local_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("t-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

pub fn is_mounted(point: &Path) -> bool {
    let canonical = point.canonicalize().unwrap_or_else(|_| point.to_owned());
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let needle = canonical.to_string_lossy().replace(' ', "\\040");
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(needle.as_str()))
}

/// A foreign FUSE mount (fuse-zip) that is unmounted when dropped.
pub struct ForeignMount {
    pub point: PathBuf,
}

impl Drop for ForeignMount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.point)
            .status();
        if is_mounted(&self.point) {
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
    }
}

/// Mounts `archive` with fuse-zip (read-only unless `writable`), as the old bash tool did.
pub fn fuse_zip(archive: &Path, point: &Path, writable: bool) -> ForeignMount {
    std::fs::create_dir_all(point).unwrap();
    let mut cmd = Command::new("fuse-zip");
    if !writable {
        cmd.arg("-r");
    }
    run(cmd.arg(archive).arg(point));
    ForeignMount {
        point: point.to_owned(),
    }
}

/// Unmounts a fuse-zip mount and waits until fuse-zip has written the archive.
pub fn fuse_zip_unmount(m: ForeignMount) {
    run(Command::new("fusermount3").arg("-u").arg(&m.point));
    // fuse-zip writes the archive after the unmount returns; wait for its process to exit.
    for _ in 0..600 {
        let busy = Command::new("pgrep")
            .arg("-f")
            .arg(format!(
                "fuse-zip.*{}",
                regex_escape(&m.point.display().to_string())
            ))
            .output();
        if busy.map(|o| o.stdout.is_empty()).unwrap_or(true) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::mem::forget(m);
}

/// `s` as a literal in a POSIX extended regular expression (pgrep's patterns).
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\^$.|?*+()[]{}".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// A plain (non-FUSE) mount a test made (tmpfs, bind), unmounted when dropped.
pub struct PlainMount(pub PathBuf);

impl Drop for PlainMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The pid of the daemon serving `point` (from `status --json`).
pub fn daemon_pid(world: &World, point: &Path) -> nix::unistd::Pid {
    let out = world.ok([
        OsStr::new("status"),
        point.as_os_str(),
        OsStr::new("--json"),
    ]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    nix::unistd::Pid::from_raw(status["pid"].as_i64().unwrap() as i32)
}

/// Mount tests need root (FUSE mounts, and chown, tmpfs, umount around them): as another user
/// they say why and skip, so that `cargo test` runs the library and semantic suites anywhere.
pub fn skip_without_mounts() -> bool {
    if nix::unistd::geteuid().is_root() && Path::new("/dev/fuse").exists() {
        return false;
    }
    eprintln!(
        "skipped: this test mounts FUSE filesystems and needs root with /dev/fuse \
         (run tests/run-all.sh as root)"
    );
    true
}
