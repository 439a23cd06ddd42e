//! ZIP records as PKWARE's APPNOTE 6.3 and Info-ZIP's extra-field notes lay them out: parsing of the
//! end records, central and local headers, and encoding of the records our writer emits.
//!
//! We read and write these bytes ourselves rather than through the `zip` crate because the archive is
//! the product's core: names are raw bytes (not necessarily UTF-8), uid/gid live in Info-ZIP's "ux"
//! field, the index must be built from the central directory alone (no I/O per entry), and the writer
//! must stream entries of any size with bounded memory. Every parser here is total: malformed input is
//! an error, never a panic (see the property tests in `tests/fuzz_archive.rs`).

pub const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
pub const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
pub const EOCD_SIG: u32 = 0x0605_4b50;
pub const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
pub const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;

pub const LOCAL_HEADER_LEN: usize = 30;
pub const CENTRAL_HEADER_LEN: usize = 46;
pub const EOCD_LEN: usize = 22;
pub const ZIP64_EOCD_LEN: usize = 56;
pub const ZIP64_LOCATOR_LEN: usize = 20;

pub const METHOD_STORED: u16 = 0;
pub const METHOD_DEFLATED: u16 = 8;
/// Zstandard as APPNOTE 6.3.7 numbers it; some early writers used 20.
pub const METHOD_ZSTD: u16 = 93;
pub const METHOD_ZSTD_LEGACY: u16 = 20;

pub const FLAG_ENCRYPTED: u16 = 1;
pub const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
pub const FLAG_UTF8: u16 = 1 << 11;

pub const HOST_MSDOS: u8 = 0;
pub const HOST_UNIX: u8 = 3;
pub const HOST_MACOS: u8 = 19;

pub const EXTRA_ZIP64: u16 = 0x0001;
pub const EXTRA_PKWARE_UNIX: u16 = 0x000d;
pub const EXTRA_EXT_TIMESTAMP: u16 = 0x5455; // "UT"
pub const EXTRA_INFOZIP_UNIX_OLD: u16 = 0x5855; // "UX"
pub const EXTRA_INFOZIP_UNIX_16: u16 = 0x7855; // "Ux"
pub const EXTRA_INFOZIP_UNIX: u16 = 0x7875; // "ux"
/// conda-fuse's seek table ("CF"), central directory only; other readers skip unknown fields.
pub const EXTRA_SEEK_TABLE: u16 = 0x4643;
/// conda-fuse's hard-link group ("CL"), central directory only: entries with the same group are
/// names of one file. Each still holds the full content, so other readers see copies.
pub const EXTRA_LINK_GROUP: u16 = 0x4c43;

/// conda-fuse's device number ("CD"), central directory only: the major and minor number of a
/// character or block device entry (u32 each).
pub const EXTRA_DEVICE: u16 = 0x4443;

pub fn encode_device(rdev: u64, out: &mut Vec<u8>) {
    let (major, minor) = (
        libc::major(rdev as libc::dev_t),
        libc::minor(rdev as libc::dev_t),
    );
    out.extend_from_slice(&EXTRA_DEVICE.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&major.to_le_bytes());
    out.extend_from_slice(&minor.to_le_bytes());
}

pub fn decode_device(extra: &[u8]) -> Option<u64> {
    let mut b = Bytes::new(extra_field(extra, EXTRA_DEVICE)?);
    let (major, minor) = (b.u32()?, b.u32()?);
    Some(libc::makedev(major, minor))
}

pub fn encode_link_group(group: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&EXTRA_LINK_GROUP.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&group.to_le_bytes());
}

pub fn decode_link_group(extra: &[u8]) -> Option<u64> {
    Bytes::new(extra_field(extra, EXTRA_LINK_GROUP)?).u64()
}

/// Field values that mean "the real value is in the zip64 extra field".
pub const ZIP64_U32: u32 = u32::MAX;
pub const ZIP64_U16: u16 = u16::MAX;

