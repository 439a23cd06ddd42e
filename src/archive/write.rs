//! Streaming zip writer: local header, data, and a central directory accumulated in memory (about
//! 80 bytes per entry) written at the end. Sizes and CRC are known before each entry is written (the
//! compressor produces them), so there are no data descriptors and no seeking back.
//!
//! Entries copied unchanged from another archive can be copied as spans (their local header and
//! data, byte for byte); consecutive spans are merged and copied in the kernel (copy_file_range), so
//! saving a small change to a large archive costs about what copying the file costs.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::format::{self, HeaderFields};

/// Where archive bytes go: any writer, plus copying a byte range of another file.
pub trait Sink: Write {
    /// Appends `range` of `src`.
    fn copy_range(&mut self, src: &File, range: Range<u64>) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = range.start;
        while pos < range.end {
            let n = buf.len().min((range.end - pos) as usize);
            src.read_exact_at(&mut buf[..n], pos)?;
            self.write_all(&buf[..n])?;
            pos += n as u64;
        }
        Ok(())
    }
}

impl Sink for Vec<u8> {}

impl Sink for BufWriter<&File> {
    /// In the kernel (no copy through this process; a reflink where the filesystem can).
    fn copy_range(&mut self, src: &File, range: Range<u64>) -> io::Result<()> {
        self.flush()?;
        let out: &File = self.get_ref();
        let mut off = range.start as i64;
        let end = range.end as i64;
        while off < end {
            let len = ((end - off) as usize).min(1 << 30);
            match nix::fcntl::copy_file_range(src, Some(&mut off), out, None, len) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "source archive ended early",
                    ));
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                // Across filesystems or where unsupported: copy through this process.
                Err(
                    nix::errno::Errno::EXDEV
                    | nix::errno::Errno::ENOSYS
                    | nix::errno::Errno::EINVAL
                    | nix::errno::Errno::EOPNOTSUPP,
                ) => {
                    let mut w: &File = self.get_ref();
                    let mut buf = vec![0u8; 1 << 20];
                    let mut pos = off as u64;
                    while pos < range.end {
                        let n = buf.len().min((range.end - pos) as usize);
                        src.read_exact_at(&mut buf[..n], pos)?;
                        w.write_all(&buf[..n])?;
                        pos += n as u64;
                    }
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A run of bytes to copy from a source archive, not yet copied.
struct PendingSpan {
    src: Arc<File>,
    range: Range<u64>,
}

pub struct ZipWriter<W: Sink> {
    out: W,
    /// Bytes written, or promised by the pending span.
    offset: u64,
    central: Vec<u8>,
    entries: u64,
    scratch: Vec<u8>,
    pending: Option<PendingSpan>,
}

impl<W: Sink> ZipWriter<W> {
    pub fn new(out: W) -> Self {
        ZipWriter {
            out,
            offset: 0,
            central: Vec::new(),
            entries: 0,
            scratch: Vec::with_capacity(256),
            pending: None,
        }
    }

    fn flush_span(&mut self) -> io::Result<()> {
        if let Some(p) = self.pending.take() {
            self.out.copy_range(&p.src, p.range)?;
        }
        Ok(())
    }

    /// Writes one entry whose (already compressed) data is the next `fields.compressed_size`
    /// bytes of `data`.
    pub fn add(&mut self, fields: &HeaderFields<'_>, data: &mut dyn Read) -> io::Result<()> {
        self.flush_span()?;
        let offset = self.offset;
        // Both headers are made before anything is written: a field too long for either refuses
        // the entry whole.
        let central_len = self.central.len();
        fields.write_central(offset, &mut self.central)?;
        self.scratch.clear();
        if let Err(e) = fields.write_local(&mut self.scratch) {
            self.central.truncate(central_len);
            return Err(e.into());
        }
        self.out.write_all(&self.scratch)?;
        self.offset += self.scratch.len() as u64;
        let copied = io::copy(&mut data.take(fields.compressed_size), &mut self.out)?;
        if copied != fields.compressed_size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "entry data ended after {copied} of {} bytes",
                    fields.compressed_size
                ),
            ));
        }
        self.offset += copied;
        self.entries += 1;
        Ok(())
    }

    /// Adds an entry by copying its local header and data (`span`) from `src` as they are; `fields`
    /// must describe the same entry (they make its central directory header).
    pub fn add_span(
        &mut self,
        fields: &HeaderFields<'_>,
        src: &Arc<File>,
        span: Range<u64>,
    ) -> io::Result<()> {
        let offset = self.offset;
        let len = span.end - span.start;
        // The central header first: if it cannot be written, nothing of the entry is.
        fields.write_central(offset, &mut self.central)?;
        match &mut self.pending {
            Some(p) if Arc::ptr_eq(&p.src, src) && p.range.end == span.start => {
                p.range.end = span.end
            }
            _ => {
                self.flush_span()?;
                self.pending = Some(PendingSpan {
                    src: src.clone(),
                    range: span,
                });
            }
        }
        self.offset += len;
        self.entries += 1;
        Ok(())
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the central directory and end records; returns the sink and the archive's size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.flush_span()?;
        let cd_offset = self.offset;
        let cd_size = self.central.len() as u64;
        self.out.write_all(&self.central)?;
        let mut end = Vec::with_capacity(100);
        format::write_end_records(self.entries, cd_offset, cd_size, &mut end);
        self.out.write_all(&end)?;
        self.out.flush()?;
        Ok((self.out, cd_offset + cd_size + end.len() as u64))
    }
}
