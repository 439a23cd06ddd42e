//! The command line: clap definitions, dispatch, human output and exit codes. Errors reach the user
//! as one "error: ..." block (anyhow) saying what failed, where, and what to do.

mod mount;
mod pack;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::archive::CacheLimits;

const EXAMPLES: &str = "\
Examples:
  conda-fuse pack ~/miniforge3/envs/ml -o ml.zip --prefix-dir ml
  conda-fuse mount ml.zip ~/envs/ml
  conda-fuse commit ~/envs/ml
  conda-fuse status ~/envs/ml
  conda-fuse unmount ~/envs/ml";

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
  conda-fuse pack ~/miniforge3/envs/ml -o ml.zip
  conda-fuse pack ./env -o archives/env.zip --prefix-dir env        # layout of environments by name
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
    #[command(after_help = "Example:\n  conda-fuse commit ~/envs/ml")]
    Commit(CommitArgs),
    /// Save (or --discard) the changes, unmount, and wait for the daemon to exit
    #[command(after_help = "\
Examples:
  conda-fuse unmount ~/envs/ml
  conda-fuse unmount ~/envs/ml --discard   # throw away what changed since the last save
  conda-fuse unmount ~/envs/ml --lazy      # detach now even if busy; the daemon exits when the last user is gone")]
    Unmount(UnmountArgs),
    /// Show what a mount serves: archive, mode, daemon pid, unsaved changes, cache and memory use
    #[command(after_help = "Example:\n  conda-fuse status ~/envs/ml")]
    Status(StatusArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    Deflate,
    Zstd,
    Store,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Deflate => "deflate",
            Method::Zstd => "zstd",
            Method::Store => "store",
        }
    }
}

#[derive(Args)]
struct PackArgs {
    /// Directory to pack
    dir: PathBuf,
    /// Archive to write (written beside as NAME.tmp-*, renamed in when complete)
    #[arg(short, long)]
    output: PathBuf,
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
    /// How saves compress new data: deflate (readable by every zip tool), zstd, or store
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
    /// Let other users of this host use the mount (non-root users need user_allow_other in /etc/fuse.conf)
    #[arg(long)]
    allow_other: bool,
}

#[derive(Args)]
struct UnmountArgs {
    /// Mount point to unmount
    mountpoint: PathBuf,
    /// Throw away the changes made since the last save instead of saving them
    #[arg(long)]
    discard: bool,
    /// Detach even if busy; the daemon exits once the last user is gone
    #[arg(long)]
    lazy: bool,
}

#[derive(Args)]
struct CommitArgs {
    /// Mount point whose changes to save
    mountpoint: PathBuf,
}

#[derive(Args)]
struct StatusArgs {
    /// Mount point to report on
    mountpoint: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

pub fn main() -> ExitCode {
    crate::logging::init_cli();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pack(a) => pack::run(a),
        Command::Mount(a) => mount::run_mount(a),
        Command::Commit(a) => mount::run_commit(a),
        Command::Unmount(a) => mount::run_unmount(a),
        Command::Status(a) => mount::run_status(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conda-fuse: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Compression workers: one per core plus two, so that reading files overlaps compressing them.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 2
}
