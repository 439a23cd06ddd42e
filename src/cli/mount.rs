//! `mount`, `commit`, `unmount` and `status` of any archive at any mount point (or an environment
//! by name), and the save summaries and progress they print.

use super::{CommitArgs, MountArgs, StatusArgs, UnmountArgs, progress};
use crate::archive::{ArchiveId, CacheLimits, Compression};
use crate::daemon::control::SaveSummary;
use crate::daemon::{self, MountRequest, Mounted, Unmounted};
use crate::envs::{self, Env, Paths};

pub(super) fn run_mount(a: MountArgs) -> anyhow::Result<()> {
    let compression = match a.compression {
        super::Method::Deflate => Compression::SAVE,
        m => Compression::new(m.into(), None).map_err(anyhow::Error::msg)?,
    };
    let archive = ArchiveId::resolve(&a.archive).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => daemon::DaemonError::ArchiveMissing(a.archive.clone()),
        _ => daemon::DaemonError::Io {
            what: format!("cannot open archive {}", a.archive.display()),
            source: e,
        },
    })?;
    let mut req = MountRequest::new(archive, a.mountpoint, a.read_only);
    req.foreground = a.foreground;
    req.cache = CacheLimits {
        memory: a.cache_size << 20,
        spill: a.spill_size << 20,
        spill_dir: std::env::temp_dir(),
    };
    if let Some(t) = a.threads {
        req.threads = t;
    }
    req.allow_other = a.allow_other;
    req.keep_owners = a.keep_owners;
    req.steal_lock = a.steal_lock;
    if let Some(dir) = a.upper_dir {
        req.upper_root = dir;
    }
    req.compression = compression;
    if req.foreground {
        crate::logging::init_daemon();
    }
    let foreground = req.foreground;
    daemon::mount(&req, &mut |m: &Mounted| {
        print_report(m);
        let mode = if req.read_only {
            "read-only"
        } else {
            "writable"
        };
        println!(
            "mounted {} at {} ({mode}, {} entries, daemon pid {})",
            m.archive.path().display(),
            m.mountpoint.display(),
            m.entries,
            m.pid
        );
        if foreground {
            println!(
                "serving in the foreground; Ctrl-C detaches (unsaved changes stay in the upper layer)"
            );
        }
    })?;
    Ok(())
}

pub(super) fn print_report(m: &Mounted) {
    let r = &m.report;
    let lists = [
        ("skipped unsafe entry names", &r.unsafe_names),
        ("duplicate names (the later entry is served)", &r.duplicates),
        (
            "names used by both a file and a directory (the directory is served)",
            &r.conflicts,
        ),
    ];
    for (what, examples) in lists {
        if !examples.is_empty() {
            eprintln!(
                "conda-fuse: warning: {}: {what}: {}",
                m.archive.path().display(),
                examples.join(", ")
            );
        }
    }
    if r.setid > 0 {
        eprintln!(
            "conda-fuse: warning: {}: {} entries have setuid or setgid bits; the mount is nosuid, \
             so they grant nothing",
            m.archive.path().display(),
            r.setid
        );
    }
    if r.absolute > 0 {
        eprintln!(
            "conda-fuse: warning: {}: {} absolute entry names are served relative to the mount",
            m.archive.path().display(),
            r.absolute
        );
    }
    let rec = &m.recovery;
    let upper = m
        .upper_dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    if let Some(t) = &rec.took_over {
        eprintln!(
            "conda-fuse: note: took over the writer lock of {} ({})",
            t.holder.describe(),
            t.why
        );
        let me = crate::overlay::lock::Holder::me(&m.mountpoint);
        if crate::overlay::lock::strands_unsaved_changes(&t.holder, &me) {
            eprintln!(
                "conda-fuse: note: the changes {0} left unsaved stay in {0}'s state directory; \
                 they will not apply to the version you save",
                t.holder.user
            );
        }
    }
    if let Some(waited) = rec.waited_out_lease {
        eprintln!(
            "conda-fuse: note: waited {:.0}s for its lease to run out before using the upper \
             layer (a holder that still runs accepts changes and saves only within its lease)",
            waited.as_secs_f64()
        );
    }
    if let Some(fs) = &rec.node_local_flock
        && crate::daemon::state::once(&format!("node-local-flock-{}", fs.replace(' ', "-")))
    {
        eprintln!(
            "conda-fuse: note: {} is on {fs}, whose flock often reaches only this node; conda-fuse \
             keeps writers on two nodes apart with the lock's heartbeat instead (said once)",
            m.archive.path().display()
        );
    }
    if rec.replayed > 0 {
        eprintln!(
            "conda-fuse: note: recovered {} unsaved changes from {upper}",
            rec.replayed
        );
    }
    if rec.finished_save {
        eprintln!(
            "conda-fuse: note: completed a save that was interrupted after its archive was written"
        );
    }
    if rec.removed_temporaries > 0 {
        eprintln!(
            "conda-fuse: note: removed {} temporary archive(s) of interrupted saves",
            rec.removed_temporaries
        );
    }
}

/// A progress bar for a save, drawn once the daemon reports the total.
pub(super) fn save_bar() -> (indicatif::ProgressBar, impl FnMut(u64, u64)) {
    let bar = progress::bytes_bar("saving", 0);
    let b = bar.clone();
    (bar, move |done, total| {
        b.set_length(total);
        b.set_position(done);
    })
}

pub(super) fn print_saved(what: &str, s: &SaveSummary) {
    if let Some(line) = super::report::saved_line(what, s) {
        println!("{line}");
    }
    for note in &s.notes {
        eprintln!("conda-fuse: note: {note}");
    }
}

