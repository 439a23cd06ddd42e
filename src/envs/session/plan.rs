//! How an environment is made usable for a purpose, decided as a pure function of what was found
//! (`Found`) into the steps that do it (`Plan`), or why it cannot be (`Refusal`), and what a
//! writable mount does about a held writer lock (`when_held`). Everything that looks or acts is
//! in `session/mod.rs`; this file is the policy, tested as tables.

use std::time::Duration;

/// What the environment is made usable for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `activate`: writable when the writer lock is free, else read-only with a note;
    /// `read_only` asks for read-only.
    Activate { read_only: bool },
    /// `install`, `remove`: conda changes it, so writable it must be.
    Change,
    /// `run`: a batch command; read-only and shared by the node's runs, or writable with
    /// `write` (and saved when it ends).
    Run { write: bool },
    /// `kernel launch`: a Jupyter kernel, as a read-only run.
    Kernel,
}

impl Purpose {
    /// Whether the node's batch-run bookkeeping counts this session (it shares and lingers).
    pub fn is_run(self) -> bool {
        matches!(self, Purpose::Run { .. } | Purpose::Kernel)
    }

    /// Whether it changes the env from start to save as one transaction conda-fuse drives
    /// (install, remove; create has its own): a crash may cost it, never half of it. An activated
    /// env is the user's to change at any time, and a `run --write` job's command writes results
    /// a walltime must not cost: their acknowledged changes survive the node.
    pub fn is_transaction(self) -> bool {
        matches!(self, Purpose::Change)
    }
}

/// What is at the environment's mount point now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtMountPoint {
    Nothing,
    /// A conda-fuse mount whose daemon died.
    Stale,
    /// Another filesystem (fuse-zip of the old tool, a bind mount): its type and source.
    Foreign {
        fstype: String,
        source: String,
    },
    /// A live conda-fuse mount this node's runtime directory has no record of.
    Unrecorded {
        archive: String,
    },
    /// A live mount of ours.
    Ours {
        /// It serves this environment's archive (not another one mounted there by path).
        same_archive: bool,
        read_only: bool,
        pid: u32,
        /// Runs made it and none is in it now (a mount lingering for the next job).
        lingering_after_runs: bool,
        /// The batch job it was made for, where jobs share the node's mounts.
        job: Option<String>,
        /// It serves an older version than the archive holds now (another node saved since).
        outdated: bool,
    },
}

/// Everything the decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub archive_exists: bool,
    /// The archive and its directory are writable for this user.
    pub writable_by_me: bool,
    /// A snapshot (`NAME@N`), which only ever runs read-only.
    pub snapshot: bool,
    /// The batch job this session is for, where jobs share the node's mounts (no job
    /// namespaces): it must not use another job's mount, which goes when that job ends.
    pub only_job: Option<String>,
    pub at_mount_point: AtMountPoint,
}

/// One thing to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Unmount the stale mount (its unsaved changes stay in the upper layer).
    CleanStale,
    /// Unmount the read-only mount runs left lingering, so that it can be mounted writable.
    Reclaim,
    /// Mount it; `or_read_only`: if another mount holds the writer lock, read-only instead.
    Mount { read_only: bool, or_read_only: bool },
    /// Use the mount that is there.
    Use { read_only: bool },
}

/// What is said to the user along the way (the CLI words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A stale mount was cleaned up.
    CleanedStale,
    /// Mounted read-only: this user cannot write the archive.
    NotWritableByYou,
    /// The mount runs left served an older version than the archive holds now: a fresh one
    /// replaces it.
    RemountedNewer,
    /// The mount serves an older version than the archive holds now, and commands (runs in it, or
    /// a user's shell) use it: new commands get it too until it is unmounted.
    ServesOlder,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
}

/// Why the environment cannot be made usable for the purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    SnapshotIsReadOnly,
    /// It must change, and this user cannot write it.
    NotWritableByYou,
    Foreign {
        fstype: String,
        source: String,
    },
    Unrecorded {
        archive: String,
    },
    /// The mount point serves another archive.
    ServesAnother,
    /// Mounted read-only (by a user, or runs still in it), and this needs it writable.
    MountedReadOnly {
        pid: u32,
    },
    /// Another batch job's mount, which goes when that job ends: wait for it to go.
    AnotherJobs {
        job: String,
        pid: u32,
    },
}

/// Read-only, writable, or writable if the lock is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    ReadOnly,
    Writable,
    PreferWritable,
}

