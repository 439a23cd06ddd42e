//! Every user-facing error and summary line, pinned (insta snapshots in tests/snapshots/): a wrong
//! or duplicated message shows up as a diff. Rendered as the CLI prints them: an `error:` line
//! with the cause chain, then at most one `hint:` line. No kernel, no files: runs anywhere.

use std::io;
use std::path::PathBuf;

use conda_fuse::archive::format::{FormatError, Record};
use conda_fuse::archive::pack::PlanError;
use conda_fuse::archive::{ArchiveError, BuildError};
use conda_fuse::cli::report::{error_with_hint, render, saved_line};
use conda_fuse::commit::SaveError;
use conda_fuse::conda::CondaError;
use conda_fuse::daemon::DaemonError;
use conda_fuse::daemon::control::SaveSummary;
use conda_fuse::daemon::mountpoint::MountPointError;
use conda_fuse::envs::EnvError;
use conda_fuse::envs::create::CreateError;
use conda_fuse::envs::remove::RemoveError;
use conda_fuse::envs::rename::RenameError;
use conda_fuse::hint::{Hint, RemoteError};
use conda_fuse::overlay::journal::JournalError;
use conda_fuse::overlay::lock::LockError;
use conda_fuse::overlay::{OpError, OverlayError};
use conda_fuse::private_dir::PrivateDirError;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn shown(errors: Vec<anyhow::Error>) -> String {
    errors.iter().map(render).collect::<Vec<_>>().join("\n\n")
}

