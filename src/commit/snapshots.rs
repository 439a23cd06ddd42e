//! Earlier versions of an archive, kept by saves: just before a save renames its new archive over
//! the old one, the old one is hard-linked into `DIR/.snapshots/FILE/` (private to its owner), so
//! keeping it costs no time and no copy, only the space its blocks keep.
//!
//! A snapshot's name says when it was replaced and which version it is:
//! `STAMP-SIZE-CDCRC-ENTRIES.zip`, STAMP the replacement time in nanoseconds (at least one more
//! than the newest snapshot's, so names never collide, whatever the clocks), the rest the
//! archive's identity (the journal's: size, central directory CRC, entries). Which snapshot is the
//! current archive is told by identity, never by inode number (sshfs makes them up); versions
//! sort by the time they were saved, their mtime, and ties (filesystems that keep whole seconds)
//! by STAMP. (`STAMP.zip`, the version's mtime, is how older conda-fuse named them; still listed.)
//!
//! Crash safety: a link made just before a crash (the rename never happened) is a snapshot of the
//! current archive: it is not listed, and the next save keeps it instead of linking again. A
//! restore links the current archive in as a snapshot first, then renames the chosen one over it.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::linkat;

use crate::archive::{ArchiveId, Index};
use crate::overlay::identity_of;
use crate::overlay::journal::Identity;
use crate::private_dir::{Audience, PrivateDir};

const DIR: &str = ".snapshots";

/// How many earlier versions saves keep: `CONDA_FUSE_SNAPSHOTS` (default 1; 0 keeps none).
pub fn keep_from_env() -> u32 {
    crate::settings::get().snapshots
}

/// Why a save kept no snapshot (the save itself went on).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{dir} is on {fs}, which refuses hard links into another directory here")]
    NoHardLinks {
        dir: PathBuf,
        fs: String,
        source: io::Error,
    },
    #[error(
        "the version of {archive} this save replaced belongs to {owner} and is not writable by \
         you, so the kernel refuses to link it (fs.protected_hardlinks)"
    )]
    OthersVersion { archive: PathBuf, owner: String },
    #[error("cannot keep the previous version of {archive} as a snapshot")]
    Io { archive: PathBuf, source: io::Error },
}

impl SnapshotError {
    /// The note a save that kept no snapshot shows (it went on: nothing is lost).
    pub fn note(&self) -> String {
        let text = crate::hint::messages(self).join(": ");
        match self {
            SnapshotError::NoHardLinks { .. } => format!(
                "saves keep no snapshots here: {text} (said once; keep archives on a filesystem \
                 with hard links to have them, or set CONDA_FUSE_SNAPSHOTS=0)"
            ),
            SnapshotError::Io { .. } => format!("{text}; the save itself is complete"),
            SnapshotError::OthersVersion { .. } => {
                format!(
                    "{text}: no snapshot of it was kept (a lab's archive its members may all \
                     write, chmod g+w, has them); the save itself is complete"
                )
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub path: PathBuf,
    /// Unix seconds the version was saved.
    pub saved: i64,
    pub size: u64,
}

/// Where the snapshots of `archive` live: beside its resolved path.
pub fn dir_of(archive: &ArchiveId) -> PathBuf {
    let archive = archive.path();
    let parent = archive.parent().unwrap_or(Path::new("."));
    let file = archive.file_name().unwrap_or_default();
    parent.join(DIR).join(file)
}

/// The directory of `archive`'s snapshots, with the directories it is reached through, each
/// opened from the one before without following a symlink: the archive's directory (anyone's,
/// maybe a lab's), `.snapshots` in it, `FILE` in that. In a lab's directory a member could plant
/// a symlink as `.snapshots`; followed, it would make saves prune and `rm` delete elsewhere.
struct Place {
    archive_dir: std::fs::File,
    top: PrivateDir,
    dir: PrivateDir,
}

fn open_dir(archive: &ArchiveId, create: bool) -> io::Result<Option<Place>> {
    let path = archive.path();
    let parent = path.parent().unwrap_or(Path::new("."));
    let file = Path::new(path.file_name().unwrap_or_default());
    let archive_dir = std::fs::File::open(parent)?;
    let st = nix::sys::stat::fstat(&archive_dir)?;
    // A lab's snapshots are the lab's: any member may roll back, and delete an old version of
    // theirs that another member's save kept (it counts on their quota).
    let audience = Audience::beside(st.st_mode, st.st_gid);
    let open = |at, at_path: &Path, name: &Path| {
        PrivateDir::open_in(at, at_path, name, audience, create).map_err(io::Error::other)
    };
    let Some(top) = open(archive_dir.as_fd(), parent, Path::new(DIR))? else {
        return Ok(None);
    };
    let Some(dir) = open(top.fd(), top.path(), file)? else {
        return Ok(None);
    };
    Ok(Some(Place {
        archive_dir,
        top,
        dir,
    }))
}

/// Whether opening the snapshot directory failed because something else than a directory is in
/// its place (a symlink, a file).
fn is_planted(e: &io::Error) -> bool {
    use crate::private_dir::PrivateDirError;
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<PrivateDirError>())
        .is_some_and(|p| {
            matches!(
                p,
                PrivateDirError::Symlink { .. } | PrivateDirError::NotADirectory { .. }
            )
        })
}

/// A snapshot's file name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    stamp: u128,
    /// None for names of older versions (`STAMP.zip`).
    identity: Option<Identity>,
}

impl Name {
    fn parse(name: &str) -> Option<Name> {
        let stem = name.strip_suffix(".zip")?;
        let mut parts = stem.split('-');
        let stamp = parts.next()?;
        if stamp.len() != 20 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let stamp = stamp.parse().ok()?;
        let rest: Vec<&str> = parts.collect();
        let identity = match rest[..] {
            [] => None,
            [size, crc, entries] => Some(Identity {
                size: size.parse().ok()?,
                cd_crc: u32::from_str_radix(crc, 16).ok()?,
                entries: entries.parse().ok()?,
            }),
            _ => return None,
        };
        Some(Name { stamp, identity })
    }

