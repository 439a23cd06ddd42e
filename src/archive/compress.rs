//! Compression of one entry's data into a zip payload: deflate (what every zip reader understands),
//! zstd (faster, smaller, but unzip and fuse-zip cannot read it), or stored. Data that does not get
//! smaller is stored, as Info-ZIP does.
//!
//! Entries over one segment (1 MiB) are compressed in independent segments: the compressor is reset
//! at each boundary (a deflate full flush, or a new zstd frame), which keeps the stream standard
//! while letting the reader start at any segment (see `format::SeekTable`) and letting the writer
//! compress the segments of one large file on all cores. Files on disk are compressed by
//! `compress_file.rs`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::format::{self, SeekTable};

/// Uncompressed bytes per independently decompressible segment (grown for entries so large that
/// their table would not fit one extra field, up to `MAX_SEGMENT`).
pub const SEGMENT: u64 = 1 << 20;
/// Segments never grow beyond this, so that the memory a compression needs is bounded whatever the
/// file's size; entries with more segments than a seek table can list get no table.
pub const MAX_SEGMENT: u64 = 8 << 20;

/// A compression method without its level (what a user chooses on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Store,
    Deflate,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Store,
    Deflate(u32),
    Zstd(i32),
}

impl Compression {
    /// `pack`, done once per environment, where size counts (level 9; zlib-rs, before libdeflate
    /// ended streams, gave archives smaller than Info-ZIP's level 6 on the reference environment:
    /// 356.0 vs 359.4 MB).
    pub const PACK: Compression = Compression::Deflate(9);
    /// Saves, which a user waits for after every `conda install`. The scientific stack as `conda
    /// create` installs it (358 MiB, 2 cores) at level 4 / 6 / 9: 2.3 / 2.9 / 7.3 s, 116.1 / 113.2 /
    /// 111.1 MiB; zlib-rs alone took 3.4 s at 6 for 115.0 MiB.
    pub const SAVE: Compression = Compression::Deflate(6);

    /// `method` at `level`, or at the method's own default (deflate 9, zstd 3) when None.
    pub fn new(method: Method, level: Option<i32>) -> Result<Compression, String> {
        match method {
            Method::Store => Ok(Compression::Store),
            Method::Deflate => {
                let level = level.unwrap_or(9);
                if !(1..=9).contains(&level) {
                    return Err(format!("deflate level must be 1 to 9, not {level}"));
                }
                Ok(Compression::Deflate(level as u32))
            }
            Method::Zstd => {
                let level = level.unwrap_or(3);
                if !(1..=22).contains(&level) {
                    return Err(format!("zstd level must be 1 to 22, not {level}"));
                }
                Ok(Compression::Zstd(level))
            }
        }
    }

    pub(super) fn method(self) -> u16 {
        match self {
            Compression::Store => format::METHOD_STORED,
            Compression::Deflate(_) => format::METHOD_DEFLATED,
            Compression::Zstd(_) => format::METHOD_ZSTD,
        }
    }
}

pub enum Payload {
    Memory(Vec<u8>),
    Spill { file: File, len: u64 },
}

impl Payload {
    pub fn len(&self) -> u64 {
        match self {
            Payload::Memory(v) => v.len() as u64,
            Payload::Spill { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Payload::Memory(v) => Box::new(&v[..]),
            Payload::Spill { file, .. } => {
                file.seek(SeekFrom::Start(0))?;
                Box::new(io::BufReader::with_capacity(1 << 20, file))
            }
        })
    }
}

pub struct Compressed {
    pub method: u16,
    pub crc32: u32,
    pub uncompressed_size: u64,
    pub payload: Payload,
    pub seek: Option<SeekTable>,
    /// Bytes of holes (of a sparse file) that were never read.
    pub holes: u64,
}

impl Compressed {
    fn stored(data: Vec<u8>, crc32: u32) -> Compressed {
        Compressed {
            method: format::METHOD_STORED,
            crc32,
            uncompressed_size: data.len() as u64,
            payload: Payload::Memory(data),
            seek: None,
            holes: 0,
        }
    }
}

/// Compresses `data` as one segment; `last` ends the stream, otherwise it ends at a full flush.
fn compress_segment(data: &[u8], c: Compression, last: bool) -> io::Result<Vec<u8>> {
    match c {
        Compression::Store => Ok(data.to_vec()),
        Compression::Deflate(level) if last => deflate_final(data, level),
        Compression::Deflate(level) => {
            let mut z = flate2::Compress::new(flate2::Compression::new(level), false);
            let mut out = Vec::with_capacity(data.len() / 2 + 64);
            loop {
                let consumed = z.total_in() as usize;
                z.compress_vec(&data[consumed..], &mut out, flate2::FlushCompress::Full)
                    .map_err(io::Error::other)?;
                let done = z.total_in() as usize == data.len() && out.len() < out.capacity();
                if done {
                    return Ok(out);
                }
                out.reserve(out.capacity().max(4096));
            }
        }
        Compression::Zstd(level) => zstd::bulk::compress(data, level),
    }
}

