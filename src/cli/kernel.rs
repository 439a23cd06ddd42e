//! `kernel install|list|remove NAME`: Jupyter kernels from archived environments, and the hidden
//! `kernel launch NAME CONNECTION_FILE` their kernelspecs run (a read-only `run` of ipykernel).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::report::error_with_hint;
use super::run::{RunArgs, run};
use crate::envs::Env;
use crate::envs::kernels::{self, KernelSpec};
use crate::shell::ENV_VALUE_NAME as ENV;

#[derive(Args)]
pub(super) struct KernelArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Args)]
struct Place {
    /// Install into Jupyter's data directory under DIR (DIR/share/jupyter/kernels), e.g. a
    /// JupyterHub's sys.prefix, instead of your own (~/.local/share/jupyter, or $JUPYTER_DATA_DIR)
    #[arg(long, value_name = "DIR")]
    prefix: Option<PathBuf>,
    /// Your own Jupyter data directory (the default)
    #[arg(long, conflicts_with = "prefix")]
    user: bool,
}

impl Place {
    fn kernels(&self) -> PathBuf {
        let data = match &self.prefix {
            Some(p) => p.join("share/jupyter"),
            None => kernels::user_data_dir(),
        };
        kernels::kernels_dir(&data)
    }
}

#[derive(Subcommand)]
enum Action {
    /// Write a kernelspec that starts the env's Python kernel through conda-fuse
    Install {
        /// Environment name
        #[arg(value_name = ENV)]
        name: String,
        /// The name Jupyter shows [default: "Python (NAME via conda-fuse)"]
        #[arg(long)]
        display_name: Option<String>,
        #[command(flatten)]
        place: Place,
    },
    /// List the kernels conda-fuse installed
    List {
        #[command(flatten)]
        place: Place,
    },
    /// Remove the kernel of an environment
    Remove {
        /// Environment name
        #[arg(value_name = ENV)]
        name: String,
        #[command(flatten)]
        place: Place,
    },
    /// What a kernelspec runs: mount read-only (shared), activate, run ipykernel
    #[command(hide = true)]
    Launch {
        name: String,
        connection_file: OsString,
    },
}

fn env_with_ipykernel(name: &str) -> anyhow::Result<Env> {
    let env = super::envs::existing(name)?;
    let has = kernels::has_ipykernel(&env)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", env.archive.display()))?;
    if !has {
        return Err(error_with_hint(
            format!("'{}' has no ipykernel, so Jupyter cannot run it", env.name),
            format!("add it with conda-fuse-install {} ipykernel", env.name),
        ));
    }
    Ok(env)
}

pub(super) fn kernel(a: KernelArgs) -> anyhow::Result<ExitCode> {
    match a.action {
        Action::Install {
            name,
            display_name,
            place,
        } => {
            let env = env_with_ipykernel(&name)?;
            let binary = std::env::current_exe().context("cannot find the conda-fuse binary")?;
            let spec = KernelSpec::new(&env, &binary, display_name.as_deref());
            let dir = kernels::spec_dir(&place.kernels(), &env.name);
            let text = serde_json::to_string_pretty(&spec)?;
            kernels::write_spec(&dir, &(text + "\n"))?;
            println!(
                "installed kernel '{}' ({}) in {}",
                spec.display_name,
                dir.file_name().unwrap_or_default().to_string_lossy(),
                dir.display()
            );
        }
        Action::List { place } => {
            for (env, dir) in kernels::list(&place.kernels()) {
                // A kernelspec's metadata and directory name are anyone's who could write there.
                let env = crate::display::escape(env.as_bytes());
                println!("{env:<20} {}", crate::display::path(&dir));
            }
        }
        Action::Remove { name, place } => {
            crate::envs::validate_name(&name)?;
            let dir = kernels::spec_dir(&place.kernels(), &name);
            if !dir.join("kernel.json").is_file() {
                return Err(error_with_hint(
                    format!(
                        "there is no conda-fuse kernel for '{name}' in {}",
                        place.kernels().display()
                    ),
                    "see conda-fuse kernel list",
                ));
            }
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
            println!("removed {}", dir.display());
        }
        Action::Launch {
            name,
            connection_file,
        } => {
            env_with_ipykernel(&name)?;
            let command = ["python", "-m", "ipykernel_launcher", "-f"]
                .into_iter()
                .map(OsString::from)
                .chain([connection_file])
                .collect();
            return run(RunArgs::kernel(name, command));
        }
    }
    Ok(ExitCode::SUCCESS)
}
