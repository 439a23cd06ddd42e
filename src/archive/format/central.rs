//! The central directory file header (APPNOTE 4.3.12): one per entry, all of them together at the
//! end of the archive. The index is built from these alone.

use super::bytes::{Bytes, fixed_record};
use super::extra::{self, ExtraField};
use super::fields::{HeaderFields, VERSION_MADE_BY, field_len};
use super::{FormatError, Record, ZIP64_U16, ZIP64_U32};

fixed_record! {
    /// The fixed part; the name, extra fields and comment follow.
    pub struct CentralFixed = (Record::CentralHeader, 0x0201_4b50) {
        version_made_by: u16,
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
        comment_len: u16,
        disk_start: u16,
        internal_attr: u16,
        external_attr: u32,
        local_header_offset: u32,
    }
}

/// A parsed central header, zip64 values already applied.
#[derive(Debug, Clone)]
pub struct CentralHeader<'a> {
    pub version_made_by: u16,
    pub flags: u16,
    pub method: u16,
    pub dos_time: u16,
    pub dos_date: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub external_attr: u32,
    pub local_header_offset: u64,
    pub name: &'a [u8],
    pub extra: &'a [u8],
}

impl<'a> CentralHeader<'a> {
    pub const MIN_LEN: usize = CentralFixed::LEN;

    /// Parses one header at the start of `buf`; returns it and its total length.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, usize), FormatError> {
        let mut b = Bytes::new(buf);
        let f = CentralFixed::parse(&mut b)?;
        let short = || FormatError::Truncated(Record::CentralHeader);
        let name = b.take(f.name_len.into()).ok_or_else(short)?;
        let extra = b.take(f.extra_len.into()).ok_or_else(short)?;
        b.take(f.comment_len.into()).ok_or_else(short)?;

        let mut header = CentralHeader {
            version_made_by: f.version_made_by,
            flags: f.flags,
            method: f.method,
            dos_time: f.dos_time,
            dos_date: f.dos_date,
            crc32: f.crc32,
            compressed_size: f.compressed_size.into(),
            uncompressed_size: f.uncompressed_size.into(),
            external_attr: f.external_attr,
            local_header_offset: f.local_header_offset.into(),
            name,
            extra,
        };
        let overflowed = [
            f.uncompressed_size,
            f.compressed_size,
            f.local_header_offset,
        ]
        .contains(&ZIP64_U32)
            || f.disk_start == ZIP64_U16;
        // Only looked for when a field overflowed: the index parses every header.
        let zip64 = || {
            extra::fields(extra).find_map(|field| match field {
                ExtraField::Zip64(data) => Some(data),
                _ => None,
            })
        };
        if let Some(z) = overflowed.then(zip64).flatten() {
            let mut z = Bytes::new(z);
            let short = || FormatError::Truncated(Record::Zip64ExtraField);
            // The zip64 field holds only the values whose header field overflowed, in this order.
            if f.uncompressed_size == ZIP64_U32 {
                header.uncompressed_size = z.u64().ok_or_else(short)?;
            }
            if f.compressed_size == ZIP64_U32 {
                header.compressed_size = z.u64().ok_or_else(short)?;
            }
            if f.local_header_offset == ZIP64_U32 {
                header.local_header_offset = z.u64().ok_or_else(short)?;
            }
        }
        Ok((header, b.position()))
    }

    pub fn host_system(&self) -> u8 {
        (self.version_made_by >> 8) as u8
    }
}

