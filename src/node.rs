//! Which machine this is, and what kind of filesystem a path is on. On a cluster one `$HOME` is
//! seen by hundreds of nodes: a pid, a Unix socket or a mount means something only on the node
//! (host name plus boot id: a rebooted node is another node) that recorded it, and a shared
//! filesystem's flock may reach no further than the node.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One boot of one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Node {
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id`; empty when the kernel does not say.
    #[serde(default)]
    pub boot_id: String,
}

impl Node {
    pub fn this() -> Node {
        Node {
            host: hostname(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        }
    }

    /// Whether pids recorded by `self` are pids here.
    pub fn is_this(&self) -> bool {
        *self == Node::this()
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname().map_or_else(
        |_| "unknown-host".into(),
        |h| h.to_string_lossy().into_owned(),
    )
}

/// What a filesystem is, as far as sharing between nodes goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// Only this machine sees it (ext4, xfs, btrfs, tmpfs, ...).
    Local,
    /// Seen by other machines; `name` for messages, and whether its flock is known to reach only
    /// this node in common set-ups.
    Shared {
        name: &'static str,
        node_local_flock: bool,
    },
}

/// statfs(2) magic numbers of network and cluster filesystems (linux/magic.h, and the vendors').
const SHARED: &[(i64, &str, bool)] = &[
    (0x6969, "NFS", false),
    (0x0BD0_0BD0, "Lustre", false),
    (0x4750_4653, "GPFS", false),
    (0x1983_0326, "BeeGFS", true),
    (0x00C3_6400, "CephFS", false),
    (0xFF53_4D42, "CIFS", false),
    (0xFE53_4D42, "SMB2", false),
    (0x0102_1997, "9p", true),
    (0x6573_5546, "FUSE", true),
];

/// The kind of filesystem `path` (or its nearest existing ancestor) is on.
pub fn fs_kind(path: &Path) -> Option<FsKind> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statfs::statfs(existing).ok()?;
    #[allow(clippy::unnecessary_cast)] // the field's type differs between targets
    let magic = st.filesystem_type().0 as i64;
    let kind = SHARED.iter().find(|(m, ..)| *m == magic).map_or(
        FsKind::Local,
        |&(_, name, node_local_flock)| {
            FsKind::Shared {
                name,
                // NFS mounted with local_lock=flock|all keeps flock on the client.
                node_local_flock: node_local_flock || nfs_local_lock(existing),
            }
        },
    );
    Some(kind)
}

/// Whether the NFS mount holding `path` was mounted with `local_lock=flock` or `=all`.
fn nfs_local_lock(path: &Path) -> bool {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    crate::mountinfo::containing(&path).is_some_and(|m| {
        m.fstype.starts_with("nfs")
            && m.options
                .split(',')
                .any(|o| o == "local_lock=flock" || o == "local_lock=all")
    })
}
