//! `run NAME -- CMD`: batch jobs. The environment is mounted read-only unless it is mounted already
//! (concurrent runs on one node share the mount; after the last one leaves, a mount that runs made
//! lingers `runs::linger()` for the next job, then goes), CMD runs with the environment activated,
//! and its exit code is returned.

use std::ffi::OsString;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::child;
use super::envs::{Want, mount_env, unmount_env};
use crate::daemon;
use crate::envs::runs::{self, Decision, Runs};
use crate::envs::{Env, Paths};
use crate::shell::ENV_VALUE_NAME as ENV;
use crate::shell::{Shell, activation, quote};

#[derive(Args)]
pub(super) struct RunArgs {
    /// Environment to run in (NAME@N: its snapshot N, read-only)
    #[arg(value_name = ENV)]
    name: String,
    /// Mount writable (the writer lock must be free) and save the changes when CMD ends
    #[arg(long)]
    write: bool,
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

impl RunArgs {
    /// A read-only run of `command` in the environment `name` (what a Jupyter kernel is).
    pub(super) fn read_only(name: String, command: Vec<OsString>) -> RunArgs {
        RunArgs {
            name,
            write: false,
            command,
        }
    }
}

/// The command with the environment activated: variables set directly; activate.d scripts are
/// sourced by a shell that then execs the command.
fn activated_command(prefix: &str, command: &[OsString]) -> Command {
    let change = activation::activate(prefix, "sh", &|k| std::env::var(k).ok(), "run");
    let mut scripts = Vec::new();
    let mut vars = Vec::new();
    for a in change.actions {
        match a {
            activation::Action::Set(k, v) => vars.push((k, Some(v))),
            activation::Action::Unset(k) => vars.push((k, None)),
            activation::Action::Source(p) => scripts.push(p),
        }
    }
    let mut cmd = if scripts.is_empty() {
        let mut c = Command::new(&command[0]);
        c.args(&command[1..]);
        c
    } else {
        let sources: String = scripts
            .iter()
            .map(|s| format!(". {}; ", quote(Shell::Bash, &s.to_string_lossy())))
            .collect();
        let shell = if which::which("bash").is_ok() {
            "bash"
        } else {
            "sh"
        };
        let mut c = Command::new(shell);
        c.arg("-c")
            .arg(format!("{sources}exec \"$@\""))
            .arg("conda-fuse-run")
            .args(command);
        c
    };
    for (k, v) in vars {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

/// The live mount of `env` that runs made (its read-only flag), or None: none is there, or the one
/// there is another (a user unmounted the runs' mount and mounted the env again), which runs must
/// leave alone. A record of a mount that is gone is forgotten.
fn runs_mount(env: &Env, runs: &Runs, decision: &Decision) -> anyhow::Result<Option<bool>> {
    let Some(daemon) = runs.mounted_by_run(decision) else {
        return Ok(None);
    };
    match daemon::probe(&env.mountpoint) {
        daemon::Probe::Live(r) if r.pid == daemon => Ok(Some(r.read_only)),
        _ => {
            runs.set_mounted_by_run(decision, None)?;
            Ok(None)
        }
    }
}

/// Unmounts the runs' mount of `env` (the last run has left, or the linger time is over).
fn unmount_after_runs(env: &Env, runs: &Runs, decision: &Decision) -> anyhow::Result<()> {
    match unmount_env(env, false) {
        Ok(_) => runs.set_mounted_by_run(decision, None)?,
        Err(e) => eprintln!(
            "conda-fuse: warning: could not unmount '{}' after the run: {e:#}",
            env.name
        ),
    }
    Ok(())
}

/// Starts the process that unmounts `env` after `linger` unless a run comes by then; it is
/// detached from the terminal's process group (Ctrl-C there is not for it) and reads nothing.
fn spawn_lingerer(env: &Env, linger: Duration) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the conda-fuse executable")?;
    let child = Command::new(exe)
        .args(["linger-run", &env.name, &linger.as_secs().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the process that unmounts it later")?;
    Ok(child.id())
}

/// A read-only mount that lingers after the runs that made it, with no run in it now, is unmounted,
/// so that a command that needs the env writable can mount it so.
fn reclaim_lingering(env: &Env, runs: &Runs, decision: &Decision) -> anyhow::Result<()> {
    let lingering = runs.others(decision, std::process::id()) == 0
        && runs_mount(env, runs, decision)? == Some(true);
    if lingering {
        runs.clear_lingerer(decision);
        unmount_after_runs(env, runs, decision)?;
    }
    Ok(())
}

/// `reclaim_lingering`, deciding as runs do (for activate, install and remove).
pub(super) fn reclaim_lingering_mount(env: &Env) -> anyhow::Result<()> {
    let runs = Runs::of(env);
    let decision = runs.decide()?;
    reclaim_lingering(env, &runs, &decision)
}

#[derive(Args)]
pub(super) struct LingerArgs {
    name: String,
    seconds: u64,
}

/// The lingerer: waits, then unmounts the runs' mount if no run came in the meantime (a run that
/// comes calls it off; a later lingerer replaces it).
pub(super) fn linger_run(a: LingerArgs) -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    let runs = Runs::of(&env);
    let me = std::process::id();
    // Looks once a second whether it was called off (a run came, a writer reclaimed the mount) or
    // the mount is gone (unmounted by hand), so that it does not sit out the whole time for nothing.
    let until = std::time::Instant::now() + Duration::from_secs(a.seconds);
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
        if !runs.still_lingerer(me)
            || !matches!(daemon::probe(&env.mountpoint), daemon::Probe::Live(_))
        {
            return Ok(());
        }
    }
    let decision = runs.decide()?;
    if !runs.is_lingerer(&decision, me) {
        return Ok(());
    }
    runs.clear_lingerer(&decision);
    if runs.others(&decision, me) == 0 && runs_mount(&env, &runs, &decision)?.is_some() {
        unmount_after_runs(&env, &runs, &decision)?;
    }
    Ok(())
}

pub(super) fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let env = paths.env_version(&a.name)?;
    if a.write && a.name.contains('@') {
        return Err(super::report::error_with_hint(
            format!("{} is a snapshot: it runs read-only", a.name),
            format!(
                "to change the environment, roll back to it: conda-fuse rollback {} --to N",
                env.name
            ),
        ));
    }
    let runs = Runs::of(&env);
    let me = std::process::id();
    {
        let decision = runs.decide()?;
        if a.write {
            reclaim_lingering(&env, &runs, &decision)?;
        }
        // A mount that is there already serves, whatever its mode (unless --write needs rw).
        let mount = mount_env(
            &env,
            if a.write {
                Want::Writable
            } else {
                Want::ReadOnly
            },
        )?;
        if mount.we_mounted
            && let daemon::Probe::Live(r) = daemon::probe(&env.mountpoint)
        {
            runs.set_mounted_by_run(&decision, Some(r.pid))?;
        }
        runs.join(&decision, me)?;
    }
    let prefix = env.prefix.to_string_lossy().into_owned();
    let status = child::run(&mut activated_command(&prefix, &a.command));
    let decision = runs.decide()?;
    runs.leave(&decision, me);
    if a.write {
        let saved = daemon::save(&env.mountpoint, &mut |_, _| {});
        if let Err(e) = saved {
            eprintln!(
                "conda-fuse: error: saving '{}' after the run: {e}",
                env.name
            );
        }
    }
    if runs.others(&decision, me) == 0 && runs_mount(&env, &runs, &decision)?.is_some() {
        // A read-only mount lingers for the next job; a writable one holds the writer lock, so it
        // goes at once.
        let linger = runs::linger();
        let lingering = !a.write
            && !linger.is_zero()
            && spawn_lingerer(&env, linger)
                .and_then(|pid| Ok(runs.set_lingerer(&decision, pid)?))
                .map_err(|e| {
                    eprintln!(
                        "conda-fuse: warning: cannot keep '{}' mounted for the next job ({e:#}); \
                         unmounting it now",
                        env.name
                    )
                })
                .is_ok();
        if !lingering {
            unmount_after_runs(&env, &runs, &decision)?;
        }
    }
    let program = a.command[0].to_string_lossy();
    let status = match status {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "conda-fuse: error: {program}: command not found in '{}' (PATH starts with {}/bin)",
                env.name, prefix
            );
            return Ok(ExitCode::from(127));
        }
        other => other.with_context(|| format!("cannot run {program} in '{}'", env.name))?,
    };
    Ok(ExitCode::from(child::exit_code(status)))
}