impl HeaderFields<'_> {
    /// Appends the central directory header for an entry whose local header is at `offset`.
    pub fn write_central(&self, offset: u64, out: &mut Vec<u8>) -> Result<(), FormatError> {
        let big_u = self.uncompressed_size >= u64::from(ZIP64_U32);
        let big_c = self.compressed_size >= u64::from(ZIP64_U32);
        let big_o = offset >= u64::from(ZIP64_U32);
        let zip64 = big_u || big_c || big_o;
        let mut extra = Vec::with_capacity(56);
        if zip64 {
            let mut z = Vec::with_capacity(24);
            for (value, big) in [
                (self.uncompressed_size, big_u),
                (self.compressed_size, big_c),
                (offset, big_o),
            ] {
                if big {
                    z.extend_from_slice(&value.to_le_bytes());
                }
            }
            ExtraField::Zip64(&z).write(&mut extra);
        }
        self.push_unix_extras(&mut extra);
        extra.extend_from_slice(self.central_extra);
        let fit = |v: u64, big: bool| if big { ZIP64_U32 } else { v as u32 };
        CentralFixed {
            version_made_by: VERSION_MADE_BY,
            version_needed: self.version_needed(zip64),
            flags: self.flags(),
            method: self.method,
            dos_time: self.dos_time(),
            dos_date: self.dos_date(),
            crc32: self.crc32,
            compressed_size: fit(self.compressed_size, big_c),
            uncompressed_size: fit(self.uncompressed_size, big_u),
            name_len: field_len(self.name.len(), "name")?,
            extra_len: field_len(extra.len(), "extra fields")?,
            comment_len: 0,
            disk_start: 0,
            internal_attr: 0,
            external_attr: self.external_attr(),
            local_header_offset: fit(offset, big_o),
        }
        .write(out);
        out.extend_from_slice(self.name);
        out.extend_from_slice(&extra);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::example;
    use super::super::link_group::encode_link_group;
    use super::super::{HOST_UNIX, SeekTable};
    use super::*;

    #[test]
    fn central_header_round_trips_with_and_without_zip64() {
        for (size, offset) in [(100u64, 7u64), (5 << 30, 9 << 30), (10, 1 << 33)] {
            let f = example(b"dir/\xff\xfename", size);
            let mut out = Vec::new();
            f.write_central(offset, &mut out).unwrap();
            let (h, len) = CentralHeader::parse(&out).unwrap();
            assert_eq!(len, out.len());
            assert_eq!(h.name, f.name);
            assert_eq!(h.uncompressed_size, size);
            assert_eq!(h.compressed_size, size / 2);
            assert_eq!(h.local_header_offset, offset);
            assert_eq!(h.external_attr >> 16, libc::S_IFREG | 0o4755);
            assert_eq!(h.host_system(), HOST_UNIX);
            assert_eq!(extra::unix_owner(h.extra), Some((1234, 5678)));
            assert_eq!(extra::mtime(h.extra), Some(1_700_000_000));
        }
    }

    #[test]
    fn the_largest_seek_table_fits_a_central_header_with_every_other_field() {
        let t = SeekTable {
            segment_size: 1 << 20,
            segments: (0..SeekTable::MAX_SEGMENTS as u64)
                .map(|k| (k * 10, 7))
                .collect(),
        };
        let mut extra = Vec::new();
        t.encode(&mut extra);
        encode_link_group(u64::MAX, &mut extra);
        let mut f = example(b"big.so", 6 << 30);
        f.central_extra = &extra;
        let mut out = Vec::new();
        f.write_central(9 << 30, &mut out).unwrap();
        let (h, _) = CentralHeader::parse(&out).unwrap();
        let rows = SeekTable::MAX_SEGMENTS as u64;
        assert_eq!(
            SeekTable::decode(h.extra, rows * 10 + 1, rows << 20).map(|t| t.segments.len()),
            Some(SeekTable::MAX_SEGMENTS)
        );
        // One more row and the writer refuses rather than truncating the length.
        let mut longer = extra.clone();
        longer.extend_from_slice(&[0; 12 * 3]);
        f.central_extra = &longer;
        assert!(matches!(
            f.write_central(9 << 30, &mut Vec::new()),
            Err(FormatError::FieldTooLong {
                what: "extra fields",
                ..
            })
        ));
    }

    #[test]
    fn a_cut_or_unsigned_header_says_which() {
        let mut out = Vec::new();
        example(b"a", 10).write_central(0, &mut out).unwrap();
        for cut in [0, 3, 10, CentralFixed::LEN, out.len() - 1] {
            assert!(matches!(
                CentralHeader::parse(&out[..cut]),
                Err(FormatError::Truncated(Record::CentralHeader))
            ));
        }
        out[0] = b'X';
        assert!(matches!(
            CentralHeader::parse(&out),
            Err(FormatError::MissingSignature(Record::CentralHeader))
        ));
    }
}