    fn render(&self) -> String {
        match &self.identity {
            Some(i) => format!(
                "{:020}-{}-{:08x}-{}.zip",
                self.stamp, i.size, i.cd_crc, i.entries
            ),
            None => format!("{:020}.zip", self.stamp),
        }
    }
}

/// Every snapshot file of `archive`, oldest first, with its parsed name.
fn entries(dir: &PrivateDir) -> Vec<(String, Name)> {
    let mut all: Vec<(String, Name)> = dir
        .entries()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter_map(|n| Name::parse(&n).map(|p| (n, p)))
        .collect();
    all.sort_by(|a, b| (a.1.stamp, &a.0).cmp(&(b.1.stamp, &b.0)));
    all
}

/// The identity of the archive at `path`, read from its central directory.
pub fn identity_at(path: &Path) -> io::Result<Identity> {
    let file = crate::regular_file::open(path)?;
    let index = Index::read(&file, path).map_err(io::Error::other)?;
    Ok(identity_of(&index))
}

/// Whether the snapshot named `name` is the archive itself (a link left by a crash before the
/// save's rename). Its identity is read only when the sizes agree.
struct Current<'a> {
    archive: &'a ArchiveId,
    size: Option<u64>,
    inode: Option<(u64, u64)>,
    identity: std::cell::OnceCell<Option<Identity>>,
}

