//! `doctor`: checks what conda-fuse needs and finds what was left behind, saying how to fix each.
//! It only cleans up what is certainly dead (records of daemons that are gone).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::bail;

mod filesystems;

use super::progress;
use crate::daemon::{self, Probe, mountpoint, runtime::MountRecord};
use crate::envs::Paths;
use crate::shell::Shell;

#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
pub(super) enum Level {
    Ok,
    Warn,
    Fail,
}

pub(super) struct Report {
    worst: Level,
}

impl Report {
    pub(super) fn say(&mut self, level: Level, what: impl AsRef<str>, fix: Option<String>) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("[{tag}] {}", what.as_ref());
        if let Some(fix) = fix {
            println!("       fix: {fix}");
        }
        self.worst = self.worst.max(level);
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn check_fuse(r: &mut Report) {
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => r.say(Level::Ok, "/dev/fuse can be opened", None),
        Err(e) => r.say(
            Level::Fail,
            format!("/dev/fuse: {e}"),
            Some("install FUSE (apt-get install fuse3) and load it (modprobe fuse), or ask your administrator".into()),
        ),
    }
    match which::which("fusermount3").or_else(|_| which::which("fusermount")) {
        Ok(p) => {
            let setuid = std::fs::metadata(&p).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0);
            if setuid || is_root() {
                r.say(Level::Ok, format!("{} is installed", p.display()), None);
            } else {
                r.say(
                    Level::Fail,
                    format!("{} is not setuid root, so users cannot mount", p.display()),
                    Some(format!(
                        "chmod u+s {} (as root), or reinstall fuse3",
                        p.display()
                    )),
                );
            }
        }
        Err(_) if is_root() => r.say(
            Level::Ok,
            "fusermount3 is not installed (not needed as root)",
            None,
        ),
        Err(_) => r.say(
            Level::Fail,
            "fusermount3 is not installed",
            Some("apt-get install fuse3".into()),
        ),
    }
}

fn check_conda(r: &mut Report) {
    match crate::conda::find() {
        Ok(c) => {
            let version = std::process::Command::new(&c.program)
                .args(&c.leading)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            match version {
                Some(v) => r.say(
                    Level::Ok,
                    format!("conda: {} ({v}, from {})", c.program.display(), c.found_by),
                    None,
                ),
                None => r.say(
                    Level::Fail,
                    format!(
                        "conda: {} (from {}) does not run (--version failed)",
                        c.program.display(),
                        c.found_by
                    ),
                    Some(
                        "repair that installation, or point CONDA_FUSE_CONDA at a working conda"
                            .into(),
                    ),
                ),
            }
        }
        Err(e) => r.say(
            Level::Warn,
            e.to_string(),
            Some("needed by create, install and remove only".into()),
        ),
    }
}

fn check_dir(r: &mut Report, what: &str, dir: &Path, var: &str) {
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    if nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).is_err() {
        return r.say(
            Level::Fail,
            format!(
                "{what} {}: {} is not writable by you",
                dir.display(),
                existing.display()
            ),
            Some(format!(
                "fix its permissions, or set {var} to a directory of yours"
            )),
        );
    }
    match nix::sys::statvfs::statvfs(existing) {
        Ok(s) => {
            let free = s.blocks_available() * s.fragment_size();
            let level = if free < 1 << 30 {
                Level::Warn
            } else {
                Level::Ok
            };
            let fix =
                (level == Level::Warn).then(|| format!("free some space, or set {var} elsewhere"));
            r.say(
                level,
                format!("{what} {}: {} free", dir.display(), progress::bytes(free)),
                fix,
            );
        }
        Err(e) => r.say(
            Level::Warn,
            format!("{what} {}: cannot tell free space: {e}", dir.display()),
            None,
        ),
    }
}

fn check_mounts(r: &mut Report, paths: &Paths) {
    let mut found = false;
    for m in mountpoint::mounts() {
        if m.is_conda_fuse() {
            // Ours: recorded in this state directory, or at an environment's mount point. Other
            // users' and other state directories' mounts are not this doctor's to judge.
            let ours = m.point.starts_with(&paths.mounts) || MountRecord::load(&m.point).is_some();
            if ours && matches!(daemon::probe(&m.point), Probe::Stale) {
                found = true;
                r.say(
                    Level::Fail,
                    format!("stale mount at {} (its daemon died)", m.point.display()),
                    Some(format!("conda-fuse unmount {}", m.point.display())),
                );
            }
        } else if m.fstype.contains("fuse-zip")
            || m.point.starts_with(&paths.mounts) && m.fstype.starts_with("fuse")
        {
            found = true;
            r.say(
                Level::Warn,
                format!(
                    "{} is mounted by {} ({}), perhaps the old conda-fuse.sh",
                    m.point.display(),
                    m.fstype,
                    m.source
                ),
                Some(format!(
                    "fusermount3 -u {} before using conda-fuse on it",
                    m.point.display()
                )),
            );
        }
    }
    let mut removed = 0;
    for rec in MountRecord::all() {
        if !rec.daemon_alive() && mountpoint::mounted_at(&rec.mountpoint).is_none() {
            MountRecord::remove(&rec.mountpoint);
            removed += 1;
        }
    }
    if removed > 0 {
        r.say(
            Level::Ok,
            format!("removed {removed} record(s) of daemons that had exited"),
            None,
        );
    }
    if !found {
        r.say(Level::Ok, "no stale or foreign mounts", None);
    }
}

