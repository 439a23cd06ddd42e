//! The local file header (APPNOTE 4.3.7), in front of each entry's data. We write sizes up front,
//! so never a data descriptor (4.3.9); we read a local header only to find where the data begins.

use super::bytes::{Bytes, fixed_record};
use super::extra::ExtraField;
use super::fields::{HeaderFields, field_len};
use super::{FormatError, Record, ZIP64_U32};

fixed_record! {
    /// The fixed part; the name and the extra fields follow.
    pub struct LocalHeader = (Record::LocalHeader, 0x0403_4b50) {
        version_needed: u16,
        flags: u16,
        method: u16,
        dos_time: u16,
        dos_date: u16,
        crc32: u32,
        compressed_size: u32,
        uncompressed_size: u32,
        name_len: u16,
        extra_len: u16,
    }
}

/// Where an entry's data begins, from its local header at `local_header_offset` (given the first
/// `LocalHeader::LEN` bytes of that header).
pub fn local_data_offset(local_header_offset: u64, header: &[u8]) -> Result<u64, FormatError> {
    let h = LocalHeader::parse(&mut Bytes::new(header))?;
    local_header_offset
        .checked_add(LocalHeader::LEN as u64 + u64::from(h.name_len) + u64::from(h.extra_len))
        .ok_or(FormatError::LocalHeaderOverflows)
}

impl HeaderFields<'_> {
    /// Appends the local file header.
    pub fn write_local(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let zip64 = self.needs_zip64_sizes();
        let mut extra = Vec::with_capacity(48);
        if zip64 {
            // Both sizes, uncompressed first (4.5.3), since both header fields say "see zip64".
            let mut sizes = self.uncompressed_size.to_le_bytes().to_vec();
            sizes.extend_from_slice(&self.compressed_size.to_le_bytes());
            ExtraField::Zip64(&sizes).write(&mut extra);
        }
        self.push_unix_extras(&mut extra);
        let (compressed_size, uncompressed_size) = if zip64 {
            (ZIP64_U32, ZIP64_U32)
        } else {
            (self.compressed_size as u32, self.uncompressed_size as u32)
        };
        LocalHeader {
            version_needed: self.version_needed(zip64),
            flags: self.flags(),
            method: self.method,
            dos_time: self.dos_time(),
            dos_date: self.dos_date(),
            crc32: self.crc32,
            compressed_size,
            uncompressed_size,
            name_len: field_len(self.name.len(), "name")?,
            extra_len: field_len(extra.len(), "extra fields")?,
        }
        .write(out);
        out.extend_from_slice(self.name);
        out.extend_from_slice(&extra);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_header_gives_data_offset() {
        let f = super::super::fields::example(b"a/b.txt", 5 << 30);
        let mut out = Vec::new();
        f.write_local(&mut out).unwrap();
        assert_eq!(
            local_data_offset(1000, &out).unwrap(),
            1000 + out.len() as u64
        );
        assert!(matches!(
            local_data_offset(0, b"PK\x01\x02"),
            Err(FormatError::MissingSignature(Record::LocalHeader))
        ));
        assert!(matches!(
            local_data_offset(0, &out[..10]),
            Err(FormatError::Truncated(Record::LocalHeader))
        ));
        assert!(matches!(
            local_data_offset(u64::MAX - 5, &out),
            Err(FormatError::LocalHeaderOverflows)
        ));
    }
}
