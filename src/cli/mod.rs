//! The command line: clap definitions, dispatch, human output and exit codes. Errors reach the user
//! as an "error:" line saying what failed and where, and a "hint:" line saying what to do
//! (`report`).

mod activate;
mod child;
mod doctor;
mod envs;
mod history;
mod kernel;
mod list;
mod mount;
mod pack;
mod progress;
pub mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use report::WithHint;

use crate::archive::CacheLimits;
use crate::shell::ENV_VALUE_NAME as ENV;
use crate::shell::Shell;

const EXAMPLES: &str = "\
Examples:
  eval \"$(conda-fuse shell-hook bash)\"        # in ~/.bashrc: defines the conda-fuse-* functions
  conda-fuse-create ml python=3.11 numpy      # a new environment, one zip archive
  conda-fuse-activate ml                      # mount it and activate it in this shell
  conda-fuse-unmount ml                       # save and unmount
  conda-fuse run ml -- python train.py        # batch jobs
  conda-fuse pack ~/miniforge3/envs/old --name old
  conda-fuse mount any.zip ~/mnt/any          # any zip archive, anywhere";

#[derive(Parser)]
#[command(
    name = "conda-fuse",
    version,
    about = "Conda environments as single zip archives, served as directories through FUSE",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pack a directory (an environment) into a zip archive
    #[command(after_help = "\
Examples:
  conda-fuse pack ~/miniforge3/envs/ml              # the environment 'ml' (its prefix recorded), then: conda-fuse-activate ml
  conda-fuse pack ./env --name tools                # the environment 'tools'
  conda-fuse pack ./dir -o dir.zip                  # any directory into any archive, files as they are
  conda-fuse pack ./env -o env.zip --compression zstd --level 6     # smaller and faster to read; unzip cannot open it")]
    Pack(PackArgs),
    /// Mount an archive at a directory, writable unless --read-only (a background daemon serves it)
    #[command(after_help = "\
Examples:
  conda-fuse mount ml.zip ~/envs/ml                 # writable; changes are kept until commit/unmount saves them
  conda-fuse mount ml.zip ~/envs/ml --read-only     # any number of read-only mounts, also on other hosts
  conda-fuse mount ml.zip /tmp/ml --foreground      # serve in this terminal; Ctrl-C detaches")]
    Mount(MountArgs),
    /// Save the changes of a writable mount into its archive now; it stays mounted
    #[command(after_help = "Examples:\n  conda-fuse commit ml\n  conda-fuse commit ~/mnt/any")]
    Commit(CommitArgs),
    /// Save (or --discard) the changes, unmount, and wait for the daemon to exit
    #[command(after_help = "\
Examples:
  conda-fuse unmount ml
  conda-fuse unmount ml --discard          # throw away what changed since the last save
  conda-fuse unmount ~/mnt/any --lazy      # detach now even if busy; the daemon exits when the last user is gone")]
    Unmount(UnmountArgs),
    /// Show what a mount serves: archive, mode, daemon pid, unsaved changes, cache and memory use
    #[command(
        after_help = "Examples:\n  conda-fuse status ml\n  conda-fuse status ~/mnt/any --json"
    )]
    Status(StatusArgs),
    /// Create an environment: a new archive, mounted, `conda create --prefix`, saved
    #[command(after_help = "\
Examples:
  conda-fuse create ml python=3.11 numpy
  conda-fuse create ml -c conda-forge --override-channels python=3.12 -y
Runs the conda found as $CONDA_FUSE_CONDA, $CONDA_EXE, $MAMBA_EXE, or conda/mamba/micromamba on PATH.
A failed conda run leaves nothing behind.")]
    Create(envs::CreateArgs),
    /// Mount an environment if needed (writable if the writer lock is free) and print its prefix;
    /// the shell function conda-fuse-activate then activates it
    #[command(
        after_help = "Examples:\n  conda-fuse-activate ml        # with the shell hook loaded\n  conda activate \"$(conda-fuse activate ml)\""
    )]
    Activate(activate::ActivateArgs),
    /// Run `conda install --prefix` in an environment, then save it
    #[command(after_help = "Example:\n  conda-fuse install ml scipy -c conda-forge")]
    Install(envs::CondaArgs),
    /// Run `conda remove --prefix` in an environment, then save it
    #[command(after_help = "Example:\n  conda-fuse remove ml scipy")]
    Remove(envs::CondaArgs),
    /// Delete an environment: its archive, unsaved changes, lock and mount point
    #[command(after_help = "\
