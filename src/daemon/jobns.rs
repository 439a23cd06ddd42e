//! A batch job's own mounts on a node. A scheduler ends a job by killing every process it started,
//! so a mount one job made must never serve another job: the second job would lose it when the
//! first ends. Inside a job, `run` (and `kernel launch`) therefore enter the job's private user +
//! mount namespace on this node before anything else: the first one creates it (a keeper process
//! holds it), later ones of the same job join it (`setns`). In it the mount root and the runtime
//! directory are empty tmpfs of the job's own, so the job mounts its environments at the usual
//! paths (the prefix `MOUNT_ROOT/NAME/NAME` never changes: conda bakes it into files), shares them
//! among its tasks on the node, and nothing of it (mount, daemon, record) outlives its processes;
//! the host never sees its mounts.
//!
//! The user namespace maps the user to themselves: processes keep their uid, files their owners,
//! and a process that joins (same uid, the namespace's owner) gets the capabilities to mount FUSE
//! there with mount(2), which a command it runs (exec'd) no longer has.
//!
//! The keeper listens on an abstract Unix socket named after the user and the job: it needs no
//! file, vanishes with its process, and its peer credentials (checked by the kernel) tell a joiner
//! whose it is. Each process in the job space keeps a connection open; when the last one closes,
//! the keeper detaches what is still mounted (so daemons a crashed run left exit) and goes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sched::CloneFlags;

/// How a command of a job got its mounts.
#[derive(Debug)]
pub enum JobSpace {
    /// In the job's namespace on this node (`created`: this process's keeper made it).
    Entered { created: bool },
    /// Already in it (a command run by a run of the job).
    AlreadyIn,
    /// No user namespaces here: the run shares the node's namespace, and never another job's
    /// mount (`envs::session`); why, for the note.
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum JobNsError {
    #[error("the keeper of job {job}'s mounts on this node is {found}, not yours")]
    Squatted { job: String, found: String },
    #[error("cannot {what} for job {job}'s mounts")]
    Io {
        what: &'static str,
        job: String,
        source: io::Error,
    },
}

impl crate::hint::Hint for JobNsError {
    fn hint(&self) -> Option<String> {
        match self {
            JobNsError::Squatted { .. } => Some(
                "another user's process holds its name: report it to your administrators; \
                 CONDA_FUSE_JOB_ID=0 runs without job-private mounts"
                    .into(),
            ),
            JobNsError::Io { .. } => None,
        }
    }
}

/// The connection that counts this process in the job space, kept for its lifetime.
static KEEP: std::sync::OnceLock<UnixStream> = std::sync::OnceLock::new();

/// The keeper's name: the user's, the job's and the node's (a node is one kernel; the node's
/// name keeps apart nodes that share a network namespace, as the tests' do).
fn socket_name(job: &str) -> String {
    let job: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!(
        "conda-fuse/job/{}/{job}/{}",
        nix::unistd::getuid(),
        crate::node::hostname()
    )
}

fn address(job: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(socket_name(job).as_bytes())
}

/// Enters the job space of `job` on this node, creating it if this is the job's first command
/// here. Must run while the process is single-threaded (setns into a user namespace requires it).
pub fn enter(job: &str) -> Result<JobSpace, JobNsError> {
    let io_err = |what| {
        let job = job.to_string();
        move |source| JobNsError::Io { what, job, source }
    };
    let addr = address(job).map_err(io_err("name the job's socket"))?;
    let mut created = false;
    for attempt in 0..3 {
        match UnixStream::connect_addr(&addr) {
            // Another user's process holding the name must not stop this job: it goes without
            // a namespace of its own (and so never shares another job's mount), saying why.
            Ok(stream) => {
                return match join(job, stream, created) {
                    Err(JobNsError::Squatted { found, .. }) => Ok(JobSpace::Unavailable(format!(
                        "the name of its keeper is taken by {found}"
                    ))),
                    other => other,
                };
            }
            Err(e)
                if attempt < 2
                    && matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                    ) =>
            {
                match spawn_keeper(job, &addr).map_err(io_err("start the keeper"))? {
                    Ok(()) => created = true,
                    Err(why) => return Ok(JobSpace::Unavailable(why)),
                }
            }
            Err(e) => return Err(io_err("reach the keeper")(e)),
        }
    }
    unreachable!("the third attempt returns")
}