/// A command's target: an environment name or a mount point path; the env if it is a name.
fn target(arg: &str) -> anyhow::Result<(std::path::PathBuf, Option<Env>)> {
    let paths = Paths::from_env()?;
    let mountpoint = envs::mountpoint_of(&paths, arg)?;
    let env = paths.env(arg).ok().filter(|e| e.mountpoint == mountpoint);
    Ok((mountpoint, env))
}

pub(super) fn run_commit(a: CommitArgs) -> anyhow::Result<()> {
    let (mountpoint, _) = target(&a.target)?;
    let (bar, mut on_progress) = save_bar();
    let saved = daemon::save(&mountpoint, &mut on_progress);
    bar.finish_and_clear();
    let saved = saved?;
    if saved.changed {
        print_saved("saved", &saved);
    } else {
        println!("nothing to save: no changes since the last save");
    }
    Ok(())
}

pub(super) fn run_unmount(a: UnmountArgs) -> anyhow::Result<()> {
    let (mountpoint, _) = target(&a.target)?;
    let (bar, mut on_progress) = save_bar();
    let result = daemon::unmount(&mountpoint, a.lazy, a.discard, &mut on_progress);
    bar.finish_and_clear();
    // The mount point stays (see `envs::unmount_env`).
    let unmounted = result?;
    match unmounted {
        Unmounted::Clean { pid, saved } => {
            if let Some(s) = saved {
                print_saved("saved", &s);
            }
            if a.discard {
                println!("discarded the changes made since the last save");
            }
            println!("unmounted {} (daemon {pid} exited)", mountpoint.display())
        }
        Unmounted::Detached { pid, saved } => {
            if let Some(s) = saved {
                print_saved("saved", &s);
            }
            println!(
                "detached {}; its daemon (pid {pid}) exits when the last program using it is done",
                mountpoint.display()
            )
        }
        Unmounted::Stale => println!(
            "{}: the daemon had died; cleaned up its stale mount (unsaved changes of a writable mount \
             are kept and come back at the next mount)",
            mountpoint.display()
        ),
    }
    Ok(())
}

pub(super) fn run_status(a: StatusArgs) -> anyhow::Result<()> {
    let (mountpoint, _) = target(&a.target)?;
    let s = daemon::status(&mountpoint)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    print!("{}", status_text(&s, &crate::clock::local(s.since as i64)));
    Ok(())
}

/// What `status` prints for a mount, `since` being its start in local time.
fn status_text(s: &crate::daemon::control::Status, since: &str) -> String {
    let mut lines = Vec::new();
    lines.push(format!("mount point:   {}", s.mountpoint));
    lines.push(format!("archive:       {}", s.archive));
    lines.push(format!(
        "mode:          {}",
        if s.read_only { "read-only" } else { "writable" }
    ));
    lines.push(format!("daemon pid:    {} (since {})", s.pid, since));
    lines.push(format!("entries:       {}", s.entries));
    if let Some(from) = &s.written_for {
        lines.push(format!(
            "prefix:        {} files served rewritten for this mount (written for {from})",
            s.relocated_files
        ));
        if !s.not_relocated.is_empty() {
            lines.push(format!(
                "not rewritten: {} (binary strings with no room for this prefix: a shorter \
                 mount root fits)",
                s.not_relocated.join(", ")
            ));
        }
    }
    if let Some(upper) = &s.upper_dir {
        lines.push(format!(
            "unsaved:       {} changes, {} files, {} (in {upper})",
            s.unsaved_changes,
            s.unsaved_files,
            progress::bytes(s.unsaved_bytes)
        ));
    }
    lines.push(format!(
        "cache:         {} in memory, {} on disk",
        progress::bytes(s.cache_memory_bytes),
        progress::bytes(s.cache_spill_bytes)
    ));
    if s.prefetched_parts > 0 {
        lines.push(format!(
            "prefetched:    {} parts, {} (the start-up profile)",
            s.prefetched_parts,
            progress::bytes(s.prefetched_bytes)
        ));
    }
    lines.push(format!(
        "memory (RSS):  {}",
        progress::bytes(s.resident_bytes)
    ));
    if s.read_errors > 0 {
        lines.push(format!(
            "read errors:   {} (see the daemon log)",
            s.read_errors
        ));
    }
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::control::Status;

    #[test]
    fn status_of_a_writable_and_a_read_only_mount() {
        let writable = Status {
            pid: 4242,
            archive: "/h/miniconda_fuse/archives/ml.zip".into(),
            mountpoint: "/h/miniconda_fuse/envs/ml".into(),
            read_only: false,
            entries: 67084,
            cache_memory_bytes: 48 << 20,
            cache_spill_bytes: 0,
            read_errors: 2,
            prefetched_parts: 83,
            prefetched_bytes: 21 << 20,
            resident_bytes: 96 << 20,
            upper_dir: Some("/h/.local/state/conda-fuse/upper/ml.zip-0123456789abcdef".into()),
            unsaved_changes: 17,
            unsaved_files: 3,
            unsaved_bytes: 5 << 20,
            ..Status::default()
        };
        let read_only = Status {
            read_only: true,
            upper_dir: None,
            read_errors: 0,
            prefetched_parts: 0,
            written_for: Some("/home/alice/miniconda_fuse/envs/ml/ml".into()),
            relocated_files: 212,
            not_relocated: vec!["ml/lib/libcramped.so".into()],
            ..writable.clone()
        };
        insta::assert_snapshot!(format!(
            "{}\n{}",
            status_text(&writable, "2026-12-02 10:02:03"),
            status_text(&read_only, "2026-12-02 10:02:03")
        ));
    }
}
