//! Log output. Daemons log to stderr, which `mount` points at the mount's log file in the state
//! directory; the CLI logs only when CONDA_FUSE_LOG is set (its human output goes through `cli`).

use tracing_subscriber::EnvFilter;

fn init(default: &str) {
    let filter =
        EnvFilter::try_from_env("CONDA_FUSE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

pub fn init_cli() {
    if std::env::var_os("CONDA_FUSE_LOG").is_some() {
        init("warn");
    }
}

pub fn init_daemon() {
    init("info");
}
