//! Which filesystem a path is on: statfs(2)'s magic number says the family, the mount table says
//! what the magic cannot (NFS's protocol version, a FUSE filesystem's name, NFS `local_lock`).

use std::path::{Path, PathBuf};

/// The filesystems conda-fuse knows the behaviour of (`traits.rs`), and the rest by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsType {
    Ext4,
    Xfs,
    Btrfs,
    Zfs,
    Tmpfs,
    /// Another filesystem only this machine sees.
    OtherLocal,
    Nfs3,
    Nfs4,
    Lustre,
    Gpfs,
    BeeGfs,
    CephFs,
    Cifs,
    NineP,
    Sshfs,
    /// A FUSE filesystem we know nothing about (it may be shared: assume so).
    OtherFuse,
}

impl FsType {
    pub fn name(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
            FsType::Btrfs => "btrfs",
            FsType::Zfs => "ZFS",
            FsType::Tmpfs => "tmpfs",
            FsType::OtherLocal => "a node-local filesystem",
            FsType::Nfs3 => "NFSv3",
            FsType::Nfs4 => "NFSv4",
            FsType::Lustre => "Lustre",
            FsType::Gpfs => "GPFS",
            FsType::BeeGfs => "BeeGFS",
            FsType::CephFs => "CephFS",
            FsType::Cifs => "CIFS/SMB",
            FsType::NineP => "9p",
            FsType::Sshfs => "sshfs",
            FsType::OtherFuse => "FUSE",
        }
    }

    /// Seen by other machines (or possibly so).
    pub fn is_shared(self) -> bool {
        !matches!(
            self,
            FsType::Ext4
                | FsType::Xfs
                | FsType::Btrfs
                | FsType::Zfs
                | FsType::Tmpfs
                | FsType::OtherLocal
        )
    }
}

/// The filesystem holding a path, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFs {
    pub fs: FsType,
    /// Mounted so that flock stays on the client: NFS `local_lock=flock|all`, Lustre
    /// `localflock`.
    pub local_flock_option: bool,
    /// The mount point of that filesystem, when the mount table names it.
    pub mount_point: Option<PathBuf>,
}

impl HostFs {
    /// Whether flock on this filesystem is known to exclude only processes of this node in
    /// common set-ups (the writer lock's heartbeat then keeps nodes apart).
    pub fn node_local_flock(&self) -> bool {
        self.local_flock_option || super::traits::traits(self.fs).flock_node_local()
    }

    /// For messages: "sshfs", "NFSv4 mounted with node-local flock".
    pub fn describe(&self) -> String {
        if self.local_flock_option {
            format!("{} mounted with node-local flock", self.fs.name())
        } else {
            self.fs.name().to_string()
        }
    }
}

/// statfs(2) magic numbers (linux/magic.h, and the vendors').
const MAGIC: &[(i64, FsType)] = &[
    (0xEF53, FsType::Ext4),
    (0x5846_5342, FsType::Xfs),
    (0x9123_683E, FsType::Btrfs),
    (0x2FC1_2FC1, FsType::Zfs),
    (0x0102_1994, FsType::Tmpfs),
    (0x6969, FsType::Nfs3),
    (0x0BD0_0BD0, FsType::Lustre),
    (0x4750_4653, FsType::Gpfs),
    (0x1983_0326, FsType::BeeGfs),
    (0x00C3_6400, FsType::CephFs),
    (0xFF53_4D42, FsType::Cifs),
    (0xFE53_4D42, FsType::Cifs),
    (0x0102_1997, FsType::NineP),
    (0x6573_5546, FsType::OtherFuse),
];

