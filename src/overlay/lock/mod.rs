//! One writer per archive, across every node that sees it. The lock file sits beside the archive
//! (`NAME.zip.lock`, so every host that sees the archive sees the lock); the writable daemon holds
//! it with flock(2) and names itself in it (`holder.rs`: node, pid, user, since when, mount point)
//! and refreshes that record with a heartbeat.
//!
//! flock is not enough on a cluster: on BeeGFS by default, Lustre with `localflock`, NFS with
//! `local_lock` or FUSE filesystems it excludes only processes of the same node. So the record
//! decides too: a holder on this node holds while its process runs; a holder on another node holds
//! while its heartbeat goes on. Shared filesystems offer no compare-and-swap that works
//! everywhere, so a new holder writes its record, waits a moment and reads it back (two nodes
//! racing for a free lock see who wrote last), and every heartbeat checks the record is still its
//! own: a daemon that finds it is not (taken over by --steal-lock, or after its node froze for
//! longer than the silence limit) stops accepting changes at once (`is_lost`).
//!
//! The heartbeat is also a lease: a change is accepted only while the record was confirmed ours
//! within half the silence limit, by this node's own boot clock (`may_change`). A daemon that was
//! frozen (SIGSTOP, a swapping node, a hung NFS server) confirms the record before it accepts
//! anything again, so it cannot write after another node, which waits the whole limit and then
//! watches the record, has taken over.

mod file;
pub mod holder;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

pub use holder::{Holder, Staleness};
use holder::{Read, Verdict};

use crate::archive::ArchiveId;
use crate::node::Node;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{archive} is already mounted writable by {}{}", holder.describe(), silence(holder))]
    Held {
        archive: PathBuf,
        holder: Box<Holder>,
    },
    #[error("cannot lock {path} for writing: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is not a conda-fuse lock file ({why}); conda-fuse never follows or overwrites such a \
         file"
    )]
    NotALock { path: PathBuf, why: &'static str },
    #[error(
        "{archive} was last mounted writable by {} ({why}), which left changes unsaved that only \
         user {} can recover",
        holder.describe(),
        holder.user
    )]
    UnsavedOfAnother {
        archive: PathBuf,
        holder: Box<Holder>,
        why: Staleness,
    },
}

/// Whether taking the lock over from `holder` would strand changes it acknowledged and did not
/// save: they are in its user's private state directory, which `me` cannot read (the same user's
/// next writable mount recovers them from there).
pub fn strands_unsaved_changes(holder: &Holder, me: &Holder) -> bool {
    holder.unsaved && holder.user != me.user
}

/// How long a holder on another node has been silent, when it has a heartbeat.
fn silence(h: &Holder) -> String {
    if h.node.is_this() || h.period_ms == 0 {
        return String::new();
    }
    let silent = (holder::now_ms() - h.heartbeat_ms).max(0) / 1000;
    format!(" (last heartbeat {silent}s ago)")
}

impl crate::hint::Hint for LockError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            LockError::Held { holder, .. } if !holder.node.is_this() && holder.period_ms != 0 => {
                format!(
                    "mount it --read-only here, or unmount it there first. If that node is down, \
                     the next writable mount takes the lock over once its heartbeat is {}s old, or \
                     at once with --steal-lock",
                    holder.silence_limit().as_secs()
                )
            }
            LockError::Held { .. } => "mount it --read-only here, or unmount it there first".into(),
            LockError::Io { .. } => "the archive's directory must be writable by you".into(),
            LockError::NotALock { .. } => "look at it, and remove it if nothing needs it".into(),
            LockError::UnsavedOfAnother { holder, .. } => format!(
                "ask {0} to mount it writable once (their changes come back and are saved with \
                 conda-fuse commit), or pass --steal-lock to take it over without them (they stay \
                 in {0}'s state directory and will not apply to the version you save)",
                holder.user
            ),
        })
    }
}

/// A lock taken from a holder that no longer held it.
#[derive(Debug, Clone)]
pub struct TakenOver {
    pub holder: Holder,
    pub why: Staleness,
}

