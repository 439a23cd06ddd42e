//! Compressing a file on disk into a zip payload. Small files are read and compressed in memory;
//! large ones a batch of segments at a time, in parallel, into an unlinked temporary file. Memory
//! stays within the process's compression budget (`budget.rs`) whatever the file's size or the
//! number of cores, and segments that lie in a hole of a sparse file are never read: `truncate -s
//! 1T` costs the compressed form of its zeros, not a terabyte of reads.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::budget;
use super::compress::{
    Compressed, Compression, Payload, Segment, compress_bytes, compress_segments, has_seek_table,
    segment_size_for,
};
use super::format::{self, SeekTable};

/// Inputs up to this size are read and compressed in memory.
pub const IN_MEMORY_LIMIT: u64 = 8 << 20;

/// Compresses the file at `path`.
pub fn compress_file(path: &Path, c: Compression, spill_dir: &Path) -> io::Result<Compressed> {
    compress_open(&File::open(path)?, path, c, spill_dir)
}

/// `Read` by positioned reads, so several readers can share one open file (hard links of one
/// upper data file are planned once per name).
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Where the next data at or after `from` is (None: only a hole follows). Filesystems that do not
/// track holes report data everywhere.
fn next_data(file: &File, from: u64) -> io::Result<Option<u64>> {
    match nix::unistd::lseek(file.as_fd(), from as i64, nix::unistd::Whence::SeekData) {
        Ok(at) => Ok(Some(at as u64)),
        Err(nix::errno::Errno::ENXIO) => Ok(None),
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP) => Ok(Some(from)),
        Err(e) => Err(e.into()),
    }
}

/// Compresses the open file `file` (`shown` names it in errors).
pub fn compress_open(
    file: &File,
    shown: &Path,
    c: Compression,
    spill_dir: &Path,
) -> io::Result<Compressed> {
    let size = file.metadata()?.len();
    if size <= IN_MEMORY_LIMIT {
        let _permit = budget::COMPRESSION.take(2 * size);
        let mut data = Vec::with_capacity(size as usize);
        At { file, pos: 0 }.read_to_end(&mut data)?;
        return compress_bytes(data, c);
    }
    let seg = segment_size_for(size);
    let count = size.div_ceil(seg);
    // Input and output of a segment, a batch of them at once within the budget.
    let per_segment = 2 * seg;
    let cores = rayon::current_num_threads().max(1) as u64;
    let batch = (budget::COMPRESSION.total() / per_segment).clamp(1, cores);
    let spill = tempfile::tempfile_in(spill_dir)?;
    let mut out = BufWriter::with_capacity(1 << 20, &spill);
    let mut table = Vec::new();
    let mut hasher = crc32fast::Hasher::new();
    let (mut written, mut holes) = (0u64, 0u64);
    let mut first = 0u64;
    while first < count {
        let n = batch.min(count - first);
        let _permit = budget::COMPRESSION.take(n * per_segment);
        let mut buf = vec![0u8; (n * seg).min(size - first * seg) as usize];
        let kinds = read_segments(file, shown, first * seg, seg, &mut buf)?;
        holes += kinds
            .iter()
            .filter(|(hole, _)| *hole)
            .map(|(_, len)| *len as u64)
            .sum::<u64>();
        let segments: Vec<Segment<'_>> = kinds
            .iter()
            .enumerate()
            .map(|(k, &(hole, len))| {
                if hole {
                    Segment::Hole(len)
                } else {
                    let at = k * seg as usize;
                    Segment::Data(&buf[at..at + len])
                }
            })
            .collect();
        let ends = c == Compression::Store || first + n == count;
        written += compress_segments(
            &segments,
            c,
            ends,
            written,
            &mut out,
            &mut table,
            &mut hasher,
        )?;
        first += n;
    }
    let mut probe = [0u8; 1];
    if file.read_at(&mut probe, size)? != 0 {
        return Err(changed(shown));
    }
    out.flush()?;
    drop(out);
    let crc32 = hasher.finalize();
    if c != Compression::Store && written >= size {
        drop(spill);
        return store_instead(file, shown, spill_dir, (crc32, size));
    }
    let seek = (c != Compression::Store && table.len() > 1 && has_seek_table(size, seg)).then_some(
        SeekTable {
            segment_size: seg as u32,
            segments: table,
        },
    );
    Ok(Compressed {
        method: c.method(),
        crc32,
        uncompressed_size: size,
        payload: Payload::Spill {
            file: spill,
            len: written,
        },
        seek,
        holes,
    })
}

