//! What each filesystem offers of what conda-fuse asks of the places it keeps files in (the archive
//! directory, the state directory, TMPDIR). One table of facts (`traits`), and from it the two
//! views: the README's table (`markdown`, pinned against the README by a test) and what `doctor`
//! says a place implies (`implications`). The code paths themselves never branch on this table:
//! they try the call and fall back on the error it gives, so an unknown or misdetected filesystem
//! still gets the safe path; the table explains what happens where.
//!
//! Sources: the Linux clients (`fs/nfs`, `fs/ceph`), vendor documentation (Lustre mount options,
//! BeeGFS 7.4 release notes), and measurements on sshfs 3.7 (`tests/netfs.rs`). Real NFS, Lustre,
//! GPFS, BeeGFS and CephFS cannot run on the test machine.

use super::kind::FsType;

/// `renameat2(RENAME_NOREPLACE)`, which a create uses to never replace another create's archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReplace {
    Yes,
    /// The client answers any flag with EINVAL: link + unlink instead.
    Einval,
    /// Not documented: tried, and link + unlink on EINVAL.
    Unknown,
}

/// Hard links into another directory, which snapshots are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardLinks {
    Yes,
    /// Yes, but inode numbers are made up by the client: a file is never told by its inode.
    YesInodesUnstable,
    /// Only from this version on (before, within one directory only).
    Since(&'static str),
    Varies,
}

/// Whom flock(2) excludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flock {
    /// This machine only, and only this machine sees the filesystem: all there is.
    Local,
    Cluster,
    NodeLocal,
    /// Cluster-wide or node-local by a mount option (named).
    ByMount(&'static str),
}

/// Timestamps the filesystem keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtime {
    SubSecond,
    Seconds,
    /// Whatever the exported filesystem keeps.
    Server,
}

/// What a reader on another node sees once a save replaced the archive it has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplacedOpenFile {
    /// Its open file lives on until closed (POSIX).
    Kept,
    /// The server may delete it: reads fail with ESTALE.
    MayBeStale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    pub no_replace: NoReplace,
    pub hard_links: HardLinks,
    pub flock: Flock,
    pub mtime: Mtime,
    pub replaced_open_file: ReplacedOpenFile,
    /// The name a file unlinked while this client has it open gets until it is closed.
    pub silly_rename: Option<&'static str>,
    /// `O_TMPFILE` (unnamed temporary files).
    pub tmpfile: bool,
    /// `copy_file_range` copies on the server (or by reflink), not through this client.
    pub server_side_copy: bool,
}

impl Traits {
    /// flock is known to exclude only this node's processes whatever the mount options.
    pub fn flock_node_local(&self) -> bool {
        self.flock == Flock::NodeLocal
    }
}

