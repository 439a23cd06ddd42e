//! Running the user's programs (conda, a batch job's command) in the foreground. A Ctrl-C on the
//! terminal reaches the child directly (same process group); conda-fuse must survive it to clean
//! up or save afterwards, so it blocks the terminating signals and a thread forwards those sent to
//! conda-fuse alone (kill, a batch scheduler) to the child through a pidfd. Once the child has
//! exited, such a signal ends conda-fuse as it normally would.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use crate::process::PidFd;

const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set
}

/// Runs `cmd` to completion and returns how it ended. Must be called before this process starts
/// other threads that should not see these signals (they inherit the blocked mask).
pub fn run(cmd: &mut Command) -> io::Result<ExitStatus> {
    let set = forwarded_set();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(io::Error::from)?;
    // SAFETY: sigprocmask is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
            pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&forwarded_set()), None)
                .map_err(io::Error::from)
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
            return Err(e);
        }
    };
    let pidfd = PidFd::open(child.id());
    let done = Arc::new(AtomicBool::new(false));
    let done_seen = done.clone();
    std::thread::spawn(move || {
        loop {
            // SAFETY: siginfo_t is plain data; sigwaitinfo fills it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: the set is valid and blocked in this thread.
            let sig = unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) };
            if sig < 0 {
                continue;
            }
            if done_seen.load(Ordering::Acquire) {
                std::process::exit(128 + sig);
            }
            // Signals the terminal sent to the whole group already reached the child.
            if info.si_code == libc::SI_USER || info.si_code == libc::SI_QUEUE {
                pidfd.send_signal(sig);
            }
        }
    });
    let status = child.wait();
    done.store(true, Ordering::Release);
    status
}

/// The exit code a shell would report for `status` (128 + signal when killed).
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => (128 + s) as u8,
        _ => 1,
    }
}
