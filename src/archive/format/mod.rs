//! ZIP records as PKWARE's APPNOTE 6.3 and Info-ZIP's extra-field notes lay them out, one file per
//! record: `end` (4.3.14–4.3.16), `central` (4.3.12), `local` (4.3.7), `extra` (4.5 and Info-ZIP),
//! and conda-fuse's own fields `seek_table` and `link_group` (which also holds the device field).
//! `fields` is what the writer knows of one entry, shared by its two headers.
//!
//! We read and write these bytes ourselves rather than through the `zip` crate because the archive is
//! the product's core: names are raw bytes (not necessarily UTF-8), uid/gid live in Info-ZIP's "ux"
//! field, the index must be built from the central directory alone (no I/O per entry), and the writer
//! must stream entries of any size with bounded memory. Every parser here is total: malformed input is
//! a `FormatError`, never a panic (see the property tests in `tests/fuzz_archive.rs`).

pub mod bytes;
pub mod central;
pub mod end;
pub mod extra;
pub mod fields;
pub mod link_group;
pub mod local;
pub mod seek_table;

pub use bytes::Bytes;
pub use central::CentralHeader;
pub use end::{EndRecord, find_end_record, write_end_records};
pub use extra::ExtraField;
pub use fields::HeaderFields;
pub use link_group::{
    decode_device, decode_link_group, decode_prefix, encode_device, encode_link_group,
    encode_prefix,
};
pub use local::{LocalHeader, local_data_offset};
pub use seek_table::SeekTable;

/// Compression methods (APPNOTE 4.4.5).
pub const METHOD_STORED: u16 = 0;
pub const METHOD_DEFLATED: u16 = 8;
/// Zstandard as APPNOTE 6.3.7 numbers it; some early writers used 20.
pub const METHOD_ZSTD: u16 = 93;
pub const METHOD_ZSTD_LEGACY: u16 = 20;

/// General purpose bit flags (APPNOTE 4.4.4).
pub const FLAG_ENCRYPTED: u16 = 1;
pub const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
pub const FLAG_UTF8: u16 = 1 << 11;

/// The "version made by" host systems (APPNOTE 4.4.2) whose attributes we interpret.
pub const HOST_MSDOS: u8 = 0;
pub const HOST_UNIX: u8 = 3;
pub const HOST_MACOS: u8 = 19;

/// Field values that mean "the real value is in the zip64 extra field" (APPNOTE 4.4.1.4).
pub const ZIP64_U32: u32 = u32::MAX;
pub const ZIP64_U16: u16 = u16::MAX;

/// Which record a rejection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    LocalHeader,
    CentralHeader,
    EndOfCentralDirectory,
    Zip64EndOfCentralDirectory,
    Zip64Locator,
    Zip64ExtraField,
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Record::LocalHeader => "local file header",
            Record::CentralHeader => "central directory header",
            Record::EndOfCentralDirectory => "end-of-central-directory record",
            Record::Zip64EndOfCentralDirectory => "zip64 end-of-central-directory record",
            Record::Zip64Locator => "zip64 end-of-central-directory locator",
            Record::Zip64ExtraField => "zip64 extra field",
        })
    }
}

/// Why bytes are not a zip archive we can serve, or one of its records is unusable.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("file is {file_len} bytes, too short to be a zip archive")]
    TooShort { file_len: u64 },
    #[error("no end-of-central-directory record: not a zip archive, or truncated")]
    NoEndRecord,
    #[error("{0} signature missing")]
    MissingSignature(Record),
    #[error("{0} truncated")]
    Truncated(Record),
    #[error("multi-volume (split) archives are not supported")]
    MultiVolume,
    #[error("central directory size is larger than the file")]
    DirectoryLargerThanFile,
    #[error("central directory larger than memory")]
    DirectoryLargerThanMemory,
    #[error("central directory offset {recorded} points past its real position {real}")]
    DirectoryOffsetPastReal { recorded: u64, real: u64 },
    #[error("local header offset {0} lies outside the data area")]
    LocalHeaderOutsideData(u64),
    #[error("local file header offset overflows")]
    LocalHeaderOverflows,
    #[error("compressed size {0} exceeds the archive")]
    CompressedSizeExceedsArchive(u64),
    #[error("names exceed 4 GiB")]
    NamesTooLarge,
    #[error("end record announces {announced} entries, central directory holds {found}")]
    EntryCountMismatch { announced: u64, found: u64 },
    #[error("an entry's {what} take {len} bytes, more than a zip header can hold (65535)")]
    FieldTooLong { what: &'static str, len: usize },
    #[error("reading the zip64 end records failed: {0}")]
    Read(#[source] std::io::Error),
}

impl From<FormatError> for std::io::Error {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Read(e) => e,
            FormatError::FieldTooLong { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
            }
            e => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }
    }
}