/// The facts, per filesystem.
pub fn traits(fs: FsType) -> Traits {
    use FsType::*;
    let local = Traits {
        no_replace: NoReplace::Yes,
        hard_links: HardLinks::Yes,
        flock: Flock::Local,
        mtime: Mtime::SubSecond,
        replaced_open_file: ReplacedOpenFile::Kept,
        silly_rename: None,
        tmpfile: true,
        server_side_copy: false,
    };
    let nfs = Traits {
        no_replace: NoReplace::Einval,
        hard_links: HardLinks::Yes,
        flock: Flock::ByMount("cluster-wide; node-local if `local_lock=flock` or `=all`"),
        mtime: Mtime::Server,
        replaced_open_file: ReplacedOpenFile::MayBeStale,
        silly_rename: Some(".nfsXXXX"),
        tmpfile: false,
        server_side_copy: false,
    };
    let unknown_shared = Traits {
        no_replace: NoReplace::Unknown,
        hard_links: HardLinks::Varies,
        flock: Flock::NodeLocal,
        mtime: Mtime::Server,
        replaced_open_file: ReplacedOpenFile::MayBeStale,
        silly_rename: None,
        tmpfile: false,
        server_side_copy: false,
    };
    match fs {
        Ext4 | Tmpfs | OtherLocal => local,
        Xfs | Btrfs => Traits {
            server_side_copy: true, // reflinks
            ..local
        },
        Zfs => Traits {
            no_replace: NoReplace::Unknown,
            ..local
        },
        Nfs3 => nfs,
        Nfs4 => Traits {
            // The server holds every OPEN: a replaced file stays readable for its openers.
            replaced_open_file: ReplacedOpenFile::Kept,
            server_side_copy: true, // NFSv4.2 COPY
            ..nfs
        },
        Lustre => Traits {
            no_replace: NoReplace::Einval,
            hard_links: HardLinks::Yes,
            flock: Flock::ByMount("cluster-wide with `-o flock`, node-local with `localflock`"),
            mtime: Mtime::Seconds,
            replaced_open_file: ReplacedOpenFile::Kept,
            silly_rename: None,
            tmpfile: false,
            server_side_copy: false,
        },
        Gpfs => Traits {
            no_replace: NoReplace::Unknown,
            hard_links: HardLinks::Yes,
            flock: Flock::Cluster,
            mtime: Mtime::SubSecond,
            replaced_open_file: ReplacedOpenFile::Kept,
            silly_rename: None,
            tmpfile: false,
            server_side_copy: false,
        },
        BeeGfs => Traits {
            no_replace: NoReplace::Einval,
            hard_links: HardLinks::Since("7.4"),
            flock: Flock::NodeLocal,
            mtime: Mtime::Seconds,
            replaced_open_file: ReplacedOpenFile::Kept,
            silly_rename: None,
            tmpfile: false,
            server_side_copy: false,
        },
        CephFs => Traits {
            no_replace: NoReplace::Einval,
            hard_links: HardLinks::Yes,
            flock: Flock::Cluster,
            mtime: Mtime::SubSecond,
            replaced_open_file: ReplacedOpenFile::Kept,
            silly_rename: None,
            tmpfile: false,
            server_side_copy: false,
        },
        Cifs => Traits {
            no_replace: NoReplace::Einval,
            flock: Flock::ByMount("cluster-wide unless `nobrl`"),
            ..unknown_shared
        },
        NineP => Traits {
            no_replace: NoReplace::Einval,
            ..unknown_shared
        },
        Sshfs => Traits {
            no_replace: NoReplace::Einval,
            hard_links: HardLinks::YesInodesUnstable,
            flock: Flock::NodeLocal,
            mtime: Mtime::Seconds,
            // The SFTP server holds the file open for each client that opened it.
            replaced_open_file: ReplacedOpenFile::Kept,
            silly_rename: Some(".fuse_hiddenXXXX"),
            tmpfile: false,
            server_side_copy: false,
        },
        OtherFuse => Traits {
            silly_rename: Some(".fuse_hiddenXXXX"),
            ..unknown_shared
        },
    }
}

/// How well a place serves a need: as on a local disk, through a fallback that keeps the
/// guarantee, or with a feature (or speed) lost, which conda-fuse says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Fine,
    Handled,
    Limited,
}

/// What conda-fuse asks of the filesystem, one row of the README's table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    CreateRename,
    SaveRename,
    SnapshotLink,
    WriterLock,
    Mtimes,
    ReplacedArchive,
    UnlinkedWhileOpen,
    SaveCopy,
    SpillFiles,
}

impl Need {
    pub const ALL: [Need; 9] = [
        Need::CreateRename,
        Need::SaveRename,
        Need::SnapshotLink,
        Need::WriterLock,
        Need::Mtimes,
        Need::ReplacedArchive,
        Need::UnlinkedWhileOpen,
        Need::SaveCopy,
        Need::SpillFiles,
    ];

