//! The filesystem layer: the semantics of every request over the overlay and the archive
//! (`filesystem.rs`, testable without a kernel), and the fuser adapter with the kernel cache policy
//! (`fuse.rs`).

pub mod filesystem;
pub mod fuse;

pub use filesystem::Filesystem;
pub use fuse::FuseAdapter;
