//! The filesystems conda-fuse keeps its files on (archives, state, TMPDIR): which one a path is on
//! (`kind.rs`), what each offers and what that implies (`traits.rs`, the README's table; `probe.rs`
//! measures a directory for `doctor`), and the calls whose local-disk form goes wrong on network
//! filesystems, each with what keeps the guarantee there: renames without replacing
//! (`rename.rs`), what another node changed (`other_nodes.rs`: sizes asked of the server,
//! exclusive creates), and files removed while open (`silly.rs`).

pub mod kind;
mod other_nodes;
pub mod probe;
pub mod rename;
mod silly;
pub mod traits;

pub use kind::{FsType, HostFs, of};
pub use other_nodes::{create_new, fresh_len};
pub use rename::{no_hard_links, rename_noreplace};
pub use silly::{is_silly_renamed, remove_dir_when_released};
