//! Facts about processes, from /proc, and pidfds (a handle on one process that a reused pid
//! cannot fool).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The command name, whether the process runs (is not a zombie), and when it started (clock ticks
/// after boot: with the pid, an identity a reused pid does not share).
fn stat(pid: u32) -> Option<(String, bool, Option<u64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ...": the command name may contain spaces and parentheses.
    let (comm, rest) = stat
        .split_once(" (")
        .and_then(|(_, r)| r.rsplit_once(") "))?;
    let running = !matches!(rest.chars().next(), Some('Z' | 'X' | 'x'));
    // starttime is field 22; `rest` starts at field 3.
    let started = rest.split_whitespace().nth(19).and_then(|t| t.parse().ok());
    Some((comm.to_string(), running, started))
}

/// When `pid` started (clock ticks after boot), if it exists.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid)?.2
}

/// Whether `pid` runs and is the process that started at `started` (None: any process with that
/// pid, for records that did not say).
pub fn is_running_since(pid: u32, started: Option<u64>) -> bool {
    stat(pid).is_some_and(|(_, running, now)| running && (started.is_none() || now == started))
}

/// Whether `pid` is a running (not zombie) conda-fuse process; a pid reused by an unrelated
/// program does not count.
pub fn is_conda_fuse(pid: u32) -> bool {
    stat(pid).is_some_and(|(comm, running, _)| running && comm.starts_with("conda-fuse"))
}

/// Whether `pid` is a running (not zombie) process.
pub fn is_running(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, running, _)| running)
}

/// The descriptors this process has open, but stdin, stdout and stderr.
pub fn open_fds() -> Vec<i32> {
    use std::os::fd::AsRawFd;
    let Ok(mut dir) = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) else {
        return Vec::new();
    };
    let own = dir.as_raw_fd();
    dir.iter()
        .filter_map(|e| e.ok()?.file_name().to_str().ok()?.parse::<i32>().ok())
        .filter(|&fd| fd > 2 && fd != own)
        .collect()
}

/// A pidfd, or None on kernels without them (before 5.3).
pub struct PidFd(pub Option<OwnedFd>);

impl PidFd {
    pub fn open(pid: u32) -> PidFd {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return PidFd(None);
        }
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        PidFd(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Sends `signal` to the process, if it is still the one this pidfd was opened on.
    pub fn send_signal(&self, signal: i32) -> bool {
        let Some(fd) = &self.0 else { return false };
        // SAFETY: pidfd_send_signal takes a pidfd, a signal, a null siginfo and flags.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            ) == 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_told_from_another_with_its_pid() {
        let me = std::process::id();
        let started = start_time(me);
        assert!(started.is_some());
        for (since, want) in [
            (started, true),
            (None, true),
            (started.map(|t| t + 1), false),
        ] {
            assert_eq!(is_running_since(me, since), want, "{since:?}");
        }
        assert!(!is_running_since(u32::MAX - 1, None));
    }
}
