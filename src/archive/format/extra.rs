//! Extra fields (APPNOTE 4.5: id, length, data; unknown ids are skipped) and the ones we read or
//! write: zip64 (4.5.3), Info-ZIP's extended timestamp "UT" and Unix owner fields ("ux", "Ux",
//! "UX", PKWARE's 0x000d), and conda-fuse's own ("CF" seek table, "CL" link group, "CD" device,
//! "CP" prefix held; see `seek_table` and `link_group`). Each field's layout is here once, for parsing and for writing.

use super::bytes::{Bytes, LeInt};

pub const ID_ZIP64: u16 = 0x0001;
pub const ID_PKWARE_UNIX: u16 = 0x000d;
pub const ID_EXT_TIMESTAMP: u16 = 0x5455; // "UT"
pub const ID_INFOZIP_UNIX_OLD: u16 = 0x5855; // "UX"
pub const ID_INFOZIP_UNIX_16: u16 = 0x7855; // "Ux"
pub const ID_INFOZIP_UNIX: u16 = 0x7875; // "ux"
pub const ID_SEEK_TABLE: u16 = 0x4643; // "CF"
pub const ID_LINK_GROUP: u16 = 0x4c43; // "CL"
pub const ID_DEVICE: u16 = 0x4443; // "CD"
pub const ID_PREFIX: u16 = 0x5043; // "CP"

