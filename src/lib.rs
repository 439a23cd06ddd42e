//! conda-fuse: conda environments kept as single zip archives and served as directories through
//! FUSE. Layers, top to bottom (a layer never calls upward):
//!
//! - `cli`: commands, progress bars, human output;
//! - `shell`: the shell functions, completion and activation code (askama templates);
//! - `envs`: environments by name (archive, mount point, prefix); `conda`: the user's conda;
//! - `daemon`: one process per mount, its state record, control socket and signals;
//! - `fs`: request semantics and the kernel adapter; `commit`: saving changes as a new archive,
//!   and the snapshots saves keep;
//! - `overlay`: the merged tree, upper layer, journal and writer lock;
//! - `archive`: the zip format, reading with a bounded cache, parallel crash-safe writing.

pub mod archive;
pub mod cli;
pub mod clock;
pub mod commit;
pub mod conda;
pub mod daemon;
pub mod display;
pub mod envs;
pub mod fault;
pub mod file_key;
pub mod fs;
pub mod hint;
pub mod hostfs;
pub mod logging;
pub mod mountinfo;
pub mod node;
pub mod overlay;
pub mod private_dir;
pub mod process;
pub mod regular_file;
pub mod settings;
pub mod shell;
