//! conda-fuse: conda environments kept as single zip archives and served as directories through
//! FUSE. Layers, top to bottom (a layer never calls upward): `cli` → `daemon` → `fs` → `archive`.
//! See DESIGN.md for the decisions behind them.

pub mod archive;
pub mod cli;
pub mod daemon;
pub mod fs;
pub mod logging;
