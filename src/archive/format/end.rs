//! The end of the central directory: the classic record (APPNOTE 4.3.16), and for archives past
//! 65535 entries or 4 GiB the zip64 record (4.3.14) and its locator (4.3.15) in front of it.

use super::bytes::{Bytes, fixed_record};
use super::fields::{VERSION_MADE_BY, VERSION_ZIP64};
use super::{FormatError, Record, ZIP64_U16, ZIP64_U32};

fixed_record! {
    pub struct EndOfCentralDirectory = (Record::EndOfCentralDirectory, 0x0605_4b50) {
        disk: u16,
        cd_disk: u16,
        entries_on_disk: u16,
        entries: u16,
        cd_size: u32,
        cd_offset: u32,
        comment_len: u16,
    }
}

fixed_record! {
    pub struct Zip64EndOfCentralDirectory = (Record::Zip64EndOfCentralDirectory, 0x0606_4b50) {
        /// Bytes after this field: the record's length less 12.
        record_size: u64,
        version_made_by: u16,
        version_needed: u16,
        disk: u32,
        cd_disk: u32,
        entries_on_disk: u64,
        entries: u64,
        cd_size: u64,
        cd_offset: u64,
    }
}

fixed_record! {
    pub struct Zip64Locator = (Record::Zip64Locator, 0x0706_4b50) {
        zip64_disk: u32,
        /// Where the zip64 record is, as the writer saw the file (prepended bytes not counted).
        zip64_offset: u64,
        total_disks: u32,
    }
}

/// The end-of-central-directory facts, zip64 values already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRecord {
    pub entries: u64,
    pub cd_size: u64,
    pub cd_offset: u64,
    /// Where the central directory really starts: `cd_offset` plus any bytes prepended to the
    /// archive (self-extracting stubs), which shift every recorded offset by the same amount.
    pub cd_start: u64,
}

impl EndRecord {
    pub fn shift(&self) -> u64 {
        self.cd_start - self.cd_offset
    }
}

/// Bytes at the end of a file that can hold the end records: the classic record, its comment of
/// at most 65535 bytes, and the zip64 locator before it.
pub const TAIL_LEN: u64 =
    (EndOfCentralDirectory::LEN + u16::MAX as usize + Zip64Locator::LEN) as u64;

