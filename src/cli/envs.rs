//! Environments by name: create, install, remove, rm, and mounting an environment at its place
//! (shared by activate, install, remove and run).

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;

use super::report::{WithHint, error_with_hint};
use super::{child, mount::print_saved, mount::save_bar, progress};
use crate::archive::{BuildOptions, Compression, build_archive};
use crate::conda;
use crate::daemon::{self, DaemonError, MountRequest, Probe, Unmounted};
use crate::envs::{Env, Paths, list};
use crate::overlay::lock::{self, LockError};
use crate::overlay::{self, OverlayError, upper};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Writable,
    /// Writable if the writer lock is free, else read-only with a note.
    PreferWritable,
    ReadOnly,
}

pub(super) struct EnvMount {
    pub read_only: bool,
    /// This call mounted it (so it may unmount it when done).
    pub we_mounted: bool,
}

pub(super) fn missing(env: &Env) -> anyhow::Error {
    error_with_hint(
        format!(
            "there is no environment '{}' (no archive {})",
            env.name,
            env.archive.display()
        ),
        format!(
            "list them with conda-fuse-env-list, or create it with conda-fuse-create {}",
            env.name
        ),
    )
}

/// The environment `name`, which must have an archive.
pub(super) fn existing(name: &str) -> anyhow::Result<Env> {
    let env = Paths::from_env()?.env(name)?;
    if !env.archive.is_file() {
        return Err(missing(&env));
    }
    Ok(env)
}

/// Refuses what must not happen while the environment is mounted on this node.
pub(super) fn refuse_if_mounted(env: &Env) -> anyhow::Result<()> {
    if let Probe::Live(r) = daemon::probe(&env.mountpoint) {
        return Err(error_with_hint(
            format!(
                "'{}' is mounted at {} (daemon pid {})",
                env.name,
                env.mountpoint.display(),
                r.pid
            ),
            format!("unmount it first (conda-fuse-unmount {})", env.name),
        ));
    }
    Ok(())
}

/// Refuses to `what` (delete, roll back) an environment this user cannot write.
pub(super) fn refuse_if_not_mine(env: &Env, what: &str) -> anyhow::Result<()> {
    if env.archive.exists() && !env.writable_by_me() {
        return Err(error_with_hint(
            format!(
                "'{}' is {}, in a directory you cannot write",
                env.name,
                env.archive.display()
            ),
            format!("only its owner can {what} it"),
        ));
    }
    Ok(())
}

/// Cleans up a stale mount at the environment's mount point, and refuses a foreign one.
fn clear_stale(env: &Env) -> anyhow::Result<Probe> {
    let probe = daemon::probe(&env.mountpoint);
    match probe {
        Probe::Stale => {
            eprintln!(
                "conda-fuse: note: cleaning up the stale mount at {} (its daemon had died; unsaved \
                 changes come back at the next writable mount)",
                env.mountpoint.display()
            );
            daemon::unmount(&env.mountpoint, false, false, &mut |_, _| {})?;
            Ok(Probe::NotMounted)
        }
        Probe::Foreign(m) => Err(error_with_hint(
            format!(
                "{} has another filesystem mounted ({} from {}), perhaps fuse-zip of the old \
                 conda-fuse.sh",
                env.mountpoint.display(),
                m.fstype,
                m.source
            ),
            format!(
                "unmount it (fusermount3 -u {}) and try again",
                env.mountpoint.display()
            ),
        )),
        Probe::Unrecorded(m) => Err(error_with_hint(
            format!(
                "{} is mounted by a conda-fuse daemon that this node's runtime directory ({}) has \
                 no record of (archive {}): another user's, or one started with another \
                 CONDA_FUSE_RUNTIME_DIR or XDG_RUNTIME_DIR",
                env.mountpoint.display(),
                crate::daemon::runtime::runtime_dir().display(),
                m.archive()
            ),
            format!(
                "use that directory, or unmount it (fusermount3 -u {}) and try again",
                env.mountpoint.display()
            ),
        )),
        other => Ok(other),
    }
}

/// Makes sure `env` is mounted at its mount point the way `want` asks.
pub(super) fn mount_env(env: &Env, want: Want) -> anyhow::Result<EnvMount> {
    mount_env_with(env, want, false)
}