/// What taking the lock found.
#[derive(Debug)]
pub struct Acquired {
    pub lock: WriterLock,
    pub took_over: Option<TakenOver>,
    /// The archive's filesystem (by name) is known for a flock that reaches no further than the
    /// node: only the heartbeat keeps writers on two nodes apart.
    pub node_local_flock: Option<String>,
    /// A steal waited this long for the old holder's lease to run out.
    pub waited_out_lease: Option<Duration>,
}

enum Held {
    Flock(Flock<File>),
    /// flock unsupported, or not trusted (`CONDA_FUSE_FLOCK=off`): the record alone marks the lock.
    Record(File),
}

impl Held {
    fn file(&self) -> &File {
        match self {
            Held::Flock(f) => f,
            Held::Record(f) => f,
        }
    }
}

struct Inner {
    held: Held,
    me: Holder,
    /// Cleared on the way out: no heartbeat may write the record again.
    closed: bool,
}

pub struct WriterLock {
    path: PathBuf,
    inner: Mutex<Inner>,
    lost: AtomicBool,
    /// When the record was last confirmed ours and rewritten (`boot_clock_ms`).
    confirmed_ms: AtomicI64,
    /// How long a confirmation lets changes through: half the silence limit others apply.
    lease_ms: i64,
}

/// Milliseconds of CLOCK_BOOTTIME: monotonic, and counting while the machine is suspended (a
/// wall clock may jump; CLOCK_MONOTONIC stops in a suspend while other nodes' time goes on).
fn boot_clock_ms() -> i64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map_or(0, |t| t.tv_sec() * 1000 + t.tv_nsec() / 1_000_000)
}

impl std::fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterLock")
            .field("path", &self.path)
            .finish()
    }
}

/// The heartbeat found another holder in the record.
#[derive(Debug, thiserror::Error)]
#[error(
    "the writer lock {path} now names {}: this mount no longer accepts changes (its unsaved ones \
     stay in the upper layer, which the new holder recovers)",
    by.as_ref().map_or_else(|| "nobody".to_string(), |h| h.describe())
)]
pub struct LockLost {
    pub path: PathBuf,
    pub by: Option<Box<Holder>>,
}

impl crate::hint::Hint for LockLost {
    fn hint(&self) -> Option<String> {
        Some("unmount it".into())
    }
}

/// `NAME.zip.lock` beside the archive (its resolved path: one lock whatever name reaches it).
pub fn lock_path(archive: &ArchiveId) -> PathBuf {
    let archive = archive.path();
    let mut name = archive.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    archive.with_file_name(name)
}

/// How long a new holder waits before reading its record back. Only on shared filesystems, or
/// where flock is not used: on a local disk a working flock is the whole answer.
const SETTLE: Duration = Duration::from_millis(150);

fn trust_flock() -> bool {
    crate::settings::get().flock
}

/// The record in the lock file at `path`, opened afresh (on NFS another client's write is seen
/// only through a new open: close-to-open consistency).
fn read_fresh(path: &Path) -> io::Result<Read> {
    match file::open_to_read(path) {
        Ok(Some(f)) => Ok(holder::read(&f)),
        Ok(None) => Ok(Read::Empty),
        Err(LockError::Io { source, .. }) => Err(source),
        Err(_) => Ok(Read::Foreign),
    }
}

/// What the lock of `archive` looks like from this node, without taking or changing anything
/// (`env-list`, `doctor`).
pub fn inspect(archive: &ArchiveId) -> Option<(Holder, Option<Staleness>)> {
    let read = read_fresh(&lock_path(archive)).ok()?;
    match holder::judge(
        read,
        &Node::this(),
        holder::now_ms(),
        crate::process::is_conda_fuse,
        false,
    ) {
        Verdict::Free => None,
        Verdict::Held(h) => Some((h, None)),
        Verdict::Stale(h, why) => Some((h, Some(why))),
    }
}