/// Little-endian cursor over a byte slice; every read is bounds-checked.
pub struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Bytes { buf, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// An unsigned little-endian integer of 1 to 8 bytes (Info-ZIP's variable-size uid/gid).
    pub fn uint(&mut self, size: usize) -> Option<u64> {
        if size == 0 || size > 8 {
            return None;
        }
        let b = self.take(size)?;
        Some(
            b.iter()
                .rev()
                .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
        )
    }
}

/// The fixed fields of a central directory header plus its variable parts.
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
    /// Parses one header at the start of `buf`; returns it and its total length.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, usize), &'static str> {
        let mut b = Bytes::new(buf);
        let short = "central directory ends inside a header";
        if b.u32().ok_or(short)? != CENTRAL_HEADER_SIG {
            return Err("central directory header signature missing");
        }
        let version_made_by = b.u16().ok_or(short)?;
        let _version_needed = b.u16().ok_or(short)?;
        let flags = b.u16().ok_or(short)?;
        let method = b.u16().ok_or(short)?;
        let dos_time = b.u16().ok_or(short)?;
        let dos_date = b.u16().ok_or(short)?;
        let crc32 = b.u32().ok_or(short)?;
        let compressed32 = b.u32().ok_or(short)?;
        let uncompressed32 = b.u32().ok_or(short)?;
        let name_len = b.u16().ok_or(short)? as usize;
        let extra_len = b.u16().ok_or(short)? as usize;
        let comment_len = b.u16().ok_or(short)? as usize;
        let disk_start = b.u16().ok_or(short)?;
        let _internal_attr = b.u16().ok_or(short)?;
        let external_attr = b.u32().ok_or(short)?;
        let offset32 = b.u32().ok_or(short)?;
        let name = b.take(name_len).ok_or(short)?;
        let extra = b.take(extra_len).ok_or(short)?;
        b.take(comment_len).ok_or(short)?;

        let mut header = CentralHeader {
            version_made_by,
            flags,
            method,
            dos_time,
            dos_date,
            crc32,
            compressed_size: u64::from(compressed32),
            uncompressed_size: u64::from(uncompressed32),
            external_attr,
            local_header_offset: u64::from(offset32),
            name,
            extra,
        };
        if uncompressed32 == ZIP64_U32
            || compressed32 == ZIP64_U32
            || offset32 == ZIP64_U32
            || disk_start == ZIP64_U16
        {
            if let Some(z) = extra_field(extra, EXTRA_ZIP64) {
                let mut z = Bytes::new(z);
                // The zip64 field holds only the values whose header field overflowed, in this order.
                if uncompressed32 == ZIP64_U32 {
                    header.uncompressed_size = z.u64().ok_or("zip64 field too short")?;
                }
                if compressed32 == ZIP64_U32 {
                    header.compressed_size = z.u64().ok_or("zip64 field too short")?;
                }
                if offset32 == ZIP64_U32 {
                    header.local_header_offset = z.u64().ok_or("zip64 field too short")?;
                }
            }
        }
        Ok((header, b.pos))
    }

    pub fn host_system(&self) -> u8 {
        (self.version_made_by >> 8) as u8
    }
}

/// Iterates the (id, data) pairs of an extra-field block; stops at the first malformed field.
pub fn extra_fields(extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut b = Bytes::new(extra);
    std::iter::from_fn(move || {
        let id = b.u16()?;
        let len = b.u16()? as usize;
        let data = b.take(len)?;
        Some((id, data))
    })
}

pub fn extra_field(extra: &[u8], id: u16) -> Option<&[u8]> {
    extra_fields(extra).find(|(i, _)| *i == id).map(|(_, d)| d)
}

/// Modification time from an extended-timestamp ("UT") field: flag bit 0 says mtime comes first.
pub fn ut_mtime(data: &[u8]) -> Option<i64> {
    let mut b = Bytes::new(data);
    let flags = b.u8()?;
    if flags & 1 == 0 {
        return None;
    }
    b.u32().map(|t| i64::from(t as i32))
}

