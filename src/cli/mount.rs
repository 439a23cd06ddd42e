use anyhow::bail;

use super::{MountArgs, StatusArgs, UnmountArgs, progress};
use crate::archive::CacheLimits;
use crate::daemon::{self, MountRequest, Mounted, Unmounted};

pub(super) fn run_mount(a: MountArgs) -> anyhow::Result<()> {
    if !a.read_only {
        bail!("writable mounts are not available in this version; add --read-only");
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let req = MountRequest {
        archive: a.archive,
        mountpoint: a.mountpoint,
        read_only: a.read_only,
        foreground: a.foreground,
        cache: CacheLimits {
            memory: a.cache_size << 20,
            spill: a.spill_size << 20,
            spill_dir: std::env::temp_dir(),
        },
        threads: a.threads.unwrap_or((2 * cores).max(4)),
        allow_other: a.allow_other,
    };
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
            m.archive.display(),
            m.mountpoint.display(),
            m.entries,
            m.pid
        );
        if foreground {
            println!("serving in the foreground; Ctrl-C (or conda-fuse unmount) unmounts");
        }
    })?;
    Ok(())
}

fn print_report(m: &Mounted) {
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
                m.archive.display(),
                examples.join(", ")
            );
        }
    }
    if r.absolute > 0 {
        eprintln!(
            "conda-fuse: warning: {}: {} absolute entry names are served relative to the mount",
            m.archive.display(),
            r.absolute
        );
    }
}

pub(super) fn run_unmount(a: UnmountArgs) -> anyhow::Result<()> {
    match daemon::unmount(&a.mountpoint, a.lazy)? {
        Unmounted::Clean { pid } => {
            println!("unmounted {} (daemon {pid} exited)", a.mountpoint.display())
        }
        Unmounted::Detached { pid } => println!(
            "detached {}; its daemon (pid {pid}) exits when the last program using it is done",
            a.mountpoint.display()
        ),
        Unmounted::Stale => println!(
            "{}: the daemon had died; cleaned up its stale mount",
            a.mountpoint.display()
        ),
    }
    Ok(())
}

pub(super) fn run_status(a: StatusArgs) -> anyhow::Result<()> {
    let s = daemon::status(&a.mountpoint)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("mount point:   {}", s.mountpoint);
    println!("archive:       {}", s.archive);
    println!(
        "mode:          {}",
        if s.read_only { "read-only" } else { "writable" }
    );
    println!("daemon pid:    {}", s.pid);
    println!("entries:       {}", s.entries);
    println!(
        "cache:         {} in memory, {} on disk",
        progress::bytes(s.cache_memory_bytes),
        progress::bytes(s.cache_spill_bytes)
    );
    println!("memory (RSS):  {}", progress::bytes(s.resident_bytes));
    if s.read_errors > 0 {
        println!("read errors:   {} (see the daemon log)", s.read_errors);
    }
    Ok(())
}
