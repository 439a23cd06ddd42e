//! Fault injection, to prove crash safety by experiment rather than by argument: when the
//! environment variable CONDA_FUSE_FAULT names a point the process reaches, it kills itself there
//! with SIGKILL (no cleanup, no unwinding, as a crash or `kill -9` would).

pub const ENV: &str = "CONDA_FUSE_FAULT";

pub fn point(name: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        tracing::warn!("fault injection: dying at {name}");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}