Examples:
  conda-fuse rm old                 # shows what goes and asks
  conda-fuse rm old --yes --force   # no question; unmounts it first, throwing unsaved changes away")]
    Rm(envs::RmArgs),
    /// Rename an environment: its archive, snapshots and Jupyter kernelspecs (files stay as they
    /// are: a mount serves them rewritten for the new prefix)
    #[command(after_help = "Example:\n  conda-fuse rename ml ml-2024")]
    Rename(envs::RenameArgs),
    /// List an environment's versions: now and the snapshots saves kept, with package changes
    #[command(after_help = "\
Examples:
  conda-fuse history ml             # now, 1 (before the last save), 2, ...
Each save keeps CONDA_FUSE_SNAPSHOTS earlier versions (default 1; 0 keeps none) in
.snapshots/ beside the archive: hard links, so keeping one costs no time, only its space.")]
    History(history::HistoryArgs),
    /// Show the package changes between a snapshot (default 1) and the current version
    #[command(
        after_help = "Examples:\n  conda-fuse diff ml       # what the last save changed\n  conda-fuse diff ml 2"
    )]
    Diff(history::DiffArgs),
    /// Make a snapshot the current version again (the replaced one is kept as a snapshot)
    #[command(after_help = "\
Examples:
  conda-fuse rollback ml            # undo the last install
  conda-fuse rollback ml --to 2
Refused while the environment is mounted, or has unsaved changes. Crash-safe: one rename.")]
    Rollback(history::RollbackArgs),
    /// Jupyter kernels from environments: install, list, remove
    #[command(after_help = "\
Examples:
  conda-fuse kernel install ml                          # in ~/.local/share/jupyter/kernels
  conda-fuse kernel install ml --display-name 'ML (2026)'
  conda-fuse kernel list
  conda-fuse kernel remove ml
A notebook started with the kernel mounts the env read-only (shared with runs and other kernels
on the node), activates it and runs ipykernel; the mount goes after the last user is gone.")]
    Kernel(kernel::KernelArgs),
    /// Delete an environment's snapshots (all, or all but the newest --keep N)
    #[command(after_help = "Examples:\n  conda-fuse prune ml\n  conda-fuse prune ml --keep 1")]
    Prune(history::PruneArgs),
    /// List the environments: size, entries, mounted (rw/ro, pid), unsaved changes
    #[command(after_help = "Examples:\n  conda-fuse env-list\n  conda-fuse env-list --json")]
    EnvList(list::EnvListArgs),
    /// Show where archives, mounts, state, upper layers and temporary files live
    #[command(after_help = "Example:\n  conda-fuse paths")]
    Paths,
    /// Run a command in an environment (batch jobs): mounted read-only and shared while needed
    #[command(after_help = "\
Examples:
  conda-fuse run ml -- python train.py --epochs 10
  conda-fuse run ml --write -- pip install rich     # writable; saved when the command ends
  conda-fuse run ml@1 -- python train.py            # the version before the last save, read-only
The exit code is the command's. Concurrent runs on one node share one mount. After the last one
finishes, a mount that runs made stays for CONDA_FUSE_RUN_LINGER seconds (default 60, 0 inside
batch jobs) for the next job, then goes; a mount you made yourself stays.")]
    Run(run::RunArgs),
    /// Check FUSE, conda, free space, stale mounts and locks, and the shell hook
    #[command(after_help = "Example:\n  conda-fuse doctor")]
    Doctor,
    /// Print the shell functions (conda-fuse-*) and TAB completion for a shell
    #[command(after_help = "\
Examples:
  eval \"$(conda-fuse shell-hook bash)\"     # in ~/.bashrc
  eval \"$(conda-fuse shell-hook zsh)\"      # in ~/.zshrc
  conda-fuse shell-hook fish | source       # in ~/.config/fish/config.fish
  conda-fuse shell-hook bash --add-to-rc    # puts that line in ~/.bashrc, once")]
    ShellHook {
        #[arg(value_enum)]
        shell: Shell,
        /// Print the path of the shell's rc file (where the hook line goes) instead
        #[arg(long)]
        rc_file: bool,
        /// Add the hook line to the shell's rc file, unless it is there already
        #[arg(long, conflicts_with = "rc_file")]
        add_to_rc: bool,
    },
    /// Shell code activating PREFIX without conda's shell function (used by conda-fuse-activate)
    #[command(hide = true)]
    ActivateScript(activate::ActivateScriptArgs),
    /// Shell code deactivating the active environment (used by conda-fuse-deactivate)
    #[command(hide = true)]
    DeactivateScript(activate::DeactivateScriptArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    Deflate,
    Zstd,
    Store,
}