/// What `want` comes to for this user: an env in a directory shared with them (a lab's, a
/// site's) that they cannot write is served read-only, with a note, where writable was only
/// preferred; where it is needed, that is an error naming the directory.
pub(super) fn want_for_me(env: &Env, want: Want) -> anyhow::Result<Want> {
    if want == Want::ReadOnly || !env.archive.is_file() || env.writable_by_me() {
        return Ok(want);
    }
    let dir = env.archive.parent().unwrap_or(Path::new("/"));
    if want == Want::Writable {
        return Err(error_with_hint(
            format!(
                "'{}' is {}, in a directory you cannot write ({}): it can only be used read-only \
                 (conda-fuse-activate {} or conda-fuse run {})",
                env.name,
                env.archive.display(),
                dir.display(),
                env.name,
                env.name
            ),
            "to change it, ask its owner, or copy it into your own first directory of \
             CONDA_FUSE_ARCHIVE_PATH under another name",
        ));
    }
    eprintln!(
        "conda-fuse: note: '{}' is {}, which you cannot write; mounting it read-only",
        env.name,
        env.archive.display()
    );
    Ok(Want::ReadOnly)
}

/// `mount_env`, taking the writer lock from a live-looking holder when `steal_lock`.
pub(super) fn mount_env_with(env: &Env, want: Want, steal_lock: bool) -> anyhow::Result<EnvMount> {
    if !env.archive.is_file() {
        return Err(missing(env));
    }
    let want = want_for_me(env, want)?;
    let archive = env
        .archive
        .canonicalize()
        .with_context(|| format!("cannot open {}", env.archive.display()))?;
    if let Probe::Live(r) = clear_stale(env)? {
        if r.archive != archive {
            return Err(error_with_hint(
                format!(
                    "{} serves {}, not {}",
                    env.mountpoint.display(),
                    r.archive.display(),
                    archive.display()
                ),
                format!(
                    "unmount it first (conda-fuse unmount {})",
                    env.mountpoint.display()
                ),
            ));
        }
        if want == Want::Writable && r.read_only {
            return Err(error_with_hint(
                format!(
                    "'{}' is mounted read-only at {} (daemon pid {}), and this needs it writable",
                    env.name,
                    env.mountpoint.display(),
                    r.pid
                ),
                format!(
                    "unmount it (conda-fuse-unmount {}) and try again; if another mount holds the \
                     writer lock, conda-fuse-env-list shows it",
                    env.name
                ),
            ));
        }
        return Ok(EnvMount {
            read_only: r.read_only,
            we_mounted: false,
        });
    }
    std::fs::create_dir_all(&env.mountpoint)
        .with_context(|| format!("cannot create the mount point {}", env.mountpoint.display()))
        .hint("check CONDA_FUSE_MOUNT_ROOT and its permissions")?;
    let mount = |read_only| {
        let mut req = MountRequest::new(archive.clone(), env.mountpoint.clone(), read_only);
        req.steal_lock = steal_lock;
        daemon::mount(&req, &mut |m| super::mount::print_report(m))
    };
    match mount(want == Want::ReadOnly) {
        Ok(_) => Ok(EnvMount {
            read_only: want == Want::ReadOnly,
            we_mounted: true,
        }),
        Err(DaemonError::Overlay(OverlayError::Lock(LockError::Held { holder, .. })))
            if want == Want::PreferWritable =>
        {
            eprintln!(
                "conda-fuse: note: '{}' is mounted writable by {}; mounting it read-only here \
                 (changes need that mount: unmount it there to write here)",
                env.name,
                holder.describe()
            );
            mount(true)?;
            Ok(EnvMount {
                read_only: true,
                we_mounted: true,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Unmounts `env` (saving, or discarding) and reports. The mount point stays: on a shared `$HOME`
/// another node may have a mount on that directory which this node cannot see, and removing the
/// directory under it would turn that mount into a stale handle (the old tool removed it).
pub(super) fn unmount_env(env: &Env, discard: bool) -> anyhow::Result<Unmounted> {
    let (bar, mut on_progress) = save_bar();
    let result = daemon::unmount(&env.mountpoint, false, discard, &mut on_progress);
    bar.finish_and_clear();
    let done = result?;
    if let Unmounted::Clean { saved: Some(s), .. } = &done {
        print_saved(&format!("saved {}", env.name), s);
    }
    Ok(done)
}

#[derive(Args)]
pub(super) struct CreateArgs {
    /// Name of the new environment (letters, digits and . _ + -)
    name: String,
    /// Arguments for `conda create`, passed through exactly as given (packages, -c CHANNEL, -y, ...)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONDA ARGS"
    )]
    conda_args: Vec<OsString>,
}

/// Removes what a failed create leaves, unless disarmed: the mount (discarding), the temporary
/// archive, its lock and upper layer, and the empty mount point.
struct CreateCleanup<'a> {
    env: &'a Env,
    temporary: std::path::PathBuf,
    upper_root: std::path::PathBuf,
    armed: bool,
}

impl CreateCleanup<'_> {
    fn remove_leftovers(&self) {
        let _ = std::fs::remove_file(&self.temporary);
        let _ = std::fs::remove_file(lock::lock_path(&self.temporary));
        let _ = std::fs::remove_dir_all(upper::dir_for(&self.upper_root, &self.temporary));
        let _ = std::fs::remove_dir(&self.env.mountpoint);
    }
}

impl Drop for CreateCleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if matches!(
            daemon::probe(&self.env.mountpoint),
            Probe::Live(_) | Probe::Stale
        ) {
            let _ = daemon::unmount(&self.env.mountpoint, false, true, &mut |_, _| {});
        }
        self.remove_leftovers();
    }
}

