//! An ordinary user for the tests (uid 65534, through setpriv), as conda-fuse's users are never
//! root: a world owned by that user, commands run as that user, and FUSE opened to users as
//! standard distributions ship it (/dev/fuse 0666, restored afterwards; mounts through
//! fusermount3).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use super::{World, assert_success, bin, is_mounted};

pub const UID: u32 = 65534;

/// /dev/fuse usable by every user while at least one holder lives; its mode is restored after.
struct FuseOpen;

static FUSE_USERS: Mutex<(usize, u32)> = Mutex::new((0, 0));

impl FuseOpen {
    fn new() -> FuseOpen {
        let mut users = FUSE_USERS.lock().unwrap();
        if users.0 == 0 {
            let mode = std::fs::metadata("/dev/fuse").unwrap().permissions().mode();
            users.1 = mode;
            std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o20666))
                .unwrap();
        }
        users.0 += 1;
        FuseOpen
    }
}

impl Drop for FuseOpen {
    fn drop(&mut self) {
        let mut users = FUSE_USERS.lock().unwrap();
        users.0 -= 1;
        if users.0 == 0 {
            let _ = std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(users.1));
        }
    }
}

pub struct User {
    pub world: World,
    _fuse: FuseOpen,
}

impl User {
    /// The user's world, or None (the caller skips, saying why) when this process cannot switch
    /// users (not root) or the system lacks setpriv or fusermount3.
    pub fn new() -> Option<User> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: acting as another user needs root (run tests/run-all.sh as root)");
            return None;
        }
        for tool in ["setpriv", "fusermount3"] {
            if which(tool).is_none() {
                eprintln!("skipped: {tool} is missing (apt-get install util-linux fuse3)");
                return None;
            }
        }
        let world = World::new();
        chown_tree(world.dir.path());
        // The directories above the world must be traversable by the user.
        let mut dir = world.dir.path().to_path_buf();
        while dir.pop() {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o001)).ok();
        }
        Some(User {
            world,
            _fuse: FuseOpen::new(),
        })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.world.path(rel)
    }

    /// A directory owned by the user.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        chown_tree(&p);
        p
    }

    /// `program ARGS` as the user, with the world's home and state directory.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &UID.to_string(),
            "--regid",
            &UID.to_string(),
            "--clear-groups",
            "--",
        ])
        .arg(program)
        .env("HOME", self.world.dir.path())
        .env("CONDA_FUSE_STATE_DIR", self.world.state_dir())
        .env("CONDA_FUSE_RUNTIME_DIR", self.world.runtime_dir())
        .env("CONDA_FUSE_RUN_LINGER", "0")
        .env("TMPDIR", self.world.dir.path())
        .current_dir(self.world.dir.path());
        c
    }

    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(bin()).args(args).output().unwrap()
    }

    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(args);
        assert_success(&out, "conda-fuse as the user");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// conda-fuse ARGS as the user, with the archives in `archives` and their own mount root
    /// (`envs` in their world); it must succeed.
    pub fn ok_in_lab(&self, archives: &Path, args: &[&str]) -> Output {
        let out = self
            .command(bin())
            .args(args)
            .env("CONDA_FUSE_ARCHIVE_PATH", archives)
            .env("CONDA_FUSE_MOUNT_ROOT", self.path("envs"))
            .output()
            .unwrap();
        assert_success(&out, &format!("{args:?} as the user"));
        out
    }

    /// The content of `path`, read as the user (only they may enter their mounts).
    pub fn read(&self, path: &Path) -> Vec<u8> {
        let out = self.command("cat").arg(path).output().unwrap();
        assert_success(&out, "cat as the user");
        out.stdout
    }

    /// (uid, gid) of `path`, as the user sees it.
    pub fn owner(&self, path: &Path) -> (u32, u32) {
        let out = self
            .command("stat")
            .args(["-c", "%u %g"])
            .arg(path)
            .output()
            .unwrap();
        assert_success(&out, "stat as the user");
        let text = String::from_utf8(out.stdout).unwrap();
        let (u, g) = text.trim().split_once(' ').unwrap();
        (u.parse().unwrap(), g.parse().unwrap())
    }

    /// Mounts as the user; unmounted (as the user, else by root) when the guard drops.
    pub fn mount(&self, archive: &Path, name: &str, extra: &[&str]) -> UserMount<'_> {
        let point = self.mkdir(name);
        let mut args: Vec<&OsStr> = vec!["mount".as_ref(), archive.as_os_str(), point.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        self.ok(args);
        UserMount { user: self, point }
    }
}

pub struct UserMount<'u> {
    pub user: &'u User,
    pub point: PathBuf,
}

impl UserMount<'_> {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.point.join(rel)
    }
}

impl Drop for UserMount<'_> {
    fn drop(&mut self) {
        let _ = self.user.run(["unmount".as_ref(), self.point.as_os_str()]);
        if is_mounted(&self.point) {
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Gives `root` and everything below it to the user.
pub fn chown_tree(root: &Path) {
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            e.path(),
            Some(UID.into()),
            Some(UID.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
}
