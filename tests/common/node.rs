//! Cluster nodes on one machine: each node is a new mount, pid and UTS namespace with its own host
//! name and its own `XDG_RUNTIME_DIR` (a tmpfs mounted in the node only, as `/run/user/UID` is on a
//! real node), all seeing the same home directory, as the nodes of a cluster see one shared
//! `$HOME`. (Not a tmpfs over `/tmp`: the checkout under test may live there.) Another node's FUSE mounts and
//! processes are invisible, as on a real cluster. Killing a node's init kills every process in it
//! and so drops its mounts: a node that dies. On the network-filesystem stand-in each node is a
//! client of its own.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::World;

pub struct Node {
    pub name: String,
    unshare: Child,
    /// The node's init (pid 1 inside), as this machine's pid namespace numbers it.
    init: i32,
    home: PathBuf,
    /// The node's XDG_RUNTIME_DIR: a directory of the shared world, with a tmpfs on it that only
    /// this node sees.
    run: PathBuf,
}

/// Whether nodes can be simulated here (root, with unshare and nsenter).
pub fn available() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["-m", "-p", "-f", "-u", "--mount-proc", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

impl Node {
    /// Boots node `name` sharing `world`'s directory as everyone's home.
    /// On a world on the network-filesystem stand-in, the node mounts a client of its own (its
    /// own caches, and a flock that reaches only the node, as on BeeGFS or NFS with local_lock).
    pub fn boot(world: &World, name: &str) -> Node {
        let run = world.local_path(&format!("run-{name}"));
        std::fs::create_dir_all(&run).unwrap();
        let client = world.netfs.as_ref().map_or(String::new(), |state| {
            format!(
                "{}/tests/support/netfs.sh client {} && ",
                env!("CARGO_MANIFEST_DIR"),
                state.display()
            )
        });
        let script = format!(
            "{client}mount -t tmpfs -o mode=0700 node-run {run} && mkdir -m 1777 {run}/tmp && \
             hostname {name} && exec sleep infinity",
            run = run.display()
        );
        let unshare = Command::new("unshare")
            .args([
                "-m",
                "-p",
                "-f",
                "-u",
                "--mount-proc",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let started = Instant::now();
        let init = loop {
            let children = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/children",
                unshare.id(),
                unshare.id()
            ))
            .unwrap_or_default();
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "sleep" {
                    break pid;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "node {name} did not boot"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Node {
            name: name.to_string(),
            unshare,
            init,
            home: world.dir.path().to_owned(),
            run,
        }
    }

    /// `program ARGS` on this node, as a login shell there would run it: the shared home, no
    /// state directory named and its own XDG_RUNTIME_DIR (so the defaults are what is tested).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.init.to_string(), "-m", "-u", "-p", "--"])
            .arg(program)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.run)
            // A node's /tmp is its own disk.
            .env("TMPDIR", self.run.join("tmp"))
            .env("CONDA_FUSE_RUN_LINGER", "0")
            .env("USER", "root")
            .current_dir(&self.home);
        c
    }

    /// `conda-fuse ARGS` on this node.
    pub fn cf<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.command(super::bin());
        c.args(args);
        c
    }

    /// `sh -c SCRIPT` on this node.
    pub fn sh(&self, script: &str) -> Command {
        let mut c = self.command("sh");
        c.args(["-c", script]);
        c
    }

    /// Runs `conda-fuse ARGS` here, asserting success; returns stdout and stderr together.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cf(args).output().expect("run conda-fuse");
        super::assert_success(&out, &format!("conda-fuse on {}", self.name));
        both(&out)
    }

    /// Runs `conda-fuse ARGS` here, asserting failure; returns stdout and stderr together.
    pub fn fails<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cf(args).output().expect("run conda-fuse");
        assert!(
            !out.status.success(),
            "conda-fuse on {} should have failed:\n{}",
            self.name,
            both(&out)
        );
        both(&out)
    }

    /// The pid of the daemon serving `point` on this node (from `status --json`).
    pub fn daemon_pid(&self, point: &Path) -> nix::unistd::Pid {
        let out = self.cf(["status".as_ref(), point.as_os_str(), "--json".as_ref()]);
        let out = {
            let mut c = out;
            c.output().unwrap()
        };
        super::assert_success(&out, &format!("status on {}", self.name));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        nix::unistd::Pid::from_raw(status["pid"].as_i64().unwrap() as i32)
    }

    /// The conda-fuse mounts this node sees in the shared home.
    pub fn mounts(&self) -> Vec<String> {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.init))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("conda-fuse:"))
            .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
            .filter(|point| Path::new(point).starts_with(&self.home))
            .collect()
    }

    /// This node's runtime directory, seen from outside (through its init's root).
    pub fn runtime_dir(&self) -> PathBuf {
        let inside = self.run.join("conda-fuse");
        Path::new(&format!("/proc/{}/root", self.init)).join(inside.strip_prefix("/").unwrap())
    }

    /// The node dies: every process in it is killed, its mounts go with its namespace.
    pub fn crash(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        // Killing pid 1 of a pid namespace kills every process in it.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.init),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