/// Reads the segments of `file` from `start` into `buf` (`seg` bytes each, the last maybe
/// shorter), leaving holes unread. Returns each segment's (is a hole, length).
fn read_segments(
    file: &File,
    shown: &Path,
    start: u64,
    seg: u64,
    buf: &mut [u8],
) -> io::Result<Vec<(bool, usize)>> {
    let mut kinds = Vec::new();
    for (k, chunk) in buf.chunks_mut(seg as usize).enumerate() {
        let at = start + k as u64 * seg;
        let len = chunk.len();
        let hole = next_data(file, at)?.is_none_or(|d| d >= at + len as u64);
        if !hole {
            file.read_exact_at(chunk, at).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => changed(shown),
                _ => e,
            })?;
        }
        kinds.push((hole, len));
    }
    Ok(kinds)
}

/// An incompressible file, stored instead: read again, and checked against what the first pass
/// saw (its CRC and size), so a file that changed meanwhile is refused.
fn store_instead(
    file: &File,
    shown: &Path,
    spill_dir: &Path,
    (crc32, size): (u32, u64),
) -> io::Result<Compressed> {
    let spill = tempfile::tempfile_in(spill_dir)?;
    let mut w = BufWriter::with_capacity(1 << 20, &spill);
    let (crc, n) = copy_hashing(&mut At { file, pos: 0 }, &mut w)?;
    w.flush()?;
    drop(w);
    if (crc, n) != (crc32, size) {
        return Err(changed(shown));
    }
    Ok(Compressed {
        method: format::METHOD_STORED,
        crc32,
        uncompressed_size: n,
        payload: Payload::Spill {
            file: spill,
            len: n,
        },
        seek: None,
        holes: 0,
    })
}

/// A file's size or content changed under the reader: something was writing it.
#[derive(Debug, thiserror::Error)]
#[error("{} changed while it was being packed", crate::display::path(.0))]
pub struct SourceChanged(pub std::path::PathBuf);

fn changed(path: &Path) -> io::Error {
    io::Error::other(SourceChanged(path.to_path_buf()))
}

fn copy_hashing(src: &mut dyn Read, dst: &mut dyn Write) -> io::Result<(u32, u64)> {
    let mut buf = vec![0u8; 1 << 20];
    let mut hasher = crc32fast::Hasher::new();
    let mut total = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((hasher.finalize(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_of_sparse_files_are_not_read_and_come_back_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let f = File::create(&path).unwrap();
        let size = (64u64 << 20) + 12345;
        f.set_len(size).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(b"tail", size - 4).unwrap();
        drop(f);
        for c in [Compression::Deflate(6), Compression::Zstd(3)] {
            let mut out = compress_file(&path, c, dir.path()).unwrap();
            // All but the first and last segment lie in the hole (where the filesystem knows).
            if next_data(&File::open(&path).unwrap(), 4).unwrap() != Some(4) {
                assert!(
                    out.holes >= size - (2 << 20),
                    "{c:?}: {} of holes",
                    out.holes
                );
            }
            let mut raw = Vec::new();
            out.payload.reader().unwrap().read_to_end(&mut raw).unwrap();
            let data = super::super::compress::tests::inflate(out.method, &raw);
            assert_eq!(data.len() as u64, size);
            assert_eq!(&data[..4], b"head");
            assert_eq!(&data[data.len() - 4..], b"tail");
            assert!(data[4..data.len() - 4].iter().all(|&b| b == 0));
            assert_eq!(out.crc32, crc32fast::hash(&data));
        }
    }

    #[test]
    fn large_files_spill_with_every_method() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let data: Vec<u8> = (0..(IN_MEMORY_LIMIT + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        for c in [
            Compression::Store,
            Compression::Deflate(1),
            Compression::Zstd(3),
        ] {
            let mut out = compress_file(&path, c, dir.path()).unwrap();
            assert_eq!(out.uncompressed_size, data.len() as u64);
            assert_eq!(out.crc32, crc32fast::hash(&data));
            let mut raw = Vec::new();
            out.payload.reader().unwrap().read_to_end(&mut raw).unwrap();
            assert_eq!(raw.len() as u64, out.payload.len());
            assert!(
                super::super::compress::tests::inflate(out.method, &raw) == data,
                "{c:?} round trip"
            );
            assert_eq!(out.seek.is_some(), c != Compression::Store, "{c:?}");
        }
    }

    #[test]
    fn segments_stay_bounded_and_huge_files_go_without_a_table() {
        assert_eq!(segment_size_for(1 << 30), 1 << 20);
        assert_eq!(
            segment_size_for(1 << 40),
            super::super::compress::MAX_SEGMENT
        );
        assert!(!has_seek_table(
            1 << 40,
            super::super::compress::MAX_SEGMENT
        ));
        assert!(has_seek_table(5 << 30, segment_size_for(5 << 30)));
    }
}
