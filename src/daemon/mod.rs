//! One daemon process per mount. `mount` checks everything it can in the calling process (FUSE
//! present, mount point usable, archive readable, writer lock free, upper layer recoverable), then
//! forks the daemon, which mounts, records itself in the state directory, opens its control socket
//! and reports "ready" (or why it failed) over a pipe; the caller returns only then. The client side
//! (`unmount`, `save`, `status`) lives in `client.rs`, the answers to its requests in `handler.rs`.

mod client;
pub mod control;
mod handler;
pub mod jobns;
mod keeper;
pub mod mountpoint;
pub mod runs;
pub mod runtime;
pub mod startup;
pub mod state;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{ForkResult, fork, setsid};

use crate::archive::{Archive, ArchiveError, ArchiveId, CacheLimits, Compression};
use crate::fs::{Filesystem, FuseAdapter};
use crate::hint::{Hint, RemoteError};
use crate::overlay::tree::{BuildReport, Defaults};
use crate::overlay::{Overlay, OverlayError, Recovery, upper};
use mountpoint::MountPointError;
use runtime::MountRecord;

pub use client::{Probe, Unmounted, probe, save, status, unmount};

#[derive(Debug, Clone)]
pub struct MountRequest {
    pub archive: ArchiveId,
    pub mountpoint: PathBuf,
    pub read_only: bool,
    pub foreground: bool,
    pub cache: CacheLimits,
    /// Threads serving kernel requests.
    pub threads: usize,
    pub allow_other: bool,
    /// Serve the owners the archive records (always for root; by default a user's mount shows
    /// every entry as theirs).
    pub keep_owners: bool,
    /// Where writable mounts keep their upper layers (one directory per archive below it).
    pub upper_root: PathBuf,
    /// A transaction conda-fuse drives (`as_transaction`): its upper layer is its own, anything
    /// found there is a crashed transaction's and is thrown away.
    pub transaction: bool,
    /// How saves compress new data.
    pub compression: Compression,
    /// Take the writer lock even from a holder that looks alive (`--steal-lock`).
    pub steal_lock: bool,
    /// Earlier versions each save keeps (`CONDA_FUSE_SNAPSHOTS`).
    pub snapshots: u32,
    /// The batch job the mount is for, recorded where jobs share the node's mounts.
    pub job: Option<String>,
}

impl MountRequest {
    /// A background mount with the default cache, threads and compression.
    pub fn new(archive: ArchiveId, mountpoint: PathBuf, read_only: bool) -> MountRequest {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        MountRequest {
            archive,
            mountpoint,
            read_only,
            foreground: false,
            cache: CacheLimits::with_memory(CacheLimits::DEFAULT_MEMORY),
            threads: (2 * cores).max(4),
            allow_other: false,
            keep_owners: false,
            upper_root: state::upper_root(),
            transaction: false,
            compression: Compression::SAVE,
            steal_lock: false,
            snapshots: crate::commit::snapshots::keep_from_env(),
            job: None,
        }
    }
}

impl MountRequest {
    /// Makes this writable mount a transaction conda-fuse drives (create, install, remove): its
    /// changes wait on node-local disk (`state::transaction_upper_root`), one file
    /// create on the network filesystem fewer for each file conda writes; its save is the commit.
    /// A crash leaves the env as it was (the half transaction is never recovered), where an
    /// interactive mount's acknowledged changes survive the node. The caller has checked that no
    /// unsaved changes wait in the shared place (they must be recovered there).
    pub fn as_transaction(&mut self) {
        if let Some(root) = state::transaction_upper_root() {
            self.upper_root = root;
            self.transaction = true;
        }
    }
}

