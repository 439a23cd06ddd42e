//! A real conda installer for the tests, offline: a local channel built once per machine by
//! `tests/support/make_channel.py` (conda packages from this machine's CPython and from wheels),
//! and `tests/support/fake_conda.py`, a conda-compatible command on py-rattler, given to conda-fuse
//! as CONDA_FUSE_CONDA. Shells run the hook as a user would; environments live in a world of their
//! own whose mounts are always unmounted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::{World, force_unmount};

/// Wheels converted into conda packages (pinned so the channel is the same on every machine).
const WHEELS: &[&str] = &[
    "six==1.17.0",
    "idna==3.10",
    "packaging==24.2",
    "wheel==0.45.1",
    // What a lab's env offers its members at their own prefix: pip and jupyter's command.
    "pip==24.3.1",
    "jupyter_core==5.7.2",
    "platformdirs==4.3.6",
    "traitlets==5.14.3",
];

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// A stand-in conda for crash tests, written into `dir` as `NAME`: given `install --prefix P ...`
/// it writes `P/FILE.txt`, then touches `dir/FILE.wrote` (seen from outside the mount, and from
/// outside a node's namespace), then, when `hang`, sleeps for two minutes. Returns the
/// CONDA_FUSE_CONDA value and the marker's path.
pub fn one_file_conda(dir: &Path, name: &str, file: &str, hang: bool) -> (String, PathBuf) {
    let script = dir.join(name);
    let wrote = dir.join(format!("{file}.wrote"));
    let body = format!(
        "while [ $# -gt 0 ]; do [ \"$1\" = --prefix ] && p=$2; shift; done\n\
         echo {file} > \"$p/{file}.txt\" && touch {}\n{}",
        wrote.display(),
        if hang { "sleep 120\n" } else { "" }
    );
    std::fs::write(&script, body).unwrap();
    (format!("sh {}", script.display()), wrote)
}

