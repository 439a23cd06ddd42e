//! conda-fuse's seek table ("CF" extra field, central directory only): where to start decompressing
//! inside a large entry. Layout: version 1 (u8), segment size (u32), segment count (u32), then per
//! segment the offset of its compressed bytes (u64) and the CRC-32 of its uncompressed bytes (u32).

use super::bytes::{Bytes, LeInt};
use super::extra::{self, ExtraField};

/// The entry is one standard deflate stream (or zstd stream) whose compressor was reset every
/// `segment_size` uncompressed bytes (a deflate full flush, or a new zstd frame), so decompression
/// can begin at any segment without the ones before. Each segment's CRC-32 keeps random reads
/// verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekTable {
    pub segment_size: u32,
    /// Per segment: offset of its compressed bytes from the start of the entry's data, and the
    /// CRC-32 of its uncompressed bytes.
    pub segments: Vec<(u64, u32)>,
}

const VERSION: u8 = 1;
const FIXED_LEN: usize = 1 + 4 + 4;
const ROW_LEN: usize = 8 + 4;

/// The longest a central header's other extra fields get: zip64 (4 + 24 bytes), the extended
/// timestamp (4 + 5), Info-ZIP's Unix owner (4 + 11), the link group (4 + 8) and the device
/// number (4 + 8; never with a seek table, but counted all the same).
const OTHER_CENTRAL_EXTRA_MAX: usize = 28 + 9 + 15 + 12 + 12;

impl SeekTable {
    /// Most segments one seek table can describe: the whole extra block of a central header (this
    /// table, its 4-byte field header and its fixed part, and every other field) must fit the
    /// header's 16-bit extra length (APPNOTE 4.4.11).
    pub const MAX_SEGMENTS: usize =
        (u16::MAX as usize - OTHER_CENTRAL_EXTRA_MAX - 4 - FIXED_LEN) / ROW_LEN;

    /// Appends the table as an extra field.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut data = Vec::with_capacity(FIXED_LEN + ROW_LEN * self.segments.len());
        VERSION.put(&mut data);
        self.segment_size.put(&mut data);
        (self.segments.len() as u32).put(&mut data);
        for &(offset, crc) in &self.segments {
            offset.put(&mut data);
            crc.put(&mut data);
        }
        ExtraField::SeekTable(&data).write(out);
    }

    /// Parses and validates a table for an entry of the given sizes; None if absent or unusable.
    pub fn decode(
        extra_block: &[u8],
        compressed_size: u64,
        uncompressed_size: u64,
    ) -> Option<Self> {
        let data = extra::fields(extra_block).find_map(|f| match f {
            ExtraField::SeekTable(data) => Some(data),
            _ => None,
        })?;
        let mut b = Bytes::new(data);
        if b.u8()? != VERSION {
            return None;
        }
        let segment_size = b.u32()?;
        let count = b.u32()? as usize;
        if segment_size == 0
            || count == 0
            || count > Self::MAX_SEGMENTS
            || b.remaining() != count * ROW_LEN
        {
            return None;
        }
        if uncompressed_size.div_ceil(u64::from(segment_size)) != count as u64 {
            return None;
        }
        let mut segments = Vec::with_capacity(count);
        let mut last = None;
        for _ in 0..count {
            let offset = b.u64()?;
            let crc = b.u32()?;
            // Offsets must start at zero, strictly increase, and stay inside the entry.
            if offset >= compressed_size.max(1)
                || last.is_some_and(|l| offset <= l)
                || last.is_none() && offset != 0
            {
                return None;
            }
            last = Some(offset);
            segments.push((offset, crc));
        }
        Some(SeekTable {
            segment_size,
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_tables_round_trip_and_bad_ones_are_ignored() {
        let t = SeekTable {
            segment_size: 1 << 20,
            segments: vec![(0, 7), (400_000, 8), (800_000, 9)],
        };
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(
            SeekTable::decode(&out, 1_000_000, (2 << 20) + 5),
            Some(t.clone())
        );
        // Wrong segment count for the size, offsets beyond the data, or out of order: ignored.
        assert_eq!(SeekTable::decode(&out, 1_000_000, 5 << 20), None);
        assert_eq!(SeekTable::decode(&out, 500_000, (2 << 20) + 5), None);
        let mut bad = out.clone();
        bad[25..33].copy_from_slice(&900_000u64.to_le_bytes());
        assert_eq!(SeekTable::decode(&bad, 1_000_000, (2 << 20) + 5), None);
    }
}