pub(super) fn create(a: CreateArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    if env.archive.exists() {
        return Err(error_with_hint(
            format!(
                "an environment named '{}' exists already ({})",
                env.name,
                env.archive.display()
            ),
            format!(
                "see conda-fuse-env-list, choose another name, or delete it first with \
                 conda-fuse-rm {}",
                env.name
            ),
        ));
    }
    let conda = conda::find()?;
    for dir in [paths.archives(), paths.mounts.as_path()] {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .hint("check CONDA_FUSE_ARCHIVE_PATH / CONDA_FUSE_MOUNT_ROOT")?;
    }
    match clear_stale(&env)? {
        Probe::Live(r) => {
            return Err(error_with_hint(
                format!(
                    "{} is already a mount (of {}, daemon pid {})",
                    env.mountpoint.display(),
                    r.archive.display(),
                    r.pid
                ),
                format!(
                    "unmount it first (conda-fuse unmount {})",
                    env.mountpoint.display()
                ),
            ));
        }
        _ if std::fs::read_dir(&env.mountpoint).is_ok_and(|mut d| d.next().is_some()) => {
            return Err(error_with_hint(
                format!("the mount point {} is not empty", env.mountpoint.display()),
                "move its contents away (or pick another name) and try again",
            ));
        }
        _ => {}
    }
    // The archive is built under a hidden name and renamed into place only once conda succeeded
    // and everything is saved, so a failed or interrupted create never leaves NAME.zip behind.
    let temporary = paths.archives().join(format!(".{}.creating.zip", env.name));
    let mut cleanup = CreateCleanup {
        env: &env,
        temporary: temporary.clone(),
        upper_root: paths.upper.clone(),
        armed: false,
    };
    claim_temporary(&cleanup)?;
    cleanup.armed = true;
    let opts = BuildOptions {
        compression: Compression::PACK,
        threads: 1,
        spill_dir: paths.archives().to_path_buf(),
    };
    build_archive(&temporary, &[], &opts, &mut |_| {})
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::create_dir_all(&env.mountpoint)
        .with_context(|| format!("cannot create the mount point {}", env.mountpoint.display()))?;
    let mut req = MountRequest::new(temporary.clone(), env.mountpoint.clone(), false);
    // The empty archive is no version of the env (and a snapshot of the temporary's name would be
    // left behind by the rename to the final one).
    req.snapshots = 0;
    daemon::mount(&req, &mut |_| {})?;
    eprintln!(
        "conda-fuse: running {}",
        conda.describe("create", &env.prefix, &a.conda_args)
    );
    let status = child::run(&mut conda.command("create", &env.prefix, &a.conda_args))
        .with_context(|| format!("cannot run {}", conda.program.display()))?;
    if !status.success() {
        return Err(error_with_hint(
            format!("conda create failed ({status}); nothing was kept"),
            format!(
                "fix the problem conda reported and run conda-fuse-create {} again",
                env.name
            ),
        ));
    }
    if !env.prefix.join("conda-meta").is_dir() {
        bail!(
            "conda exited successfully but made no environment at {} (was the question answered \
             'no'?); nothing was kept",
            env.prefix.display()
        );
    }
    match unmount_env(&env, false)? {
        Unmounted::Clean { .. } => {}
        other => {
            bail!("saving the new environment did not finish cleanly ({other:?}); nothing was kept")
        }
    }
    rename_noreplace(&temporary, &env.archive)?;
    cleanup.armed = false;
    cleanup.remove_leftovers();
    let info = list::info(&env);
    println!(
        "created '{}': {} ({} entries, {}); activate it with: conda-fuse-activate {}",
        env.name,
        env.archive.display(),
        info.entries.as_ref().map_or(0, |n| *n),
        progress::bytes(info.size),
        env.name
    );
    Ok(())
}

