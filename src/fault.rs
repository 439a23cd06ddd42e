//! Fault injection, to prove crash safety by experiment rather than by argument: when the
//! environment variable CONDA_FUSE_FAULT names a point the process reaches, it kills itself there
//! with SIGKILL (no cleanup, no unwinding, as a crash or `kill -9` would). The points are one enum
//! shared by the code and the tests, so a new point is crash-tested as soon as it exists.

pub const ENV: &str = "CONDA_FUSE_FAULT";

/// The steps of a save a crash can fall between (see `commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    SaveDuringBuild,
    SaveBeforeIntent,
    SaveBeforeRename,
    SaveAfterRename,
    SaveAfterRebase,
}

impl Point {
    pub const ALL: [Point; 5] = [
        Point::SaveDuringBuild,
        Point::SaveBeforeIntent,
        Point::SaveBeforeRename,
        Point::SaveAfterRename,
        Point::SaveAfterRebase,
    ];

    /// The value of CONDA_FUSE_FAULT that stops the process here.
    pub fn name(self) -> &'static str {
        match self {
            Point::SaveDuringBuild => "save:during-build",
            Point::SaveBeforeIntent => "save:before-intent",
            Point::SaveBeforeRename => "save:before-rename",
            Point::SaveAfterRename => "save:after-rename",
            Point::SaveAfterRebase => "save:after-rebase",
        }
    }
}

pub fn point(at: Point) {
    if std::env::var_os(ENV).is_some_and(|v| v == at.name()) {
        tracing::warn!("fault injection: dying at {}", at.name());
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}
