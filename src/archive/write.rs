//! Streaming zip writer: local header, data, and a central directory accumulated in memory (about
//! 80 bytes per entry) written at the end. Sizes and CRC are known before each entry is written (the
//! compressor produces them), so there are no data descriptors and no seeking back.

use std::io::{self, Read, Write};

use super::format::{self, HeaderFields};

pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    central: Vec<u8>,
    entries: u64,
    scratch: Vec<u8>,
}

impl<W: Write> ZipWriter<W> {
    pub fn new(out: W) -> Self {
        ZipWriter {
            out,
            offset: 0,
            central: Vec::new(),
            entries: 0,
            scratch: Vec::with_capacity(256),
        }
    }

    /// Writes one entry whose (already compressed) data is the next `fields.compressed_size`
    /// bytes of `data`.
    pub fn add(&mut self, fields: &HeaderFields<'_>, data: &mut dyn Read) -> io::Result<()> {
        if fields.name.len() > usize::from(u16::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "entry name longer than 65535 bytes",
            ));
        }
        let offset = self.offset;
        self.scratch.clear();
        fields.write_local(&mut self.scratch);
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
        fields.write_central(offset, &mut self.central);
        self.entries += 1;
        Ok(())
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the central directory and end records; returns the sink and the archive's size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
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