/// The Python with py-rattler and conda-package-handling: $CONDA_FUSE_TEST_PYTHON (tests/run-all.sh
/// sets it to its venv), else python3.
pub fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let py = std::env::var("CONDA_FUSE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&py)
            .args(["-c", "import sys, rattler, conda_package_handling; print(sys.executable)"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {py}: {e}"));
        assert!(
            out.status.success(),
            "{py} lacks py-rattler or conda-package-handling; run the tests with tests/run-all.sh (it \
             installs them in a venv), or pip install py-rattler conda-package-handling\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// The local channel, built on first use and kept under target/ for later runs.
pub fn channel() -> &'static Path {
    static CHANNEL: OnceLock<PathBuf> = OnceLock::new();
    CHANNEL.get_or_init(|| {
        let script = std::fs::read(support("make_channel.py")).unwrap();
        let key = format!(
            "{:08x}",
            crc32fast::hash(
                &[
                    script.as_slice(),
                    WHEELS.join(" ").as_bytes(),
                    python().as_os_str().as_encoded_bytes()
                ]
                .concat()
            )
        );
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("conda-channel-{key}"));
        let channel = base.join("channel");
        if base.join("complete").exists() {
            return channel;
        }
        let _ = std::fs::remove_dir_all(&base);
        let wheels = base.join("wheels");
        let out = Command::new(python())
            .args([
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "--no-deps",
                "-d",
            ])
            .arg(&wheels)
            .args(WHEELS)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip download failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(python())
            .arg(support("make_channel.py"))
            .arg(&channel)
            .arg(&wheels)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make_channel.py failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(base.join("complete"), b"").unwrap();
        channel
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sh {
    Bash,
    Zsh,
    Fish,
}

impl Sh {
    pub fn name(self) -> &'static str {
        match self {
            Sh::Bash => "bash",
            Sh::Zsh => "zsh",
            Sh::Fish => "fish",
        }
    }
}

/// A world with environments by name: archives and mounts of its own, the channel, a home.
pub struct EnvWorld {
    pub world: World,
    pub archives: PathBuf,
    pub mounts: PathBuf,
    pub home: PathBuf,
}

impl EnvWorld {
    /// `mount_dir` is the name of the mount root inside the world (tests use awkward ones).
    pub fn new(mount_dir: &str) -> EnvWorld {
        Self::in_world(World::new(), mount_dir)
    }

    /// The same in `world` (on the network-filesystem stand-in, say).
    pub fn in_world(world: World, mount_dir: &str) -> EnvWorld {
        channel();
        let archives = world.path("archives");
        let mounts = world.path(mount_dir);
        let home = world.path("home");
        std::fs::create_dir_all(&home).unwrap();
        EnvWorld {
            world,
            archives,
            mounts,
            home,
        }
    }

    pub fn conda_line(&self) -> String {
        format!(
            "{} {}",
            python().display(),
            support("fake_conda.py").display()
        )
    }

    /// The environment every command of this world sees.
    pub fn apply_env(&self, c: &mut Command) {
        let bin_dir = Path::new(super::bin()).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("HOME", &self.home)
            .env("CONDA_FUSE_ARCHIVE_PATH", &self.archives)
            .env("CONDA_FUSE_MOUNT_ROOT", &self.mounts)
            .env("CONDA_FUSE_STATE_DIR", self.world.state_dir())
            .env("CONDA_FUSE_RUNTIME_DIR", self.world.runtime_dir())
            .env("CONDA_FUSE_RUN_LINGER", "0")
            .env("TMPDIR", self.world.tmp_dir())
            .env("CONDA_FUSE_CONDA", self.conda_line())
            .env("FAKE_CONDA_CHANNEL", channel())
            .env(
                "FAKE_CONDA_PKGS",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("conda-pkgs"),
            )
            .env("SHELL", "/bin/bash")
            .env_remove("CONDA_PREFIX")
            .env_remove("CONDA_DEFAULT_ENV")
            .env_remove("CONDA_EXE")
            .env_remove("MAMBA_EXE")
            .env_remove("CONDA_FUSE_ACTIVE_ENV");
    }

    /// `conda-fuse ARGS` in this world.
    pub fn cf(&self, args: &[&str]) -> Command {
        let mut c = Command::new(super::bin());
        c.args(args);
        self.apply_env(&mut c);
        c
    }

    /// Makes `archives/old.zip` as the old conda-fuse.sh did: fuse-zip mounted at MOUNT_ROOT/old,
    /// `conda create --prefix MOUNT_ROOT/old/old python cf-prefix-demo`, unmounted (fuse-zip
    /// writes the zip then).
    pub fn old_tool_archive(&self) {
        std::fs::create_dir_all(&self.archives).unwrap();
        let point = self.mounts.join("old");
        let m = super::fuse_zip(&self.archives.join("old.zip"), &point, true);
        self.create_demo(&point.join("old"), &[]);
        super::fuse_zip_unmount(m);
        std::fs::remove_dir(&point).unwrap();
    }

    /// `conda create --prefix PREFIX -y python cf-prefix-demo EXTRA...`, outside conda-fuse.
    pub fn create_demo(&self, prefix: &Path, extra: &[&str]) {
        let mut args = vec!["create", "--prefix", prefix.to_str().unwrap(), "-y"];
        args.extend(["python", "cf-prefix-demo"]);
        args.extend(extra);
        self.conda(&args);
    }

    /// Runs the fake conda directly (to make environments outside conda-fuse).
    pub fn conda(&self, args: &[&str]) -> Output {
        let mut c = Command::new(python());
        c.arg(support("fake_conda.py")).args(args);
        self.apply_env(&mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "fake conda {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `steps` in a fresh `shell` with the hook loaded; each step must succeed (the script
    /// stops at the first failure and says which). Returns stdout + stderr.
    pub fn shell(&self, shell: Sh, steps: &[&str]) -> (bool, String) {
        let mut script = String::new();
        match shell {
            Sh::Bash => script.push_str("eval \"$(conda-fuse shell-hook bash)\" || exit 99\n"),
            Sh::Zsh => script.push_str(
                "autoload -U compinit && compinit -u -d \"$TMPDIR/zcompdump\"\neval \"$(conda-fuse shell-hook zsh)\" || exit 99\n",
            ),
            Sh::Fish => script.push_str("conda-fuse shell-hook fish | source\n"),
        }
        for (i, step) in steps.iter().enumerate() {
            let marker = format!(
                "echo '@@ step {i} failed: {}' >&2",
                step.replace('\'', "\"")
            );
            match shell {
                Sh::Fish => script.push_str(&format!("{step}\nor begin; {marker}; exit 1; end\n")),
                _ => script.push_str(&format!("{step} || {{ {marker}; exit 1; }}\n")),
            }
        }
        let mut c = match shell {
            Sh::Bash => Command::new("bash"),
            Sh::Zsh => {
                let mut c = Command::new("zsh");
                c.arg("-f");
                c
            }
            Sh::Fish => {
                let mut c = Command::new("fish");
                c.arg("--no-config");
                c
            }
        };
        c.arg("-c").arg(&script).current_dir(&self.home);
        self.apply_env(&mut c);
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for EnvWorld {
    fn drop(&mut self) {
        // Whatever a test left mounted under this world goes.
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self
            .world
            .dir
            .path()
            .to_string_lossy()
            .replace(' ', "\\040");
        let points: Vec<String> = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&root))
            .map(str::to_string)
            .collect();
        for p in points.iter().rev() {
            let mut c = self.cf(&["unmount", "--discard", p]);
            let ok = c.output().is_ok_and(|o| o.status.success());
            if !ok {
                force_unmount(&self.world, Path::new(p));
            }
        }
    }
}
