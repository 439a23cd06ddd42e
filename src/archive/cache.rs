//! A bounded cache of decompressed entries, so random reads of a compressed entry (the kernel faulting
//! pages of an mmapped shared library in any order) cost one decompression, not one per page.
//!
//! Entries are decompressed progressively: small ones by the first reader, larger ones by a
//! background thread while readers wait only until the bytes they asked for are ready. A library
//! being loaded thus gets its first pages at once while the rest decompresses on another core.
//! Entries up to half the memory cap live in memory; larger ones go to an unlinked temporary file
//! (bounded by the spill cap). Both tiers evict least-recently-used entries; a reader holding an
//! `Arc<Decoded>` keeps it alive until done.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use lru::LruCache;

use super::error::EntryError;
use super::read::Archive;
use super::startup::{Prefetched, Recorder};

/// Entries up to this size are decompressed by the first reader itself, in one go.
const INLINE_DECODE: u64 = 256 * 1024;
/// Decompressed bytes published to waiting readers at a time.
const CHUNK: usize = 256 * 1024;

enum Store {
    Memory(RwLock<Vec<u8>>),
    Spill(File),
}

#[derive(Default)]
struct Progress {
    /// Bytes decompressed and readable so far.
    done: u64,
    error: Option<EntryError>,
}

/// One entry's decompressed bytes, filled progressively.
pub struct Decoded {
    len: u64,
    store: Store,
    progress: Mutex<Progress>,
    advanced: Condvar,
}

impl Decoded {
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads at `offset`, waiting until those bytes are decompressed.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, EntryError> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = buf.len().min((self.len - offset) as usize);
        let need = offset + n as u64;
        {
            let mut p = self.progress.lock().expect("progress lock");
            while p.done < need {
                if let Some(e) = &p.error {
                    return Err(e.clone());
                }
                p = self.advanced.wait(p).expect("progress lock");
            }
        }
        match &self.store {
            Store::Memory(v) => {
                let v = v.read().expect("decoded lock");
                buf[..n].copy_from_slice(&v[offset as usize..need as usize]);
            }
            Store::Spill(f) => f.read_exact_at(&mut buf[..n], offset)?,
        }
        Ok(n)
    }

    /// Decompresses `part` of entry `i` into this buffer. A whole entry is published as it goes
    /// (readers of its beginning need not wait for the end; corruption is reported to those who
    /// read past it). A segment is published only once its CRC-32 is verified: it takes a
    /// millisecond, and no reader ever sees unverified bytes of it.
    fn fill(&self, archive: &Archive, i: u32, part: Part) {
        let progressive = part == Part::Whole;
        let result = (|| -> Result<(), EntryError> {
            let mut decoder = match part {
                Part::Whole => archive.decoder(i)?,
                Part::Segment(k) => archive.segment_decoder(i, k as usize)?,
            };
            let mut chunk = vec![0u8; CHUNK.min(self.len as usize).max(1)];
            let mut done = 0u64;
            while done < self.len {
                let n = decoder.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                match &self.store {
                    Store::Memory(v) => v
                        .write()
                        .expect("decoded lock")
                        .extend_from_slice(&chunk[..n]),
                    Store::Spill(f) => f.write_all_at(&chunk[..n], done)?,
                }
                done += n as u64;
                if progressive {
                    self.progress.lock().expect("progress lock").done = done;
                    self.advanced.notify_all();
                }
            }
            // Reading to the end verifies size and CRC-32.
            let mut rest = Vec::new();
            decoder.read_to_end(&mut rest)?;
            if done != self.len || !rest.is_empty() {
                return Err(EntryError::Corrupt(
                    "entry size differs from its record".into(),
                ));
            }
            self.progress.lock().expect("progress lock").done = done;
            self.advanced.notify_all();
            Ok(())
        })();
        if let Err(e) = result {
            self.progress.lock().expect("progress lock").error = Some(e);
            self.advanced.notify_all();
        }
    }

    fn failed(&self) -> bool {
        self.progress.lock().expect("progress lock").error.is_some()
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
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    pub const DEFAULT_SPILL: u64 = 4 << 30;

    pub fn with_memory(memory: u64) -> Self {
        CacheLimits {
            memory,
            spill: Self::DEFAULT_SPILL,
            spill_dir: std::env::temp_dir(),
        }
    }

    /// Entries up to this size are kept in memory.
    pub fn memory_entry_max(&self) -> u64 {
        self.memory / 2
    }

    /// Whether an entry of this size is decompressed whole into the cache at all.
    pub fn cacheable(&self, size: u64) -> bool {
        size <= self.memory_entry_max() || size <= self.spill
    }
}