impl WriterLock {
    /// Takes the writer lock of `archive` for a mount at `mountpoint`; `steal` takes it even from a
    /// holder that looks alive (its node's flock permitting).
    pub fn acquire(
        archive: &ArchiveId,
        mountpoint: &Path,
        steal: bool,
    ) -> Result<Acquired, LockError> {
        Self::acquire_as(archive, mountpoint, steal, trust_flock())
    }

    fn acquire_as(
        archive: &ArchiveId,
        mountpoint: &Path,
        steal: bool,
        use_flock: bool,
    ) -> Result<Acquired, LockError> {
        let path = lock_path(archive);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = file::open(&path, true)?.expect("created or opened");
        let held_by = |holder| LockError::Held {
            archive: archive.path().to_owned(),
            holder: Box::new(holder),
        };
        let (held, flocked) = Self::flock(file, use_flock).map_err(|h| held_by(*h))?;
        let verdict = holder::judge(
            holder::read(held.file()),
            &Node::this(),
            holder::now_ms(),
            crate::process::is_conda_fuse,
            flocked,
        );
        let took_over = match verdict {
            Verdict::Free => None,
            Verdict::Held(h) if steal => Some(TakenOver {
                holder: h,
                why: Staleness::Stolen,
            }),
            Verdict::Held(h) => return Err(held_by(h)),
            Verdict::Stale(h, why @ Staleness::Silent(_)) if !steal => {
                watch_for_life(&path, &h, watch_window(&h)).map_err(|h| held_by(*h))?;
                Some(TakenOver { holder: h, why })
            }
            // Silence is measured by this node's clock alone: the whole limit.
            Verdict::Stale(h, why @ Staleness::ClockAhead(_)) if !steal => {
                let limit = h.silence_limit() + Duration::from_millis(500);
                watch_for_life(&path, &h, limit).map_err(|h| held_by(*h))?;
                Some(TakenOver { holder: h, why })
            }
            Verdict::Stale(holder, why) => Some(TakenOver { holder, why }),
        };
        if let Some(t) = &took_over
            && strands_unsaved_changes(&t.holder, &Holder::me(mountpoint))
            && !steal
        {
            return Err(LockError::UnsavedOfAnother {
                archive: archive.path().to_owned(),
                holder: Box::new(t.holder.clone()),
                why: t.why,
            });
        }
        // The fencing token: one more than the holder's this takes the lock from.
        let previous = match &took_over {
            Some(t) => Some(t.holder.clone()),
            None => match holder::read(held.file()) {
                Read::Holder(h) => Some(h),
                _ => None,
            },
        };
        let me = Holder {
            epoch: previous.as_ref().map_or(0, |h| h.epoch + 1),
            ..Holder::me(mountpoint)
        };
        holder::write(held.file(), &me).map_err(io_err)?;
        let fs = crate::hostfs::of(&path);
        if !flocked || fs.as_ref().is_some_and(|f| f.fs.is_shared()) {
            // Where flock alone does not decide, the record does: whoever wrote last holds it.
            std::thread::sleep(SETTLE);
            match read_fresh(&path).map_err(io_err)? {
                Read::Holder(h) if h.same_process(&me) => {}
                Read::Holder(h) => return Err(held_by(h)),
                _ => return Err(held_by(unknown_holder())),
            }
        }
        let node_local_flock = fs
            .filter(|f| f.fs.is_shared() && f.node_local_flock())
            .map(|f| f.describe());
        // A holder taken from while it still beat may go on for its lease (it saves and accepts
        // changes only within one): nothing of the upper layer is touched before that runs out.
        let waited_out_lease = match &took_over {
            Some(TakenOver {
                holder,
                why: Staleness::Stolen,
            }) if holder.period_ms > 0 => {
                let lease = holder.silence_limit() / 2 + Duration::from_millis(holder.period_ms);
                std::thread::sleep(lease);
                Some(lease)
            }
            _ => None,
        };
        let lease_ms = (me.silence_limit().as_millis() / 2) as i64;
        Ok(Acquired {
            lock: WriterLock {
                path,
                inner: Mutex::new(Inner {
                    held,
                    me,
                    closed: false,
                }),
                lost: AtomicBool::new(false),
                confirmed_ms: AtomicI64::new(boot_clock_ms()),
                lease_ms,
            },
            took_over,
            node_local_flock,
            waited_out_lease,
        })
    }