/// Compresses the segment that ends a deflate stream (every file up to 1 MiB is one) with
/// libdeflate: on conda environments it is 1.3x (level 6) to 1.5x (level 3) faster than zlib-rs
/// at the same level, and its output is smaller. It cannot end a segment without ending the stream
/// (it has no flush), so segments followed by others stay with zlib-rs; a full flush resets the
/// dictionary, so the two concatenate into one standard stream.
fn deflate_final(data: &[u8], level: u32) -> io::Result<Vec<u8>> {
    // One compressor per level and one scratch buffer per thread; the result is copied out at
    // its exact size, since compressed bytes wait in the writer's queue, which counts lengths.
    #[derive(Default)]
    struct PerThread {
        made: Vec<(u32, libdeflater::Compressor)>,
        scratch: Vec<u8>,
    }
    thread_local! {
        static PER_THREAD: std::cell::RefCell<PerThread> = std::cell::RefCell::default();
    }
    PER_THREAD.with_borrow_mut(|PerThread { made, scratch }| {
        let k = match made.iter().position(|(l, _)| *l == level) {
            Some(k) => k,
            None => {
                let lvl = libdeflater::CompressionLvl::new(level as i32)
                    .map_err(|e| io::Error::other(format!("deflate level {level}: {e:?}")))?;
                made.push((level, libdeflater::Compressor::new(lvl)));
                made.len() - 1
            }
        };
        let z = &mut made[k].1;
        scratch.resize(z.deflate_compress_bound(data.len()), 0);
        let n = z
            .deflate_compress(data, scratch)
            .map_err(|e| io::Error::other(format!("deflate: {e:?}")))?;
        let out = scratch[..n].to_vec();
        if scratch.capacity() > 2 * SEGMENT as usize {
            *scratch = Vec::new(); // a rare huge segment's buffer is not kept
        }
        Ok(out)
    })
}

/// The segment size for an entry of `size` bytes: 1 MiB, doubled until the seek table fits one
/// extra field, but never beyond `MAX_SEGMENT`.
pub fn segment_size_for(size: u64) -> u64 {
    let mut s = SEGMENT;
    while size.div_ceil(s) > SeekTable::MAX_SEGMENTS as u64 && s < MAX_SEGMENT {
        s *= 2;
    }
    s
}

/// Whether an entry of `size` bytes compressed in segments of `segment` bytes gets a seek table.
pub fn has_seek_table(size: u64, segment: u64) -> bool {
    size.div_ceil(segment) <= SeekTable::MAX_SEGMENTS as u64
}

/// One segment to compress: bytes read, or a stretch of a hole (zeros that were never read).
pub(super) enum Segment<'a> {
    Data(&'a [u8]),
    Hole(usize),
}

/// A zero segment's compressed bytes and CRC-32 state.
type ZeroSegment = Arc<(Vec<u8>, crc32fast::Hasher)>;

/// The compressed form and CRC-32 of `len` zero bytes (a segment in a hole), made once per kind.
fn zero_segment(c: Compression, len: usize, last: bool) -> io::Result<ZeroSegment> {
    type Made = Vec<((Compression, usize, bool), ZeroSegment)>;
    static MADE: Mutex<Made> = Mutex::new(Vec::new());
    let key = (c, len, last);
    if let Some((_, z)) = MADE
        .lock()
        .expect("zero lock")
        .iter()
        .find(|(k, _)| *k == key)
    {
        return Ok(z.clone());
    }
    let zeros = vec![0u8; len];
    let mut h = crc32fast::Hasher::new();
    h.update(&zeros);
    let z = Arc::new((compress_segment(&zeros, c, last)?, h));
    let mut made = MADE.lock().expect("zero lock");
    if made.len() > 16 {
        made.clear();
    }
    made.push((key, z.clone()));
    Ok(z)
}