/// uid and gid from whichever Unix extra field the writer used.
pub fn unix_owner(extra: &[u8]) -> Option<(u32, u32)> {
    for (id, data) in extra_fields(extra) {
        let mut b = Bytes::new(data);
        let owner = match id {
            EXTRA_INFOZIP_UNIX => (|| {
                if b.u8()? != 1 {
                    return None;
                }
                let uid_size = b.u8()? as usize;
                let uid = b.uint(uid_size)?;
                let gid_size = b.u8()? as usize;
                let gid = b.uint(gid_size)?;
                Some((u32::try_from(uid).ok()?, u32::try_from(gid).ok()?))
            })(),
            EXTRA_INFOZIP_UNIX_16 => (|| Some((u32::from(b.u16()?), u32::from(b.u16()?))))(),
            EXTRA_INFOZIP_UNIX_OLD | EXTRA_PKWARE_UNIX => (|| {
                b.take(8)?; // atime, mtime
                Some((u32::from(b.u16()?), u32::from(b.u16()?)))
            })(),
            _ => None,
        };
        if owner.is_some() {
            return owner;
        }
    }
    None
}

/// Where to start decompressing inside a large entry. The entry is one standard deflate stream (or
/// zstd stream) whose compressor was reset every `segment_size` uncompressed bytes (a deflate full
/// flush, or a new zstd frame), so decompression can begin at any segment without the ones before.
/// Each segment's CRC-32 keeps random reads verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekTable {
    pub segment_size: u32,
    /// Per segment: offset of its compressed bytes from the start of the entry's data, and the
    /// CRC-32 of its uncompressed bytes.
    pub segments: Vec<(u64, u32)>,
}

/// The longest a central header's other extra fields get: zip64 (4 + 24 bytes), the extended
/// timestamp (4 + 5), Info-ZIP's Unix owner (4 + 11), the link group (4 + 8) and the device
/// number (4 + 8; never with a seek table, but counted all the same).
const OTHER_CENTRAL_EXTRA_MAX: usize = 28 + 9 + 15 + 12 + 12;

