//! The archive layer: a standard zip file read through a compact index with positioned reads and a
//! bounded cache of decompressed entries, and written by a streaming, parallel, crash-safe builder.

pub mod budget;
pub mod build;
pub mod cache;
pub mod compress;
pub mod compress_file;
pub mod entry_reader;
pub mod error;
pub mod format;
pub mod id;
pub mod index;
pub mod meta;
pub mod pack;
pub mod pipeline;
pub mod read;
pub mod startup;
pub mod write;

pub use build::{
    BuildError, BuildOptions, BuildStats, PendingArchive, Planned, Source, build_archive,
    write_pending,
};
pub use cache::{CacheLimits, DecodedCache};
pub use compress::Compression;
pub use entry_reader::EntryReader;
pub use error::{ArchiveError, EntryError};
pub use id::ArchiveId;
pub use index::{Entry, Index};
pub use meta::{Kind, Meta};
pub use read::Archive;