/// What `stage` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Staging {
    Decoded(u64),
    /// Cached, staged or not stageable already.
    Skipped,
    /// The staged parts fill the memory limit until readers take some.
    Full,
}

/// What of an entry a cache slot holds: all of it, or one segment of its seek table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Whole,
    Segment(u32),
}

impl Part {
    /// Uncompressed length of this part of `entry`.
    pub fn len(self, archive: &Archive, i: u32) -> u64 {
        let e = archive.index().entry(i);
        match (self, &e.seek) {
            (Part::Segment(k), Some(t)) => {
                let seg = u64::from(t.segment_size);
                e.uncompressed_size
                    .saturating_sub(u64::from(k) * seg)
                    .min(seg)
            }
            _ => e.uncompressed_size,
        }
    }
}

type Key = (u32, Part);

struct Tier {
    lru: LruCache<Key, Arc<Decoded>>,
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
    /// Evicts least-recently-used entries until `extra` more bytes fit.
    fn make_room(&mut self, extra: u64) {
        while self.bytes + extra > self.cap {
            match self.lru.pop_lru() {
                Some((_, d)) => self.bytes -= d.len,
                None => break,
            }
        }
    }
    fn remove_if_same(&mut self, key: Key, d: &Arc<Decoded>) {
        if self.lru.peek(&key).is_some_and(|x| Arc::ptr_eq(x, d)) {
            self.lru.pop(&key);
            self.bytes -= d.len;
        }
    }
}

pub struct DecodedCache {
    limits: CacheLimits,
    memory: Mutex<Tier>,
    spill: Mutex<Tier>,
    /// Parts decoded ahead of their first reader (see `startup.rs`), kept apart until that reader
    /// comes, so the churn of a start-up's other reads never evicts them first.
    staged: Mutex<Staged>,
    /// How many parts `staged` holds, kept under its lock.
    staged_parts: std::sync::atomic::AtomicUsize,
    /// What readers decode in a mount's first seconds.
    recorder: Recorder,
    prefetched: Arc<Prefetched>,
}

#[derive(Default)]
struct Staged {
    parts: HashMap<Key, Arc<Decoded>>,
    bytes: u64,
}

impl DecodedCache {
    /// Takes `key` out of the staging area, if it is there. Every read asks, so when nothing is
    /// staged (most of a mount's life) an atomic load answers without the lock.
    fn take_staged(&self, key: &Key) -> Option<Arc<Decoded>> {
        if self.staged_parts.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return None;
        }
        let mut st = self.staged.lock().expect("staged lock");
        let d = st.parts.remove(key)?;
        st.bytes -= d.len;
        self.staged_parts
            .store(st.parts.len(), std::sync::atomic::Ordering::Release);
        Some(d)
    }
}