/// Finds the end record in `tail`, the last bytes of a file of `file_len` bytes starting at
/// `tail_start`. `read_at` fetches the zip64 record when the classic one points to it.
pub fn find_end_record(
    tail: &[u8],
    tail_start: u64,
    file_len: u64,
    mut read_at: impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<EndRecord, FormatError> {
    let classic_len = EndOfCentralDirectory::LEN;
    if tail.len() < classic_len {
        return Err(FormatError::TooShort { file_len });
    }
    // Scan backwards: the record is followed only by its comment.
    let (pos, eocd) = (0..=tail.len() - classic_len)
        .rev()
        .filter_map(|pos| {
            let eocd = EndOfCentralDirectory::parse(&mut Bytes::new(&tail[pos..])).ok()?;
            (pos + classic_len + usize::from(eocd.comment_len) <= tail.len()).then_some((pos, eocd))
        })
        .next()
        .ok_or(FormatError::NoEndRecord)?;
    let eocd_pos = tail_start + pos as u64;
    let mut record = EndRecord {
        entries: eocd.entries.into(),
        cd_size: eocd.cd_size.into(),
        cd_offset: eocd.cd_offset.into(),
        cd_start: 0,
    };
    let mut cd_end = eocd_pos;

    // A zip64 locator sits right before the classic record when the archive needs zip64.
    if let Some(loc_pos) = eocd_pos.checked_sub(Zip64Locator::LEN as u64) {
        let loc = if loc_pos >= tail_start {
            tail[(loc_pos - tail_start) as usize..pos].to_vec()
        } else {
            read_at(loc_pos, Zip64Locator::LEN).map_err(FormatError::Read)?
        };
        if let Ok(locator) = Zip64Locator::parse(&mut Bytes::new(&loc)) {
            let z_pos = zip64_record_position(locator.zip64_offset, loc_pos, &mut read_at)?;
            let z = read_at(z_pos, Zip64EndOfCentralDirectory::LEN).map_err(FormatError::Read)?;
            let z = Zip64EndOfCentralDirectory::parse(&mut Bytes::new(&z))?;
            record.entries = z.entries;
            record.cd_size = z.cd_size;
            record.cd_offset = z.cd_offset;
            cd_end = z_pos;
        }
    }
    let split = |disk: u16| disk != 0 && disk != ZIP64_U16;
    if split(eocd.disk) || split(eocd.cd_disk) {
        return Err(FormatError::MultiVolume);
    }
    record.cd_start = cd_end
        .checked_sub(record.cd_size)
        .ok_or(FormatError::DirectoryLargerThanFile)?;
    if record.cd_start < record.cd_offset {
        return Err(FormatError::DirectoryOffsetPastReal {
            recorded: record.cd_offset,
            real: record.cd_start,
        });
    }
    Ok(record)
}

/// The zip64 record is where the locator says unless bytes were prepended to the archive; then it
/// is right before the locator (unless the writer put extensible data after it, which we refuse).
fn zip64_record_position(
    recorded: u64,
    locator_pos: u64,
    read_at: &mut impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<u64, FormatError> {
    let len = Zip64EndOfCentralDirectory::LEN as u64;
    if recorded
        .checked_add(len)
        .is_some_and(|end| end <= locator_pos)
    {
        let at = read_at(recorded, 4).map_err(FormatError::Read)?;
        if at == Zip64EndOfCentralDirectory::SIGNATURE.to_le_bytes() {
            return Ok(recorded);
        }
    }
    locator_pos
        .checked_sub(len)
        .ok_or(FormatError::MissingSignature(
            Record::Zip64EndOfCentralDirectory,
        ))
}

/// Appends the end records for a central directory of `entries` entries, `cd_size` bytes at
/// `cd_offset`; zip64 records are added only when a classic field would overflow.
pub fn write_end_records(entries: u64, cd_offset: u64, cd_size: u64, out: &mut Vec<u8>) {
    let zip64 = entries >= u64::from(ZIP64_U16)
        || cd_offset >= u64::from(ZIP64_U32)
        || cd_size >= u64::from(ZIP64_U32);
    if zip64 {
        Zip64EndOfCentralDirectory {
            record_size: (Zip64EndOfCentralDirectory::LEN - 12) as u64,
            version_made_by: VERSION_MADE_BY,
            version_needed: VERSION_ZIP64,
            disk: 0,
            cd_disk: 0,
            entries_on_disk: entries,
            entries,
            cd_size,
            cd_offset,
        }
        .write(out);
        Zip64Locator {
            zip64_disk: 0,
            zip64_offset: cd_offset + cd_size,
            total_disks: 1,
        }
        .write(out);
    }
    let entries16 = if zip64 { ZIP64_U16 } else { entries as u16 };
    let fit = |v: u64| if zip64 { ZIP64_U32 } else { v as u32 };
    EndOfCentralDirectory {
        disk: 0,
        cd_disk: 0,
        entries_on_disk: entries16,
        entries: entries16,
        cd_size: fit(cd_size),
        cd_offset: fit(cd_offset),
        comment_len: 0,
    }
    .write(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader of a file whose bytes before `start` are zeros (entry data) and then `tail`.
    fn file_of(tail: &[u8], start: u64) -> impl FnMut(u64, usize) -> std::io::Result<Vec<u8>> {
        let tail = tail.to_vec();
        move |pos, len| {
            Ok((pos..pos + len as u64)
                .map(|p| p.checked_sub(start).map_or(0, |s| tail[s as usize]))
                .collect())
        }
    }

    #[test]
    fn end_records_found_with_and_without_zip64() {
        for (entries, cd_offset) in [(3u64, 100u64), (70_000, 100), (2, 5 << 30)] {
            let cd_size = 50;
            let mut tail = Vec::new();
            write_end_records(entries, cd_offset, cd_size, &mut tail);
            let tail_start = cd_offset + cd_size;
            let file_len = tail_start + tail.len() as u64;
            let rec =
                find_end_record(&tail, tail_start, file_len, file_of(&tail, tail_start)).unwrap();
            assert_eq!(rec.entries, entries);
            assert_eq!(rec.cd_offset, cd_offset);
            assert_eq!(rec.cd_size, cd_size);
            assert_eq!(rec.shift(), 0);
        }
    }

    #[test]
    fn a_zip64_locator_pointing_past_the_end_of_memory_is_refused() {
        let mut tail = Vec::new();
        write_end_records(70_000, 100, 50, &mut tail);
        // The locator's offset of the zip64 end record, made huge.
        let loc = tail.len() - EndOfCentralDirectory::LEN - Zip64Locator::LEN;
        tail[loc + 8..loc + 16].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        let start = 150;
        let len = start + tail.len() as u64;
        let copy = tail.clone();
        let r = find_end_record(&tail, start, len, |pos, n| {
            let at = pos
                .checked_sub(start)
                .ok_or(std::io::ErrorKind::InvalidInput)? as usize;
            copy.get(at..at + n)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
        });
        // Either a clean error or the record right before the locator; never a panic.
        if let Ok(rec) = r {
            assert_eq!(rec.entries, 70_000);
        }
    }

    #[test]
    fn garbage_is_rejected_and_says_why() {
        let none = |_: u64, _: usize| Ok(vec![]);
        assert!(matches!(
            find_end_record(b"hello", 0, 5, none),
            Err(FormatError::TooShort { file_len: 5 })
        ));
        assert!(matches!(
            find_end_record(&[7; 100], 0, 100, none),
            Err(FormatError::NoEndRecord)
        ));
        let mut junk = vec![0u8; 100];
        junk[50..54].copy_from_slice(&EndOfCentralDirectory::SIGNATURE.to_le_bytes());
        junk[62..66].copy_from_slice(&u32::MAX.to_le_bytes()); // cd size beyond the file
        assert!(matches!(
            find_end_record(&junk, 0, 100, |_, _| Ok(vec![0; 56])),
            Err(FormatError::DirectoryLargerThanFile)
        ));
        let mut split = Vec::new();
        write_end_records(1, 0, 0, &mut split);
        split[4] = 2;
        assert!(matches!(
            find_end_record(&split, 0, split.len() as u64, none),
            Err(FormatError::MultiVolume)
        ));
        let mut damaged = Vec::new();
        write_end_records(70_000, 100, 50, &mut damaged);
        damaged[0] = 0; // the zip64 record's signature
        assert!(matches!(
            find_end_record(
                &damaged,
                150,
                150 + damaged.len() as u64,
                file_of(&damaged, 150)
            ),
            Err(FormatError::MissingSignature(
                Record::Zip64EndOfCentralDirectory
            ))
        ));
    }
}