/// The filesystem type from statfs's `magic` and the mount table's type and superblock options
/// for the mount (empty when unknown). Pure, so it is tested as a table.
pub fn classify(magic: i64, fstype: &str, options: &str) -> HostFs {
    let by_magic = MAGIC
        .iter()
        .find(|(m, _)| *m == magic)
        .map_or(FsType::OtherLocal, |&(_, t)| t);
    let has = |o: &str| options.split(',').any(|x| x == o);
    let fs = match by_magic {
        FsType::Nfs3 => {
            let v4 = fstype == "nfs4" || options.split(',').any(|o| o.starts_with("vers=4"));
            if v4 { FsType::Nfs4 } else { FsType::Nfs3 }
        }
        FsType::OtherFuse => match fstype
            .strip_prefix("fuse.")
            .or(fstype.strip_prefix("fuseblk."))
        {
            Some("sshfs") => FsType::Sshfs,
            Some("ceph-fuse") => FsType::CephFs,
            Some("lustre") => FsType::Lustre,
            _ => FsType::OtherFuse,
        },
        t => t,
    };
    HostFs {
        fs,
        local_flock_option: match fs {
            FsType::Nfs3 | FsType::Nfs4 => has("local_lock=flock") || has("local_lock=all"),
            FsType::Lustre => has("localflock"),
            _ => false,
        },
        mount_point: None,
    }
}

/// The filesystem `path` (or its nearest existing ancestor) is on.
pub fn of(path: &Path) -> Option<HostFs> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statfs::statfs(existing).ok()?;
    #[allow(clippy::unnecessary_cast)] // the field's type differs between targets
    let magic = st.filesystem_type().0 as i64;
    let canonical = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_owned());
    let mount = crate::mountinfo::containing(&canonical);
    let (fstype, options) = mount
        .as_ref()
        .map_or(("", ""), |m| (m.fstype.as_str(), m.options.as_str()));
    Some(HostFs {
        mount_point: mount.as_ref().map(|m| m.point.clone()),
        ..classify(magic, fstype, options)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystems_are_told_apart_by_magic_and_mount_table() {
        let table: &[(i64, &str, &str, FsType, bool)] = &[
            (0xEF53, "ext4", "rw,relatime", FsType::Ext4, false),
            (0x5846_5342, "xfs", "rw", FsType::Xfs, false),
            (0x0102_1994, "tmpfs", "rw,size=1g", FsType::Tmpfs, false),
            (0x1234, "weirdfs", "rw", FsType::OtherLocal, false),
            (0x6969, "nfs", "rw,vers=3,proto=tcp", FsType::Nfs3, false),
            (
                0x6969,
                "nfs",
                "rw,vers=3,local_lock=all",
                FsType::Nfs3,
                true,
            ),
            (0x6969, "nfs4", "rw,vers=4.2", FsType::Nfs4, false),
            (0x6969, "nfs4", "rw,local_lock=flock", FsType::Nfs4, true),
            (0x6969, "nfs4", "rw,local_lock=posix", FsType::Nfs4, false),
            (0x6969, "", "", FsType::Nfs3, false),
            (0x0BD0_0BD0, "lustre", "rw,localflock", FsType::Lustre, true),
            (0x0BD0_0BD0, "lustre", "rw,flock", FsType::Lustre, false),
            (0x4750_4653, "gpfs", "rw", FsType::Gpfs, false),
            (0x1983_0326, "beegfs", "rw", FsType::BeeGfs, false),
            (0x00C3_6400, "ceph", "rw,name=x", FsType::CephFs, false),
            (0xFE53_4D42, "smb3", "rw", FsType::Cifs, false),
            (
                0x6573_5546,
                "fuse.sshfs",
                "rw,user_id=0",
                FsType::Sshfs,
                false,
            ),
            (0x6573_5546, "fuse.ceph-fuse", "rw", FsType::CephFs, false),
            (
                0x6573_5546,
                "fuse.conda-fuse",
                "rw",
                FsType::OtherFuse,
                false,
            ),
            (0x6573_5546, "fuseblk", "rw", FsType::OtherFuse, false),
            // local_lock is NFS's option; elsewhere it means nothing.
            (
                0x6573_5546,
                "fuse.sshfs",
                "local_lock=all",
                FsType::Sshfs,
                false,
            ),
        ];
        for &(magic, fstype, options, fs, local_lock) in table {
            let got = classify(magic, fstype, options);
            assert_eq!(
                (got.fs, got.local_flock_option),
                (fs, local_lock),
                "{magic:#x} {fstype} {options}"
            );
        }
    }

    #[test]
    fn the_filesystem_of_a_missing_path_is_its_nearest_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        let here = of(dir.path()).expect("a filesystem");
        assert_eq!(of(&dir.path().join("not/yet/made")), Some(here));
    }
}