#[test]
fn archive_errors() {
    insta::assert_snapshot!(shown(vec![
        ArchiveError::NotZip {
            path: p("/h/envs/ml.zip"),
            reason: FormatError::NoEndRecord,
        }
        .into(),
        ArchiveError::Corrupt {
            path: p("/h/envs/ml.zip"),
            entry: 12,
            reason: FormatError::MissingSignature(Record::CentralHeader),
        }
        .into(),
        ArchiveError::Io {
            path: p("/h/envs/ml.zip"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }
        .into(),
        PlanError::NotADirectory { path: p("/h/file") }.into(),
        BuildError::Verify("3 entries, not the 4 written".into()).into(),
        BuildError::Changed(conda_fuse::archive::compress_file::SourceChanged(p(
            "/h/old/lib/libx.so",
        )))
        .into(),
    ]));
}

#[test]
fn a_failed_save_says_once_where_the_changes_are_and_what_to_do() {
    // The daemon's error crosses the socket as a RemoteError and keeps its chain and hint.
    let build = BuildError::Write {
        what: "cannot write",
        path: p("/h/envs/.ml.zip.tmp"),
        source: enospc(),
    };
    let save = SaveError::from(build);
    let remote = RemoteError::new(&save, save.hint());
    let remote: RemoteError =
        serde_json::from_str(&serde_json::to_string(&remote).unwrap()).unwrap();
    insta::assert_snapshot!(shown(vec![
        DaemonError::SaveFailed {
            mountpoint: p("/h/mnt/ml/ml"),
            source: remote.clone(),
        }
        .into(),
        DaemonError::UnmountFailed {
            mountpoint: p("/h/mnt/ml/ml"),
            source: remote,
        }
        .into(),
        SaveError::TakenOver(p("/h/envs/ml.zip")).into(),
    ]));
}

#[test]
fn mount_errors() {
    insta::assert_snapshot!(shown(vec![
        DaemonError::from(MountPointError::NoFuseDevice).into(),
        DaemonError::from(MountPointError::NoFusermount).into(),
        DaemonError::from(MountPointError::Missing("/h/mnt/x".into())).into(),
        DaemonError::from(MountPointError::NotEmpty {
            path: "/h/mnt/x".into(),
            count: 3,
        })
        .into(),
        DaemonError::from(MountPointError::Stale("/h/mnt/x".into())).into(),
        DaemonError::ArchiveMissing(p("/h/envs/none.zip")).into(),
        DaemonError::Refused {
            mountpoint: p("/h/mnt/x"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }
        .into(),
        DaemonError::NoReport {
            mountpoint: p("/h/mnt/x"),
            log: p("/h/.local/state/conda-fuse/logs/x.log"),
        }
        .into(),
        DaemonError::Busy {
            path: p("/h/mnt/x"),
            users: "python (pid 42)".into(),
        }
        .into(),
        DaemonError::NotOurs {
            path: p("/h/mnt/x"),
            fstype: "fuse.fuse-zip from ml.zip".into(),
        }
        .into(),
        DaemonError::Unresponsive {
            mountpoint: p("/h/mnt/x"),
            pid: 42,
            message: "connection refused".into(),
        }
        .into(),
        DaemonError::Socket {
            path: p("/h/run/mounts/x-0123.sock"),
            fs: "sshfs".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        }
        .into(),
    ]));
}

#[test]
fn state_and_overlay_errors() {
    insta::assert_snapshot!(shown(vec![
        OverlayError::from(JournalError::Damaged {
            path: p("/h/upper/ml/journal"),
            offset: 4096,
            lost: 2,
        })
        .into(),
        OverlayError::Mismatch {
            dir: p("/h/upper/ml"),
            archive: p("/h/envs/ml.zip"),
        }
        .into(),
        LockError::NotALock {
            path: p("/h/envs/ml.zip.lock"),
            why: "a symlink",
        }
        .into(),
        PrivateDirError::Writable {
            path: p("/tmp/state"),
            mode: 0o777,
        }
        .into(),
        CondaError::NotFound.into(),
        EnvError::BadName("a/b".into()).into(),
        EnvError::NoSnapshot {
            spec: "ml@4".into(),
            count: 1,
        }
        .into(),
    ]));
}

#[test]
fn lifecycle_errors() {
    insta::assert_snapshot!(shown(vec![
        CreateError::Busy {
            name: "ml".into(),
            by: "its mount's daemon is pid 4242 on login2 (user me) since 2026-12-05 10:02:00 at /h/envs/ml".into(),
        }
        .into(),
        CreateError::Busy {
            name: "ml".into(),
            by: "it began 3s ago and is not mounted yet".into(),
        }
        .into(),
        CreateError::Exists {
            name: "ml".into(),
            archive: p("/h/envs/ml.zip"),
        }
        .into(),
        CreateError::MountPointInUse {
            mountpoint: p("/h/mnt/ml"),
            serves: p("/h/envs/other.zip"),
            pid: 42,
        }
        .into(),
        CreateError::MountPointNotEmpty {
            mountpoint: p("/h/mnt/ml"),
        }
        .into(),
        CreateError::NothingMade {
            prefix: p("/h/mnt/ml/ml"),
        }
        .into(),
        conda_fuse::envs::remove::RmRefused::Mounted {
            name: "ml".into(),
            mountpoint: p("/h/mnt/ml"),
            read_only: false,
            pid: 42,
        }
        .into(),
        conda_fuse::envs::remove::RmRefused::WrittenElsewhere {
            name: "ml".into(),
            holder: "pid 4242 on login2 (user ana) since 2026-12-05 10:02:00 at /h/mnt/ml".into(),
        }
        .into(),
        CreateError::Rename {
            from: p("/h/envs/.ml.creating.zip"),
            to: p("/h/envs/ml.zip"),
            source: io::Error::from_raw_os_error(libc::EEXIST),
        }
        .into(),
        CreateError::Rename {
            from: p("/h/envs/.ml.creating.zip"),
            to: p("/h/envs/ml.zip"),
            source: io::Error::from_raw_os_error(libc::EIO),
        }
        .into(),
        CreateError::Dir {
            path: p("/h/envs"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }
        .into(),
        RemoveError {
            what: "the upper layer",
            path: p("/h/state/upper/ml.zip-0123"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }
        .into(),
        RenameError::Missing("ml".into()).into(),
        RenameError::Exists {
            name: "ml-2024".into(),
            path: p("/h/envs/ml-2024.zip"),
        }
        .into(),
        RenameError::Mounted {
            name: "ml".into(),
            mountpoint: p("/h/mnt/ml"),
        }
        .into(),
        RenameError::Unsaved {
            name: "ml".into(),
            changes: 3,
            upper: p("/h/state/upper/ml.zip-0123"),
        }
        .into(),
        RenameError::Symlink {
            link: p("/h/envs/ml.zip"),
            target: p("/proj/lab/envs/ml.zip"),
        }
        .into(),
        RenameError::Write {
            path: p("/h/envs/ml-2024.zip"),
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        }
        .into(),
    ]));
}

/// Faults inside a mount reach the daemon log (one line each, from `fs::fuse`) and, through a
/// save, the user.
#[test]
fn filesystem_faults() {
    let upper_full = || OpError::Upper {
        what: "append to the journal",
        cause: enospc(),
    };
    let mut lines = vec![
        OpError::Entry {
            archive: p("/h/envs/ml.zip"),
            entry: 12,
            name: "ml/lib/libz.so".into(),
            cause: conda_fuse::archive::EntryError::Corrupt("incomplete deflate stream".into()),
        }
        .to_string(),
        upper_full().to_string(),
    ];
    lines.push(render(&SaveError::Journal(upper_full()).into()));
    insta::assert_snapshot!(lines.join("\n"));
}

/// A lock another mount holds: who, since when (local time, replaced here), how long its
/// heartbeat has been silent, and what to do.
#[test]
fn lock_held_messages() {
    use conda_fuse::node::Node;
    use conda_fuse::overlay::lock::holder::{Holder, now_ms};
    let since = 1_764_669_723;
    let elsewhere = Holder {
        node: Node {
            host: "node17".into(),
            boot_id: "b".into(),
        },
        pid: 4242,
        user: "me".into(),
        since,
        mountpoint: p("/h/miniconda_fuse/envs/ml"),
        heartbeat_ms: now_ms() - 12_000,
        period_ms: 5_000,
        epoch: 0,
        beats: 3,
        unsaved: false,
    };
    let here = Holder {
        node: Node::this(),
        period_ms: 0,
        ..elsewhere.clone()
    };
    let of_alice = Holder {
        user: "alice".into(),
        unsaved: true,
        ..elsewhere.clone()
    };
    let mut errors: Vec<anyhow::Error> = [elsewhere, here]
        .map(|holder| {
            LockError::Held {
                archive: p("/h/envs/ml.zip"),
                holder: Box::new(holder),
            }
            .into()
        })
        .into();
    errors.push(
        LockError::UnsavedOfAnother {
            archive: p("/lab/envs/tools.zip"),
            holder: Box::new(of_alice),
            why: conda_fuse::overlay::lock::Staleness::Dead,
        }
        .into(),
    );
    let shown = shown(errors);
    let this_host = format!(" on {} ", Node::this().host);
    let mut shown = shown
        .replace(&conda_fuse::clock::local(since), "<local time>")
        .replace(&this_host, " on <this host> ");
    // Rendered a moment after the holder was made: a slow machine may see a later second.
    for late in 13..60 {
        shown = shown.replace(&format!("heartbeat {late}s ago"), "heartbeat 12s ago");
    }
    insta::assert_snapshot!(shown);
}

#[test]
fn the_outer_hint_replaces_the_inner_one_and_context_keeps_the_chain() {
    let inner = anyhow::Error::from(EnvError::BadName("x y".into())).context("reading the request");
    insta::assert_snapshot!(shown(vec![
        inner,
        error_with_hint(
            "there is no environment 'ml'",
            "create it with conda-fuse-create ml"
        ),
    ]));
}

/// What a save that could keep no snapshot says (it went on).
#[test]
fn snapshot_notes() {
    use conda_fuse::commit::snapshots::SnapshotError;
    let notes = [
        SnapshotError::NoHardLinks {
            dir: p("/proj/lab/envs/.snapshots/ml.zip"),
            fs: "BeeGFS".into(),
            source: io::Error::from_raw_os_error(libc::EXDEV),
        },
        SnapshotError::Io {
            archive: p("/h/envs/ml.zip"),
            source: io::Error::from_raw_os_error(libc::EDQUOT),
        },
        SnapshotError::OthersVersion {
            archive: p("/proj/lab/envs/ml.zip"),
            owner: "user alice (uid 1001)".into(),
        },
    ]
    .map(|e| format!("conda-fuse: note: {}", e.note()));
    insta::assert_snapshot!(notes.join("\n"));
}

/// Why an environment cannot be made usable for what was asked, or rolled back.
#[test]
fn session_and_history_errors() {
    use conda_fuse::envs::history::HistoryError;
    use conda_fuse::envs::session::SessionError;
    insta::assert_snapshot!(shown(vec![
        SessionError::Missing {
            name: "ml".into(),
            archive: p("/h/envs/ml.zip"),
        }
        .into(),
        SessionError::SnapshotIsReadOnly {
            spec: "ml@2".into(),
            name: "ml".into(),
        }
        .into(),
        SessionError::NotWritableByYou {
            name: "tools".into(),
            archive: p("/proj/lab/envs/tools.zip"),
            dir: p("/proj/lab/envs"),
        }
        .into(),
        SessionError::Foreign {
            mountpoint: p("/h/mnt/ml"),
            fstype: "fuse.fuse-zip".into(),
            source_name: "fuse-zip".into(),
        }
        .into(),
        SessionError::Unrecorded {
            mountpoint: p("/h/mnt/ml"),
            runtime_dir: p("/run/user/1000/conda-fuse"),
            archive: "/h/envs/ml.zip".into(),
        }
        .into(),
        SessionError::ServesAnother {
            mountpoint: p("/h/mnt/ml"),
            serves: p("/h/other.zip"),
            archive: p("/h/envs/ml.zip"),
        }
        .into(),
        SessionError::MountedReadOnly {
            name: "ml".into(),
            mountpoint: p("/h/mnt/ml"),
            pid: 42,
        }
        .into(),
        SessionError::Mounted {
            name: "ml".into(),
            mountpoint: p("/h/mnt/ml"),
            pid: 42,
        }
        .into(),
        SessionError::NotMine {
            name: "tools".into(),
            archive: p("/proj/lab/envs/tools.zip"),
            what: "delete",
        }
        .into(),
        SessionError::MountPoint {
            path: p("/h/mnt/ml"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        }
        .into(),
        HistoryError::Unsaved {
            name: "ml".into(),
            count: 3,
        }
        .into(),
        HistoryError::UnreadableChanges {
            name: "ml".into(),
            why: "the journal was written by a newer conda-fuse (version 9)".into(),
        }
        .into(),
        HistoryError::NoSnapshot { n: 7, count: 2 }.into(),
    ]));
}

/// A setting conda-fuse cannot use names its variable, what it holds and what it takes.
#[test]
fn settings_errors() {
    use conda_fuse::settings::SettingsError;
    insta::assert_snapshot!(shown(vec![
        SettingsError {
            var: "CONDA_FUSE_RUN_LINGER",
            value: "ten".into(),
            takes: "seconds between 0 and 86400",
        }
        .into(),
        SettingsError {
            var: "CONDA_FUSE_STATE_DIR",
            value: "state".into(),
            takes: "an absolute path without newlines",
        }
        .into(),
    ]));
}

#[test]
fn save_summary_lines() {
    let s = SaveSummary {
        changed: true,
        entries: 1234,
        bytes_in: 10 << 20,
        bytes_out: 3 << 20,
        holes: 0,
        seconds: 1.25,
        notes: Vec::new(),
    };
    let with_holes = SaveSummary {
        holes: 1 << 30,
        ..s.clone()
    };
    insta::assert_snapshot!(
        [
            saved_line("saved ml", &s),
            saved_line("saved ml", &with_holes),
            saved_line("saved ml", &SaveSummary::default()),
        ]
        .map(|l| l.unwrap_or_else(|| "(nothing printed)".into()))
        .join("\n")
    );
}
