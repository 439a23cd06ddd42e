//! An open archive: the index plus positioned reads of entry data. Every read is a `pread` on one
//! shared file descriptor, so any number of threads read at once without a shared cursor.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{ArchiveError, EntryError};
use super::format;
use super::id::ArchiveId;
use super::index::{Entry, Index};

/// Buffer for reading compressed bytes; large enough that a sequential decode issues few preads.
const RAW_BUF: usize = 256 * 1024;

pub struct Archive {
    file: Arc<File>,
    id: ArchiveId,
    index: Index,
    /// Absolute start of each entry's data, resolved from its local header on first use (0 = not yet).
    data_starts: Vec<AtomicU64>,
    /// Bytes produced by decompression so far (for `status`).
    decompressed: Arc<AtomicU64>,
    /// Local header offsets in file order (built on first use by `span`).
    header_offsets: std::sync::OnceLock<Vec<u64>>,
    /// The file's modification time when opened (seconds since the epoch).
    mtime: i64,
}

impl Archive {
    /// Opens the archive at `path`, known from then on by its identity (its resolved path).
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let io_err = |source| ArchiveError::Io {
            path: path.to_owned(),
            source,
        };
        let file = crate::regular_file::open(path).map_err(io_err)?;
        let id = ArchiveId::resolve(path).map_err(io_err)?;
        let index = Index::read(&file, path)?;
        let mtime = {
            use std::os::unix::fs::MetadataExt;
            file.metadata().map_or(0, |m| m.mtime())
        };
        let data_starts = (0..index.len()).map(|_| AtomicU64::new(0)).collect();
        Ok(Archive {
            file: Arc::new(file),
            id,
            index,
            data_starts,
            decompressed: Arc::new(AtomicU64::new(0)),
            header_offsets: std::sync::OnceLock::new(),
            mtime,
        })
    }

    /// The same open archive, known by the name it was renamed to (a temporary archive put in
    /// place: its descriptor reads the same file).
    pub fn renamed(mut self, path: &Path) -> Archive {
        self.id = ArchiveId::of(path);
        self
    }

    /// When the archive file was last changed (what the mount's root directory shows).
    pub fn mtime(&self) -> i64 {
        self.mtime
    }

    pub fn path(&self) -> &Path {
        self.id.path()
    }
    pub fn id(&self) -> &ArchiveId {
        &self.id
    }
    pub fn index(&self) -> &Index {
        &self.index
    }
    pub fn file(&self) -> &File {
        &self.file
    }
    pub fn file_arc(&self) -> &Arc<File> {
        &self.file
    }

    /// The byte range of entry `i`'s stored (possibly compressed) data.
    pub fn data_range(&self, i: u32) -> Result<Range<u64>, EntryError> {
        let e = self.index.entry(i);
        let mut start = self.data_starts[i as usize].load(Ordering::Relaxed);
        if start == 0 {
            let mut header = [0u8; format::LocalHeader::LEN];
            self.file
                .read_exact_at(&mut header, e.local_header_offset)
                .map_err(|err| EntryError::Corrupt(format!("local header unreadable: {err}")))?;
            start = format::local_data_offset(e.local_header_offset, &header)
                .map_err(|e| EntryError::Corrupt(e.to_string()))?;
            self.data_starts[i as usize].store(start, Ordering::Relaxed);
        }
        let end = start
            .checked_add(e.compressed_size)
            .filter(|&end| end <= self.index.cd_start)
            .ok_or_else(|| {
                EntryError::Corrupt("entry data runs past the central directory".into())
            })?;
        Ok(start..end)
    }

    /// The bytes from entry `i`'s local header to the next entry's (or the central directory):
    /// its header, its data, and whatever a writer put between (a data descriptor). Copying the span
    /// copies the entry.
    pub fn span(&self, i: u32) -> Range<u64> {
        let offsets = self.header_offsets.get_or_init(|| {
            let mut v: Vec<u64> = self
                .index
                .entries()
                .iter()
                .map(|e| e.local_header_offset)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        });
        let start = self.index.entry(i).local_header_offset;
        let next = offsets.partition_point(|&o| o <= start);
        start..offsets.get(next).copied().unwrap_or(self.index.cd_start)
    }

    fn check_readable(e: &Entry) -> Result<(), EntryError> {
        if e.encrypted() {
            return Err(EntryError::Encrypted);
        }
        match e.method {
            format::METHOD_STORED
            | format::METHOD_DEFLATED
            | format::METHOD_ZSTD
            | format::METHOD_ZSTD_LEGACY => Ok(()),
            m => Err(EntryError::UnsupportedMethod(m)),
        }
    }

    /// The raw (still compressed) bytes of entry `i` as a reader.
    pub fn raw_reader(&self, i: u32) -> Result<RangeReader, EntryError> {
        let range = self.data_range(i)?;
        Ok(RangeReader {
            file: self.file.clone(),
            pos: range.start,
            end: range.end,
        })
    }

    /// Entry `i` decompressed, verified against its size and CRC-32 as the last byte is read.
    pub fn decoder(&self, i: u32) -> Result<CheckedReader, EntryError> {
        let e = self.index.entry(i);
        let range = self.data_range(i)?;
        self.checked(e, range, e.uncompressed_size, e.crc32)
    }

    /// Segment `k` of entry `i` (see `format::SeekTable`), decompressed on its own and verified
    /// against the segment's CRC-32.
    pub fn segment_decoder(&self, i: u32, k: usize) -> Result<CheckedReader, EntryError> {
        let e = self.index.entry(i);
        let table = e
            .seek
            .as_ref()
            .ok_or_else(|| EntryError::Corrupt("entry has no seek table".into()))?;
        let &(offset, crc) = table
            .segments
            .get(k)
            .ok_or_else(|| EntryError::Corrupt(format!("segment {k} does not exist")))?;
        let end = table.segments.get(k + 1).map_or(e.compressed_size, |s| s.0);
        let data = self.data_range(i)?;
        let seg = u64::from(table.segment_size);
        let len = (e.uncompressed_size - k as u64 * seg).min(seg);
        let mut reader = self.checked(e, data.start + offset..data.start + end, len, crc)?;
        // A deflate segment before the last ends at a full flush, not at the end of the stream.
        reader.expect_end = k + 1 == table.segments.len();
        Ok(reader)
    }

    fn checked(
        &self,
        e: &Entry,
        raw: Range<u64>,
        size: u64,
        crc: u32,
    ) -> Result<CheckedReader, EntryError> {
        Self::check_readable(e)?;
        let buf = RAW_BUF.min((raw.end - raw.start) as usize + 1);
        let raw = BufReader::with_capacity(
            buf,
            RangeReader {
                file: self.file.clone(),
                pos: raw.start,
                end: raw.end,
            },
        );
        let inner: Box<dyn Read + Send> = match e.method {
            format::METHOD_STORED => Box::new(raw),
            format::METHOD_DEFLATED => Box::new(flate2::bufread::DeflateDecoder::new(raw)),
            _ => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        };
        Ok(CheckedReader::new(
            inner,
            size,
            crc,
            self.decompressed.clone(),
        ))
    }

    /// Bytes decompressed since the archive was opened.
    pub fn decompressed_bytes(&self) -> u64 {
        self.decompressed.load(Ordering::Relaxed)
    }

    /// All of entry `i`, decompressed and verified. Callers bound `uncompressed_size` first.
    pub fn read_all(&self, i: u32) -> Result<Vec<u8>, EntryError> {
        let e = self.index.entry(i);
        let mut out = Vec::new();
        out.try_reserve_exact(e.uncompressed_size as usize)
            .map_err(|_| EntryError::Io("entry too large for memory".into()))?;
        self.decoder(i)?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Reads stored (uncompressed) entry `i` at `offset` straight from the archive file.
    pub fn read_stored_at(&self, i: u32, offset: u64, buf: &mut [u8]) -> Result<usize, EntryError> {
        let range = self.data_range(i)?;
        let len = range.end - range.start;
        if offset >= len {
            return Ok(0);
        }
        let n = buf.len().min((len - offset) as usize);
        self.file
            .read_exact_at(&mut buf[..n], range.start + offset)?;
        Ok(n)
    }
}