impl From<Method> for crate::archive::compress::Method {
    fn from(m: Method) -> Self {
        use crate::archive::compress::Method as M;
        match m {
            Method::Deflate => M::Deflate,
            Method::Zstd => M::Zstd,
            Method::Store => M::Store,
        }
    }
}

#[derive(Args)]
struct PackArgs {
    /// Directory to pack
    dir: PathBuf,
    /// Make it the environment NAME: $CONDA_FUSE_ARCHIVE_PATH/NAME.zip with the files under NAME/
    /// [default without --output: the directory's name]
    #[arg(long, conflicts_with = "prefix_dir")]
    name: Option<String>,
    /// Archive to write instead (written beside as NAME.tmp-*, renamed in when complete)
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The prefix the environment was installed at, if not DIR itself (it was moved); recorded so
    /// that mounts serve its files rewritten for their own
    #[arg(long, value_name = "PATH")]
    from_prefix: Option<PathBuf>,
    /// Put entries under NAME/ inside the archive (the layout of environments by name)
    #[arg(long, value_name = "NAME")]
    prefix_dir: Option<String>,
    /// Compression method: deflate (readable by every zip tool), zstd, or store
    #[arg(long, value_enum, default_value = "deflate")]
    compression: Method,
    /// Compression level (deflate 1-9, default 9; zstd 1-22, default 3)
    #[arg(long)]
    level: Option<i32>,
    /// Compression workers (default: cores + 2)
    #[arg(long)]
    threads: Option<usize>,
    /// Replace the output archive if it exists
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct MountArgs {
    /// Archive to serve
    archive: PathBuf,
    /// Empty directory to mount it on
    mountpoint: PathBuf,
    /// Serve the archive read-only (no writer lock: any number of these, on any host)
    #[arg(long)]
    read_only: bool,
    /// Where writable mounts keep changes until saved [default: $CONDA_FUSE_UPPER_DIR, else ~/.local/state/conda-fuse/upper]
    #[arg(long, value_name = "DIR")]
    upper_dir: Option<PathBuf>,
    /// How saves compress new data: deflate (level 6; readable by every zip tool), zstd, or store
    #[arg(long, value_enum, default_value = "deflate")]
    compression: Method,
    /// Stay in the foreground (logs to the terminal; Ctrl-C unmounts)
    #[arg(long)]
    foreground: bool,
    /// Memory for decompressed entries, in MiB
    #[arg(long, value_name = "MIB", default_value_t = CacheLimits::DEFAULT_MEMORY >> 20)]
    cache_size: u64,
    /// Disk for decompressed large entries (in TMPDIR), in MiB
    #[arg(long, value_name = "MIB", default_value_t = CacheLimits::DEFAULT_SPILL >> 20)]
    spill_size: u64,
    /// Threads serving requests (default: 2 per core, at least 4)
    #[arg(long)]
    threads: Option<usize>,
    /// Let other users of this host use the mount (non-root users need user_allow_other in /etc/fuse.conf);
    /// group- and other-writable bits of archive entries are then not served
    #[arg(long)]
    allow_other: bool,
    /// Serve the owners the archive records instead of showing every entry as yours (always so for root)
    #[arg(long)]
    keep_owners: bool,
    /// Take the writer lock even though its holder (on another node) looks alive: for a node that
    /// is down but whose heartbeat has not gone stale yet. The holder, if it still runs, stops
    /// accepting changes at its next heartbeat
    #[arg(long, conflicts_with = "read_only")]
    steal_lock: bool,
}

#[derive(Args)]
struct UnmountArgs {
    /// Environment name, or mount point
    #[arg(value_name = ENV)]
    target: String,
    /// Throw away the changes made since the last save instead of saving them
    #[arg(long)]
    discard: bool,
    /// Detach even if busy; the daemon exits once the last user is gone
    #[arg(long)]
    lazy: bool,
}

#[derive(Args)]
struct CommitArgs {
    /// Environment name, or mount point
    #[arg(value_name = ENV)]
    target: String,
}

#[derive(Args)]
struct StatusArgs {
    /// Environment name, or mount point
    #[arg(value_name = ENV)]
    target: String,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    crate::logging::init_cli();
    let cli = Cli::parse();
    // Every command reads the settings first and refuses unusable ones, but those that the shell
    // runs at its start and when leaving an env: a bad variable must not break a login shell.
    let needs_settings = !matches!(
        cli.command,
        Command::ShellHook { .. } | Command::DeactivateScript(_)
    );
    if needs_settings && let Err(e) = crate::settings::load() {
        eprintln!("{}", report::render(&e.into()));
        return ExitCode::FAILURE;
    }
    let done = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Pack(a) => done(pack::run(a)),
        Command::Mount(a) => done(mount::run_mount(a)),
        Command::Commit(a) => done(mount::run_commit(a)),
        Command::Unmount(a) => done(mount::run_unmount(a)),
        Command::Status(a) => done(mount::run_status(a)),
        Command::Create(a) => done(envs::create(a)),
        Command::Activate(a) => done(activate::activate(a)),
        Command::Install(a) => done(envs::conda_change("install", a)),
        Command::Remove(a) => done(envs::conda_change("remove", a)),
        Command::Rm(a) => done(envs::rm(a)),
        Command::Rename(a) => done(envs::rename(a)),
        Command::EnvList(a) => done(list::env_list(a)),
        Command::History(a) => done(history::history(a)),
        Command::Diff(a) => done(history::diff(a)),
        Command::Rollback(a) => done(history::rollback(a)),
        Command::Prune(a) => done(history::prune(a)),
        Command::Paths => done(list::paths()),
        Command::Run(a) => run::run(a),
        Command::Kernel(a) => kernel::kernel(a),
        Command::Doctor => done(doctor::doctor()),
        Command::ShellHook {
            shell,
            rc_file,
            add_to_rc,
        } => done(shell_hook(shell, rc_file, add_to_rc)),
        Command::ActivateScript(a) => done(activate::activate_script(a)),
        Command::DeactivateScript(a) => done(activate::deactivate_script(a)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", report::render(&e));
            ExitCode::FAILURE
        }
    }
}

