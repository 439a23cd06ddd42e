//! `activate` mounts an environment and prints its prefix (the shell function then activates it);
//! `activate-script` / `deactivate-script` print the code that (de)activates a prefix in a shell
//! without conda's shell function: conda's own `shell.SHELL` output if there is a conda, else the
//! variables and activate.d scripts of `shell::activation`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use super::report::error_with_hint;
use crate::conda;
use crate::envs::Paths;
use crate::envs::session::{Options, Purpose, Session};
use crate::shell::ENV_VALUE_NAME as ENV;
use crate::shell::{self, Shell, activation};

#[derive(Args)]
pub(super) struct ActivateArgs {
    /// Environment to mount (if needed) and activate
    #[arg(value_name = ENV)]
    name: String,
    /// Mount read-only even if the writer lock is free
    #[arg(long)]
    read_only: bool,
    /// Take the writer lock from a holder on another node that looks alive (see conda-fuse mount
    /// --help)
    #[arg(long, conflicts_with = "read_only")]
    steal_lock: bool,
}

pub(super) fn activate(a: ActivateArgs) -> anyhow::Result<()> {
    let env = Paths::from_env()?.env(&a.name)?;
    let purpose = Purpose::Activate {
        read_only: a.read_only,
    };
    let options = Options {
        steal_lock: a.steal_lock,
        ..Options::default()
    };
    let session = Session::open(&env, purpose, options, &mut super::envs::tell(&env))?;
    if !env.prefix.is_dir() {
        return Err(error_with_hint(
            format!(
                "{} has no folder '{}/' inside, so it is not in the layout of environments by name \
                 (conda-fuse-create, or the old conda-fuse.sh); its files are at {}",
                env.archive.display(),
                env.name,
                env.mountpoint.display()
            ),
            format!("repack it with conda-fuse pack DIR --name {}", env.name),
        ));
    }
    if session.we_mounted {
        let mode = if session.read_only {
            "read-only"
        } else {
            "writable"
        };
        eprintln!(
            "conda-fuse: mounted '{}' at {} ({mode})",
            env.name,
            env.mountpoint.display()
        );
    }
    println!("{}", env.prefix.display());
    if std::io::stdout().is_terminal() {
        eprintln!(
            "conda-fuse: a program cannot change its shell's environment: load the shell hook \
             (eval \"$(conda-fuse shell-hook bash)\") and run conda-fuse-activate {}, or run \
             conda activate {}",
            env.name,
            env.prefix.display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub(super) struct ActivateScriptArgs {
    /// Shell to write code for
    #[arg(long, value_enum)]
    shell: Shell,
    /// Prefix of the environment
    prefix: PathBuf,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub(super) fn activate_script(a: ActivateScriptArgs) -> anyhow::Result<()> {
    let Some(prefix) = a.prefix.to_str() else {
        return Err(error_with_hint(
            format!("{} is not valid UTF-8", a.prefix.display()),
            "activate it with conda directly",
        ));
    };
    if let Some(code) = conda::find()
        .ok()
        .and_then(|c| c.shell_code(a.shell.name(), Some(&a.prefix)))
    {
        print!("{code}");
        let marker = activation::Change {
            actions: vec![activation::Action::Set(
                "CONDA_FUSE_ACTIVATED_BY".into(),
                "conda-exe".into(),
            )],
        };
        print!(
            "{}",
            shell::render_change(a.shell, "activated by conda's executable", &marker)
        );
        return Ok(());
    }
    let change = activation::activate(prefix, a.shell.script_extension(), &var, "manual");
    print!(
        "{}",
        shell::render_change(a.shell, &format!("activating {prefix}"), &change)
    );
    Ok(())
}

#[derive(Args)]
pub(super) struct DeactivateScriptArgs {
    /// Shell to write code for
    #[arg(long, value_enum)]
    shell: Shell,
}

pub(super) fn deactivate_script(a: DeactivateScriptArgs) -> anyhow::Result<()> {
    if var("CONDA_FUSE_ACTIVATED_BY").as_deref() == Some("conda-exe")
        && let Some(code) = conda::find()
            .ok()
            .and_then(|c| c.shell_code(a.shell.name(), None))
    {
        print!("{code}");
        return Ok(());
    }
    let Some(change) = activation::deactivate(a.shell.script_extension(), &var) else {
        bail!("no environment is active (CONDA_PREFIX is not set)");
    };
    let prefix = var("CONDA_PREFIX").unwrap_or_default();
    print!(
        "{}",
        shell::render_change(a.shell, &format!("deactivating {prefix}"), &change)
    );
    Ok(())
}