    /// (what conda-fuse does, the call it needs)
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Need::CreateRename => (
                "create: `.NAME.creating.zip` becomes `NAME.zip`, never over another's",
                "`renameat2(RENAME_NOREPLACE)`",
            ),
            Need::SaveRename => (
                "save: the new archive replaces the old one",
                "`rename`, then `fsync` of the directory",
            ),
            Need::SnapshotLink => (
                "snapshots: the replaced version is kept in `.snapshots/NAME.zip/`",
                "`link` into another directory",
            ),
            Need::WriterLock => (
                "one writer: `NAME.zip.lock`",
                "`flock` (and a heartbeat record, everywhere)",
            ),
            Need::Mtimes => (
                "mtimes of files written into a mount (their upper data files')",
                "sub-second `futimens`",
            ),
            Need::ReplacedArchive => (
                "readers on other nodes keep their version through saves",
                "an open file outlives its name",
            ),
            Need::UnlinkedWhileOpen => (
                "data files and archives replaced while open on this node",
                "`unlink` of an open file",
            ),
            Need::SaveCopy => (
                "save: unchanged entries copied from the old archive",
                "`copy_file_range`",
            ),
            Need::SpillFiles => (
                "large entries read at random spill to `TMPDIR`",
                "`O_TMPFILE`",
            ),
        }
    }

    /// What to do where a filesystem limits this need (for `doctor`).
    pub fn advice(self) -> Option<&'static str> {
        match self {
            Need::SnapshotLink => Some(
                "keep archives on a filesystem with hard links to have snapshots, or set \
                 CONDA_FUSE_SNAPSHOTS=0 to say you do without",
            ),
            Need::ReplacedArchive => Some(
                "keep CONDA_FUSE_SNAPSHOTS at 1 or more (the snapshot keeps the version readers \
                 use), and remount long-running readers on other nodes after a save",
            ),
            _ => None,
        }
    }

    /// The places this need concerns (for `doctor`).
    pub fn places(self) -> &'static [Place] {
        match self {
            Need::CreateRename
            | Need::SaveRename
            | Need::SnapshotLink
            | Need::WriterLock
            | Need::ReplacedArchive
            | Need::SaveCopy => &[Place::Archives],
            Need::Mtimes => &[Place::State],
            Need::UnlinkedWhileOpen => &[Place::Archives, Place::State],
            Need::SpillFiles => &[Place::Tmp],
        }
    }
}

/// The places conda-fuse keeps files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Archives,
    State,
    Tmp,
}

/// What `fs` gives for `need`, and what conda-fuse makes of it.
pub fn cell(need: Need, fs: FsType) -> (Level, String) {
    use Level::*;
    let t = traits(fs);
    let (level, text): (Level, &str) = match need {
        Need::CreateRename => match t.no_replace {
            NoReplace::Yes => (Fine, "yes"),
            NoReplace::Einval => (Handled, "EINVAL: link + unlink"),
            NoReplace::Unknown => (Handled, "on EINVAL: link + unlink"),
        },
        Need::SaveRename => (Fine, "yes"),
        Need::SnapshotLink => match t.hard_links {
            HardLinks::Yes => (Fine, "yes"),
            HardLinks::YesInodesUnstable => (
                Handled,
                "yes (inode numbers made up: versions told by name)",
            ),
            HardLinks::Since(v) => {
                return (
                    Limited,
                    format!("from {v} (before: no snapshots, said once)"),
                );
            }
            HardLinks::Varies => (Limited, "if refused: no snapshots, said once"),
        },
        Need::WriterLock => match t.flock {
            Flock::Local => (Fine, "yes"),
            Flock::Cluster => (Fine, "cluster-wide"),
            Flock::NodeLocal => (Handled, "node-local: the heartbeat decides"),
            Flock::ByMount(how) => (Handled, how),
        },
        Need::Mtimes => match t.mtime {
            Mtime::SubSecond => (Fine, "yes"),
            Mtime::Seconds => (Handled, "whole seconds (as saves keep them)"),
            Mtime::Server => (Fine, "the server's"),
        },
        Need::ReplacedArchive => match t.replaced_open_file {
            ReplacedOpenFile::Kept => (Fine, "yes"),
            ReplacedOpenFile::MayBeStale => (
                Limited,
                "ESTALE (EIO) once the server deletes it; a kept snapshot delays that",
            ),
        },
        Need::UnlinkedWhileOpen => match t.silly_rename {
            None => (Fine, "yes"),
            Some(name) => return (Handled, format!("`{name}` until closed (left alone)")),
        },
        Need::SaveCopy => match t.server_side_copy {
            true => (Fine, "on the server (or reflink)"),
            false if !fs.is_shared() => (Fine, "in the kernel"),
            false => (Fine, "through this client"),
        },
        Need::SpillFiles => match t.tmpfile {
            true => (Fine, "yes"),
            false => (Handled, "create + unlink"),
        },
    };
    (level, text.to_string())
}