fn shell_hook(shell: Shell, print_rc_file: bool, add_to_rc: bool) -> anyhow::Result<()> {
    let rc_file = shell.rc_file(&crate::daemon::state::home_dir());
    if print_rc_file {
        println!("{}", rc_file.display());
    } else if add_to_rc {
        let added = shell
            .add_hook_to_rc(&rc_file)
            .with_context(|| format!("cannot add the hook line to {}", rc_file.display()))
            .with_hint(|| format!("add it yourself: {}", shell.hook_line()))?;
        if added {
            println!(
                "added to {}: {}\nopen a new shell, or run it now",
                rc_file.display(),
                shell.hook_line()
            );
        } else {
            println!("the hook is in {} already", rc_file.display());
        }
    } else {
        print!("{}", crate::shell::hook(shell, &Cli::command()));
    }
    Ok(())
}

/// The hook's text for `shell` (tests compare `shells/` with it).
pub fn hook(shell: Shell) -> String {
    crate::shell::hook(shell, &Cli::command())
}

/// Compression workers: one per core plus two, so that reading files overlaps compressing them.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hook learns from clap's tree which commands take an env name; each of those it
    /// completes must be a function it defines.
    #[test]
    fn every_command_that_takes_an_env_has_a_shell_function() {
        let paths = crate::shell::env_commands(&Cli::command());
        for want in [
            &["activate"][..],
            &["run"],
            &["unmount"],
            &["kernel", "install"],
        ] {
            assert!(paths.iter().any(|p| p == want), "{want:?} not in {paths:?}");
        }
        assert!(
            !paths.iter().any(|p| p == &["create"]),
            "create takes a new name"
        );
        for path in paths.iter().filter(|p| p.len() == 1) {
            assert!(
                crate::shell::defines_function(&path[0]),
                "{} takes an env name but the hook defines no conda-fuse-{}",
                path[0],
                path[0]
            );
        }
    }
}
