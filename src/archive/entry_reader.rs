//! Random access to one entry's bytes, the way the kernel asks for them: mostly sequential (readahead
//! of a file being read or copied), sometimes in any order (page faults of an mmapped library).
//!
//! - stored entries: pread straight from the archive;
//! - compressed entries that fit the memory cache: decompressed once, progressively, through the
//!   shared cache (see `cache.rs`);
//! - larger compressed entries: a streaming decoder that follows sequential reads (a copy, a tar),
//!   keeping a window of recent bytes so requests that arrive slightly out of order (the kernel
//!   issues readahead in parallel) are still served; a read far from the stream's position
//!   switches to the cache, which decompresses the entry into a temporary file.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::cache::{DecodedCache, Part};
use super::error::EntryError;
use super::format;
use super::read::{Archive, CheckedReader};

/// Decoded bytes kept behind a stream's position for out-of-order requests.
const WINDOW: u64 = 1 << 20;
/// A stream decodes forward over a gap up to this long rather than switching to the cache.
const SKIP_AHEAD: u64 = 8 << 20;
/// At most this many streams (decoder state plus window) exist at once, bounding their memory.
pub const MAX_STREAMS: usize = 8;

static ACTIVE_STREAMS: AtomicUsize = AtomicUsize::new(0);

struct Stream {
    reader: CheckedReader,
    /// Decoded bytes [window_start, pos).
    window: Vec<u8>,
    window_start: u64,
    pos: u64,
}

impl Stream {
    fn open(archive: &Archive, i: u32) -> Result<Option<Stream>, EntryError> {
        let taken = ACTIVE_STREAMS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_STREAMS).then_some(n + 1)
        });
        if taken.is_err() {
            return Ok(None);
        }
        match archive.decoder(i) {
            Ok(reader) => Ok(Some(Stream {
                reader,
                window: Vec::new(),
                window_start: 0,
                pos: 0,
            })),
            Err(e) => {
                ACTIVE_STREAMS.fetch_sub(1, Ordering::AcqRel);
                Err(e)
            }
        }
    }

    /// Serves [offset, offset+len) if it lies in the window or a short way ahead of it.
    fn read(&mut self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<bool, EntryError> {
        if offset < self.window_start || offset > self.pos + SKIP_AHEAD {
            return Ok(false);
        }
        let want_end = offset + len as u64;
        while self.pos < want_end {
            let chunk = (want_end - self.pos).max(256 * 1024) as usize;
            let old = self.window.len();
            self.window.resize(old + chunk, 0);
            let n = match self.reader.read(&mut self.window[old..]) {
                Ok(n) => n,
                Err(e) => {
                    self.window.truncate(old);
                    return Err(e.into());
                }
            };
            self.window.truncate(old + n);
            self.pos += n as u64;
            if n == 0 {
                break;
            }
        }
        let start = (offset - self.window_start) as usize;
        let end = ((want_end.min(self.pos)) - self.window_start) as usize;
        out.extend_from_slice(&self.window[start.min(end)..end]);
        // Trim old bytes (amortised), never those of the request just served.
        if self.window.len() as u64 > 2 * WINDOW {
            let keep_from = offset.min(self.pos.saturating_sub(WINDOW));
            let drop = (keep_from - self.window_start) as usize;
            self.window.drain(..drop);
            self.window_start = keep_from;
        }
        Ok(true)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        ACTIVE_STREAMS.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct EntryReader {
    archive: Arc<Archive>,
    cache: Arc<DecodedCache>,
    entry: u32,
    size: u64,
    stored: bool,
    /// Segment size when the entry has a seek table.
    segment_size: Option<u64>,
    stream: Mutex<Option<Stream>>,
}

impl EntryReader {
    pub fn new(archive: Arc<Archive>, cache: Arc<DecodedCache>, entry: u32) -> Self {
        let e = archive.index().entry(entry);
        let stored = e.method == format::METHOD_STORED && !e.encrypted();
        let size = e.uncompressed_size;
        let segment_size = e
            .seek
            .as_ref()
            .filter(|_| !stored)
            .map(|t| u64::from(t.segment_size));
        EntryReader {
            archive,
            cache,
            entry,
            size,
            stored,
            segment_size,
            stream: Mutex::new(None),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `len` bytes at `offset` (fewer only at the end of the entry).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, EntryError> {
        if offset >= self.size || len == 0 {
            return Ok(Vec::new());
        }
        let len = len.min((self.size - offset) as usize);
        let mut out = Vec::with_capacity(len);
        if self.segment_size.is_none() {
            self.cache.recorder().note(self.entry, Part::Whole);
        }
        if self.stored {
            out.resize(len, 0);
            let n = self.archive.read_stored_at(self.entry, offset, &mut out)?;
            if n < len {
                return Err(EntryError::Corrupt(
                    "stored entry shorter than recorded".into(),
                ));
            }
            return Ok(out);
        }
        if let Some(seg) = self.segment_size {
            return self.read_segments(seg, offset, len, out);
        }
        if self.size <= self.cache.limits().memory_entry_max()
            || self.cache.contains(&self.archive, self.entry)
        {
            return self.read_cached(offset, len, out);
        }
        let mut stream = self.stream.lock().expect("stream lock");
        if stream.is_none() && offset < SKIP_AHEAD {
            *stream = Stream::open(&self.archive, self.entry)?;
        }
        if let Some(s) = stream.as_mut() {
            match s.read(offset, len, &mut out) {
                Ok(true) => {
                    if s.pos >= self.size {
                        // Read to the end: free the decoder and its window now.
                        *stream = None;
                    }
                    return Ok(out);
                }
                Ok(false) => {}
                Err(e) => {
                    *stream = None;
                    return Err(e);
                }
            }
        }
        *stream = None;
        drop(stream);
        if self.cache.limits().cacheable(self.size) {
            return self.read_cached(offset, len, out);
        }
        // Too large to cache anywhere: decode from the start up to the request (slow, but correct).
        let mut reader = self.archive.decoder(self.entry)?;
        std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())?;
        out.resize(len, 0);
        reader.read_exact(&mut out)?;
        Ok(out)
    }

    fn read_cached(
        &self,
        offset: u64,
        len: usize,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, EntryError> {
        out.resize(len, 0);
        let n = self
            .cache
            .read_at(&self.archive, self.entry, Part::Whole, offset, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    /// Reads through the seek table: only the segments covering the request are decompressed, and
    /// the next one is prefetched when a read nears the end of a segment (sequential readers).
    fn read_segments(
        &self,
        seg: u64,
        offset: u64,
        len: usize,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, EntryError> {
        out.resize(len, 0);
        let end = offset + len as u64;
        let mut pos = offset;
        while pos < end {
            let k = pos / seg;
            let within = pos - k * seg;
            let take = (end - pos).min(seg - within) as usize;
            let at = (pos - offset) as usize;
            self.cache
                .recorder()
                .note(self.entry, Part::Segment(k as u32));
            let n = self.cache.read_at(
                &self.archive,
                self.entry,
                Part::Segment(k as u32),
                within,
                &mut out[at..at + take],
            )?;
            if n == 0 {
                break;
            }
            pos += n as u64;
        }
        out.truncate((pos - offset) as usize);
        let next = end.div_ceil(seg);
        let into = end % seg;
        if (into == 0 || into > seg * 3 / 4) && next * seg < self.size {
            let _ = self
                .cache
                .get(&self.archive, self.entry, Part::Segment(next as u32));
        }
        Ok(out)
    }
}
