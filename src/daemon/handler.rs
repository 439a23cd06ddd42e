//! The daemon's answers to control requests: status, save, and unmount (after saving, or after
//! discarding the changes).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::control::{Handler, Reply, Request, SaveSummary, Status};
use super::runtime::MountRecord;
use super::{MountRequest, mountpoint};
use crate::archive::BuildOptions;
use crate::commit::{self, SaveError};
use crate::fs::Filesystem;
use crate::hint::{Hint, RemoteError};

pub(super) fn new(
    fs: Arc<Filesystem>,
    record: MountRecord,
    req: MountRequest,
    notifier: fuser::Notifier,
) -> Arc<Handler> {
    let save = move |fs: &Filesystem, req: &MountRequest, send: &mut dyn FnMut(&Reply)| {
        let saved = save(fs, req, send)?;
        if saved.changed {
            // A save resets the root directory's attributes (it shows the new archive's mtime);
            // the kernel must ask for them again.
            let root = fuser::INodeNo(crate::overlay::tree::ROOT_INO);
            if let Err(e) = notifier.inval_inode(root, -1, 0) {
                tracing::warn!("cannot invalidate the root's attributes: {e}");
            }
        }
        Ok::<_, RemoteError>(saved)
    };
    Arc::new(
        move |request: Request, send: &mut dyn FnMut(&Reply)| match request {
            Request::Status => Reply::Status(Box::new(status_of(&fs, &record))),
            Request::Save => match save(&fs, &req, send) {
                Ok(summary) => Reply::Saved(summary),
                Err(error) => Reply::Error { error },
            },
            Request::Unmount { lazy, discard } => {
                // A mount whose writer lock was taken over has nothing of its own to save: its
                // changes are in the upper layer the new holder recovered.
                let saved = if !fs.is_writable() || fs.overlay().lock_lost() {
                    None
                } else if discard {
                    if let Err(e) = fs.overlay().discard() {
                        return Reply::Error {
                            error: RemoteError::new(&e, None)
                                .within("discarding the changes failed"),
                        };
                    }
                    None
                } else {
                    match save(&fs, &req, send) {
                        Ok(s) => Some(s),
                        // Stay mounted: the changes are safe in the upper layer, and the user sees why.
                        Err(error) => return Reply::Error { error },
                    }
                };
                detach(&record.mountpoint, lazy, saved)
            }
        },
    )
}

fn detach(mp: &Path, lazy: bool, saved: Option<SaveSummary>) -> Reply {
    match mountpoint::detach(mp, lazy) {
        Ok(()) => Reply::Unmounted { saved },
        Err(e)
            if e.raw_os_error() == Some(libc::EBUSY) || e.kind() == io::ErrorKind::ResourceBusy =>
        {
            Reply::Busy {
                processes: mountpoint::busy_processes(mp),
            }
        }
        Err(e) => Reply::Error {
            error: RemoteError::new(&e, None),
        },
    }
}

fn save(
    fs: &Filesystem,
    req: &MountRequest,
    send: &mut dyn FnMut(&Reply),
) -> Result<SaveSummary, RemoteError> {
    let archive = fs.overlay().view().base().archive().path().to_owned();
    let failed = |e: SaveError| RemoteError::new(&e, e.hint());
    if fs.overlay().lock_lost() {
        return Err(failed(SaveError::TakenOver(archive)));
    }
    let spill_dir = archive.parent().unwrap_or(Path::new(".")).to_owned();
    let opts = BuildOptions {
        compression: req.compression,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()) + 2,
        spill_dir,
    };
    let mut last = std::time::Instant::now();
    let mut progress = |done: u64, total: u64| {
        if last.elapsed().as_millis() >= 100 {
            last = std::time::Instant::now();
            send(&Reply::Progress { done, total });
        }
    };
    let saved = commit::save(fs.overlay(), &opts, req.snapshots, &mut progress).map_err(failed)?;
    let notes = saved
        .snapshot_skipped
        .iter()
        .filter_map(snapshot_note)
        .collect();
    let summary = match saved.stats {
        Some(s) => SaveSummary {
            changed: true,
            entries: s.entries,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            holes: s.holes,
            seconds: s.elapsed.as_secs_f64(),
            notes,
        },
        None => SaveSummary::default(),
    };
    if summary.changed {
        tracing::info!(archive = %archive.display(), entries = summary.entries, seconds = summary.seconds, "saved");
    }
    Ok(summary)
}

/// What to tell the user of a snapshot that was not kept: a filesystem without hard links once
/// per directory (every save there would say the same), any other failure every time.
fn snapshot_note(e: &commit::snapshots::SnapshotError) -> Option<String> {
    use commit::snapshots::SnapshotError;
    match e {
        SnapshotError::NoHardLinks { dir, .. } => {
            let key = crate::file_key::file_key(dir, 40, &[dir.as_os_str().as_encoded_bytes()]);
            super::state::once(&format!("no-snapshots-{key}")).then(|| e.note())
        }
        SnapshotError::Io { .. } | SnapshotError::OthersVersion { .. } => Some(e.note()),
    }
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096);
    pages * page as u64
}

fn status_of(fs: &Filesystem, record: &MountRecord) -> Status {
    let (mem, spill, decompressed, entries, prefetched, served, relocation) = {
        let view = fs.overlay().view();
        let relocation = view.base().relocation().map(|r| {
            (
                r.from().display().to_string(),
                r.len() as u64,
                r.too_long.clone(),
            )
        });
        let index = view.base().archive().index();
        let served = (index.file_len, index.cd_crc);
        let (mem, spill) = view.base().cache().usage();
        let decompressed = view.base().archive().decompressed_bytes();
        let prefetched = view.base().cache().prefetched().clone();
        (
            mem,
            spill,
            decompressed,
            view.tree().live() as u64,
            prefetched,
            served,
            relocation,
        )
    };
    let (written_for, relocated_files, not_relocated) = match relocation {
        Some((from, n, too_long)) => (Some(from), n, too_long),
        None => (None, 0, Vec::new()),
    };
    let pending = fs.overlay().pending();
    Status {
        pid: record.pid,
        archive: record.archive.display().to_string(),
        mountpoint: record.mountpoint.display().to_string(),
        read_only: record.read_only,
        since: record.since,
        entries,
        cache_memory_bytes: mem,
        cache_spill_bytes: spill,
        read_errors: fs.read_errors.load(Ordering::Relaxed),
        decompressed_bytes: decompressed,
        prefetched_parts: prefetched.parts.load(Ordering::Relaxed),
        prefetched_bytes: prefetched.decoded_bytes.load(Ordering::Relaxed),
        resident_bytes: resident_bytes(),
        upper_dir: fs.overlay().upper_root().map(|p| p.display().to_string()),
        unsaved_changes: pending.changes,
        unsaved_files: pending.files,
        unsaved_bytes: pending.bytes,
        served_size: served.0,
        served_cd_crc: served.1,
        written_for,
        relocated_files,
        not_relocated,
    }
}
