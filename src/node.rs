//! Which machine this is. On a cluster one `$HOME` is seen by hundreds of nodes: a pid, a Unix
//! socket or a mount means something only on the node (host name plus boot id: a rebooted node is
//! another node) that recorded it. (Which filesystem a path is on: `hostfs`.)

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