/// Takes the temporary archive name exclusively; one left by a create that died is cleaned up.
fn claim_temporary(c: &CreateCleanup) -> anyhow::Result<()> {
    for attempt in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&c.temporary)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt == 0 => {
                let busy = crate::daemon::runtime::MountRecord::all()
                    .into_iter()
                    .find(|r| r.archive == c.temporary && r.daemon_alive());
                if let Some(r) = busy {
                    return Err(error_with_hint(
                        format!(
                            "another conda-fuse-create {} is running (its mount's daemon is pid {})",
                            c.env.name, r.pid
                        ),
                        "wait for it, or stop it",
                    ));
                }
                eprintln!(
                    "conda-fuse: note: removing what an interrupted create of '{}' left",
                    c.env.name
                );
                if matches!(daemon::probe(&c.env.mountpoint), Probe::Stale) {
                    daemon::unmount(&c.env.mountpoint, false, true, &mut |_, _| {})?;
                }
                c.remove_leftovers();
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", c.temporary.display()));
            }
        }
    }
    unreachable!("the second attempt returns")
}

/// Renames without replacing (another create of the same name may have won meanwhile).
fn rename_noreplace(from: &Path, to: &Path) -> anyhow::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE).map_err(|e| {
        anyhow::anyhow!(
            "cannot rename {} to {}: {e}; the new environment stays in {}",
            from.display(),
            to.display(),
            from.display()
        )
    })?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}

#[derive(Args)]
pub(super) struct CondaArgs {
    /// Environment name
    name: String,
    /// Arguments for conda, passed through exactly as given (packages, -c CHANNEL, -y, ...)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONDA ARGS"
    )]
    conda_args: Vec<OsString>,
}

/// `conda install|remove --prefix PREFIX ARGS` in a writable mount, then a save; a mount this
/// command made is unmounted again.
pub(super) fn conda_change(sub: &str, a: CondaArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    let conda = conda::find()?;
    super::run::reclaim_lingering_mount(&env)?;
    let mount = mount_env(&env, Want::Writable)?;
    let before = daemon::status(&env.mountpoint)?.unsaved_changes;
    eprintln!(
        "conda-fuse: running {}",
        conda.describe(sub, &env.prefix, &a.conda_args)
    );
    let status = child::run(&mut conda.command(sub, &env.prefix, &a.conda_args))
        .with_context(|| format!("cannot run {}", conda.program.display()))?;
    if !status.success() {
        if mount.we_mounted && before == 0 {
            unmount_env(&env, true)?;
            bail!("conda {sub} failed ({status}); the environment is as it was");
        }
        return Err(error_with_hint(
            format!(
                "conda {sub} failed ({status}); nothing was saved, and '{}' stays mounted at {}",
                env.name,
                env.mountpoint.display()
            ),
            format!(
                "look at it, then save with conda-fuse-commit {} or throw the changes away with \
                 conda-fuse-unmount {} --discard",
                env.name, env.name
            ),
        ));
    }
    if mount.we_mounted {
        unmount_env(&env, false)?;
    } else {
        let (bar, mut on_progress) = save_bar();
        let saved = daemon::save(&env.mountpoint, &mut on_progress);
        bar.finish_and_clear();
        print_saved(&format!("saved {}", env.name), &saved?);
    }
    Ok(())
}