    /// Records whether this holder has unsaved changes (written at once, and durably, when it
    /// changes: it must be there before a change is acknowledged).
    pub fn note_unsaved(&self, unsaved: bool) -> io::Result<()> {
        let mut inner = self.inner.lock().expect("lock record");
        if inner.me.unsaved == unsaved || inner.closed {
            return Ok(());
        }
        inner.me.unsaved = unsaved;
        let written = holder::write(inner.held.file(), &inner.me);
        if written.is_err() {
            inner.me.unsaved = !unsaved;
        }
        written
    }

    /// Takes the lock file's flock when `use_flock` and the filesystem supports it; returns the
    /// file and whether it is flocked, or the holder when a live process has it (on this node,
    /// or through a lock the cluster shares).
    fn flock(file: std::fs::File, use_flock: bool) -> Result<(Held, bool), Box<Holder>> {
        if !use_flock {
            return Ok((Held::Record(file), false));
        }
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => Ok((Held::Flock(f), true)),
            Err((f, nix::errno::Errno::EWOULDBLOCK)) => Err(Box::new(match holder::read(&f) {
                Read::Holder(h) => h,
                _ => unknown_holder(),
            })),
            Err((f, _unsupported)) => Ok((Held::Record(f), false)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refreshes the record; fails (and from then on `is_lost`) when the record names someone
    /// else. A record that cannot be written (a full disk) is tried again at the next beat.
    pub fn beat(&self) -> Result<(), LockLost> {
        let mut inner = self.inner.lock().expect("lock record");
        if inner.closed || self.is_lost() {
            return Ok(());
        }
        match read_fresh(&self.path) {
            Ok(Read::Holder(h)) if h.same_process(&inner.me) => {}
            Ok(other) => {
                self.lost.store(true, Ordering::Release);
                return Err(LockLost {
                    path: self.path.clone(),
                    by: match other {
                        Read::Holder(h) => Some(Box::new(h)),
                        _ => None,
                    },
                });
            }
            Err(e) => {
                tracing::warn!("cannot read the writer lock {}: {e}", self.path.display());
                return Ok(());
            }
        }
        inner.me.beats += 1;
        inner.me.heartbeat_ms = holder::now_ms();
        let before = boot_clock_ms();
        match holder::write(inner.held.file(), &inner.me) {
            // Other nodes count silence from what they last read, so the lease runs from before
            // the write.
            Ok(()) => self.confirmed_ms.store(before, Ordering::Release),
            Err(e) => tracing::warn!(
                "cannot refresh the writer lock {}: {e}",
                self.path.display()
            ),
        }
        Ok(())
    }

    /// Re-reads the record now (not trusting the lease): an error, and from then on `is_lost`,
    /// when another holder has it. A save calls this right before and after its rename, so a
    /// stolen lock never lets two writers save.
    pub fn confirm(&self) -> Result<(), LockLost> {
        let inner = self.inner.lock().expect("lock record");
        if self.is_lost() {
            return Err(LockLost {
                path: self.path.clone(),
                by: None,
            });
        }
        match read_fresh(&self.path) {
            Ok(Read::Holder(h)) if h.same_process(&inner.me) => Ok(()),
            Ok(other) => {
                self.lost.store(true, Ordering::Release);
                Err(LockLost {
                    path: self.path.clone(),
                    by: match other {
                        Read::Holder(h) => Some(Box::new(h)),
                        _ => None,
                    },
                })
            }
            // Unreadable now: not confirmed, so not saved.
            Err(_) => Err(LockLost {
                path: self.path.clone(),
                by: None,
            }),
        }
    }

    /// Whether a change may go through now: the lock is not lost and its lease is current (else
    /// a heartbeat renews it first, or says it cannot).
    pub fn may_change(&self) -> bool {
        if self.is_lost() {
            return false;
        }
        let fresh = |lock: &WriterLock| {
            boot_clock_ms() - lock.confirmed_ms.load(Ordering::Acquire) < lock.lease_ms
        };
        if fresh(self) {
            return true;
        }
        if let Err(lost) = self.beat() {
            tracing::error!("{lost}");
        }
        !self.is_lost() && fresh(self)
    }

    /// Whether another holder has the lock now: no change may be accepted any more.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Clears the holder record; the flock itself goes with the process. Daemons end with `_exit`,
    /// which runs no destructors, so they call this on the way out.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("lock record");
        if !inner.closed && !self.is_lost() {
            let _ = inner.held.file().set_len(0);
        }
        inner.closed = true;
    }

    /// Lets go of this process's copy of the lock without touching the lock: after `mount` forked
    /// the daemon, which holds it now. The record stays; the flock (shared by both copies of the
    /// open file) stays held by the daemon's copy. False when this copy must not be dropped (it
    /// could not be set apart from the flock): forget it instead.
    pub fn disown(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut inner = self.inner.lock().expect("lock record");
        inner.closed = true;
        if let Held::Flock(f) = &inner.held {
            let Ok(copy) = f.try_clone() else {
                return false;
            };
            if let Held::Flock(f) = std::mem::replace(&mut inner.held, Held::Record(copy)) {
                // Dropping a Flock unlocks the open file for every copy: close ours only.
                let fd = f.as_raw_fd();
                std::mem::forget(f);
                // SAFETY: `fd` was the forgotten Flock's own descriptor; nothing else closes it.
                unsafe { libc::close(fd) };
            }
        }
        true
    }

    /// Names this process as the holder (the daemon, after `mount` forked it).
    pub fn claim(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().expect("lock record");
        inner.me = Holder {
            since: inner.me.since,
            epoch: inner.me.epoch,
            ..Holder::me(&inner.me.mountpoint)
        };
        let before = boot_clock_ms();
        holder::write(inner.held.file(), &inner.me)?;
        self.confirmed_ms.store(before, Ordering::Release);
        Ok(())
    }
}

fn unknown_holder() -> Holder {
    Holder {
        node: Node {
            host: "unknown".into(),
            boot_id: String::new(),
        },
        pid: 0,
        user: "unknown".into(),
        since: 0,
        mountpoint: PathBuf::from("?"),
        heartbeat_ms: 0,
        period_ms: 0,
        beats: 0,
        epoch: 0,
        unsaved: false,
    }
}

/// Watches a holder that looks silent for `window`: a record that changes in the meantime belongs
/// to a live holder (whatever the clocks say), returned as Err.
fn watch_for_life(path: &Path, silent: &Holder, window: Duration) -> Result<(), Box<Holder>> {
    let until = Instant::now() + window;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100).min(window));
        match read_fresh(path) {
            Ok(Read::Holder(h)) if h != *silent => return Err(Box::new(h)),
            _ => {}
        }
    }
    Ok(())
}