/// The README's columns: the filesystems users' homes and project spaces are on.
pub const COLUMNS: [(FsType, &str); 8] = [
    (FsType::Ext4, "ext4, xfs"),
    (FsType::Nfs3, "NFSv3"),
    (FsType::Nfs4, "NFSv4"),
    (FsType::Lustre, "Lustre"),
    (FsType::Gpfs, "GPFS"),
    (FsType::BeeGfs, "BeeGFS"),
    (FsType::CephFs, "CephFS"),
    (FsType::Sshfs, "sshfs"),
];

/// The README's table of what holds where.
pub fn markdown() -> String {
    let mut out = String::from("| what conda-fuse does | needs |");
    for (_, name) in COLUMNS {
        out.push_str(&format!(" {name} |"));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(COLUMNS.len()));
    out.push('\n');
    for need in Need::ALL {
        let (what, call) = need.describe();
        out.push_str(&format!("| {what} | {call} |"));
        for (fs, _) in COLUMNS {
            out.push_str(&format!(" {} |", cell(need, fs).1));
        }
        out.push('\n');
    }
    out
}

/// What `fs` implies for `place`: every need of that place not served as on a local disk.
pub fn implications(place: Place, fs: FsType) -> Vec<(Need, Level, String)> {
    Need::ALL
        .iter()
        .filter(|n| n.places().contains(&place))
        .map(|&n| (n, cell(n, fs)))
        .filter(|(_, (level, _))| *level != Level::Fine)
        .map(|(n, (level, text))| (n, level, format!("{}: {text}", n.describe().1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_filesystem_implies_for_the_archive_directory() {
        let table: &[(FsType, &[Level])] = &[
            (FsType::Ext4, &[]),
            (FsType::Xfs, &[]),
            (
                FsType::Nfs3,
                &[
                    Level::Handled,
                    Level::Handled,
                    Level::Limited,
                    Level::Handled,
                ],
            ),
            (
                FsType::Nfs4,
                &[Level::Handled, Level::Handled, Level::Handled],
            ),
            (FsType::Lustre, &[Level::Handled, Level::Handled]),
            (FsType::Gpfs, &[Level::Handled]),
            (
                FsType::BeeGfs,
                &[Level::Handled, Level::Limited, Level::Handled],
            ),
            (FsType::CephFs, &[Level::Handled]),
            (
                FsType::Sshfs,
                &[
                    Level::Handled,
                    Level::Handled,
                    Level::Handled,
                    Level::Handled,
                ],
            ),
        ];
        for (fs, levels) in table {
            let got: Vec<Level> = implications(Place::Archives, *fs)
                .into_iter()
                .map(|(_, l, _)| l)
                .collect();
            assert_eq!(
                &got,
                levels,
                "{fs:?}: {:?}",
                implications(Place::Archives, *fs)
            );
        }
    }

    #[test]
    fn node_local_flock_is_where_the_heartbeat_alone_keeps_nodes_apart() {
        for (fs, node_local) in [
            (FsType::Ext4, false),
            (FsType::Nfs4, false),
            (FsType::Lustre, false),
            (FsType::BeeGfs, true),
            (FsType::Sshfs, true),
            (FsType::NineP, true),
            (FsType::OtherFuse, true),
        ] {
            assert_eq!(traits(fs).flock_node_local(), node_local, "{fs:?}");
        }
    }

    #[test]
    fn the_readme_shows_this_table() {
        let readme = include_str!("../../README.md");
        let table = markdown();
        assert!(
            readme.contains(&table),
            "README.md's filesystem table differs from hostfs::traits::markdown(); paste this:\n{table}"
        );
    }
}