impl<'a> Current<'a> {
    fn of(archive: &'a ArchiveId) -> Current<'a> {
        let md = std::fs::metadata(archive.path()).ok();
        Current {
            archive,
            size: md.as_ref().map(|m| m.len()),
            inode: md.map(|m| (m.dev(), m.ino())),
            identity: std::cell::OnceCell::new(),
        }
    }

    fn is(&self, name: &Name, st: &nix::sys::stat::FileStat) -> bool {
        match &name.identity {
            Some(i) => {
                Some(i.size) == self.size
                    && self
                        .identity
                        .get_or_init(|| identity_at(self.archive.path()).ok())
                        .as_ref()
                        == Some(i)
            }
            // Older names were made on filesystems with real inode numbers.
            None => self.inode == Some((st.st_dev, st.st_ino)),
        }
    }
}

/// The earlier versions of `archive`, newest first (`[0]` is the one before the current), by the
/// time each was saved (its mtime; ties, as on filesystems that keep whole seconds, in the order
/// they were replaced).
pub fn list(archive: &ArchiveId) -> Vec<Snapshot> {
    let Ok(Some(place)) = open_dir(archive, false) else {
        return Vec::new();
    };
    listed(archive, &place.dir)
}

fn listed(archive: &ArchiveId, dir: &PrivateDir) -> Vec<Snapshot> {
    let current = Current::of(archive);
    let mut found: Vec<_> = entries(dir)
        .into_iter()
        .filter_map(|(n, name)| {
            let st = dir.stat(&n).ok()?;
            let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
            (regular && !current.is(&name, &st)).then_some((n, name, st))
        })
        .collect();
    found.sort_by_key(|(_, name, st)| (st.st_mtime, st.st_mtime_nsec, name.stamp));
    found
        .into_iter()
        .rev()
        .map(|(n, _, st)| Snapshot {
            path: dir.path().join(&n),
            saved: st.st_mtime,
            size: st.st_size as u64,
        })
        .collect()
}

/// Links the current `archive` (whose identity is `current`) in as the newest snapshot, before a
/// save or restore replaces it. Nothing when `keep` is 0 (older snapshots then stay as they are
/// until pruned).
pub fn keep_current(
    archive: &ArchiveId,
    current: Identity,
    keep: u32,
) -> Result<(), SnapshotError> {
    if keep == 0 || !archive.path().is_file() {
        return Ok(());
    }
    let io_err = |source| SnapshotError::Io {
        archive: archive.path().to_owned(),
        source,
    };
    let place = open_dir(archive, true).map_err(io_err)?.expect("created");
    let dir = &place.dir;
    let all = entries(dir);
    // A link an interrupted save made is this very version: keep it, link nothing new.
    if !all.iter().any(|(_, n)| n.identity == Some(current)) {
        let now = crate::clock::now();
        let now_ns = now.0.max(0) as u128 * 1_000_000_000 + u128::from(now.1);
        let newest = all.last().map_or(0, |(_, n)| n.stamp + 1);
        let name = Name {
            stamp: now_ns.max(newest),
            identity: Some(current),
        }
        .render();
        let file = Path::new(archive.path().file_name().unwrap_or_default());
        if let Err(e) = linkat(
            place.archive_dir.as_fd(),
            file,
            dir.fd(),
            Path::new(&name),
            AtFlags::empty(),
        ) {
            let source = io::Error::from(e);
            let owner = std::fs::symlink_metadata(archive.path())
                .ok()
                .map(|m| m.uid());
            let me = nix::unistd::geteuid().as_raw();
            return Err(
                if let Some(owner) = owner.filter(|o| *o != me && e == Errno::EPERM) {
                    SnapshotError::OthersVersion {
                        archive: archive.path().to_owned(),
                        owner: crate::display::user(owner),
                    }
                } else if crate::hostfs::no_hard_links(&source) {
                    SnapshotError::NoHardLinks {
                        dir: dir.path().to_owned(),
                        fs: crate::hostfs::of(dir.path())
                            .map_or_else(|| "this filesystem".into(), |f| f.describe()),
                        source,
                    }
                } else {
                    io_err(source)
                },
            );
        }
    }
    // The links must be on disk before the rename that makes them the only name of a version.
    // Nothing is pruned here: until the rename the current archive is this version, and a save
    // that dies before it must not have cost an older one (`prune` runs after the rename).
    dir.sync().map_err(io_err)
}

/// Deletes all but the newest `keep` snapshots; returns how many went.
pub fn prune(archive: &ArchiveId, keep: u32) -> io::Result<usize> {
    let Some(place) = open_dir(archive, false)? else {
        return Ok(0);
    };
    let all = listed(archive, &place.dir);
    let mut gone = 0;
    for s in all.iter().skip(keep as usize) {
        if let Some(name) = s.path.file_name() {
            place.dir.remove_file(name)?;
            gone += 1;
        }
    }
    Ok(gone)
}

/// Makes snapshot `n` (1 = the newest) the current archive: the current one becomes a snapshot
/// first (so a restore can be undone), then one rename puts the chosen one in place. Returns the
/// snapshot restored and the number the replaced version has now.
pub fn restore(archive: &ArchiveId, n: usize, keep: u32) -> io::Result<(Snapshot, Option<usize>)> {
    let replaced = identity_at(archive.path())?;
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
    keep_current(
        archive,
        replaced,
        keep.max(1).saturating_add(all.len() as u32),
    )
    .map_err(io::Error::other)?;
    let place = open_dir(archive, false)?.ok_or(io::ErrorKind::NotFound)?;
    let name = chosen.path.file_name().unwrap_or_default();
    let file = archive.path().file_name().unwrap_or_default();
    let version = place.dir.open_read(name)?;
    if !version.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            chosen.path.display()
        )));
    }
    // Who may read the archive was decided on the current one (a chmod 600, a lab's group): the
    // version coming back gets that, not what it had when it was replaced.
    let current = std::fs::metadata(archive.path())?;
    crate::archive::build::take_access(&version, &current)?;
    place
        .dir
        .rename_out(name, place.archive_dir.as_fd(), file)?;
    place.archive_dir.sync_all()?;
    prune(archive, keep.max(1))?;
    let number = list(archive).iter().position(|s| {
        s.path
            .file_name()
            .and_then(|n| Name::parse(&n.to_string_lossy()))
            .is_some_and(|n| n.identity == Some(replaced))
    });
    Ok((chosen, number.map(|i| i + 1)))
}