pub fn plan(purpose: Purpose, found: &Found) -> Result<Plan, Refusal> {
    if !found.archive_exists {
        return Err(Refusal::Missing);
    }
    let mut notes = Vec::new();
    let want = match purpose {
        Purpose::Run { write: true } if found.snapshot => {
            return Err(Refusal::SnapshotIsReadOnly);
        }
        Purpose::Activate { read_only: true } | Purpose::Run { write: false } | Purpose::Kernel => {
            Want::ReadOnly
        }
        _ if found.snapshot => Want::ReadOnly,
        Purpose::Activate { read_only: false } if !found.writable_by_me => {
            notes.push(Note::NotWritableByYou);
            Want::ReadOnly
        }
        Purpose::Activate { read_only: false } => Want::PreferWritable,
        Purpose::Change | Purpose::Run { write: true } if !found.writable_by_me => {
            return Err(Refusal::NotWritableByYou);
        }
        Purpose::Change | Purpose::Run { write: true } => Want::Writable,
    };
    let mount = Step::Mount {
        read_only: want == Want::ReadOnly,
        or_read_only: want == Want::PreferWritable,
    };
    let mut steps = Vec::new();
    match &found.at_mount_point {
        AtMountPoint::Nothing => steps.push(mount),
        AtMountPoint::Stale => {
            notes.push(Note::CleanedStale);
            steps.extend([Step::CleanStale, mount]);
        }
        AtMountPoint::Foreign { fstype, source } => {
            return Err(Refusal::Foreign {
                fstype: fstype.clone(),
                source: source.clone(),
            });
        }
        AtMountPoint::Unrecorded { archive } => {
            return Err(Refusal::Unrecorded {
                archive: archive.clone(),
            });
        }
        AtMountPoint::Ours {
            same_archive: false,
            ..
        } => return Err(Refusal::ServesAnother),
        AtMountPoint::Ours {
            job: Some(theirs),
            pid,
            ..
        } if found.only_job.as_ref().is_some_and(|mine| mine != theirs) => {
            return Err(Refusal::AnotherJobs {
                job: theirs.clone(),
                pid: *pid,
            });
        }
        // A mount runs left that serves an older version gives way to a fresh one.
        AtMountPoint::Ours {
            outdated: true,
            lingering_after_runs: true,
            ..
        } => {
            notes.push(Note::RemountedNewer);
            steps.extend([Step::Reclaim, mount]);
        }
        // A mount that is there serves whatever its mode when read-only is enough; a writable
        // one serves everything.
        AtMountPoint::Ours {
            read_only,
            outdated,
            ..
        } if want == Want::ReadOnly || !read_only => {
            if *outdated {
                notes.push(Note::ServesOlder);
            }
            steps.push(Step::Use {
                read_only: *read_only,
            });
        }
        // Read-only, and writable is wanted: a mount runs left behind gives way.
        AtMountPoint::Ours {
            lingering_after_runs: true,
            ..
        } => steps.extend([Step::Reclaim, mount]),
        AtMountPoint::Ours { pid, .. } if want == Want::Writable => {
            return Err(Refusal::MountedReadOnly { pid: *pid });
        }
        AtMountPoint::Ours { .. } => steps.push(Step::Use { read_only: true }),
    }
    Ok(Plan { steps, notes })
}

/// What to do when a writable mount finds the writer lock held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenHeld {
    /// Mount read-only instead (the purpose can do with it).
    ReadOnly,
    /// Try again shortly: the holder's heartbeat has stopped, and a batch job would rather wait
    /// for its lease to run out (then the lock is taken over and its changes recovered) than fail.
    Wait,
    Refuse,
}

/// The holder's heartbeat counts as stopped after this many of its periods without one (it is
/// taken over after `SILENT_PERIODS`).
pub const STOPPED_AFTER_PERIODS: u32 = 2;

/// How long a batch job watches a holder that still beats: a writer job the scheduler is
/// ending (`scancel`, walltime) stops within this, and is then waited out; one that goes on
/// beating is a live writer, and refused.
pub const WATCH_PERIODS: u32 = 3;

