//! The archive version a tree's entry numbers point into, with what reads it (the decompressed-data
//! cache and the per-entry readers, both keyed by entry number). The overlay keeps a tree and its
//! base under one lock and swaps them together when a save installs a new archive, so a read or a
//! copy-up always decodes the entry its node names, in the archive that number belongs to.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::archive::read::CheckedReader;
use crate::archive::{Archive, CacheLimits, DecodedCache, EntryError, EntryReader};
use crate::conda::relocation::Relocation;

/// Entry readers kept between reads (they carry streaming state for large entries).
const READERS: usize = 256;

pub struct Base {
    archive: Arc<Archive>,
    cache: Arc<DecodedCache>,
    readers: Mutex<LruCache<u32, Arc<EntryReader>>>,
    /// Files served rewritten for a mount at another prefix than they hold.
    relocation: Option<Relocation>,
}

impl Base {
    /// A base of `archive`; the entries `relocation` names are served rewritten.
    pub fn new(archive: Arc<Archive>, limits: CacheLimits, relocation: Option<Relocation>) -> Base {
        Base {
            archive,
            cache: Arc::new(DecodedCache::new(limits)),
            readers: Mutex::new(LruCache::new(NonZeroUsize::new(READERS).expect("non-zero"))),
            relocation,
        }
    }

    pub fn relocation(&self) -> Option<&Relocation> {
        self.relocation.as_ref()
    }

    /// The prefix a save records with entry `entry`, copied as it is: the one the archive records,
    /// or the one this mount found it holds where that is not the mount's own.
    pub fn held_prefix(&self, entry: u32) -> Option<&[u8]> {
        let recorded = self.archive.index().held_prefix(entry);
        recorded.or_else(|| self.relocation.as_ref()?.held(entry))
    }

    /// The prefix a save records with files written through this mount, where some of the
    /// archive's files hold another (else they hold what the others do, and nothing is recorded).
    pub fn written_here(&self) -> Option<&[u8]> {
        use std::os::unix::ffi::OsStrExt;
        Some(self.relocation.as_ref()?.to.as_os_str().as_bytes())
    }

    pub fn archive(&self) -> &Arc<Archive> {
        &self.archive
    }

    pub fn cache(&self) -> &Arc<DecodedCache> {
        &self.cache
    }

    fn reader(&self, entry: u32) -> Arc<EntryReader> {
        let mut readers = self.readers.lock().expect("readers lock");
        if let Some(r) = readers.get(&entry) {
            return r.clone();
        }
        let r = Arc::new(EntryReader::new(
            self.archive.clone(),
            self.cache.clone(),
            entry,
        ));
        readers.put(entry, r.clone());
        r
    }
}

/// One entry of one archive version, handed out by the overlay together with the archive its number
/// belongs to: the only way to read archive content.
pub struct ArchiveEntry {
    pub(super) base: Arc<Base>,
    pub(super) entry: u32,
}

impl ArchiveEntry {
    /// Its size as served (a file rewritten for this mount's prefix may differ from the archive's).
    pub fn size(&self) -> u64 {
        let relocated = self
            .base
            .relocation
            .as_ref()
            .and_then(|r| r.size(self.entry));
        relocated.unwrap_or_else(|| {
            self.base
                .archive
                .index()
                .entry(self.entry)
                .uncompressed_size
        })
    }

    /// Up to `len` bytes at `offset` as served, through the cache.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, EntryError> {
        self.served(offset, len, |offset, len| {
            self.base.reader(self.entry).read_at(offset, len)
        })
    }

    /// The whole entry as served, decompressed and verified; callers bound `size()` first.
    pub fn read_all(&self) -> Result<Vec<u8>, EntryError> {
        // Asked for all of it, so `original` is only ever asked for all of it.
        self.served(0, self.size() as usize, |_, _| {
            self.base.archive.read_all(self.entry)
        })
    }

    /// `len` bytes at `offset` as served: rewritten where this mount relocates the entry, else
    /// what `original` reads from the archive.
    fn served(
        &self,
        offset: u64,
        len: usize,
        original: impl Fn(u64, usize) -> Result<Vec<u8>, EntryError>,
    ) -> Result<Vec<u8>, EntryError> {
        let relocated = self.base.relocation.as_ref();
        relocated
            .and_then(|r| r.read_at(self.entry, offset, len, &original))
            .unwrap_or_else(|| original(offset, len))
    }

    /// The whole entry as served, streamed (copy-up: a file copied up holds what was served, so
    /// a file rewritten for this mount's prefix is copied rewritten).
    pub fn decoder(&self) -> Result<Box<dyn std::io::Read + Send>, EntryError> {
        let rewritten = self.base.relocation.as_ref();
        if rewritten.is_some_and(|r| r.rewrites(self.entry)) {
            // Rewritten entries are bounded (`relocation::REWRITE_MAX`): read whole.
            return Ok(Box::new(std::io::Cursor::new(self.read_all()?)));
        }
        let checked: CheckedReader = self.base.archive.decoder(self.entry)?;
        Ok(Box::new(checked))
    }

    pub fn archive_path(&self) -> &Path {
        self.base.archive.path()
    }

    /// `cause`, found reading this entry, as the failure of a request.
    pub fn failed(&self, cause: EntryError) -> super::OpError {
        let index = self.base.archive.index();
        super::OpError::Entry {
            archive: self.archive_path().to_path_buf(),
            entry: self.entry,
            name: crate::display::escape(index.name(index.entry(self.entry))),
            cause,
        }
    }
}
