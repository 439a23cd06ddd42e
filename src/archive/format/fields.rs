//! What the writer knows of one entry, and the header fields both of its headers derive from it
//! (APPNOTE 4.4.3 version needed, 4.4.4 flags, 4.4.15 external attributes).

use super::extra::ExtraField;
use super::{FLAG_UTF8, FormatError, HOST_UNIX, METHOD_STORED, METHOD_ZSTD, ZIP64_U32};

/// Everything the writer needs to emit one entry's headers.
#[derive(Debug, Clone)]
pub struct HeaderFields<'a> {
    pub name: &'a [u8],
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub mode: u32,
    pub mtime: i64,
    pub uid: u32,
    pub gid: u32,
    pub dos_datetime: (u16, u16),
    /// Extra fields for the central header only (the seek table).
    pub central_extra: &'a [u8],
    /// General purpose flags to record instead of computing them: an entry copied with its old
    /// local header must keep that header's flags (UTF-8 name, data descriptor).
    pub flags: Option<u16>,
}

/// Unix host, APPNOTE 6.3.
pub const VERSION_MADE_BY: u16 = (HOST_UNIX as u16) << 8 | 63;
/// What a reader needs for zip64 records (APPNOTE 4.4.3.2).
pub const VERSION_ZIP64: u16 = 45;

impl HeaderFields<'_> {
    pub(super) fn needs_zip64_sizes(&self) -> bool {
        self.compressed_size >= u64::from(ZIP64_U32)
            || self.uncompressed_size >= u64::from(ZIP64_U32)
    }

    pub(super) fn version_needed(&self, zip64: bool) -> u16 {
        match (zip64, self.method) {
            (_, METHOD_ZSTD) => 63,
            (true, _) => VERSION_ZIP64,
            (false, METHOD_STORED) if self.mode & libc::S_IFMT != libc::S_IFDIR => 10,
            _ => 20,
        }
    }

    pub(super) fn flags(&self) -> u16 {
        if let Some(f) = self.flags {
            return f;
        }
        if std::str::from_utf8(self.name).is_ok() && !self.name.is_ascii() {
            FLAG_UTF8
        } else {
            0
        }
    }

    /// Unix mode in the high half, the MS-DOS directory and read-only bits in the low.
    pub(super) fn external_attr(&self) -> u32 {
        let mut dos = 0u32;
        if self.mode & libc::S_IFMT == libc::S_IFDIR {
            dos |= 0x10;
        }
        if self.mode & 0o200 == 0 {
            dos |= 0x01;
        }
        (self.mode << 16) | dos
    }

    /// The extra fields both headers carry: mtime and owner.
    pub(super) fn push_unix_extras(&self, out: &mut Vec<u8>) {
        ExtraField::ExtendedTimestamp {
            mtime: Some(self.mtime),
        }
        .write(out);
        ExtraField::UnixOwner {
            uid: self.uid,
            gid: self.gid,
        }
        .write(out);
    }

    pub(super) fn dos_time(&self) -> u16 {
        self.dos_datetime.0
    }

    pub(super) fn dos_date(&self) -> u16 {
        self.dos_datetime.1
    }
}

/// A length for one of a header's 16-bit length fields; longer is refused, never truncated (a
/// truncated length makes every later header unreadable).
pub(super) fn field_len(len: usize, what: &'static str) -> Result<u16, FormatError> {
    u16::try_from(len).map_err(|_| FormatError::FieldTooLong { what, len })
}

#[cfg(test)]
pub(super) fn example(name: &[u8], size: u64) -> HeaderFields<'_> {
    HeaderFields {
        name,
        method: super::METHOD_DEFLATED,
        crc32: 0xdead_beef,
        compressed_size: size / 2,
        uncompressed_size: size,
        mode: libc::S_IFREG | 0o4755,
        mtime: 1_700_000_000,
        uid: 1234,
        gid: 5678,
        dos_datetime: (0x1234, 0x5678),
        central_extra: &[],
        flags: None,
    }
}