#[derive(Args)]
pub(super) struct RmArgs {
    /// Environment to delete
    name: String,
    /// Do not ask (needed when there is no terminal to ask on)
    #[arg(short, long)]
    yes: bool,
    /// Delete even while mounted: unmount first, throwing unsaved changes away
    #[arg(short, long)]
    force: bool,
}

pub(super) fn rm(a: RmArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    let archive = env
        .archive
        .canonicalize()
        .unwrap_or_else(|_| env.archive.clone());
    let upper_dir = upper::dir_for(&paths.upper, &archive);
    let lock_file = lock::lock_path(&env.archive);
    if !env.archive.exists() && !upper_dir.exists() && !lock_file.exists() {
        return Err(missing(&env));
    }
    refuse_if_not_mine(&env, "delete")?;
    match clear_stale(&env)? {
        Probe::Live(r) if !a.force => {
            return Err(error_with_hint(
                format!(
                    "'{}' is mounted at {} ({}, daemon pid {})",
                    env.name,
                    env.mountpoint.display(),
                    if r.read_only { "read-only" } else { "writable" },
                    r.pid
                ),
                format!(
                    "unmount it first (conda-fuse-unmount {}), or pass --force to throw its unsaved \
                     changes away and unmount it",
                    env.name
                ),
            ));
        }
        Probe::Live(_) => {}
        _ => {}
    }
    // A writer elsewhere (another node, or a mount this node does not know) works in the upper
    // layer and lock this would delete; --force is for this node's mount only.
    if let Some((holder, None)) = lock::inspect(&env.archive)
        && !matches!(daemon::probe(&env.mountpoint), Probe::Live(r) if !r.read_only)
    {
        return Err(error_with_hint(
            format!(
                "'{}' is mounted writable by {}",
                env.name,
                holder.describe()
            ),
            "unmount it there first",
        ));
    }
    let mut doomed = Vec::new();
    if env.archive.exists() {
        let info = list::info(&env);
        let entries = info
            .entries
            .map_or_else(|e| format!("unreadable: {e}"), |n| format!("{n} entries"));
        doomed.push(format!(
            "archive     {} ({}, {entries})",
            env.archive.display(),
            progress::bytes(info.size)
        ));
    }
    if upper_dir.exists() {
        let n = overlay::unsaved_on_disk(&paths.upper, &archive).unwrap_or(0);
        doomed.push(format!(
            "upper layer {} ({n} unsaved changes)",
            upper_dir.display()
        ));
    }
    let snapshots = crate::commit::snapshots::list(&env.archive);
    if !snapshots.is_empty() {
        doomed.push(format!(
            "snapshots   {} ({}, {})",
            crate::commit::snapshots::dir_of(&env.archive).display(),
            snapshots.len(),
            progress::bytes(snapshots.iter().map(|s| s.size).sum())
        ));
    }
    if lock_file.exists() {
        doomed.push(format!("lock file   {}", lock_file.display()));
    }
    if env.mountpoint.exists() {
        doomed.push(format!(
            "mount point {} (if empty)",
            env.mountpoint.display()
        ));
    }
    println!("conda-fuse rm {} deletes:", env.name);
    for d in &doomed {
        println!("  {d}");
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(error_with_hint(
                "not deleting without a terminal to ask on",
                format!("pass --yes to delete '{}'", env.name),
            ));
        }
        print!("Delete '{}' for good? [y/N] ", env.name);
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok();
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("kept '{}'", env.name);
            return Ok(());
        }
    }
    if matches!(daemon::probe(&env.mountpoint), Probe::Live(_)) {
        unmount_env(&env, true)?;
    }
    let remove_file = |p: &Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)
            .with_context(|| format!("cannot delete {}", p.display()))
            .hint("check its directory's permissions"),
        _ => Ok(()),
    };
    remove_file(&env.archive)?;
    crate::commit::snapshots::remove_all(&env.archive).with_context(|| {
        format!(
            "cannot delete the snapshots in {}",
            crate::commit::snapshots::dir_of(&env.archive).display()
        )
    })?;
    if upper_dir.exists() {
        std::fs::remove_dir_all(&upper_dir)
            .with_context(|| format!("cannot delete the upper layer {}", upper_dir.display()))?;
    }
    remove_file(&lock_file)?;
    let _ = std::fs::remove_dir(&env.mountpoint);
    println!("deleted '{}'", env.name);
    Ok(())
}