fn join(job: &str, mut stream: UnixStream, created: bool) -> Result<JobSpace, JobNsError> {
    let io_err = |what| {
        let job = job.to_string();
        move |source| JobNsError::Io { what, job, source }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io_err("reach the keeper"))?;
    let mut greeting = [0u8; 1];
    stream
        .read_exact(&mut greeting)
        .map_err(io_err("hear from the keeper"))?;
    let cred = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| io_err("ask who the keeper is")(e.into()))?;
    if cred.uid() != nix::unistd::getuid().as_raw() || greeting != *b"k" {
        return Err(JobNsError::Squatted {
            job: job.to_string(),
            found: format!("pid {} of uid {}", cred.pid(), cred.uid()),
        });
    }
    let ns = |kind: &str| File::open(format!("/proc/{}/ns/{kind}", cred.pid()));
    let (user, mnt) = (
        ns("user").map_err(io_err("open the keeper's namespaces"))?,
        ns("mnt").map_err(io_err("open the keeper's namespaces"))?,
    );
    // The keeper answered after the namespaces were opened: they are its, not a reused pid's.
    stream
        .write_all(b"p")
        .and_then(|()| stream.read_exact(&mut greeting))
        .map_err(io_err("hear from the keeper"))?;
    let same = |a: &File, kind: &str| {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::metadata(format!("/proc/self/ns/{kind}"));
        a.metadata()
            .and_then(|m| ours.map(|o| m.ino() == o.ino() && m.dev() == o.dev()))
            .unwrap_or(false)
    };
    if same(&user, "user") && same(&mnt, "mnt") {
        let _ = KEEP.set(stream);
        return Ok(JobSpace::AlreadyIn);
    }
    let cwd = std::env::current_dir().ok();
    nix::sched::setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(|e| io_err("join the job's user namespace")(e.into()))?;
    nix::sched::setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| io_err("join the job's mount namespace")(e.into()))?;
    // Joining a mount namespace moves this process to its root.
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(&cwd);
    }
    let _ = KEEP.set(stream);
    Ok(JobSpace::Entered { created })
}

/// Forks the keeper and waits until it listens (Ok(Ok)), or says why it cannot (Ok(Err): no user
/// namespaces here), or lost the race to another keeper of the job (also Ok(Ok): connect again).
fn spawn_keeper(job: &str, addr: &SocketAddr) -> io::Result<Result<(), String>> {
    use nix::unistd::{ForkResult, fork};
    // The places the job gets its own of, made (and checked private) while still on the host.
    let runtime = super::runtime::runtime().map_err(io::Error::other)?;
    let mount_root = mount_root();
    std::fs::create_dir_all(&mount_root)?;
    let (read_end, write_end) = nix::unistd::pipe()?;
    let inherited = crate::process::open_fds();
    // SAFETY: called while the CLI is single-threaded (see `enter`).
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut report = String::new();
            File::from(read_end).read_to_string(&mut report)?;
            // The keeper double-forked: reap the intermediate child.
            let _ = nix::sys::wait::waitpid(child, None);
            Ok(match report.as_str() {
                "ready" | "taken" => Ok(()),
                why => Err(why.to_string()),
            })
        }
        ForkResult::Child => {
            drop(read_end);
            // Reparented at once, so the run that started it never waits for it.
            // SAFETY: still single-threaded in the child.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {}
                // SAFETY: leaving the intermediate child without the parent's handlers.
                _ => unsafe { libc::_exit(0) },
            }
            let mut pipe = Some(File::from(write_end));
            let keep_fd = pipe.as_ref().map_or(-1, |p| p.as_raw_fd());
            for fd in inherited {
                if fd != keep_fd {
                    // SAFETY: descriptors of the run this keeper must not hold (its output, its
                    // decision lock); nothing in this process uses them.
                    unsafe { libc::close(fd) };
                }
            }
            let code = match keep(job, addr, runtime.path(), &mount_root, &mut pipe) {
                Ok(()) => 0,
                Err(why) => {
                    tell(&mut pipe, &why);
                    1
                }
            };
            // SAFETY: the keeper's end; nothing to unwind.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Where environments are mounted (`CONDA_FUSE_MOUNT_ROOT`, or its default).
fn mount_root() -> PathBuf {
    crate::settings::get()
        .mount_root
        .clone()
        .unwrap_or_else(|| super::state::home_dir().join("miniconda_fuse/envs"))
}

