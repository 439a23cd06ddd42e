//! The filesystem layer: the inode tree of an archive, its semantics (`ArchiveFs`, testable without a
//! kernel), and the fuser adapter with the kernel cache policy.

pub mod archive_fs;
pub mod fuse;
pub mod tree;

pub use archive_fs::ArchiveFs;
pub use fuse::FuseAdapter;
pub use tree::{Attr, BuildReport, Defaults, Ino, ROOT_INO, Tree};