/// One extra field, decoded as far as its own bytes allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraField<'a> {
    /// Only the values whose header field overflowed, in a fixed order; the header decides which.
    Zip64(&'a [u8]),
    /// Info-ZIP "UT"; `mtime` is absent when the field's flags say it was not stored.
    ExtendedTimestamp {
        mtime: Option<i64>,
    },
    /// From whichever Unix field the writer used; we write "ux" with 4-byte ids.
    UnixOwner {
        uid: u32,
        gid: u32,
    },
    /// Validated against the entry's sizes by `SeekTable::decode`.
    SeekTable(&'a [u8]),
    LinkGroup(u64),
    Device(u64),
    /// The install prefix the entry's content was written for (raw bytes, as conda wrote it).
    Prefix(&'a [u8]),
    /// An id we do not read, or a known one whose bytes are malformed (skipped, as other readers do).
    Other {
        id: u16,
        data: &'a [u8],
    },
}

impl<'a> ExtraField<'a> {
    pub fn parse(id: u16, data: &'a [u8]) -> ExtraField<'a> {
        let mut b = Bytes::new(data);
        let known = match id {
            ID_ZIP64 => Some(ExtraField::Zip64(data)),
            ID_EXT_TIMESTAMP => b.u8().map(|flags| ExtraField::ExtendedTimestamp {
                mtime: (flags & 1 != 0)
                    .then(|| b.u32())
                    .flatten()
                    .map(|t| i64::from(t as i32)),
            }),
            ID_INFOZIP_UNIX => (|| {
                if b.u8()? != 1 {
                    return None;
                }
                let uid_size = b.u8()? as usize;
                let uid = b.uint(uid_size)?;
                let gid_size = b.u8()? as usize;
                let gid = b.uint(gid_size)?;
                Some(ExtraField::UnixOwner {
                    uid: u32::try_from(uid).ok()?,
                    gid: u32::try_from(gid).ok()?,
                })
            })(),
            ID_INFOZIP_UNIX_16 => (|| {
                let (uid, gid) = (b.u16()?, b.u16()?);
                Some(ExtraField::UnixOwner {
                    uid: uid.into(),
                    gid: gid.into(),
                })
            })(),
            ID_INFOZIP_UNIX_OLD | ID_PKWARE_UNIX => (|| {
                b.take(8)?; // atime, mtime
                let (uid, gid) = (b.u16()?, b.u16()?);
                Some(ExtraField::UnixOwner {
                    uid: uid.into(),
                    gid: gid.into(),
                })
            })(),
            ID_SEEK_TABLE => Some(ExtraField::SeekTable(data)),
            ID_LINK_GROUP => b.u64().map(ExtraField::LinkGroup),
            ID_DEVICE => (|| {
                let (major, minor) = (b.u32()?, b.u32()?);
                Some(ExtraField::Device(libc::makedev(major, minor)))
            })(),
            ID_PREFIX => (!data.is_empty()).then_some(ExtraField::Prefix(data)),
            _ => None,
        };
        known.unwrap_or(ExtraField::Other { id, data })
    }

    pub fn id(&self) -> u16 {
        match self {
            ExtraField::Zip64(_) => ID_ZIP64,
            ExtraField::ExtendedTimestamp { .. } => ID_EXT_TIMESTAMP,
            ExtraField::UnixOwner { .. } => ID_INFOZIP_UNIX,
            ExtraField::SeekTable(_) => ID_SEEK_TABLE,
            ExtraField::LinkGroup(_) => ID_LINK_GROUP,
            ExtraField::Device(_) => ID_DEVICE,
            ExtraField::Prefix(_) => ID_PREFIX,
            ExtraField::Other { id, .. } => *id,
        }
    }

    /// Appends the field, header included. Callers keep a header's whole extra block within its
    /// 16-bit length (`SeekTable::MAX_SEGMENTS` is sized for that).
    pub fn write(&self, out: &mut Vec<u8>) {
        self.id().put(out);
        let len_at = out.len();
        0u16.put(out);
        match *self {
            ExtraField::Zip64(data)
            | ExtraField::SeekTable(data)
            | ExtraField::Prefix(data)
            | ExtraField::Other { data, .. } => out.extend_from_slice(data),
            ExtraField::ExtendedTimestamp { mtime } => match mtime {
                Some(t) => {
                    1u8.put(out);
                    (t.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32 as u32).put(out);
                }
                None => 0u8.put(out),
            },
            ExtraField::UnixOwner { uid, gid } => {
                1u8.put(out);
                4u8.put(out);
                uid.put(out);
                4u8.put(out);
                gid.put(out);
            }
            ExtraField::LinkGroup(group) => group.put(out),
            ExtraField::Device(rdev) => {
                libc::major(rdev as libc::dev_t).put(out);
                libc::minor(rdev as libc::dev_t).put(out);
            }
        }
        let len = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&len.to_le_bytes());
    }
}

/// The fields of an extra block in order; stops at the first field whose length runs past the block.
pub fn fields(extra: &[u8]) -> impl Iterator<Item = ExtraField<'_>> {
    let mut b = Bytes::new(extra);
    std::iter::from_fn(move || {
        let id = b.u16()?;
        let len = b.u16()? as usize;
        Some(ExtraField::parse(id, b.take(len)?))
    })
}

/// Modification time from the first extended-timestamp field.
pub fn mtime(extra: &[u8]) -> Option<i64> {
    fields(extra)
        .find_map(|f| match f {
            ExtraField::ExtendedTimestamp { mtime } => Some(mtime),
            _ => None,
        })
        .flatten()
}

/// uid and gid from the first well-formed Unix field, whichever the writer used.
pub fn unix_owner(extra: &[u8]) -> Option<(u32, u32)> {
    fields(extra).find_map(|f| match f {
        ExtraField::UnixOwner { uid, gid } => Some((uid, gid)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_we_write_parses_back_to_itself() {
        for field in [
            ExtraField::ExtendedTimestamp {
                mtime: Some(1_700_000_000),
            },
            ExtraField::UnixOwner {
                uid: 70_000,
                gid: 5,
            },
            ExtraField::LinkGroup(u64::MAX),
            ExtraField::Device(libc::makedev(8, 300)),
            ExtraField::Prefix(b"/home/a/envs/ml/ml"),
            ExtraField::Other {
                id: 0x9999,
                data: b"xyz",
            },
        ] {
            let mut out = Vec::new();
            field.write(&mut out);
            assert_eq!(fields(&out).collect::<Vec<_>>(), vec![field]);
        }
    }

    #[test]
    fn malformed_known_fields_are_skipped_and_other_writers_fields_are_read() {
        // "ux" with a 9-byte uid, then Info-ZIP's 16-bit "Ux".
        let block = [
            0x75, 0x78, 5, 0, 1, 9, 0, 0, 0, 0x55, 0x78, 4, 0, 7, 0, 8, 0,
        ];
        assert_eq!(unix_owner(&block[..9]), None);
        assert_eq!(unix_owner(&block), Some((7, 8)));
        // "UT" whose flags say no mtime.
        assert_eq!(mtime(&[0x55, 0x54, 1, 0, 0]), None);
        // A length past the end ends the block.
        assert_eq!(fields(&[1, 0, 9, 0, 1]).count(), 0);
    }
}
