//! Environments by name: create, install, remove, rm (the commands: the lifecycle itself is
//! `envs::create`, `envs::remove` and `envs::session`), and what sessions say, in words.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use clap::Args;

use super::report::error_with_hint;
use super::{child, mount::print_saved, mount::save_bar, progress};
use crate::conda;
use crate::daemon::{self, Probe, Unmounted};
use crate::envs::create::{self, Creation};
use crate::envs::remove::{self, Doomed};
use crate::envs::rename;
use crate::envs::session::{self, Event, Note, Options, Outcome, Purpose, Said, Session};
use crate::envs::{Env, Paths, list};
use crate::shell::ENV_VALUE_NAME as ENV;

/// The environment `name`, which must have an archive.
pub(super) fn existing(name: &str) -> anyhow::Result<Env> {
    let env = Paths::from_env()?.env(name)?;
    session::require_archive(&env)?;
    Ok(env)
}

pub(super) fn refuse_if_mounted(env: &Env) -> anyhow::Result<()> {
    Ok(session::refuse_if_mounted(env)?)
}

pub(super) fn refuse_if_not_mine(env: &Env, what: &'static str) -> anyhow::Result<()> {
    Ok(session::refuse_if_not_mine(env, what)?)
}

/// What a session tells, in words: the report of a mount it made, and what it says.
pub(super) fn tell(env: &Env) -> impl FnMut(Event<'_>) + '_ {
    move |e| match e {
        Event::Mounted(m) => super::mount::print_report(m),
        Event::Said(s) => say(env, &[s]),
    }
}

/// Says what a session did along the way (`Said`) that the user should know.
pub(super) fn say(env: &Env, said: &[Said]) {
    for s in said {
        match s {
            Said::Plan(Note::CleanedStale) => eprintln!(
                "conda-fuse: note: cleaned up the stale mount at {} (its daemon had died; unsaved \
                 changes come back at the next writable mount)",
                env.mountpoint.display()
            ),
            Said::Plan(Note::RemountedNewer) => eprintln!(
                "conda-fuse: note: '{}' was saved since it was mounted here: mounting the new \
                 version",
                env.name
            ),
            Said::Plan(Note::ServesOlder) => eprintln!(
                "conda-fuse: note: '{}' was saved since it was mounted at {}, and commands still \
                 use that mount: this one gets the version they have (unmount it when they are \
                 done to get the new one)",
                env.name,
                env.mountpoint.display()
            ),
            Said::Plan(Note::NotWritableByYou) => eprintln!(
                "conda-fuse: note: '{}' is {}, which you cannot write; mounting it read-only",
                env.name,
                env.archive.display()
            ),
            Said::ReadOnlyBecauseWriter { holder } => eprintln!(
                "conda-fuse: note: '{}' is mounted writable by {holder}; mounting it read-only \
                 here (changes need that mount: unmount it there to write here)",
                env.name
            ),
            Said::WaitingForLease {
                holder,
                silent,
                takeover,
            } => eprintln!(
                "conda-fuse: note: '{}' is held writable by {holder}, whose heartbeat stopped {}s \
                 ago; this job waits for its lease to run out (at {}s) and then takes it over \
                 with its unsaved changes",
                env.name,
                silent.as_secs(),
                takeover.as_secs()
            ),
            Said::WaitingForJob { job, pid, limit } => eprintln!(
                "conda-fuse: note: '{}' is mounted by job {job}'s command (daemon pid {pid}), \
                 which goes when that job ends; waiting for it to go (up to {}s, \
                 CONDA_FUSE_RUN_WAIT)",
                env.name,
                limit.as_secs()
            ),
        }
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

pub(super) fn create(a: CreateArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    create::check_new(&env, &mut tell(&env))?;
    let conda = conda::find()?;
    let creation = Creation::begin(&paths, &env)?;
    eprintln!(
        "conda-fuse: running {}",
        conda.describe("create", &env.prefix, &a.conda_args)
    );
    let status = child::run(&mut conda.command("create", &env.prefix, &a.conda_args))
        .with_context(|| format!("cannot run {}", conda.program.display()))?;
    create::check_made(&env, status)?;
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
    let session = Session::open(&env, Purpose::Change, Options::default(), &mut tell(&env))?;
    let before = session.unsaved()?;
    eprintln!(
        "conda-fuse: running {}",
        conda.describe(sub, &env.prefix, &a.conda_args)
    );
    let status = child::run(&mut conda.command(sub, &env.prefix, &a.conda_args))
        .with_context(|| format!("cannot run {}", conda.program.display()));
    let ok = status.as_ref().is_ok_and(|s| s.success());
    let thrown_away = !ok && session.we_mounted && before == 0;
    let (bar, mut on_progress) = save_bar();
    let outcome = if ok { Outcome::Done } else { Outcome::Failed };
    let closed = session.close(outcome, before, &mut on_progress);
    bar.finish_and_clear();
    let closed = closed?;
    let status = status?;
    if !ok {
        if thrown_away {
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
    if let Some(s) = &closed.saved {
        print_saved(&format!("saved {}", env.name), s);
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
        session::require_archive(&env)?;
    }
    refuse_if_not_mine(&env, "delete")?;
    session::reclaim_lingering(&env)?;
    let (probe, said) = session::settle_mount_point(&env)?;
    say(&env, &said);
    let scope = remove::scope_of(&files);
    remove::refuse(&env, &probe, a.force, scope)?;
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
    remove::remove(&files, scope)?;
    match scope {
        remove::Scope::Everything => println!("deleted '{}'", env.name),
        remove::Scope::NameOnly { .. } => println!(
            "deleted the name '{}'; {} stays",
            env.name,
            files.id.path().display()
        ),
    }
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
        Doomed::Name {
            path,
            target,
            owner,
        } => format!(
            "only the name {} (a symlink {} made to {}, which stays: only a name of your own \
             deletes what it names)",
            path.display(),
            crate::display::user(*owner),
            target.display()
        ),
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

#[derive(Args)]
pub(super) struct RenameArgs {
    /// Environment to rename
    #[arg(value_name = ENV)]
    old: String,
    /// Its new name
    new: String,
}

pub(super) fn rename(a: RenameArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let old = paths.env(&a.old)?;
    session::require_archive(&old)?;
    refuse_if_not_mine(&old, "rename")?;
    let new = rename::target(&paths, &old, &a.new)?;
    // Runs' lingering mounts and a dead daemon's mount are no users of it: out of the way.
    session::reclaim_lingering(&old)?;
    let (_, said) = session::settle_mount_point(&old)?;
    say(&old, &said);
    let renamed = rename::rename(&paths, &old, &new, super::default_threads())?;
    println!(
        "renamed '{}' to '{}': {} entries ({} recorded with the prefix they hold), {} snapshot(s) \
         -> {}",
        old.name,
        new.name,
        renamed.entries,
        renamed.prefixes_recorded,
        renamed.snapshots,
        renamed.archive.display()
    );
    for dir in &renamed.kernelspecs {
        println!("kernelspec moved to {}", dir.display());
    }
    println!("activate it with: conda-fuse-activate {}", new.name);
    Ok(())
}
