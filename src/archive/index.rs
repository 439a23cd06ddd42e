//! The archive's central directory parsed once into a compact, immutable table: one `Entry` per
//! central header, names in a single byte arena. Built with one read of the central directory, so
//! mounting an archive of 70,000 entries costs milliseconds and a few MB.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::ArchiveError;
use super::format::{self, CentralHeader, FormatError, SeekTable};
use super::meta::Meta;

#[derive(Debug, Clone)]
pub struct Entry {
    name_start: u32,
    name_len: u32,
    /// Absolute offset of the local header (prepended bytes already added).
    pub local_header_offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub crc32: u32,
    pub method: u16,
    pub flags: u16,
    pub meta: Meta,
    /// Where decompression may start inside a large entry (archives written by conda-fuse).
    pub seek: Option<Box<SeekTable>>,
    /// Its link group, in archives written by conda-fuse (see `format::link_group`).
    pub link_group: Option<u64>,
}

impl Entry {
    pub fn encrypted(&self) -> bool {
        self.flags & format::FLAG_ENCRYPTED != 0
    }
}

#[derive(Debug)]
pub struct Index {
    entries: Vec<Entry>,
    names: Vec<u8>,
    /// Where the central directory starts; all entry data must lie before it.
    pub cd_start: u64,
    pub file_len: u64,
    /// CRC-32 of the central directory: with the size and entry count, it identifies a version of
    /// an archive (the upper layer records which version its changes apply to).
    pub cd_crc: u32,
    /// The entries that name the prefix their content was written for ("CP"), in entry order, each
    /// with its prefix's number in `prefixes` (few distinct prefixes, named by many entries).
    held: Vec<(u32, u32)>,
    prefixes: Vec<Box<[u8]>>,
}

impl Index {
    pub fn read(file: &File, path: &Path) -> Result<Index, ArchiveError> {
        let io_err = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let not_zip = |reason: FormatError| ArchiveError::NotZip {
            path: path.to_owned(),
            reason,
        };
        let file_len = crate::hostfs::fresh_len(file).map_err(io_err)?;
        let tail_start = file_len.saturating_sub(format::end::TAIL_LEN);
        let tail = read_vec(file, tail_start, (file_len - tail_start) as usize).map_err(io_err)?;
        let end = format::find_end_record(&tail, tail_start, file_len, |pos, len| {
            read_vec(file, pos, len)
        })
        .map_err(not_zip)?;
        let cd_len = usize::try_from(end.cd_size)
            .map_err(|_| not_zip(FormatError::DirectoryLargerThanMemory))?;
        let cd = read_vec(file, end.cd_start, cd_len).map_err(io_err)?;
        let mut index =
            Self::parse(&cd, end, file_len).map_err(|(entry, reason)| ArchiveError::Corrupt {
                path: path.to_owned(),
                entry,
                reason,
            })?;
        index.cd_crc = crc32fast::hash(&cd);
        Ok(index)
    }

    /// Parses a central directory; errors carry the number of the failing entry.
    pub fn parse(
        cd: &[u8],
        end: format::EndRecord,
        file_len: u64,
    ) -> Result<Index, (u64, FormatError)> {
        // Capacity from the bytes present, never from the (untrusted) entry count alone.
        let cap = (cd.len() / CentralHeader::MIN_LEN).min(end.entries as usize);
        let mut entries = Vec::with_capacity(cap);
        let mut names = Vec::with_capacity(cd.len() / 2);
        let mut held = Vec::new();
        let mut prefix_numbers: std::collections::HashMap<&[u8], u32> = Default::default();
        let mut pos = 0usize;
        while pos < cd.len() {
            let n = entries.len() as u64;
            let (h, len) = CentralHeader::parse(&cd[pos..]).map_err(|e| (n, e))?;
            pos += len;
            let local_header_offset = h
                .local_header_offset
                .checked_add(end.shift())
                .filter(|&o| o < end.cd_start)
                .ok_or((
                    n,
                    FormatError::LocalHeaderOutsideData(h.local_header_offset),
                ))?;
            if h.compressed_size > end.cd_start {
                return Err((
                    n,
                    FormatError::CompressedSizeExceedsArchive(h.compressed_size),
                ));
            }
            let name_start =
                u32::try_from(names.len()).map_err(|_| (n, FormatError::NamesTooLarge))?;
            names.extend_from_slice(h.name);
            if let Some(prefix) = format::decode_prefix(h.extra) {
                let next = prefix_numbers.len() as u32;
                held.push((n as u32, *prefix_numbers.entry(prefix).or_insert(next)));
            }
            entries.push(Entry {
                name_start,
                name_len: h.name.len() as u32,
                local_header_offset,
                compressed_size: h.compressed_size,
                uncompressed_size: h.uncompressed_size,
                crc32: h.crc32,
                method: h.method,
                flags: h.flags,
                meta: Meta::from_central(&h),
                seek: if h.method == format::METHOD_STORED {
                    None
                } else {
                    SeekTable::decode(h.extra, h.compressed_size, h.uncompressed_size).map(Box::new)
                },
                link_group: format::decode_link_group(h.extra),
            });
        }
        // Writers disagree on the 16-bit count for >65535 entries without zip64; trust the headers
        // when the count is the truncated form of what we found.
        let found = entries.len() as u64;
        if found != end.entries && found & 0xffff != end.entries & 0xffff {
            return Err((
                found,
                FormatError::EntryCountMismatch {
                    announced: end.entries,
                    found,
                },
            ));
        }
        names.shrink_to_fit();
        let mut prefixes = vec![Box::<[u8]>::default(); prefix_numbers.len()];
        for (prefix, number) in prefix_numbers {
            prefixes[number as usize] = prefix.into();
        }
        Ok(Index {
            entries,
            names,
            cd_start: end.cd_start,
            file_len,
            cd_crc: 0,
            held,
            prefixes,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    pub fn entry(&self, i: u32) -> &Entry {
        &self.entries[i as usize]
    }
    pub fn name(&self, e: &Entry) -> &[u8] {
        &self.names[e.name_start as usize..(e.name_start + e.name_len) as usize]
    }
    /// Entry numbers by name (the last entry of a name wins, as zip readers do).
    pub fn by_name(&self) -> std::collections::HashMap<&[u8], u32> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (self.name(e), i as u32))
            .collect()
    }
    /// The prefix entry `i`'s content was written for, if the archive records it (see
    /// `format::link_group`).
    pub fn held_prefix(&self, i: u32) -> Option<&[u8]> {
        let at = self.held.binary_search_by_key(&i, |&(e, _)| e).ok()?;
        Some(&self.prefixes[self.held[at].1 as usize])
    }
    /// Every entry that records its prefix, in entry order, with it.
    pub fn held_prefixes(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.held
            .iter()
            .map(|&(e, p)| (e, &*self.prefixes[p as usize]))
    }
    /// Heap bytes held by the index (for the memory report of `status`).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.names.capacity()
            + self.held.capacity() * 8
            + self.prefixes.iter().map(|p| p.len() + 16).sum::<usize>()
    }
}

pub(crate) fn read_vec(file: &File, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf)
}