impl DecodedCache {
    pub fn new(limits: CacheLimits) -> Self {
        DecodedCache {
            memory: Mutex::new(Tier::new(limits.memory)),
            spill: Mutex::new(Tier::new(limits.spill)),
            limits,
            staged: Mutex::default(),
            staged_parts: Default::default(),
            recorder: Recorder::default(),
            prefetched: Arc::default(),
        }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// What the start-up prefetch put into this cache.
    pub fn prefetched(&self) -> &Arc<Prefetched> {
        &self.prefetched
    }

    pub fn limits(&self) -> &CacheLimits {
        &self.limits
    }

    fn tier(&self, size: u64) -> &Mutex<Tier> {
        if size <= self.limits.memory_entry_max() {
            &self.memory
        } else {
            &self.spill
        }
    }

    /// Whether entry `i` is in the cache whole (complete or being decompressed).
    pub fn contains(&self, archive: &Archive, i: u32) -> bool {
        let size = archive.index().entry(i).uncompressed_size;
        self.tier(size)
            .lock()
            .expect("cache lock")
            .lru
            .contains(&(i, Part::Whole))
    }

    /// `part` of entry `i`, decompressed or being decompressed; read it with `Decoded::read_at`.
    pub fn get(
        &self,
        archive: &Arc<Archive>,
        i: u32,
        part: Part,
    ) -> Result<Arc<Decoded>, EntryError> {
        let size = part.len(archive, i);
        let in_memory = size <= self.limits.memory_entry_max();
        let tier = self.tier(size);
        let key = (i, part);
        let staged = self.take_staged(&key);
        let (decoded, fresh) = {
            let mut t = tier.lock().expect("cache lock");
            match (t.lru.get(&key), staged) {
                (Some(d), _) if !d.failed() => (d.clone(), false),
                (_, staged) => {
                    let fresh = staged.is_none();
                    let d = match staged {
                        Some(d) => d,
                        None => Arc::new(self.new_decoded(size, in_memory)?),
                    };
                    if let Some(old) = t.lru.pop(&key) {
                        t.bytes -= old.len;
                    }
                    t.make_room(size);
                    t.lru.put(key, d.clone());
                    t.bytes += size;
                    (d, fresh)
                }
            }
        };
        if fresh {
            if size <= INLINE_DECODE {
                decoded.fill(archive, i, part);
            } else {
                let (d, a) = (decoded.clone(), archive.clone());
                rayon::spawn(move || d.fill(&a, i, part));
            }
        }
        Ok(decoded)
    }

    fn new_decoded(&self, size: u64, in_memory: bool) -> Result<Decoded, EntryError> {
        let store = if in_memory {
            let mut v = Vec::new();
            v.try_reserve_exact(size as usize)
                .map_err(|_| EntryError::Io("entry too large for memory".into()))?;
            Store::Memory(RwLock::new(v))
        } else {
            Store::Spill(tempfile::tempfile_in(&self.limits.spill_dir).map_err(|e| {
                EntryError::Io(format!(
                    "cannot create a temporary file in {} for a large entry: {e}",
                    self.limits.spill_dir.display()
                ))
            })?)
        };
        Ok(Decoded {
            len: size,
            store,
            progress: Mutex::new(Progress::default()),
            advanced: Condvar::new(),
        })
    }

    /// Decodes `part` of entry `i` (in memory, on this thread) for a reader still to come, unless
    /// it is cached or staged already, or would take the staged parts over the memory limit.
    /// Returns whether it decoded and how many bytes are staged now.
    pub fn stage(&self, archive: &Arc<Archive>, i: u32, part: Part) -> Staging {
        let size = part.len(archive, i);
        let key = (i, part);
        if size > self.limits.memory_entry_max()
            || self
                .tier(size)
                .lock()
                .expect("cache lock")
                .lru
                .contains(&key)
        {
            return Staging::Skipped;
        }
        let d = {
            let mut st = self.staged.lock().expect("staged lock");
            if st.parts.contains_key(&key) {
                return Staging::Skipped;
            }
            if st.bytes + size > self.limits.memory {
                return Staging::Full;
            }
            let Ok(d) = self.new_decoded(size, true) else {
                return Staging::Full;
            };
            let d = Arc::new(d);
            st.parts.insert(key, d.clone());
            st.bytes += size;
            self.staged_parts
                .store(st.parts.len(), std::sync::atomic::Ordering::Release);
            d
        };
        d.fill(archive, i, part);
        if d.failed() {
            let mut st = self.staged.lock().expect("staged lock");
            if st.parts.get(&key).is_some_and(|x| Arc::ptr_eq(x, &d)) {
                st.parts.remove(&key);
                st.bytes -= size;
                self.staged_parts
                    .store(st.parts.len(), std::sync::atomic::Ordering::Release);
            }
            return Staging::Skipped;
        }
        Staging::Decoded(size)
    }

    /// Reads `part` of entry `i` at `offset` (within the part) through the cache; failed parts leave
    /// the cache (the next read retries, in case the failure was transient I/O).
    pub fn read_at(
        &self,
        archive: &Arc<Archive>,
        i: u32,
        part: Part,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, EntryError> {
        let decoded = self.get(archive, i, part)?;
        let result = decoded.read_at(offset, buf);
        if result.is_err() {
            let size = part.len(archive, i);
            self.tier(size)
                .lock()
                .expect("cache lock")
                .remove_if_same((i, part), &decoded);
        }
        result
    }

    /// Bytes currently accounted in memory and in temporary files.
    pub fn usage(&self) -> (u64, u64) {
        let m = self.memory.lock().expect("cache lock").bytes;
        let s = self.spill.lock().expect("cache lock").bytes;
        (m, s)
    }
}