impl SeekTable {
    /// Most segments one seek table can describe: the whole extra block of a central header (this
    /// table, its 4-byte field header and 9 bytes of its own, and every other field) must fit the
    /// header's 16-bit extra length (APPNOTE 4.4.11).
    pub const MAX_SEGMENTS: usize = (u16::MAX as usize - OTHER_CENTRAL_EXTRA_MAX - 4 - 9) / 12;

    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = 1 + 4 + 4 + 12 * self.segments.len();
        out.extend_from_slice(&EXTRA_SEEK_TABLE.to_le_bytes());
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.push(1);
        out.extend_from_slice(&self.segment_size.to_le_bytes());
        out.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        for (offset, crc) in &self.segments {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
        }
    }

    /// Parses and validates a table for an entry of the given sizes; None if absent or unusable.
    pub fn decode(extra: &[u8], compressed_size: u64, uncompressed_size: u64) -> Option<SeekTable> {
        let mut b = Bytes::new(extra_field(extra, EXTRA_SEEK_TABLE)?);
        if b.u8()? != 1 {
            return None;
        }
        let segment_size = b.u32()?;
        let count = b.u32()? as usize;
        if segment_size == 0
            || count == 0
            || count > Self::MAX_SEGMENTS
            || b.remaining() != count * 12
        {
            return None;
        }
        let expected = uncompressed_size.div_ceil(u64::from(segment_size));
        if expected != count as u64 {
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

/// Where an entry's data begins, from its local header at `local_header_offset` (given the first
/// bytes of that header).
pub fn local_data_offset(local_header_offset: u64, header: &[u8]) -> Result<u64, &'static str> {
    let mut b = Bytes::new(header);
    if b.u32() != Some(LOCAL_HEADER_SIG) {
        return Err("local file header signature missing");
    }
    b.take(22).ok_or("local file header truncated")?;
    let name_len = u64::from(b.u16().ok_or("local file header truncated")?);
    let extra_len = u64::from(b.u16().ok_or("local file header truncated")?);
    local_header_offset
        .checked_add(LOCAL_HEADER_LEN as u64 + name_len + extra_len)
        .ok_or("local file header offset overflows")
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

/// Finds the end record in `tail`, the last bytes of a file of `file_len` bytes starting at
/// `tail_start`. `read_at` fetches the zip64 record when the classic one points to it.
pub fn find_end_record(
    tail: &[u8],
    tail_start: u64,
    file_len: u64,
    mut read_at: impl FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
) -> Result<EndRecord, String> {
    if tail.len() < EOCD_LEN {
        return Err(format!(
            "file is {file_len} bytes, too short to be a zip archive"
        ));
    }
    // Scan backwards: the record is followed only by its comment, at most 65535 bytes.
    let mut candidate = None;
    for pos in (0..=tail.len() - EOCD_LEN).rev() {
        if tail[pos..pos + 4] == EOCD_SIG.to_le_bytes() {
            let comment_len = u16::from_le_bytes([tail[pos + 20], tail[pos + 21]]) as usize;
            if pos + EOCD_LEN + comment_len <= tail.len() {
                candidate = Some(pos);
                break;
            }
        }
    }
    let pos = candidate.ok_or_else(|| {
        "no end-of-central-directory record: not a zip archive, or truncated".to_string()
    })?;
    let eocd_pos = tail_start + pos as u64;
    let mut b = Bytes::new(&tail[pos + 4..]);
    let disk = b.u16().unwrap_or(0);
    let cd_disk = b.u16().unwrap_or(0);
    let _entries_on_disk = b.u16().unwrap_or(0);
    let entries16 = b.u16().unwrap_or(0);
    let cd_size32 = b.u32().unwrap_or(0);
    let cd_offset32 = b.u32().unwrap_or(0);

    let mut record = EndRecord {
        entries: u64::from(entries16),
        cd_size: u64::from(cd_size32),
        cd_offset: u64::from(cd_offset32),
        cd_start: 0,
    };
    let mut cd_end = eocd_pos;

    // A zip64 locator sits right before the classic record when the archive needs zip64.
    if eocd_pos >= ZIP64_LOCATOR_LEN as u64 {
        let loc_pos = eocd_pos - ZIP64_LOCATOR_LEN as u64;
        let loc = if loc_pos >= tail_start {
            tail[(loc_pos - tail_start) as usize..pos].to_vec()
        } else {
            read_at(loc_pos, ZIP64_LOCATOR_LEN).map_err(|e| e.to_string())?
        };
        let mut l = Bytes::new(&loc);
        if l.u32() == Some(ZIP64_LOCATOR_SIG) {
            let _disk = l.u32();
            let z_offset = l.u64().ok_or("zip64 locator truncated")?;
            // The recorded offset ignores prepended bytes; the record itself sits just before the
            // locator unless the writer put extensible data after it.
            let z_pos = if z_offset
                .checked_add(ZIP64_EOCD_LEN as u64)
                .is_some_and(|end| end <= loc_pos)
            {
                let at = read_at(z_offset, 4).map_err(|e| e.to_string())?;
                if at == ZIP64_EOCD_SIG.to_le_bytes() {
                    z_offset
                } else {
                    loc_pos
                        .checked_sub(ZIP64_EOCD_LEN as u64)
                        .ok_or("zip64 end record missing")?
                }
            } else {
                loc_pos
                    .checked_sub(ZIP64_EOCD_LEN as u64)
                    .ok_or("zip64 end record missing")?
            };
            let z = read_at(z_pos, ZIP64_EOCD_LEN).map_err(|e| e.to_string())?;
            let mut z = Bytes::new(&z);
            if z.u32() != Some(ZIP64_EOCD_SIG) {
                return Err("zip64 end-of-central-directory record missing or damaged".into());
            }
            z.take(8 + 2 + 2 + 4 + 4)
                .ok_or("zip64 end record truncated")?;
            let _on_disk = z.u64();
            record.entries = z.u64().ok_or("zip64 end record truncated")?;
            record.cd_size = z.u64().ok_or("zip64 end record truncated")?;
            record.cd_offset = z.u64().ok_or("zip64 end record truncated")?;
            cd_end = z_pos;
        }
    }
    if disk != 0 && disk != ZIP64_U16 || cd_disk != 0 && cd_disk != ZIP64_U16 {
        return Err("multi-volume (split) archives are not supported".into());
    }
    record.cd_start = cd_end
        .checked_sub(record.cd_size)
        .ok_or("central directory size is larger than the file")?;
    if record.cd_start < record.cd_offset {
        return Err(format!(
            "central directory offset {} points past its real position {}",
            record.cd_offset, record.cd_start
        ));
    }
    Ok(record)
}

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

const VERSION_MADE_BY: u16 = (HOST_UNIX as u16) << 8 | 63;

impl HeaderFields<'_> {
    fn needs_zip64_sizes(&self) -> bool {
        self.compressed_size >= u64::from(ZIP64_U32)
            || self.uncompressed_size >= u64::from(ZIP64_U32)
    }

    fn version_needed(&self, zip64: bool) -> u16 {
        match (zip64, self.method) {
            (_, METHOD_ZSTD) => 63,
            (true, _) => 45,
            (false, METHOD_STORED) if self.mode & libc::S_IFMT != libc::S_IFDIR => 10,
            _ => 20,
        }
    }

    fn flags(&self) -> u16 {
        if let Some(f) = self.flags {
            return f;
        }
        if std::str::from_utf8(self.name).is_ok() && !self.name.is_ascii() {
            FLAG_UTF8
        } else {
            0
        }
    }

    fn external_attr(&self) -> u32 {
        let mut dos = 0u32;
        if self.mode & libc::S_IFMT == libc::S_IFDIR {
            dos |= 0x10;
        }
        if self.mode & 0o200 == 0 {
            dos |= 0x01;
        }
        (self.mode << 16) | dos
    }

    fn push_unix_extras(&self, out: &mut Vec<u8>) {
        let mtime = self.mtime.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        out.extend_from_slice(&EXTRA_EXT_TIMESTAMP.to_le_bytes());
        out.extend_from_slice(&5u16.to_le_bytes());
        out.push(1);
        out.extend_from_slice(&mtime.to_le_bytes());
        out.extend_from_slice(&EXTRA_INFOZIP_UNIX.to_le_bytes());
        out.extend_from_slice(&11u16.to_le_bytes());
        out.extend_from_slice(&[1, 4]);
        out.extend_from_slice(&self.uid.to_le_bytes());
        out.push(4);
        out.extend_from_slice(&self.gid.to_le_bytes());
    }

    /// Appends the local file header. Sizes are known up front, so no data descriptor is needed.
    pub fn write_local(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let zip64 = self.needs_zip64_sizes();
        let mut extra = Vec::with_capacity(48);
        if zip64 {
            extra.extend_from_slice(&EXTRA_ZIP64.to_le_bytes());
            extra.extend_from_slice(&16u16.to_le_bytes());
            extra.extend_from_slice(&self.uncompressed_size.to_le_bytes());
            extra.extend_from_slice(&self.compressed_size.to_le_bytes());
        }
        self.push_unix_extras(&mut extra);
        out.extend_from_slice(&LOCAL_HEADER_SIG.to_le_bytes());
        out.extend_from_slice(&self.version_needed(zip64).to_le_bytes());
        out.extend_from_slice(&self.flags().to_le_bytes());
        out.extend_from_slice(&self.method.to_le_bytes());
        out.extend_from_slice(&self.dos_datetime.0.to_le_bytes());
        out.extend_from_slice(&self.dos_datetime.1.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
        let (c, u) = if zip64 {
            (ZIP64_U32, ZIP64_U32)
        } else {
            (self.compressed_size as u32, self.uncompressed_size as u32)
        };
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&u.to_le_bytes());
        out.extend_from_slice(&field_len(self.name.len(), "name")?.to_le_bytes());
        out.extend_from_slice(&field_len(extra.len(), "extra fields")?.to_le_bytes());
        out.extend_from_slice(self.name);
        out.extend_from_slice(&extra);
        Ok(())
    }

    /// Appends the central directory header for an entry whose local header is at `offset`.
    pub fn write_central(&self, offset: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
        let big_u = self.uncompressed_size >= u64::from(ZIP64_U32);
        let big_c = self.compressed_size >= u64::from(ZIP64_U32);
        let big_o = offset >= u64::from(ZIP64_U32);
        let mut extra = Vec::with_capacity(56);
        if big_u || big_c || big_o {
            let mut z = Vec::with_capacity(24);
            if big_u {
                z.extend_from_slice(&self.uncompressed_size.to_le_bytes());
            }
            if big_c {
                z.extend_from_slice(&self.compressed_size.to_le_bytes());
            }
            if big_o {
                z.extend_from_slice(&offset.to_le_bytes());
            }
            extra.extend_from_slice(&EXTRA_ZIP64.to_le_bytes());
            extra.extend_from_slice(&(z.len() as u16).to_le_bytes());
            extra.extend_from_slice(&z);
        }
        self.push_unix_extras(&mut extra);
        extra.extend_from_slice(self.central_extra);
        let zip64 = big_u || big_c || big_o;
        let fit = |v: u64, big: bool| if big { ZIP64_U32 } else { v as u32 };
        out.extend_from_slice(&CENTRAL_HEADER_SIG.to_le_bytes());
        out.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
        out.extend_from_slice(&self.version_needed(zip64).to_le_bytes());
        out.extend_from_slice(&self.flags().to_le_bytes());
        out.extend_from_slice(&self.method.to_le_bytes());
        out.extend_from_slice(&self.dos_datetime.0.to_le_bytes());
        out.extend_from_slice(&self.dos_datetime.1.to_le_bytes());
        out.extend_from_slice(&self.crc32.to_le_bytes());
        out.extend_from_slice(&fit(self.compressed_size, big_c).to_le_bytes());
        out.extend_from_slice(&fit(self.uncompressed_size, big_u).to_le_bytes());
        out.extend_from_slice(&field_len(self.name.len(), "name")?.to_le_bytes());
        out.extend_from_slice(&field_len(extra.len(), "extra fields")?.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // comment length
        out.extend_from_slice(&0u16.to_le_bytes()); // disk number start
        out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        out.extend_from_slice(&self.external_attr().to_le_bytes());
        out.extend_from_slice(&fit(offset, big_o).to_le_bytes());
        out.extend_from_slice(self.name);
        out.extend_from_slice(&extra);
        Ok(())
    }
}

/// A length for one of a header's 16-bit length fields; longer is refused, never truncated (a
/// truncated length makes every later header unreadable).
fn field_len(len: usize, what: &str) -> std::io::Result<u16> {
    u16::try_from(len).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("an entry's {what} take {len} bytes, more than a zip header can hold (65535)"),
        )
    })
}

