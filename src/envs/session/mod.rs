//! An environment made usable for a purpose, and let go of again. `Session::open` finds out what
//! there is (the archive, what is at the mount point, the node's batch runs of it), asks the
//! policy (`plan.rs`, a pure function) what to do, does it, and returns what the user should be
//! told as data (`Note`s). Closing does what the purpose calls for: a change is saved (or thrown
//! away when conda failed on a mount this session made), a run leaves, saves with `--write`, and
//! the last run's mount lingers for the next job or goes.
//!
//! Every open takes the node's run decision for the environment (`runs.rs`) while it decides, so
//! a run that mounts or unmounts and anything that reclaims a lingering mount never interleave.

pub mod error;
pub mod plan;

use std::time::Duration;

pub use error::SessionError;
pub use plan::{Note, Purpose};

use super::Env;
use crate::daemon::control::SaveSummary;
use crate::daemon::runs::{Decision, Runs};
use crate::daemon::{self, DaemonError, MountRequest, Mounted, Probe, Unmounted};
use crate::overlay::OverlayError;
use crate::overlay::lock::LockError;
use plan::{AtMountPoint, Found, Step};

/// What the user should know, said as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    Plan(Note),
    /// Another mount holds the writer lock: mounted read-only instead.
    ReadOnlyBecauseWriter {
        holder: String,
    },
    /// A batch job found the writer lock of a holder whose heartbeat stopped: waiting for its
    /// lease to run out (at `takeover` of silence), then taking over.
    WaitingForLease {
        holder: String,
        silent: Duration,
        takeover: Duration,
    },
    /// Another job's mount of the environment is there (jobs share the node's mounts): waiting
    /// for it to go, at most `limit`.
    WaitingForJob {
        job: String,
        pid: u32,
        limit: Duration,
    },
}

/// What a session tells as it goes.
pub enum Event<'a> {
    /// It mounted the environment (the report of what the mount found).
    Mounted(&'a Mounted),
    Said(Said),
}

/// How to open a session.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Take the writer lock even from a holder that looks alive (`--steal-lock`).
    pub steal_lock: bool,
    /// A batch job where jobs share the node's mounts (no job namespaces): mounts are recorded
    /// as this job's, and other jobs' mounts are waited out rather than used.
    pub only_job: Option<String>,
}

pub struct Session {
    pub env: Env,
    purpose: Purpose,
    pub read_only: bool,
    /// This session mounted it (so it may unmount it when done).
    pub we_mounted: bool,
    runs: Runs,
}

/// What closing a session did.
#[derive(Debug, Default)]
pub struct Closed {
    /// The save, when one was made.
    pub saved: Option<SaveSummary>,
    /// The run's mount stays this long for the next job (None: it is gone, or not the runs').
    pub lingering: Option<Duration>,
}

/// What a session's purpose came to, for `close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// What was done should be kept (saved where the purpose saves).
    Done,
    /// It failed: a change conda left half done on a mount this session made with nothing
    /// unsaved before is thrown away; anything else stays for the user to look at.
    Failed,
}

fn at_mount_point(env: &Env, runs: &Runs, d: &Decision) -> AtMountPoint {
    match daemon::probe(&env.mountpoint) {
        Probe::NotMounted => AtMountPoint::Nothing,
        Probe::Stale => AtMountPoint::Stale,
        Probe::Foreign(m) => AtMountPoint::Foreign {
            fstype: m.fstype,
            source: m.source,
        },
        Probe::Unrecorded(m) => AtMountPoint::Unrecorded {
            archive: m.archive().to_string(),
        },
        Probe::Live(r) => AtMountPoint::Ours {
            same_archive: r.archive == env.id.path(),
            read_only: r.read_only,
            pid: r.pid,
            lingering_after_runs: runs.others(d, std::process::id()) == 0
                && runs.mounted_by_run(d) == Some(r.pid),
            outdated: r.read_only && outdated(env, &r.mountpoint),
            job: r.job,
        },
    }
}

/// Whether the read-only mount at `mountpoint` serves an older version than `env`'s archive now
/// holds (another node saved, or rolled back, since it was mounted). A mount that cannot say is
/// taken as current.
fn outdated(env: &Env, mountpoint: &std::path::Path) -> bool {
    let Ok(status) = daemon::status(mountpoint) else {
        return false;
    };
    if status.served_size == 0 {
        return false; // a daemon of an older conda-fuse
    }
    match crate::commit::snapshots::identity_at(env.id.path()) {
        Ok(now) => (now.size, now.cd_crc) != (status.served_size, status.served_cd_crc),
        Err(_) => false,
    }
}

