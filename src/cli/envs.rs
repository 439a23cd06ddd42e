//! Environments by name: create, install, remove, rm (the commands; the lifecycle itself is
//! `envs::create` and `envs::remove`), and mounting an environment at its place (shared by
//! activate, install, remove and run).

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;

use super::report::{WithHint, error_with_hint};
use super::{child, mount::print_saved, mount::save_bar, progress};
use crate::conda;
use crate::daemon::{self, DaemonError, MountRequest, Probe, Unmounted};
use crate::envs::create::Creation;
use crate::envs::remove::{self, Doomed};
use crate::envs::{Env, Paths, list};
use crate::overlay::OverlayError;
use crate::overlay::lock::LockError;
use crate::shell::ENV_VALUE_NAME as ENV;

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
    if let Probe::Live(r) = clear_stale(env)? {
        if r.archive != env.id.path() {
            return Err(error_with_hint(
                format!(
                    "{} serves {}, not {}",
                    env.mountpoint.display(),
                    r.archive.display(),
                    env.id
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
        let mut req = MountRequest::new(env.id.clone(), env.mountpoint.clone(), read_only);
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

/// A new environment needs its mount point free: no mount (a stale one is cleaned up) and
/// nothing in it.
fn refuse_busy_mount_point(env: &Env) -> anyhow::Result<()> {
    match clear_stale(env)? {
        Probe::Live(r) => Err(error_with_hint(
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
        )),
        _ if std::fs::read_dir(&env.mountpoint).is_ok_and(|mut d| d.next().is_some()) => {
            Err(error_with_hint(
                format!("the mount point {} is not empty", env.mountpoint.display()),
                "move its contents away (or pick another name) and try again",
            ))
        }
        _ => Ok(()),
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
    refuse_busy_mount_point(&env)?;
    let creation = Creation::begin(&paths, &env)?;
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
        return Err(error_with_hint(
            format!(
                "conda exited successfully but made no environment at {}; nothing was kept",
                env.prefix.display()
            ),
            "answer conda's question with yes, or pass -y",
        ));
    }
    match unmount_env(&env, false)? {
        Unmounted::Clean { .. } => {}
        other => {
            bail!("saving the new environment did not finish cleanly ({other:?}); nothing was kept")
        }
    }
    creation.finish()?;
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

#[derive(Args)]
pub(super) struct CondaArgs {
    /// Environment name
    #[arg(value_name = ENV)]
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
    #[arg(value_name = ENV)]
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
    let files = env.files(&paths);
    if !files.any_exist() {
        return Err(missing(&env));
    }
    refuse_if_not_mine(&env, "delete")?;
    if let Probe::Live(r) = clear_stale(&env)?
        && !a.force
    {
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
    // A writer elsewhere (another node, or a mount this node does not know) works in the upper
    // layer and lock this would delete; --force is for this node's mount only.
    if let Some((holder, None)) = env.writer()
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
    println!("conda-fuse rm {} deletes:", env.name);
    for d in remove::doomed(&paths, &env) {
        println!("  {}", doomed_line(&d));
    }
    if !a.yes && !confirm(&env)? {
        println!("kept '{}'", env.name);
        return Ok(());
    }
    if matches!(daemon::probe(&env.mountpoint), Probe::Live(_)) {
        unmount_env(&env, true)?;
    }
    remove::remove(&files)?;
    println!("deleted '{}'", env.name);
    Ok(())
}

fn doomed_line(d: &Doomed) -> String {
    match d {
        Doomed::Archive {
            path,
            size,
            entries,
        } => {
            let entries = entries
                .as_ref()
                .map_or_else(|e| format!("unreadable: {e}"), |n| format!("{n} entries"));
            format!(
                "archive     {} ({}, {entries})",
                path.display(),
                progress::bytes(*size)
            )
        }
        Doomed::Upper { path, unsaved } => {
            format!("upper layer {} ({unsaved} unsaved changes)", path.display())
        }
        Doomed::Snapshots { dir, count, bytes } => format!(
            "snapshots   {} ({count}, {})",
            dir.display(),
            progress::bytes(*bytes)
        ),
        Doomed::Lock(path) => format!("lock file   {}", path.display()),
        Doomed::MountPoint(path) => format!("mount point {} (if empty)", path.display()),
    }
}

/// Asks on the terminal whether to delete `env`.
fn confirm(env: &Env) -> anyhow::Result<bool> {
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
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