/// Moves `file` (a finished archive beside `archive`, on its filesystem) in as a snapshot of
/// `archive` standing for `old` (a snapshot of another archive, the same version under another
/// name: `rename`): the same place in the order (its stamp and save time), `file`'s own identity.
pub fn adopt(archive: &ArchiveId, file: &Path, old: &Snapshot) -> io::Result<()> {
    let stamp = old
        .path
        .file_name()
        .and_then(|n| Name::parse(&n.to_string_lossy()))
        .map_or(0, |n| n.stamp);
    let name = Name {
        stamp,
        identity: Some(identity_at(file)?),
    }
    .render();
    let saved = std::fs::metadata(&old.path)?;
    let times = [
        nix::sys::time::TimeSpec::new(saved.atime(), saved.atime_nsec()),
        nix::sys::time::TimeSpec::new(saved.mtime(), saved.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        file,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    let place = open_dir(archive, true)?.expect("created");
    nix::fcntl::renameat(nix::fcntl::AT_FDCWD, file, place.dir.fd(), Path::new(&name))?;
    place.dir.sync()
}

/// Deletes every snapshot of `archive` and their directory (when the environment goes). A
/// snapshot still open on this node (a `run NAME@N`) may stay behind on NFS as `.nfsXXXX` until it
/// is closed; the directory then stays too.
pub fn remove_all(archive: &ArchiveId) -> io::Result<()> {
    let place = match open_dir(archive, false) {
        Ok(Some(place)) => place,
        Ok(None) => return Ok(()),
        // Not a directory conda-fuse made (a symlink someone planted): none of ours is there.
        Err(e) if is_planted(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut busy = false;
    for name in place.dir.entries()? {
        if crate::hostfs::is_silly_renamed(&name) {
            busy = true;
            continue;
        }
        place.dir.remove_file(&name)?;
    }
    if !busy {
        let file = archive.path().file_name().unwrap_or_default();
        place.top.remove_dir(file)?;
    }
    // Only if empty: other archives of the directory keep theirs there.
    let _ = nix::unistd::unlinkat(
        &place.archive_dir,
        DIR,
        nix::unistd::UnlinkatFlags::RemoveDir,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_when_and_which_version() {
        let id = Identity {
            size: 123,
            cd_crc: 0xdead_beef,
            entries: 7,
        };
        let table: &[(&str, Option<Name>)] = &[
            (
                "00000000001700000000-123-deadbeef-7.zip",
                Some(Name {
                    stamp: 1_700_000_000,
                    identity: Some(id),
                }),
            ),
            (
                "01764950000123456789.zip",
                Some(Name {
                    stamp: 1_764_950_000_123_456_789,
                    identity: None,
                }),
            ),
            ("1700000000.zip", None),
            ("00000000001700000000-123-deadbeef.zip", None),
            ("00000000001700000000-x-deadbeef-7.zip", None),
            ("00000000001700000000-123-deadbeef-7.zip.tmp", None),
            (".nfs000000000012345600000001", None),
        ];
        for (name, parsed) in table {
            assert_eq!(&Name::parse(name), parsed, "{name}");
            if let Some(p) = parsed {
                assert_eq!(p.render(), *name);
            }
        }
    }
}