fn check_archives(r: &mut Report, paths: &Paths) {
    let mut clean = true;
    for name in paths.names() {
        let Ok(env) = paths.env(&name) else { continue };
        let archive = crate::archive::Archive::open(env.id.path()).ok();
        let elsewhere =
            archive.and_then(|a| crate::conda::relocation::written_elsewhere(&a, &env.mountpoint));
        if let Some(prefix) = elsewhere {
            // Not a problem: what cannot be rewritten (`status` lists it) is the mount's to say.
            r.say(
                Level::Ok,
                format!(
                    "'{name}' was written for {}: its files are served rewritten for {}",
                    prefix.display(),
                    env.prefix.display()
                ),
                None,
            );
        }
        if let Some((h, Some(why))) = env.writer() {
            clean = false;
            r.say(
                Level::Warn,
                format!("'{name}': writer lock left by {} ({why})", h.describe()),
                Some("nothing to do: the next writable mount takes it over".into()),
            );
        }
    }
    let leftovers = std::fs::read_dir(paths.archives())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_prefix('.')?
                .strip_suffix(".creating.zip")
                .map(|s| (s.to_string(), e.path()))
        });
    for (name, path) in leftovers {
        let busy = MountRecord::all()
            .iter()
            .any(|rec| rec.archive == path && rec.daemon_alive());
        if !busy {
            clean = false;
            r.say(
                Level::Warn,
                format!(
                    "{} is left from an interrupted conda-fuse-create {name}",
                    path.display()
                ),
                Some(format!(
                    "conda-fuse-create {name} cleans it up, or delete {}",
                    path.display()
                )),
            );
        }
    }
    if clean {
        r.say(Level::Ok, "no stale locks or interrupted creates", None);
    }
}

/// Whether batch jobs on this node get mounts of their own (a user + mount namespace each), or
/// take turns on an environment another job has mounted.
fn check_jobs(r: &mut Report) {
    let job = crate::settings::get().job.as_deref();
    let here = match job {
        Some(j) => format!(" (this is job {j})"),
        None => String::new(),
    };
    match crate::daemon::jobns::user_namespaces_work() {
        Ok(()) => r.say(
            Level::Ok,
            format!(
                "batch jobs get mounts of their own here: user namespaces work{here}; a job's \
                 mounts are its own and go with it"
            ),
            None,
        ),
        Err(why) => r.say(
            Level::Warn,
            format!(
                "batch jobs cannot have mounts of their own here: {why}{here}; jobs on one node \
                 take turns on an environment another job has mounted (CONDA_FUSE_RUN_WAIT)"
            ),
            Some(
                "ask your administrators to allow unprivileged user namespaces (sysctl \
                 user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1), as \
                 Apptainer needs too"
                    .into(),
            ),
        ),
    }
}

fn check_hooks(r: &mut Report) {
    let home = crate::daemon::state::home_dir();
    let login = std::env::var("SHELL").unwrap_or_default();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let rc = shell.rc_file(&home);
        let has = shell.rc_has_hook(&rc);
        let mine = login.rsplit('/').next() == Some(shell.name());
        if has {
            r.say(
                Level::Ok,
                format!("{}: the hook is in {}", shell.name(), rc.display()),
                None,
            );
        } else if mine {
            r.say(
                Level::Warn,
                format!(
                    "{}: the hook is not in {} (conda-fuse-* functions are missing)",
                    shell.name(),
                    rc.display()
                ),
                Some(format!("echo '{}' >> {}", shell.hook_line(), rc.display())),
            );
        }
    }
    if which::which("conda-fuse").is_err() {
        r.say(
            Level::Warn,
            "conda-fuse is not on PATH, so the shell functions cannot find it",
            Some("add its directory to PATH (install.sh puts it in ~/.local/bin)".into()),
        );
    }
}

pub(super) fn doctor() -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let mut r = Report { worst: Level::Ok };
    check_fuse(&mut r);
    check_conda(&mut r);
    check_dir(
        &mut r,
        "archives",
        paths.archives(),
        "CONDA_FUSE_ARCHIVE_PATH",
    );
    check_dir(&mut r, "mounts", &paths.mounts, "CONDA_FUSE_MOUNT_ROOT");
    check_dir(&mut r, "upper layers", &paths.upper, "CONDA_FUSE_UPPER_DIR");
    check_dir(&mut r, "temporary files", &paths.tmp, "TMPDIR");
    filesystems::check(&mut r, &paths);
    check_jobs(&mut r);
    check_mounts(&mut r, &paths);
    check_archives(&mut r, &paths);
    check_hooks(&mut r);
    if r.worst == Level::Fail {
        bail!("some checks failed; see the fixes above");
    }
    Ok(())
}