/// What a writable mount does about a held writer lock: `in_job` (a batch job, which waits for a
/// stopped holder's lease), whether read-only would do (`or_read_only`), how long the holder has
/// been silent against its heartbeat period, and how long this has waited against the limit.
pub fn when_held(
    in_job: bool,
    or_read_only: bool,
    silent: Duration,
    period: Duration,
    waited: Duration,
    limit: Duration,
) -> WhenHeld {
    let stopped = silent > period * STOPPED_AFTER_PERIODS;
    let watching = waited < period * WATCH_PERIODS;
    if in_job && (stopped || watching) && waited < limit {
        WhenHeld::Wait
    } else if or_read_only {
        WhenHeld::ReadOnly
    } else {
        WhenHeld::Refuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_waits_out_a_stopped_writer_and_nothing_else() {
        let s = Duration::from_secs;
        let period = s(5);
        let limit = s(600);
        let table = [
            // (in_job, or_read_only, silent, waited) -> what
            (true, false, s(12), s(0), WhenHeld::Wait),
            (true, true, s(12), s(20), WhenHeld::Wait),
            // One still beating is watched a few periods (a job being ended stops)...
            (true, false, s(3), s(0), WhenHeld::Wait),
            (true, false, s(3), s(14), WhenHeld::Wait),
            // ... and then refused as a live writer, or read-only where that does.
            (true, false, s(3), s(15), WhenHeld::Refuse),
            (true, true, s(3), s(16), WhenHeld::ReadOnly),
            // Outside jobs nobody waits.
            (false, false, s(25), s(0), WhenHeld::Refuse),
            (false, true, s(25), s(0), WhenHeld::ReadOnly),
            // The wait is bounded.
            (true, false, s(25), s(600), WhenHeld::Refuse),
        ];
        for (in_job, or_ro, silent, waited, what) in table {
            assert_eq!(
                when_held(in_job, or_ro, silent, period, waited, limit),
                what,
                "in_job={in_job} or_read_only={or_ro} silent={silent:?} waited={waited:?}"
            );
        }
    }

    fn ours(read_only: bool, lingering: bool) -> AtMountPoint {
        AtMountPoint::Ours {
            same_archive: true,
            read_only,
            pid: 42,
            lingering_after_runs: lingering,
            job: None,
            outdated: false,
        }
    }

    fn found(at: AtMountPoint) -> Found {
        Found {
            archive_exists: true,
            writable_by_me: true,
            snapshot: false,
            only_job: None,
            at_mount_point: at,
        }
    }

    const RO: Step = Step::Mount {
        read_only: true,
        or_read_only: false,
    };
    const RW: Step = Step::Mount {
        read_only: false,
        or_read_only: false,
    };
    const RW_OR_RO: Step = Step::Mount {
        read_only: false,
        or_read_only: true,
    };
    const ACTIVATE: Purpose = Purpose::Activate { read_only: false };
    const ACTIVATE_RO: Purpose = Purpose::Activate { read_only: true };
    const RUN: Purpose = Purpose::Run { write: false };
    const RUN_WRITE: Purpose = Purpose::Run { write: true };

    #[test]
    fn each_purpose_against_each_mount_point() {
        use Step::*;
        let table: Vec<(Purpose, AtMountPoint, Result<Vec<Step>, Refusal>)> = vec![
            // Nothing mounted: mount as the purpose needs.
            (ACTIVATE, AtMountPoint::Nothing, Ok(vec![RW_OR_RO])),
            (ACTIVATE_RO, AtMountPoint::Nothing, Ok(vec![RO])),
            (Purpose::Change, AtMountPoint::Nothing, Ok(vec![RW])),
            (RUN, AtMountPoint::Nothing, Ok(vec![RO])),
            (RUN_WRITE, AtMountPoint::Nothing, Ok(vec![RW])),
            (Purpose::Kernel, AtMountPoint::Nothing, Ok(vec![RO])),
            // A stale mount is cleaned up first.
            (RUN, AtMountPoint::Stale, Ok(vec![CleanStale, RO])),
            (
                Purpose::Change,
                AtMountPoint::Stale,
                Ok(vec![CleanStale, RW]),
            ),
            // A writable mount serves everyone.
            (RUN, ours(false, false), Ok(vec![Use { read_only: false }])),
            (
                Purpose::Change,
                ours(false, false),
                Ok(vec![Use { read_only: false }]),
            ),
            (
                ACTIVATE,
                ours(false, false),
                Ok(vec![Use { read_only: false }]),
            ),
            // A read-only one serves readers, and activate, which can do with it.
            (RUN, ours(true, false), Ok(vec![Use { read_only: true }])),
            (
                Purpose::Kernel,
                ours(true, true),
                Ok(vec![Use { read_only: true }]),
            ),
            (
                ACTIVATE,
                ours(true, false),
                Ok(vec![Use { read_only: true }]),
            ),
            (
                ACTIVATE_RO,
                ours(true, true),
                Ok(vec![Use { read_only: true }]),
            ),
            // ... but one that runs left lingering gives way to a writer.
            (ACTIVATE, ours(true, true), Ok(vec![Reclaim, RW_OR_RO])),
            (Purpose::Change, ours(true, true), Ok(vec![Reclaim, RW])),
            (RUN_WRITE, ours(true, true), Ok(vec![Reclaim, RW])),
            // A read-only mount in use (a user's, or runs in it) refuses what needs writing.
            (
                Purpose::Change,
                ours(true, false),
                Err(Refusal::MountedReadOnly { pid: 42 }),
            ),
            (
                RUN_WRITE,
                ours(true, false),
                Err(Refusal::MountedReadOnly { pid: 42 }),
            ),
            // Mounts not ours to use are refused.
            (
                RUN,
                AtMountPoint::Ours {
                    same_archive: false,
                    read_only: true,
                    pid: 1,
                    lingering_after_runs: false,
                    job: None,
                    outdated: false,
                },
                Err(Refusal::ServesAnother),
            ),
            (
                ACTIVATE,
                AtMountPoint::Foreign {
                    fstype: "fuse.fuse-zip".into(),
                    source: "x".into(),
                },
                Err(Refusal::Foreign {
                    fstype: "fuse.fuse-zip".into(),
                    source: "x".into(),
                }),
            ),
            (
                RUN,
                AtMountPoint::Unrecorded {
                    archive: "/a.zip".into(),
                },
                Err(Refusal::Unrecorded {
                    archive: "/a.zip".into(),
                }),
            ),
        ];
        for (purpose, at, expected) in table {
            let got = plan(purpose, &found(at.clone())).map(|p| p.steps);
            assert_eq!(got, expected, "{purpose:?} with {at:?}");
        }
    }

    #[test]
    fn what_the_user_may_not_change_is_read_only_or_refused() {
        let theirs = Found {
            writable_by_me: false,
            ..found(AtMountPoint::Nothing)
        };
        let p = plan(ACTIVATE, &theirs).unwrap();
        assert_eq!((p.steps, p.notes), (vec![RO], vec![Note::NotWritableByYou]));
        assert_eq!(plan(RUN, &theirs).unwrap().steps, vec![RO]);
        for purpose in [Purpose::Change, RUN_WRITE] {
            assert_eq!(plan(purpose, &theirs), Err(Refusal::NotWritableByYou));
        }
        let snapshot = Found {
            snapshot: true,
            ..found(AtMountPoint::Nothing)
        };
        assert_eq!(plan(RUN_WRITE, &snapshot), Err(Refusal::SnapshotIsReadOnly));
        assert_eq!(plan(RUN, &snapshot).unwrap().steps, vec![RO]);
        let missing = Found {
            archive_exists: false,
            ..found(AtMountPoint::Nothing)
        };
        for purpose in [ACTIVATE, Purpose::Change, RUN, Purpose::Kernel] {
            assert_eq!(plan(purpose, &missing), Err(Refusal::Missing));
        }
        let stale = plan(RUN, &found(AtMountPoint::Stale)).unwrap();
        assert_eq!(stale.notes, vec![Note::CleanedStale]);
    }

    /// A mount serving an older version than the archive now holds: one runs left lingering is
    /// replaced by a fresh mount; one in use serves on, saying so.
    #[test]
    fn an_outdated_mount_is_replaced_when_nobody_uses_it() {
        let outdated = |lingering| AtMountPoint::Ours {
            same_archive: true,
            read_only: true,
            pid: 7,
            lingering_after_runs: lingering,
            job: None,
            outdated: true,
        };
        for purpose in [RUN, Purpose::Kernel, ACTIVATE_RO] {
            let p = plan(purpose, &found(outdated(true))).unwrap();
            assert_eq!(p.steps, vec![Step::Reclaim, RO], "{purpose:?}");
            assert_eq!(p.notes, vec![Note::RemountedNewer]);
            let p = plan(purpose, &found(outdated(false))).unwrap();
            assert_eq!(p.steps, vec![Step::Use { read_only: true }], "{purpose:?}");
            assert_eq!(p.notes, vec![Note::ServesOlder]);
        }
        assert_eq!(
            plan(ACTIVATE, &found(outdated(true))).unwrap().steps,
            vec![Step::Reclaim, RW_OR_RO]
        );
    }

    /// Where jobs share the node's mounts, a job uses its own mounts and ones made outside jobs,
    /// never another job's (which goes when that job ends).
    #[test]
    fn a_job_without_a_namespace_of_its_own_waits_for_other_jobs_mounts() {
        let of_job = |job: Option<&str>| AtMountPoint::Ours {
            same_archive: true,
            read_only: true,
            pid: 7,
            lingering_after_runs: false,
            job: job.map(str::to_string),
            outdated: false,
        };
        let in_job = |at| Found {
            only_job: Some("100".into()),
            ..found(at)
        };
        for purpose in [RUN, Purpose::Kernel, RUN_WRITE, Purpose::Change] {
            assert_eq!(
                plan(purpose, &in_job(of_job(Some("99")))),
                Err(Refusal::AnotherJobs {
                    job: "99".into(),
                    pid: 7
                }),
                "{purpose:?}"
            );
        }
        assert_eq!(
            plan(RUN, &in_job(of_job(Some("100")))).unwrap().steps,
            vec![Step::Use { read_only: true }]
        );
        assert_eq!(
            plan(RUN, &in_job(of_job(None))).unwrap().steps,
            vec![Step::Use { read_only: true }]
        );
        // Outside jobs, a job's mount is used as any other.
        assert_eq!(
            plan(RUN, &found(of_job(Some("99")))).unwrap().steps,
            vec![Step::Use { read_only: true }]
        );
    }
}