/// `Read` over a byte range of the archive file, by positioned reads.
pub struct RangeReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.end - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.read_at(&mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside entry data",
            ));
        }
        self.pos += got as u64;
        Ok(got)
    }
}

/// Wraps a decoder so that it yields exactly the declared size, and fails (InvalidData) when the
/// data is shorter, longer, or does not match the CRC-32: corrupt or hostile entries never pass as
/// valid data and can never make us produce more bytes than the index promised.
pub struct CheckedReader {
    inner: Box<dyn Read + Send>,
    remaining: u64,
    expected_crc: u32,
    hasher: crc32fast::Hasher,
    verified: bool,
    counter: Arc<AtomicU64>,
    /// Whether the decoder must end exactly at the recorded size (false for a segment that does
    /// not end its stream; its bytes are bounded by its compressed range and checked by CRC).
    expect_end: bool,
}

impl CheckedReader {
    fn new(inner: Box<dyn Read + Send>, size: u64, crc: u32, counter: Arc<AtomicU64>) -> Self {
        CheckedReader {
            inner,
            remaining: size,
            expected_crc: crc,
            hasher: crc32fast::Hasher::new(),
            verified: false,
            counter,
            expect_end: true,
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        let mut probe = [0u8; 1];
        if self.expect_end && self.inner.read(&mut probe)? != 0 {
            return Err(invalid("entry holds more data than its recorded size"));
        }
        let crc = std::mem::take(&mut self.hasher).finalize();
        if crc != self.expected_crc {
            return Err(invalid(&format!(
                "CRC-32 mismatch (recorded {:08x}, data {crc:08x})",
                self.expected_crc
            )));
        }
        self.verified = true;
        Ok(())
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("entry data ends before its recorded size"));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        if self.remaining == 0 {
            self.finish()?;
        }
        Ok(n)
    }
}
