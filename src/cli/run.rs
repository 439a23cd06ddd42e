//! `run NAME -- CMD`: batch jobs. The environment is mounted read-only unless it is mounted already
//! (concurrent runs on one node share the mount; after the last one leaves, a mount that runs made
//! lingers `runs::linger()` for the next job, then its daemon unmounts it), CMD runs with the environment activated,
//! and its exit code is returned.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;

use super::child;
use crate::daemon::jobns::{self, JobSpace};
use crate::envs::Paths;
use crate::envs::session::{Options, Outcome, Purpose, Session};
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
    /// (set by `kernel launch`)
    #[arg(skip)]
    kernel: bool,
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
    /// A Jupyter kernel: a read-only run of `command` in the environment `name`.
    pub(super) fn kernel(name: String, command: Vec<OsString>) -> RunArgs {
        RunArgs {
            name,
            write: false,
            kernel: true,
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

/// Inside a batch job, enters the job's own mounts on this node (`daemon::jobns`) before
/// anything else; where that cannot be, the session options keep this job off other jobs'
/// mounts. Must be called while single-threaded.
pub(super) fn enter_job_space() -> anyhow::Result<Options> {
    let Some(job) = crate::settings::get().job.clone() else {
        return Ok(Options::default());
    };
    match jobns::enter(&job)? {
        JobSpace::Entered { .. } | JobSpace::AlreadyIn => Ok(Options::default()),
        JobSpace::Unavailable(why) => {
            let node = crate::node::Node::this();
            let key = format!("no-job-namespaces-{}", node.boot_id);
            if crate::daemon::state::once(&key) {
                eprintln!(
                    "conda-fuse: note: jobs cannot have mounts of their own on {} ({why}): each \
                     job mounts its environments itself and waits while another job's mount of \
                     the same environment is there, since that one goes when its job ends (said \
                     once per node; conda-fuse doctor)",
                    node.host
                );
            }
            Ok(Options {
                only_job: Some(job),
                ..Options::default()
            })
        }
    }
}

pub(super) fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let options = enter_job_space()?;
    let env = Paths::from_env()?.env_version(&a.name)?;
    let purpose = if a.kernel {
        Purpose::Kernel
    } else {
        Purpose::Run { write: a.write }
    };
    let session = Session::open(&env, purpose, options, &mut super::envs::tell(&env))?;
    let prefix = env.prefix.to_string_lossy().into_owned();
    let status = child::run(&mut activated_command(&prefix, &a.command));
    match session.close(Outcome::Done, 0, &mut |_, _| {}) {
        Ok(closed) => {
            if let Some(s) = &closed.saved {
                super::mount::print_saved(&format!("saved {}", env.name), s);
            }
        }
        // The command's own exit code still tells how it went.
        Err(e) => eprintln!("{}", super::report::render(&e.into())),
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