impl Session {
    /// Makes `env` usable for `purpose`; `tell` hears what the user should know, as it happens
    /// (the CLI words it).
    pub fn open(
        env: &Env,
        purpose: Purpose,
        options: Options,
        tell: &mut dyn FnMut(Event<'_>),
    ) -> Result<Session, SessionError> {
        let runs = runs_of(env);
        let (decision, plan) = Self::decide(env, purpose, &options, &runs, tell)?;
        let mut session = Session {
            env: env.clone(),
            purpose,
            read_only: true,
            we_mounted: false,
            runs,
        };
        for note in plan.notes {
            tell(Event::Said(Said::Plan(note)));
        }
        for step in plan.steps {
            session.take(step, &decision, &options, tell)?;
        }
        if purpose.is_run() {
            if session.we_mounted
                && let Probe::Live(r) = daemon::probe(&env.mountpoint)
            {
                session.runs.set_mounted_by_run(&decision, Some(r.pid))?;
            }
            session.runs.join(&decision, std::process::id())?;
        }
        Ok(session)
    }

    /// Takes the run decision and plans under it. Another job's mount (where jobs share the
    /// node's mounts) is waited out, up to `CONDA_FUSE_RUN_WAIT`, without holding the decision.
    fn decide(
        env: &Env,
        purpose: Purpose,
        options: &Options,
        runs: &Runs,
        tell: &mut dyn FnMut(Event<'_>),
    ) -> Result<(Decision, plan::Plan), SessionError> {
        let started = std::time::Instant::now();
        let limit = crate::settings::get().run_wait;
        let mut told = false;
        loop {
            let decision = runs.decide()?;
            let found = Found {
                archive_exists: env.archive.is_file(),
                writable_by_me: env.writable_by_me(),
                snapshot: env.snapshot.is_some(),
                only_job: options.only_job.clone(),
                at_mount_point: at_mount_point(env, runs, &decision),
            };
            let refusal = match plan::plan(purpose, &found) {
                Ok(plan) => return Ok((decision, plan)),
                Err(r) => r,
            };
            let plan::Refusal::AnotherJobs { job, pid } = refusal else {
                let serves = match daemon::probe(&env.mountpoint) {
                    Probe::Live(r) => r.archive,
                    _ => Default::default(),
                };
                return Err(SessionError::refused(env, refusal, serves));
            };
            drop(decision);
            let waited = started.elapsed();
            if waited >= limit {
                return Err(SessionError::AnotherJobs {
                    name: env.name.clone(),
                    job,
                    pid,
                    waited,
                });
            }
            if !told {
                told = true;
                tell(Event::Said(Said::WaitingForJob { job, pid, limit }));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn take(
        &mut self,
        step: Step,
        decision: &Decision,
        options: &Options,
        tell: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), SessionError> {
        let env = &self.env;
        match step {
            Step::CleanStale => {
                daemon::unmount(&env.mountpoint, false, false, &mut |_, _| {})?;
            }
            Step::Reclaim => {
                self.runs.clear_lingering(decision);
                unmount_runs_mount(env, &self.runs, decision, &mut |_, _| {})?;
            }
            Step::Use { read_only } => {
                self.read_only = read_only;
                // Activated, or changed through: the mount is the user's from now on, and runs
                // (in it, or lingering after them) never unmount it from under them.
                if !self.purpose.is_run() && runs_mount_is_there(env, &self.runs, decision)? {
                    self.runs.clear_lingering(decision);
                    self.runs.set_mounted_by_run(decision, None)?;
                }
            }
            Step::Mount {
                read_only,
                or_read_only,
            } => {
                std::fs::create_dir_all(&env.mountpoint).map_err(|source| {
                    SessionError::MountPoint {
                        path: env.mountpoint.clone(),
                        source,
                    }
                })?;
                // A change conda-fuse drives, from start to save, is a transaction: its changes
                // wait on node-local disk, unless a crashed mount left some in the shared place,
                // which it must recover.
                let transaction = self.purpose.is_transaction()
                    && crate::overlay::unsaved_on_disk(&daemon::state::upper_root(), &env.id)
                        .is_ok_and(|n| n == 0);
                let mount = |read_only, tell: &mut dyn FnMut(Event<'_>)| {
                    let mut req =
                        MountRequest::new(env.id.clone(), env.mountpoint.clone(), read_only);
                    req.steal_lock = options.steal_lock && !read_only;
                    req.job = options.only_job.clone();
                    if transaction && !read_only {
                        req.as_transaction();
                    }
                    daemon::mount(&req, &mut |m| tell(Event::Mounted(m)))
                };
                let started = std::time::Instant::now();
                let settings = crate::settings::get();
                let mut told = false;
                self.read_only = loop {
                    let holder = match mount(read_only, tell) {
                        Ok(_) => break read_only,
                        Err(DaemonError::Overlay(OverlayError::Lock(LockError::Held {
                            holder,
                            ..
                        }))) => holder,
                        // Another user's unsaved changes: a writer of sorts, until they save.
                        Err(DaemonError::Overlay(OverlayError::Lock(
                            LockError::UnsavedOfAnother { holder, .. },
                        ))) if or_read_only => {
                            tell(Event::Said(Said::ReadOnlyBecauseWriter {
                                holder: format!(
                                    "{}, which left changes only {} can save",
                                    holder.describe(),
                                    holder.user
                                ),
                            }));
                            mount(true, tell)?;
                            break true;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let silent = Duration::from_millis(
                        (crate::overlay::lock::holder::now_ms() - holder.heartbeat_ms).max(0)
                            as u64,
                    );
                    let period = Duration::from_millis(holder.period_ms);
                    match plan::when_held(
                        settings.job.is_some() && holder.period_ms > 0,
                        or_read_only,
                        silent,
                        period,
                        started.elapsed(),
                        settings.run_wait,
                    ) {
                        plan::WhenHeld::Wait => {
                            if !told {
                                told = true;
                                tell(Event::Said(Said::WaitingForLease {
                                    holder: holder.describe(),
                                    silent,
                                    takeover: holder.silence_limit(),
                                }));
                            }
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        plan::WhenHeld::ReadOnly => {
                            tell(Event::Said(Said::ReadOnlyBecauseWriter {
                                holder: holder.describe(),
                            }));
                            mount(true, tell)?;
                            break true;
                        }
                        plan::WhenHeld::Refuse => {
                            return Err(DaemonError::Overlay(OverlayError::Lock(
                                LockError::Held {
                                    archive: env.id.path().to_path_buf(),
                                    holder,
                                },
                            ))
                            .into());
                        }
                    }
                };
                self.we_mounted = true;
            }
        }
        Ok(())
    }

    /// Unsaved changes of the mount now (0 for a read-only one).
    pub fn unsaved(&self) -> Result<u64, SessionError> {
        if self.read_only {
            return Ok(0);
        }
        Ok(daemon::status(&self.env.mountpoint)?.unsaved_changes)
    }

    /// Lets go of the environment as its purpose calls for (an activation stays mounted). Changes
    /// made on a mount this session did not make stay unsaved after a failure, for the user.
    /// `progress` follows a save.
    pub fn close(
        self,
        outcome: Outcome,
        unsaved_before: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Closed, SessionError> {
        match self.purpose {
            Purpose::Activate { .. } => Ok(Closed::default()),
            Purpose::Change => self.close_change(outcome, unsaved_before, progress),
            Purpose::Run { .. } | Purpose::Kernel => self.close_run(progress),
        }
    }

    fn close_change(
        self,
        outcome: Outcome,
        unsaved_before: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Closed, SessionError> {
        let env = &self.env;
        let saved = match (outcome, self.we_mounted) {
            (Outcome::Failed, true) if unsaved_before == 0 => {
                daemon::unmount(&env.mountpoint, false, true, progress)?;
                None
            }
            (Outcome::Failed, _) => None,
            (Outcome::Done, true) => {
                saved_by(daemon::unmount(&env.mountpoint, false, false, progress)?)
            }
            (Outcome::Done, false) => Some(daemon::save(&env.mountpoint, progress)?),
        };
        Ok(Closed {
            saved,
            lingering: None,
        })
    }

    fn close_run(self, progress: &mut dyn FnMut(u64, u64)) -> Result<Closed, SessionError> {
        let env = &self.env;
        let me = std::process::id();
        let decision = self.runs.decide()?;
        self.runs.leave(&decision, me);
        let write = self.purpose == Purpose::Run { write: true };
        let saved = if write {
            match daemon::save(&env.mountpoint, progress) {
                Ok(s) => Some(s),
                Err(source) => {
                    return Err(SessionError::SaveAfterRun {
                        name: env.name.clone(),
                        source,
                    });
                }
            }
        } else {
            None
        };
        let mut closed = Closed {
            saved,
            lingering: None,
        };
        if self.runs.others(&decision, me) > 0 || !runs_mount_is_there(env, &self.runs, &decision)?
        {
            return Ok(closed);
        }
        // The last run out: a read-only mount lingers for the next job (its daemon unmounts it
        // when the time is over: `daemon::keeper`); a writable one holds the writer lock, so it
        // goes at once.
        let linger = crate::daemon::runs::linger();
        if !write && !linger.is_zero() {
            self.runs.ask_to_linger(&decision, linger, me)?;
            closed.lingering = Some(linger);
            return Ok(closed);
        }
        unmount_runs_mount(env, &self.runs, &decision, &mut |_, _| {})?;
        Ok(closed)
    }
}

fn saved_by(u: Unmounted) -> Option<SaveSummary> {
    match u {
        Unmounted::Clean { saved, .. } => saved,
        _ => None,
    }
}

/// Whether the mount runs made of `env` is still there (a record of one that is gone is
/// forgotten: a user may have unmounted it and mounted the env again, which runs leave alone).
fn runs_mount_is_there(env: &Env, runs: &Runs, d: &Decision) -> Result<bool, SessionError> {
    let Some(daemon) = runs.mounted_by_run(d) else {
        return Ok(false);
    };
    match daemon::probe(&env.mountpoint) {
        Probe::Live(r) if r.pid == daemon => Ok(true),
        _ => {
            runs.set_mounted_by_run(d, None)?;
            Ok(false)
        }
    }
}

/// Unmounts the runs' mount of `env` (the last run has left, the linger time is over, or a writer
/// reclaims it).
fn unmount_runs_mount(
    env: &Env,
    runs: &Runs,
    d: &Decision,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), SessionError> {
    daemon::unmount(&env.mountpoint, false, false, progress)?;
    runs.set_mounted_by_run(d, None)?;
    Ok(())
}

/// What is at `env`'s mount point once a stale mount there is cleaned up (for create and rm, which
/// need it free or know what to do with a live one); another filesystem, or a mount this node has
/// no record of, is refused.
pub fn settle_mount_point(env: &Env) -> Result<(Probe, Vec<Said>), SessionError> {
    let probe = daemon::probe(&env.mountpoint);
    let refused = |r| SessionError::refused(env, r, Default::default());
    match probe {
        Probe::Stale => {
            daemon::unmount(&env.mountpoint, false, false, &mut |_, _| {})?;
            Ok((Probe::NotMounted, vec![Said::Plan(Note::CleanedStale)]))
        }
        Probe::Foreign(m) => Err(refused(plan::Refusal::Foreign {
            fstype: m.fstype,
            source: m.source,
        })),
        Probe::Unrecorded(m) => Err(refused(plan::Refusal::Unrecorded {
            archive: m.archive().to_string(),
        })),
        other => Ok((other, Vec::new())),
    }
}

/// The runs of `env` on this node.
fn runs_of(env: &Env) -> Runs {
    Runs::at(&env.mountpoint, &env.name)
}

/// Unmounts the read-only mount runs left lingering for the next job, if that is what is at
/// `env`'s mount point (no run is in it): it gives way to `rm` and `rollback` as it gives way to
/// a writer. Returns whether it did.
pub fn reclaim_lingering(env: &Env) -> Result<bool, SessionError> {
    let runs = runs_of(env);
    let decision = runs.decide()?;
    let lingering = matches!(
        at_mount_point(env, &runs, &decision),
        AtMountPoint::Ours {
            read_only: true,
            lingering_after_runs: true,
            ..
        }
    );
    if lingering {
        runs.clear_lingering(&decision);
        unmount_runs_mount(env, &runs, &decision, &mut |_, _| {})?;
    }
    Ok(lingering)
}

/// Refuses what must not happen while `env` is mounted on this node (rollback, rm).
pub fn refuse_if_mounted(env: &Env) -> Result<(), SessionError> {
    if let Probe::Live(r) = daemon::probe(&env.mountpoint) {
        return Err(SessionError::Mounted {
            name: env.name.clone(),
            mountpoint: env.mountpoint.clone(),
            pid: r.pid,
        });
    }
    Ok(())
}

/// Refuses to `what` (delete, roll back) an environment this user cannot write.
pub fn refuse_if_not_mine(env: &Env, what: &'static str) -> Result<(), SessionError> {
    if env.archive.exists() && !env.writable_by_me() {
        return Err(SessionError::NotMine {
            name: env.name.clone(),
            archive: env.archive.clone(),
            what,
        });
    }
    Ok(())
}

/// The environment `env`, which must have an archive.
pub fn require_archive(env: &Env) -> Result<(), SessionError> {
    if env.archive.is_file() {
        Ok(())
    } else {
        Err(SessionError::Missing {
            name: env.name.clone(),
            archive: env.archive.clone(),
        })
    }
}