#[derive(Debug)]
pub struct Mounted {
    pub pid: u32,
    pub mountpoint: PathBuf,
    pub archive: ArchiveId,
    pub entries: usize,
    pub report: BuildReport,
    pub recovery: Recovery,
    pub upper_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    MountPoint(#[from] MountPointError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    #[error("archive {0} does not exist")]
    ArchiveMissing(PathBuf),
    /// The kernel (or fusermount3) refused the mount; seen by the daemon, which reports it.
    #[error("the kernel refused to mount {mountpoint}: {source}")]
    Refused {
        mountpoint: PathBuf,
        source: io::Error,
    },
    /// What the daemon reported when it could not start serving.
    #[error("mounting {mountpoint} failed")]
    MountFailed {
        mountpoint: PathBuf,
        source: RemoteError,
    },
    #[error("the daemon of {mountpoint} exited without a report")]
    NoReport { mountpoint: PathBuf, log: PathBuf },
    #[error("unmounting {mountpoint} failed")]
    UnmountFailed {
        mountpoint: PathBuf,
        source: RemoteError,
    },
    #[error("{0} is not mounted")]
    NotMounted(PathBuf),
    #[error(
        "{path} is a live conda-fuse mount (of {archive}, made by {owner}) that this node's runtime \
         directory {runtime_dir} has no record of, so its changes cannot be saved from here and it \
         is left alone"
    )]
    Unrecorded {
        path: PathBuf,
        archive: String,
        owner: String,
        runtime_dir: PathBuf,
    },
    #[error("{path} is not a conda-fuse mount (it is {fstype})")]
    NotOurs { path: PathBuf, fstype: String },
    #[error("{path} is busy: {users}")]
    Busy { path: PathBuf, users: String },
    #[error("saving {mountpoint} failed")]
    SaveFailed {
        mountpoint: PathBuf,
        source: RemoteError,
    },
    #[error("the daemon of {mountpoint} (pid {pid}) did not answer: {message}")]
    Unresponsive {
        mountpoint: PathBuf,
        pid: u32,
        message: String,
    },
    #[error(transparent)]
    State(#[from] crate::private_dir::PrivateDirError),
    #[error("cannot create control socket {path} (the runtime directory is on {fs})")]
    Socket {
        path: PathBuf,
        fs: String,
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl Hint for DaemonError {
    fn hint(&self) -> Option<String> {
        match self {
            DaemonError::MountPoint(e) => e.hint(),
            DaemonError::Archive(e) => e.hint(),
            DaemonError::Overlay(e) => e.hint(),
            DaemonError::State(e) => e.hint(),
            DaemonError::ArchiveMissing(_) => {
                Some("check the path (conda-fuse pack DIR -o ARCHIVE makes one)".into())
            }
            DaemonError::Refused { source, .. }
                if source.to_string().contains("user_allow_other") =>
            {
                Some(
                "--allow-other needs 'user_allow_other' in /etc/fuse.conf for users other than \
                 root; ask your administrator to add it, or mount without --allow-other"
                        .into(),
                )
            }
            DaemonError::Refused { source, .. }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                Some(
                    "you need write permission on the mount point, and FUSE must be usable by you \
                     (is /dev/fuse readable and writable, fusermount3 installed setuid?)"
                        .into(),
                )
            }
            DaemonError::Refused { .. } => None,
            DaemonError::MountFailed { source, .. }
            | DaemonError::UnmountFailed { source, .. }
            | DaemonError::SaveFailed { source, .. } => source.hint(),
            DaemonError::NoReport { log, .. } => Some(format!("see {}", log.display())),
            DaemonError::NotMounted(_) => None,
            DaemonError::Unrecorded { .. } => Some(
                "unmount it with the CONDA_FUSE_RUNTIME_DIR (or XDG_RUNTIME_DIR) it was mounted \
                 with, or as its owner"
                    .into(),
            ),
            DaemonError::NotOurs { path, .. } => Some(format!(
                "unmount it with: fusermount3 -u {}",
                path.display()
            )),
            DaemonError::Busy { .. } => Some(
                "close them (cd out of the mount, exit programs using it) and unmount again, or \
                 use --lazy to detach now"
                    .into(),
            ),
            DaemonError::Unresponsive { pid, .. } => Some(format!(
                "if it hangs, kill it (kill {pid}) and run unmount again"
            )),
            DaemonError::Socket { .. } => Some(
                "set CONDA_FUSE_RUNTIME_DIR to a node-local directory (such as \
                 /tmp/conda-fuse-$UID): it holds this node's sockets and mount records"
                    .into(),
            ),
            DaemonError::Io { .. } => None,
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Mounts `req.archive` at `req.mountpoint`; returns once the mount serves requests (background
/// mode) or after it is unmounted (foreground mode).
pub fn mount(
    req: &MountRequest,
    on_ready: &mut dyn FnMut(&Mounted),
) -> Result<Mounted, DaemonError> {
    // Taken before the descriptors are recorded, so the daemon closes its copy: only this
    // process holds it, until the mount is there.
    let canonical = req
        .mountpoint
        .canonicalize()
        .unwrap_or_else(|_| req.mountpoint.clone());
    let mut mounting = Some(
        runtime::mounting_lock(&canonical)
            .map_err(io_err("cannot take the mount point's mounting lock"))?,
    );
    // Recorded before anything is opened: these stay open here, so no descriptor opened for the
    // daemon can share a number with one of them.
    let inherited = crate::process::open_fds();
    raise_open_file_limit();
    mountpoint::check_fuse_available()?;
    if !req.archive.path().exists() {
        return Err(DaemonError::ArchiveMissing(req.archive.path().to_owned()));
    }
    let mountpoint = mountpoint::check_mountpoint(&req.mountpoint)?;
    let archive = Arc::new(Archive::open(req.archive.path())?);
    let id = archive.id().clone();
    let mut defaults = Defaults::for_archive(&archive);
    defaults.trust_owners |= req.keep_owners;
    if req.allow_other {
        // Other users get in: an archive's group- or other-writable bits would let them change it.
        defaults.perm_mask &= !0o022;
    }
    // The prefix as the user names it (conda bakes that path, not one with symlinks resolved).
    let served_at = if req.mountpoint.is_absolute() {
        req.mountpoint.clone()
    } else {
        mountpoint.clone()
    };
    let (overlay, report, recovery, upper_dir) = if req.read_only {
        let (o, r) = Overlay::read_only(archive, defaults, req.cache.clone(), &served_at);
        (o, r, Recovery::default(), None)
    } else {
        let dir = upper::dir_for(&req.upper_root, &id);
        let (o, r, rec) = Overlay::writable(
            archive,
            defaults,
            req.cache.clone(),
            &req.upper_root,
            (&mountpoint, &served_at),
            req.steal_lock,
            req.transaction,
        )?;
        (o, r, rec, Some(dir))
    };
    let entries = overlay.view().tree().live();
    let fs = Filesystem::new(overlay);
    runtime::ensure_dirs()?;
    let mut mounted = Mounted {
        pid: std::process::id(),
        entries,
        mountpoint,
        archive: id,
        report,
        recovery,
        upper_dir,
    };
    if req.foreground {
        serve(fs, &mounted, req, &mut |_| {
            mounting.take();
            on_ready(&mounted)
        })?;
        return Ok(mounted);
    }
    mounted.pid = spawn_daemon(fs, &mounted, req, &inherited)?;
    on_ready(&mounted);
    Ok(mounted)
}

/// Forks the daemon (twice, so it is reparented to init and never becomes our zombie) and waits for
/// its report on a pipe.
fn spawn_daemon(
    fs: Filesystem,
    mounted: &Mounted,
    req: &MountRequest,
    inherited: &[i32],
) -> Result<u32, DaemonError> {
    let (read_end, write_end) =
        nix::unistd::pipe().map_err(|e| io_err("cannot create a pipe")(e.into()))?;
    // SAFETY: the CLI is single-threaded here (no thread has been started), so the child may run
    // arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| io_err("cannot fork the daemon")(e.into()))? {
        ForkResult::Parent { child } => {
            drop(write_end);
            // The daemon owns the filesystem now, writer lock included. This process's copies of
            // its files go (a command like `run` or `create` lives on, and on NFS a replaced
            // journal or archive it still held would linger as `.nfsXXXX`), all but the flock,
            // which dropping would unlock for both (it belongs to the shared open file).
            if fs.overlay().disown() {
                drop(fs);
            } else {
                std::mem::forget(fs);
            }
            let _ = nix::sys::wait::waitpid(child, None);
            let mut report = String::new();
            File::from(read_end)
                .read_to_string(&mut report)
                .map_err(io_err("reading the daemon's report"))?;
            match serde_json::from_str(&report) {
                Ok(StartReport::Ready { pid }) => Ok(pid),
                Ok(StartReport::Failed(source)) => Err(DaemonError::MountFailed {
                    mountpoint: mounted.mountpoint.clone(),
                    source,
                }),
                Err(_) => Err(DaemonError::NoReport {
                    mountpoint: mounted.mountpoint.clone(),
                    log: state::log_path(&mounted.mountpoint),
                }),
            }
        }
        ForkResult::Child => {
            drop(read_end);
            let _ = setsid();
            // SAFETY: as above, still single-threaded.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {}
                // SAFETY: leaving the intermediate child without running the parent's handlers.
                _ => unsafe { libc::_exit(0) },
            }
            // What the command that started us had open (a batch run's decision lock, a pipe a
            // caller waits on, files) is not the daemon's to keep for as long as it serves.
            for &fd in inherited {
                // SAFETY: these descriptors belong to nothing the daemon uses (see `mount`).
                unsafe { libc::close(fd) };
            }
            let mut pipe = Some(File::from(write_end));
            let code = match daemonize_stdio(&mounted.mountpoint) {
                Err(e) => {
                    let e = DaemonError::Io {
                        what: "cannot open the daemon log".into(),
                        source: e,
                    };
                    report_to(&mut pipe, &StartReport::failed(&e));
                    1
                }
                Ok(()) => {
                    crate::logging::init_daemon();
                    let mut ready = |pid| report_to(&mut pipe, &StartReport::Ready { pid });
                    match serve(fs, mounted, req, &mut ready) {
                        Ok(()) => 0,
                        Err(e) => {
                            tracing::error!("{e}");
                            report_to(&mut pipe, &StartReport::failed(&e));
                            1
                        }
                    }
                }
            };
            // SAFETY: terminating the daemon process without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// What the daemon tells the process that started it, once, over a pipe.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum StartReport {
    Ready { pid: u32 },
    Failed(RemoteError),
}

impl StartReport {
    fn failed(e: &DaemonError) -> StartReport {
        StartReport::Failed(RemoteError::new(e, e.hint()))
    }
}

fn report_to(pipe: &mut Option<File>, report: &StartReport) {
    if let (Some(mut p), Ok(line)) = (pipe.take(), serde_json::to_string(report)) {
        let _ = writeln!(p, "{line}");
    }
}

/// Detaches the daemon from the caller's terminal and pipes: stdin from /dev/null, stdout and stderr
/// to the mount's log file (a caller capturing our output must not wait for the daemon).
fn daemonize_stdio(mountpoint: &Path) -> io::Result<()> {
    let _ = std::env::set_current_dir("/");
    let log = state::open_log(mountpoint)?;
    let null = File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&log)?;
    nix::unistd::dup2_stderr(&log)?;
    Ok(())
}

/// Mounts and serves until unmounted (by `unmount`, or by SIGINT/SIGTERM/SIGHUP, which detach the
/// mount so the daemon exits once the last user is gone; unsaved changes stay in the upper layer).
fn serve(
    fs: Filesystem,
    mounted: &Mounted,
    req: &MountRequest,
    ready: &mut dyn FnMut(u32),
) -> Result<(), DaemonError> {
    bound_malloc();
    runtime::pin();
    let signals = {
        let mut s = SigSet::empty();
        s.add(Signal::SIGINT);
        s.add(Signal::SIGTERM);
        s.add(Signal::SIGHUP);
        s
    };
    // Blocked before any thread starts, so every thread inherits the mask and one thread waits.
    signals
        .thread_block()
        .map_err(|e| io_err("cannot block signals")(e.into()))?;
    let config = session_config(mounted, req);
    fs.overlay()
        .claim_lock()
        .map_err(io_err("cannot update the writer lock"))?;
    let fs = Arc::new(fs);

    // Recorded before the mount appears, so no other command ever sees a mount without a record
    // (which would look stale and be cleaned up under us); a record of a live daemon without a
    // mount reads as "mounting".
    let record = mount_record(mounted, req);
    let listener = control::bind(&record.socket).map_err(|source| DaemonError::Socket {
        fs: crate::hostfs::of(&record.socket)
            .map_or_else(|| "an unknown filesystem".into(), |f| f.describe()),
        path: record.socket.clone(),
        source,
    })?;
    record
        .save()
        .map_err(io_err("cannot write the mount record"))?;
    let session = fuser::Session::new(FuseAdapter::new(fs.clone()), &mounted.mountpoint, &config)
        .map_err(|e| {
        MountRecord::remove(&mounted.mountpoint);
        DaemonError::Refused {
            mountpoint: mounted.mountpoint.clone(),
            source: e,
        }
    })?;

    let in_flight = Arc::new(control::InFlight::default());
    let handler = handler::new(fs.clone(), record.clone(), req.clone(), session.notifier());
    serve_control(listener, in_flight.clone(), handler.clone())
        .map_err(io_err("cannot start the control thread"))?;
    let ending = keeper::Ending::default();
    let (socket, again) = (record.socket.clone(), in_flight.clone());
    let rebind: keeper::Rebind =
        Box::new(move || serve_control(control::bind(&socket)?, again.clone(), handler.clone()));
    keeper::start(record.clone(), ending.clone(), rebind)
        .map_err(io_err("cannot start the keeper thread"))?;
    start_signal_and_heartbeat_threads(&fs, signals, &mounted.mountpoint)?;

    tracing::info!(
        archive = %mounted.archive.path().display(),
        mountpoint = %mounted.mountpoint.display(),
        entries = mounted.entries,
        read_only = req.read_only,
        "mounted"
    );
    let startup = startup::Startup::begin(fs.overlay().view().base().clone());
    ready(record.pid);
    let result = session.run();
    startup.finish();
    // Unsaved changes must survive the machine too, not only this process (close flushes them).
    fs.overlay().close();
    ending.begin();
    MountRecord::remove(&mounted.mountpoint);
    in_flight.wait_idle(Duration::from_secs(5));
    tracing::info!(mountpoint = %mounted.mountpoint.display(), "unmounted");
    result.map_err(io_err("serving the mount"))
}

fn serve_control(
    listener: std::os::unix::net::UnixListener,
    in_flight: Arc<control::InFlight>,
    handler: Arc<control::Handler>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || control::serve(listener, in_flight, handler))
        .map(drop)
}

/// The kernel session's options: our source name and subtype (how a mount is recognised as
/// ours), permissions checked by the kernel, no devices, no setuid, no atime.
fn session_config(mounted: &Mounted, req: &MountRequest) -> fuser::Config {
    let mut options = vec![
        fuser::MountOption::FSName(format!(
            "{}{}",
            mountpoint::SOURCE_PREFIX,
            mounted.archive.path().display()
        )),
        fuser::MountOption::Subtype("conda-fuse".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoAtime,
    ];
    options.push(if req.read_only {
        fuser::MountOption::RO
    } else {
        fuser::MountOption::RW
    });
    let mut config = fuser::Config::default();
    config.mount_options = options;
    config.acl = if req.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    config.n_threads = Some(req.threads.max(1));
    config.clone_fd = true;
    config
}

/// This daemon's record of the mount, for this node's commands.
fn mount_record(mounted: &Mounted, req: &MountRequest) -> MountRecord {
    MountRecord {
        node: crate::node::Node::this(),
        pid: std::process::id(),
        mountpoint: mounted.mountpoint.clone(),
        archive: mounted.archive.path().to_owned(),
        read_only: req.read_only,
        since: crate::clock::now().0.max(0) as u64,
        socket: runtime::socket_path(&mounted.mountpoint),
        log: state::log_path(&mounted.mountpoint),
        job: req.job.clone(),
    }
}

/// The thread that turns SIGINT/SIGTERM/SIGHUP into a lazy detach (the session then ends as
/// after an unmount), and for a writable mount the writer lock's heartbeat.
fn start_signal_and_heartbeat_threads(
    fs: &Arc<Filesystem>,
    signals: SigSet,
    mountpoint: &Path,
) -> Result<(), DaemonError> {
    let mp = mountpoint.to_path_buf();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = signals.wait() {
                tracing::info!("{sig}: detaching {}", mp.display());
                if let Err(e) = mountpoint::detach(&mp, true) {
                    tracing::error!("detaching {} after {sig}: {e}", mp.display());
                }
            }
        })
        .map_err(io_err("cannot start the signal thread"))?;
    if fs.is_writable() {
        let beating = fs.clone();
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || heartbeat(&beating))
            .map_err(io_err("cannot start the heartbeat thread"))?;
    }
    Ok(())
}

/// Keeps the writer lock's record alive for other nodes until the lock is found taken over (then
/// the overlay refuses every change, and the log says why).
fn heartbeat(fs: &Filesystem) {
    let period = crate::overlay::lock::holder::period();
    loop {
        std::thread::sleep(period);
        if let Err(lost) = fs.overlay().heartbeat() {
            tracing::error!("{lost}");
            return;
        }
    }
}

/// A daemon holds descriptors for FUSE's threads, its archive, and the upper layer's open files:
/// the soft limit goes up to the hard one (as far as 65536), as servers usually do.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(1 << 16);
        if soft < want {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, want, hard);
        }
    }
}

/// glibc's allocator raises its mmap threshold after each large free and keeps one arena per thread,
/// so freed cache buffers would stay resident. A fixed threshold returns every buffer over 256 KiB
/// to the system when freed, and few arenas keep fragmentation small: resident memory follows the
/// cache's accounting.
fn bound_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before this process starts other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}
