//! Earlier versions of an archive, kept by saves: just before a save renames its new archive over
//! the old one, the old one is hard-linked into `DIR/.snapshots/FILE/` (private to its owner), so
//! keeping it costs no time and no copy, only the space its blocks keep. Names are the version's
//! mtime in nanoseconds (the time its save wrote it), so they sort oldest first.
//!
//! Crash safety: a link made just before a crash (the rename never happened) is a snapshot
//! identical to the current archive, recognised by its inode and never listed; a restore links the
//! current archive in as a snapshot first, then renames the chosen one over it (one rename).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::fcntl::AtFlags;
use nix::unistd::linkat;

use crate::private_dir::PrivateDir;

const DIR: &str = ".snapshots";

/// How many earlier versions saves keep: `CONDA_FUSE_SNAPSHOTS` (default 1; 0 keeps none).
pub fn keep_from_env() -> u32 {
    std::env::var("CONDA_FUSE_SNAPSHOTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub path: PathBuf,
    /// Unix seconds the version was saved.
    pub saved: i64,
    pub size: u64,
}

/// Where the snapshots of `archive` live.
pub fn dir_of(archive: &Path) -> PathBuf {
    let parent = archive.parent().unwrap_or(Path::new("."));
    let file = archive.file_name().unwrap_or_default();
    parent.join(DIR).join(file)
}

fn open_dir(archive: &Path, create: bool) -> io::Result<Option<PrivateDir>> {
    let dir = dir_of(archive);
    let opened = if create {
        PrivateDir::ensure(&dir).map(Some)
    } else {
        PrivateDir::open(&dir)
    };
    opened.map_err(io::Error::other)
}

/// The earlier versions of `archive`, newest first (`[0]` is the one before the current).
pub fn list(archive: &Path) -> Vec<Snapshot> {
    let Ok(Some(dir)) = open_dir(archive, false) else {
        return Vec::new();
    };
    let current = std::fs::metadata(archive).ok().map(|m| (m.dev(), m.ino()));
    let mut names: Vec<_> = dir
        .entries()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.ends_with(".zip") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .rev()
        .filter_map(|n| {
            let st = dir.stat(&n).ok()?;
            // Regular files only, never the current archive itself (a link left by a crash).
            let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
            let same = current == Some((st.st_dev, st.st_ino));
            (regular && !same).then(|| Snapshot {
                path: dir.path().join(&n),
                saved: st.st_mtime,
                size: st.st_size as u64,
            })
        })
        .collect()
}

/// Links the current `archive` in as the newest snapshot (before a save or restore replaces it),
/// then keeps only the newest `keep`. Nothing when `keep` is 0 (and older snapshots stay as they
/// are until pruned).
pub fn keep_current(archive: &Path, keep: u32) -> io::Result<()> {
    if keep == 0 || !archive.is_file() {
        return Ok(());
    }
    let dir = open_dir(archive, true)?.expect("created");
    let mtime_ns = std::fs::metadata(archive)
        .map(|m| m.mtime() as i128 * 1_000_000_000 + i128::from(m.mtime_nsec()))?;
    let name = format!("{mtime_ns:020}.zip");
    match linkat(
        AT_FDCWD,
        archive,
        dir.fd(),
        Path::new(&name),
        AtFlags::empty(),
    ) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    // The links must be on disk before the rename that makes them the only name of a version.
    dir.sync()?;
    // Until the rename, the link just made is the current archive (not listed): keep one fewer.
    prune(archive, keep - 1).map(|_| ())
}

/// Deletes all but the newest `keep` snapshots; returns how many went.
pub fn prune(archive: &Path, keep: u32) -> io::Result<usize> {
    let Some(dir) = open_dir(archive, false)? else {
        return Ok(0);
    };
    let all = list(archive);
    let mut gone = 0;
    for s in all.iter().skip(keep as usize) {
        if let Some(name) = s.path.file_name() {
            dir.remove_file(name)?;
            gone += 1;
        }
    }
    Ok(gone)
}

/// Makes snapshot `n` (1 = the newest) the current archive: the current one becomes a snapshot
/// first (so a restore can be undone), then one rename puts the chosen one in place. Returns the
/// snapshot restored and the number the replaced version has now.
pub fn restore(archive: &Path, n: usize, keep: u32) -> io::Result<(Snapshot, Option<usize>)> {
    let replaced = std::fs::metadata(archive).map(|m| (m.dev(), m.ino()))?;
    let all = list(archive);
    let chosen = n
        .checked_sub(1)
        .and_then(|i| all.get(i))
        .cloned()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("there is no snapshot {n} (there are {})", all.len()),
            )
        })?;
    // Keep the current one (at least this one), without pruning the chosen one away first.
    keep_current(archive, keep.max(1).saturating_add(all.len() as u32))?;
    std::fs::rename(&chosen.path, archive)?;
    let parent = archive.parent().unwrap_or(Path::new("."));
    std::fs::File::open(parent)?.sync_all()?;
    prune(archive, keep.max(1))?;
    let number = list(archive)
        .iter()
        .position(|s| std::fs::metadata(&s.path).is_ok_and(|m| (m.dev(), m.ino()) == replaced));
    Ok((chosen, number.map(|i| i + 1)))
}

/// Deletes every snapshot of `archive` and their directory (when the environment goes).
pub fn remove_all(archive: &Path) -> io::Result<()> {
    if let Some(dir) = open_dir(archive, false)? {
        for name in dir.entries()? {
            dir.remove_file(&name)?;
        }
        std::fs::remove_dir(dir.path())?;
    }
    let parent = archive.parent().unwrap_or(Path::new(".")).join(DIR);
    let _ = std::fs::remove_dir(parent); // only if empty
    Ok(())
}
