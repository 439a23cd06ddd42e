//! A bounded cache of fully decompressed entries, so random reads of a compressed entry (the kernel
//! faulting pages of an mmapped shared library in any order) cost one decompression, not one per
//! page. Entries up to half the memory cap live in memory; larger ones are decompressed into an
//! unlinked temporary file (bounded by the spill cap) and read back with pread. Both tiers evict
//! least-recently-used entries; a reader holding an `Arc<Decoded>` keeps it alive until done.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use lru::LruCache;

use super::error::EntryError;
use super::read::Archive;

pub enum Decoded {
    Memory(Box<[u8]>),
    Spill { file: File, len: u64 },
}

impl Decoded {
    pub fn len(&self) -> u64 {
        match self {
            Decoded::Memory(b) => b.len() as u64,
            Decoded::Spill { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len();
        if offset >= len {
            return Ok(0);
        }
        let n = buf.len().min((len - offset) as usize);
        match self {
            Decoded::Memory(b) => {
                buf[..n].copy_from_slice(&b[offset as usize..offset as usize + n])
            }
            Decoded::Spill { file, .. } => file.read_exact_at(&mut buf[..n], offset)?,
        }
        Ok(n)
    }
}

#[derive(Debug, Clone)]
pub struct CacheLimits {
    /// Bytes of decompressed data kept in memory.
    pub memory: u64,
    /// Bytes of decompressed data kept in temporary files.
    pub spill: u64,
    /// Where temporary files go (they are unlinked at creation and vanish with the daemon).
    pub spill_dir: PathBuf,
}

impl CacheLimits {
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    pub const DEFAULT_SPILL: u64 = 4 << 30;

    pub fn with_memory(memory: u64) -> Self {
        CacheLimits {
            memory,
            spill: Self::DEFAULT_SPILL,
            spill_dir: std::env::temp_dir(),
        }
    }

    /// Whether an entry of this size is decompressed whole into the cache at all.
    pub fn cacheable(&self, size: u64) -> bool {
        size <= self.memory / 2 || size <= self.spill
    }
}

type Slot = OnceLock<Result<Arc<Decoded>, EntryError>>;

struct Tier {
    lru: LruCache<u32, Arc<Slot>>,
    bytes: u64,
    cap: u64,
}

impl Tier {
    fn new(cap: u64) -> Self {
        Tier {
            lru: LruCache::unbounded(),
            bytes: 0,
            cap,
        }
    }
    /// Evicts least-recently-used slots until `extra` more bytes fit.
    fn make_room(&mut self, extra: u64, sizes: impl Fn(u32) -> u64) {
        while self.bytes + extra > self.cap {
            match self.lru.pop_lru() {
                Some((k, _)) => self.bytes -= sizes(k),
                None => break,
            }
        }
    }
}

pub struct DecodedCache {
    limits: CacheLimits,
    memory: Mutex<Tier>,
    spill: Mutex<Tier>,
}

impl DecodedCache {
    pub fn new(limits: CacheLimits) -> Self {
        DecodedCache {
            memory: Mutex::new(Tier::new(limits.memory)),
            spill: Mutex::new(Tier::new(limits.spill)),
            limits,
        }
    }

    pub fn limits(&self) -> &CacheLimits {
        &self.limits
    }

    fn tier(&self, size: u64) -> &Mutex<Tier> {
        if size <= self.limits.memory / 2 {
            &self.memory
        } else {
            &self.spill
        }
    }

    /// Whether entry `i` is decoded and cached right now.
    pub fn contains(&self, archive: &Archive, i: u32) -> bool {
        let size = archive.index().entry(i).uncompressed_size;
        let tier = self.tier(size).lock().expect("cache lock");
        tier.lru
            .peek(&i)
            .is_some_and(|s| matches!(s.get(), Some(Ok(_))))
    }

    /// Entry `i` fully decoded. Concurrent callers for the same entry wait for one decompression.
    pub fn get(&self, archive: &Archive, i: u32) -> Result<Arc<Decoded>, EntryError> {
        let size = archive.index().entry(i).uncompressed_size;
        let in_memory = size <= self.limits.memory / 2;
        let sizes = |k: u32| archive.index().entry(k).uncompressed_size;
        let slot = {
            let mut tier = self.tier(size).lock().expect("cache lock");
            match tier.lru.get(&i) {
                Some(slot) => slot.clone(),
                None => {
                    tier.make_room(size, sizes);
                    let slot = Arc::new(Slot::new());
                    tier.lru.put(i, slot.clone());
                    tier.bytes += size;
                    slot
                }
            }
        };
        let result = slot
            .get_or_init(|| {
                if in_memory {
                    archive
                        .read_all(i)
                        .map(|v| Arc::new(Decoded::Memory(v.into_boxed_slice())))
                } else {
                    self.decode_to_spill(archive, i).map(Arc::new)
                }
            })
            .clone();
        if result.is_err() {
            // Do not pin failures: the next read retries (the error may be transient I/O).
            let mut tier = self.tier(size).lock().expect("cache lock");
            if tier.lru.peek(&i).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                tier.lru.pop(&i);
                tier.bytes -= size;
            }
        }
        result
    }

    fn decode_to_spill(&self, archive: &Archive, i: u32) -> Result<Decoded, EntryError> {
        let file = tempfile::tempfile_in(&self.limits.spill_dir).map_err(|e| {
            EntryError::Io(format!(
                "cannot create a temporary file in {} for a large entry: {e}",
                self.limits.spill_dir.display()
            ))
        })?;
        let mut out = io::BufWriter::with_capacity(1 << 20, &file);
        let len = io::copy(&mut archive.decoder(i)?, &mut out)?;
        out.flush()?;
        drop(out);
        Ok(Decoded::Spill { file, len })
    }

    /// Bytes currently accounted in memory and in temporary files.
    pub fn usage(&self) -> (u64, u64) {
        let m = self.memory.lock().expect("cache lock").bytes;
        let s = self.spill.lock().expect("cache lock").bytes;
        (m, s)
    }
}