/// The keeper: makes the namespaces, says "ready" on `pipe`, then holds them while anyone is
/// connected.
fn keep(
    job: &str,
    addr: &SocketAddr,
    runtime: &Path,
    mount_root: &Path,
    pipe: &mut Option<File>,
) -> Result<(), String> {
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGPIPE,
    ] {
        // SAFETY: ignoring signals installs no handler.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
    }
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ok();
    if let Some(null) = &devnull {
        for fd in 0..3 {
            // SAFETY: pointing stdin/out/err at /dev/null.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    make_namespaces(runtime, mount_root)
        .map_err(|e| format!("user namespaces are not available here ({e})"))?;
    let listener = match UnixListener::bind_addr(addr) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            tell(pipe, "taken");
            return Ok(());
        }
        Err(e) => return Err(format!("cannot listen for job {job}'s commands: {e}")),
    };
    // The run that started this waits for the end of the pipe: close it.
    tell(pipe, "ready");
    serve(listener);
    detach_mounts(mount_root);
    Ok(())
}

/// Says `what` to the run that started the keeper, and closes the pipe (it reads to the end).
fn tell(pipe: &mut Option<File>, what: &str) {
    if let Some(mut p) = pipe.take() {
        let _ = p.write_all(what.as_bytes());
    }
}

fn write_proc(file: &str, text: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/self/{file}"), text)
}

/// A user namespace mapping this user to themselves and a mount namespace it owns, in which the
/// runtime directory and the mount root are the job's own empty tmpfs.
fn make_namespaces(runtime: &Path, mount_root: &Path) -> io::Result<()> {
    use nix::mount::{MsFlags, mount};
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
    write_proc("setgroups", "deny")?;
    write_proc("uid_map", &format!("{uid} {uid} 1"))?;
    write_proc("gid_map", &format!("{gid} {gid} 1"))?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
    for dir in [runtime, mount_root] {
        mount(
            Some("conda-fuse-job"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0700"),
        )?;
    }
    Ok(())
}

/// Holds the namespaces while any command of the job is connected; each connection is greeted
/// (`k`) and echoed (its pings). Returns when the last one closed (or none came within a minute).
fn serve(listener: UnixListener) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut conns: Vec<UnixStream> = Vec::new();
    let mut ever = false;
    loop {
        let mut fds: Vec<PollFd> = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            conns
                .iter()
                .map(|c| PollFd::new(c.as_fd(), PollFlags::POLLIN)),
        );
        let timeout = if ever {
            PollTimeout::NONE
        } else {
            PollTimeout::try_from(60_000).unwrap_or(PollTimeout::NONE)
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut gone = Vec::new();
        for (i, conn) in conns.iter_mut().enumerate() {
            if !ready[i + 1] {
                continue;
            }
            let mut b = [0u8; 16];
            match conn.read(&mut b) {
                Ok(0) | Err(_) => gone.push(i),
                Ok(n) => {
                    let _ = conn.write_all(&b[..n]);
                }
            }
        }
        for i in gone.into_iter().rev() {
            conns.remove(i);
        }
        if ready[0]
            && let Ok((mut conn, _)) = listener.accept()
            && conn.write_all(b"k").is_ok()
        {
            ever = true;
            conns.push(conn);
        }
        if ever && conns.is_empty() {
            return;
        }
    }
}

/// Detaches the conda-fuse mounts still in the job space, so that their daemons (of runs that
/// died without unmounting) exit rather than hold the namespace until the job ends.
fn detach_mounts(mount_root: &Path) {
    for m in crate::mountinfo::mounts() {
        if m.fstype == "fuse.conda-fuse" && m.point.starts_with(mount_root) {
            let _ = nix::mount::umount2(&m.point, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Whether this kernel lets this user make a user + mount namespace (for `doctor`): a child
/// tries and says.
pub fn user_namespaces_work() -> Result<(), String> {
    use nix::unistd::{ForkResult, fork};
    // SAFETY: the child only makes syscalls and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            // Before unsharing: in the new namespace the uid reads as unmapped until mapped.
            let uid = nix::unistd::getuid();
            let ok = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
                .is_ok()
                && write_proc("setgroups", "deny").is_ok()
                && write_proc("uid_map", &format!("{uid} {uid} 1")).is_ok();
            // SAFETY: exiting the child without unwinding.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            _ => Err(disabled_why()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// What turns user namespaces off here, as far as the usual knobs say.
fn disabled_why() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "user.max_user_namespaces is 0".into();
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "kernel.unprivileged_userns_clone is 0".into();
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces".into();
    }
    "the kernel refuses unprivileged user namespaces".into()
}