/// Appends the end records for a central directory of `entries` entries, `cd_size` bytes at
/// `cd_offset`; zip64 records are added only when a classic field would overflow.
pub fn write_end_records(entries: u64, cd_offset: u64, cd_size: u64, out: &mut Vec<u8>) {
    let zip64 = entries >= u64::from(ZIP64_U16)
        || cd_offset >= u64::from(ZIP64_U32)
        || cd_size >= u64::from(ZIP64_U32);
    if zip64 {
        let z_pos = cd_offset + cd_size;
        out.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&((ZIP64_EOCD_LEN - 12) as u64).to_le_bytes());
        out.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&entries.to_le_bytes());
        out.extend_from_slice(&entries.to_le_bytes());
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&z_pos.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    let e16 = if zip64 { ZIP64_U16 } else { entries as u16 };
    let fit = |v: u64| if zip64 { ZIP64_U32 } else { v as u32 };
    out.extend_from_slice(&EOCD_SIG.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&e16.to_le_bytes());
    out.extend_from_slice(&e16.to_le_bytes());
    out.extend_from_slice(&fit(cd_size).to_le_bytes());
    out.extend_from_slice(&fit(cd_offset).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &[u8], size: u64) -> HeaderFields<'_> {
        HeaderFields {
            name,
            method: METHOD_DEFLATED,
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

    #[test]
    fn central_header_round_trips_with_and_without_zip64() {
        for (size, offset) in [(100u64, 7u64), (5 << 30, 9 << 30), (10, 1 << 33)] {
            let f = fields(b"dir/\xff\xfename", size);
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
            assert_eq!(unix_owner(h.extra), Some((1234, 5678)));
            let ut = extra_field(h.extra, EXTRA_EXT_TIMESTAMP).unwrap();
            assert_eq!(ut_mtime(ut), Some(1_700_000_000));
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
        let mut f = fields(b"big.so", 6 << 30);
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
        assert!(f.write_central(9 << 30, &mut Vec::new()).is_err());
    }

    #[test]
    fn local_header_gives_data_offset() {
        let f = fields(b"a/b.txt", 5 << 30);
        let mut out = Vec::new();
        f.write_local(&mut out).unwrap();
        assert_eq!(
            local_data_offset(1000, &out).unwrap(),
            1000 + out.len() as u64
        );
        assert!(local_data_offset(0, b"PK\x01\x02").is_err());
        assert!(local_data_offset(0, &out[..10]).is_err());
    }

    #[test]
    fn end_records_found_with_and_without_zip64() {
        for (entries, cd_offset) in [(3u64, 100u64), (70_000, 100), (2, 5 << 30)] {
            let cd_size = 50;
            let mut tail = Vec::new();
            write_end_records(entries, cd_offset, cd_size, &mut tail);
            // Model a file whose central directory ends where the tail begins.
            let tail_start = cd_offset + cd_size;
            let file_len = tail_start + tail.len() as u64;
            let tail_copy = tail.clone();
            // Bytes before the tail read as zeros (entry data in a real file).
            let rec = find_end_record(&tail, tail_start, file_len, |pos, len| {
                Ok((pos..pos + len as u64)
                    .map(|p| {
                        p.checked_sub(tail_start)
                            .map_or(0, |s| tail_copy[s as usize])
                    })
                    .collect())
            })
            .unwrap();
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
        let loc = tail.len() - EOCD_LEN - ZIP64_LOCATOR_LEN;
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
    fn garbage_is_rejected_without_panicking() {
        assert!(find_end_record(b"hello", 0, 5, |_, _| Ok(vec![])).is_err());
        let mut junk = vec![0u8; 100];
        junk[50..54].copy_from_slice(&EOCD_SIG.to_le_bytes());
        junk[66..70].copy_from_slice(&u32::MAX.to_le_bytes()); // cd size beyond the file
        assert!(find_end_record(&junk, 0, 100, |_, _| Ok(vec![0; 56])).is_err());
        assert!(CentralHeader::parse(&[0x50, 0x4b, 0x01, 0x02, 0, 0]).is_err());
        assert_eq!(unix_owner(&[0x75, 0x78, 0x05, 0x00, 1, 9, 0, 0, 0]), None);
        assert_eq!(Bytes::new(&[1, 2]).uint(9), None);
    }
}