/// Compresses consecutive segments of one entry in parallel; appends their bytes to `out` and their
/// table rows to `table` (offsets continue from `written`). Returns bytes appended.
pub(super) fn compress_segments(
    segments: &[Segment<'_>],
    c: Compression,
    ends_stream: bool,
    written: u64,
    out: &mut dyn Write,
    table: &mut Vec<(u64, u32)>,
    hasher: &mut crc32fast::Hasher,
) -> io::Result<u64> {
    enum Done {
        Made(Vec<u8>, crc32fast::Hasher),
        Zeros(ZeroSegment),
    }
    let n = segments.len();
    let results: Vec<io::Result<Done>> = segments
        .par_iter()
        .enumerate()
        .map(|(k, seg)| {
            let last = ends_stream && k + 1 == n;
            match seg {
                Segment::Data(data) => {
                    let mut h = crc32fast::Hasher::new();
                    h.update(data);
                    Ok(Done::Made(compress_segment(data, c, last)?, h))
                }
                Segment::Hole(len) => zero_segment(c, *len, last).map(Done::Zeros),
            }
        })
        .collect();
    let mut appended = 0;
    for r in results {
        let done = r?;
        let (bytes, h) = match &done {
            Done::Made(b, h) => (b.as_slice(), h),
            Done::Zeros(z) => (z.0.as_slice(), &z.1),
        };
        table.push((written + appended, h.clone().finalize()));
        hasher.combine(h);
        out.write_all(bytes)?;
        appended += bytes.len() as u64;
    }
    Ok(appended)
}

/// Compresses bytes held in memory.
pub fn compress_bytes(data: Vec<u8>, c: Compression) -> io::Result<Compressed> {
    let size = data.len() as u64;
    if c == Compression::Store || size <= SEGMENT {
        let crc32 = crc32fast::hash(&data);
        let out = match c {
            Compression::Store => None,
            _ => Some(compress_segment(&data, c, true)?),
        };
        return Ok(match out {
            Some(out) if out.len() < data.len() => Compressed {
                method: c.method(),
                crc32,
                uncompressed_size: size,
                payload: Payload::Memory(out),
                seek: None,
                holes: 0,
            },
            _ => Compressed::stored(data, crc32),
        });
    }
    let seg = segment_size_for(size) as usize;
    let segments: Vec<Segment<'_>> = data.chunks(seg).map(Segment::Data).collect();
    let mut out = Vec::with_capacity(data.len() / 2);
    let mut table = Vec::with_capacity(segments.len());
    let mut hasher = crc32fast::Hasher::new();
    compress_segments(&segments, c, true, 0, &mut out, &mut table, &mut hasher)?;
    let crc32 = hasher.finalize();
    if out.len() >= data.len() {
        return Ok(Compressed::stored(data, crc32));
    }
    Ok(Compressed {
        method: c.method(),
        crc32,
        uncompressed_size: size,
        payload: Payload::Memory(out),
        seek: Some(SeekTable {
            segment_size: seg as u32,
            segments: table,
        }),
        holes: 0,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    pub(crate) fn inflate(method: u16, raw: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        match method {
            format::METHOD_STORED => v.extend_from_slice(raw),
            format::METHOD_DEFLATED => {
                flate2::read::DeflateDecoder::new(raw)
                    .read_to_end(&mut v)
                    .unwrap();
            }
            _ => v = zstd::decode_all(raw).unwrap(),
        }
        v
    }

    #[test]
    fn incompressible_data_is_stored_and_text_is_deflated() {
        let c = compress_bytes(noise(10_000), Compression::PACK).unwrap();
        assert_eq!(c.method, format::METHOD_STORED);
        assert_eq!(c.payload.len(), 10_000);
        let text = b"import numpy as np\n".repeat(500);
        let c = compress_bytes(text.clone(), Compression::PACK).unwrap();
        assert_eq!(c.method, format::METHOD_DEFLATED);
        assert!(c.payload.len() < text.len() as u64 / 10);
        assert_eq!(c.crc32, crc32fast::hash(&text));
        assert!(c.seek.is_none());
    }

    #[test]
    fn segments_are_one_stream_and_each_decodes_alone() {
        let mut data = b"segment ".repeat(400_000);
        data.extend(noise(100_000));
        for c in [Compression::Deflate(6), Compression::Zstd(3)] {
            let out = compress_bytes(data.clone(), c).unwrap();
            let Payload::Memory(raw) = &out.payload else {
                panic!("in memory")
            };
            assert!(inflate(out.method, raw) == data, "{c:?}: whole stream");
            assert_eq!(out.crc32, crc32fast::hash(&data));
            let table = out.seek.expect("table");
            assert_eq!(
                table.segments.len() as u64,
                (data.len() as u64).div_ceil(SEGMENT)
            );
            for (k, (off, crc)) in table.segments.iter().enumerate() {
                let end = table.segments.get(k + 1).map_or(raw.len() as u64, |s| s.0);
                let seg = &data[k * SEGMENT as usize..((k + 1) * SEGMENT as usize).min(data.len())];
                // A segment that does not end the stream has no final block: read exactly its bytes.
                let mut part = vec![0u8; seg.len()];
                match out.method {
                    format::METHOD_DEFLATED => {
                        flate2::read::DeflateDecoder::new(&raw[*off as usize..end as usize])
                            .read_exact(&mut part)
                            .unwrap();
                    }
                    _ => part = zstd::decode_all(&raw[*off as usize..end as usize]).unwrap(),
                }
                assert!(part == seg, "{c:?}: segment {k}");
                assert_eq!(*crc, crc32fast::hash(seg));
            }
        }
    }
}
