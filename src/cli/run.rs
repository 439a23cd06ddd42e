//! `run NAME -- CMD`: batch jobs. The environment is mounted read-only unless it is mounted already
//! (concurrent runs on one host share the mount; the last to leave unmounts a mount that runs
//! made), CMD runs with the environment activated, and its exit code is returned.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;

use super::child;
use super::envs::{Want, mount_env, unmount_env};
use crate::daemon;
use crate::envs::{Paths, runs::Runs};
use crate::shell::{Shell, activation, quote};

#[derive(Args)]
pub(super) struct RunArgs {
    /// Environment to run in
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

pub(super) fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let paths = Paths::from_env()?;
    let env = paths.env(&a.name)?;
    let runs = Runs::of(&env);
    let me = std::process::id();
    {
        let decision = runs.decide()?;
        // A mount that is there already serves, whatever its mode (unless --write needs rw).
        let mount = mount_env(
            &env,
            if a.write {
                Want::Writable
            } else {
                Want::ReadOnly
            },
        )?;
        if mount.we_mounted {
            runs.set_mounted_by_run(&decision, true)?;
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
    if runs.others(&decision, me) == 0 && runs.mounted_by_run(&decision) {
        match unmount_env(&env, false) {
            Ok(_) => runs.set_mounted_by_run(&decision, false)?,
            Err(e) => eprintln!(
                "conda-fuse: warning: could not unmount '{}' after the run: {e:#}",
                env.name
            ),
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