/// How long a holder silent by the clocks is watched: two of its periods (at most 30 s).
fn watch_window(silent: &Holder) -> Duration {
    (Duration::from_millis(silent.period_ms) * 2 + Duration::from_millis(500))
        .min(Duration::from_secs(30))
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Clear the record before releasing, so nobody reads a holder that has gone.
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(archive: &ArchiveId, mp: &str) -> Result<Acquired, LockError> {
        WriterLock::acquire_as(archive, Path::new(mp), false, true)
    }

    #[test]
    fn the_lock_file_is_private_and_planted_files_are_never_written() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveId::of(&dir.path().join("env.zip"));
        let lock = acquire(&archive, "/mnt/a").unwrap();
        assert_eq!(
            std::fs::metadata(lock_path(&archive)).unwrap().mode() & 0o777,
            0o600
        );
        drop(lock);
        // A colleague's symlink in a shared directory: never followed, the target untouched.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::remove_file(lock_path(&archive)).unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(&archive)).unwrap();
        assert!(matches!(
            acquire(&archive, "/mnt/a"),
            Err(LockError::NotALock { .. })
        ));
        // A hard link to it, or a file of another kind of content: never truncated.
        std::fs::remove_file(lock_path(&archive)).unwrap();
        std::fs::hard_link(&victim, lock_path(&archive)).unwrap();
        assert!(matches!(
            acquire(&archive, "/mnt/a"),
            Err(LockError::NotALock { .. })
        ));
        std::fs::remove_file(lock_path(&archive)).unwrap();
        std::fs::write(lock_path(&archive), b"my notes").unwrap();
        assert!(matches!(
            acquire(&archive, "/mnt/a"),
            Err(LockError::NotALock { .. })
        ));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(lock_path(&archive)).unwrap(), b"my notes");
    }

    /// Who may take over a dead or silent holder's lock without --steal-lock: anyone where it
    /// saved everything, only its own user (whose next mount recovers them) where it did not.
    #[test]
    fn another_users_unsaved_changes_are_never_stranded_without_asking() {
        let me = Holder::me(Path::new("/mnt/a"));
        let other = |user: &str, unsaved| Holder {
            user: user.into(),
            unsaved,
            ..me.clone()
        };
        for (holder, strands) in [
            (other(&me.user, true), false),
            (other(&me.user, false), false),
            (other("alice-of-the-lab", false), false),
            (other("alice-of-the-lab", true), true),
        ] {
            assert_eq!(strands_unsaved_changes(&holder, &me), strands, "{holder:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveId::of(&dir.path().join("env.zip"));
        let mut dead = other("alice-of-the-lab", true);
        dead.pid = u32::MAX - 1;
        let f = file::open(&lock_path(&archive), true).unwrap().unwrap();
        holder::write(&f, &dead).unwrap();
        match acquire(&archive, "/mnt/b") {
            Err(LockError::UnsavedOfAnother { holder, why, .. }) => {
                assert_eq!(holder.user, "alice-of-the-lab");
                assert_eq!(why, Staleness::Dead);
            }
            other => panic!("expected UnsavedOfAnother, got {:?}", other.map(|_| ())),
        }
        // The record is left as it was, for alice.
        assert_eq!(holder::read(&f), Read::Holder(dead));
        let stolen = WriterLock::acquire_as(&archive, Path::new("/mnt/b"), true, true).unwrap();
        assert!(stolen.took_over.is_some());
    }

    #[test]
    fn a_second_writer_is_refused_with_the_holder_and_a_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveId::of(&dir.path().join("env.zip"));
        let first = acquire(&archive, "/mnt/a").unwrap();
        assert!(first.took_over.is_none());
        match acquire(&archive, "/mnt/b") {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.pid, std::process::id());
                assert_eq!(holder.mountpoint, Path::new("/mnt/a"));
            }
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        drop(first);
        // A record left by a process of this node that died (its flock went with it).
        let mut dead = Holder::me(Path::new("/x"));
        dead.pid = u32::MAX - 1;
        let f = file::open(&lock_path(&archive), false).unwrap().unwrap();
        holder::write(&f, &dead).unwrap();
        let taken = acquire(&archive, "/mnt/c").unwrap();
        assert!(matches!(
            taken.took_over,
            Some(TakenOver {
                why: Staleness::Dead,
                ..
            })
        ));
    }

    /// Another node's record, as it would write it: `beat_ms_ago` since its last heartbeat.
    fn plant_other_node(archive: &ArchiveId, beat_ms_ago: i64, period_ms: u64) -> Holder {
        let mut h = Holder::me(Path::new("/mnt/elsewhere"));
        h.node.host = "node-b".into();
        h.node.boot_id = "another-boot".into();
        h.heartbeat_ms = holder::now_ms() - beat_ms_ago;
        h.period_ms = period_ms;
        let f = file::open(&lock_path(archive), true).unwrap().unwrap();
        holder::write(&f, &h).unwrap();
        h
    }

    #[test]
    fn without_flock_a_live_heartbeat_holds_and_a_silent_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveId::of(&dir.path().join("env.zip"));
        let record_only = |steal| WriterLock::acquire_as(&archive, Path::new("/m"), steal, false);
        // This node, flock not used: the record's pid (ours, alive) holds.
        let mine = record_only(false).unwrap();
        assert!(matches!(record_only(false), Err(LockError::Held { .. })));
        drop(mine);
        // Another node beating: held, whatever this node's flock says; the message names it.
        plant_other_node(&archive, 100, 100);
        match record_only(false) {
            Err(e @ LockError::Held { .. }) => {
                use crate::hint::Hint;
                let (text, hint) = (e.to_string(), e.hint().unwrap_or_default());
                assert!(
                    text.contains("node-b") && hint.contains("--steal-lock"),
                    "{text} / {hint}"
                );
            }
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        // Silent for longer than six of its periods, and still silent while watched: taken over.
        plant_other_node(&archive, 10_000, 100);
        let started = Instant::now();
        let taken = record_only(false).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(700));
        assert!(matches!(
            taken.took_over,
            Some(TakenOver {
                why: Staleness::Silent(_),
                ..
            })
        ));
        drop(taken);
        // A dead holder whose clock ran an hour ahead: watched for the whole limit by this
        // node's clock, then taken over (not an hour later).
        plant_other_node(&archive, -3_600_000, 100);
        let started = Instant::now();
        let taken = record_only(false).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1000));
        assert!(matches!(
            taken.took_over,
            Some(TakenOver {
                why: Staleness::ClockAhead(_),
                ..
            })
        ));
        drop(taken);
        // Silent by the clock, but beating while watched (the clocks disagree): held.
        let mut beating = plant_other_node(&archive, 10_000, 100);
        let path = lock_path(&archive);
        let beater = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            beating.beats += 1;
            let f = file::open(&path, false).unwrap().unwrap();
            holder::write(&f, &beating).unwrap();
        });
        assert!(matches!(record_only(false), Err(LockError::Held { .. })));
        beater.join().unwrap();
        // --steal-lock takes a live one.
        plant_other_node(&archive, 0, 100);
        let stolen = record_only(true).unwrap();
        assert!(matches!(
            stolen.took_over,
            Some(TakenOver {
                why: Staleness::Stolen,
                ..
            })
        ));
    }

    #[test]
    fn a_holder_whose_record_was_taken_stops_and_never_clears_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveId::of(&dir.path().join("env.zip"));
        let ours = WriterLock::acquire_as(&archive, Path::new("/m"), false, false).unwrap();
        ours.lock.beat().unwrap();
        assert!(!ours.lock.is_lost());
        let theirs = plant_other_node(&archive, 0, 100);
        let lost = ours.lock.beat().unwrap_err();
        assert_eq!(
            lost.by.as_ref().map(|h| h.node.host.as_str()),
            Some("node-b")
        );
        assert!(ours.lock.is_lost());
        drop(ours);
        let f = file::open(&lock_path(&archive), false).unwrap().unwrap();
        assert_eq!(holder::read(&f), Read::Holder(theirs));
    }

    #[test]
    fn a_holder_confirms_its_lease_before_a_change_and_refuses_once_it_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveId::of(&dir.path().join("env.zip"));
        let mut ours = WriterLock::acquire_as(&archive, Path::new("/m"), false, false).unwrap();
        ours.lock.lease_ms = 50;
        assert!(ours.lock.may_change());
        // Frozen past its lease, nobody took it: confirmed again, the change goes through.
        std::thread::sleep(Duration::from_millis(100));
        assert!(ours.lock.may_change());
        let beats = match holder::read(&file::open(&lock_path(&archive), false).unwrap().unwrap()) {
            Read::Holder(h) => h.beats,
            other => panic!("{other:?}"),
        };
        assert_eq!(beats, 1, "confirming the lease is a heartbeat");
        // Frozen past its lease while another node took over: refused, and for good.
        std::thread::sleep(Duration::from_millis(100));
        plant_other_node(&archive, 0, 100);
        assert!(!ours.lock.may_change());
        assert!(ours.lock.is_lost());
    }
}
