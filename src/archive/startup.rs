//! Start-up profiles: which parts of an archive a mount's first seconds decode, recorded once per
//! archive version and prefetched by the next mounts, so a job on a fresh mount finds the files it
//! imports already decompressed (on another core, while it starts) and the archive bytes behind
//! them already read in a few large sequential reads instead of one small read each (which is what
//! costs on a network filesystem, where every uncached read is a round trip).
//!
//! A profile names entries by path (not number), so it stays useful across saves that renumber
//! them; names the archive no longer has are skipped. It never changes the archive.

use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::{DecodedCache, Part, Staging};
use super::read::Archive;

const MAGIC: &[u8; 8] = b"CFSTART1";
/// A profile longer than this is not ours (or not sane): it is ignored, never parsed.
pub const MAX_PROFILE_BYTES: u64 = 8 << 20;
/// Parts a recording keeps at most (a job that reads the whole env in its first seconds does not
/// make the next mount prefetch all of it).
const MAX_PARTS: usize = 50_000;
/// Archive bytes around which read-ahead merges two ranges into one read.
const MERGE_GAP: u64 = 256 << 10;
/// How long a prefetch waits for readers to take staged parts before it gives up.
const STALL: Duration = Duration::from_secs(2);
/// One read of the read-ahead at most.
const READ_CHUNK: usize = 4 << 20;
/// Archive bytes the read-ahead reads at most.
const READ_AHEAD_MAX: u64 = 512 << 20;

/// The parts decoded for readers while recording is on, in first-use order.
#[derive(Default)]
pub struct Recorder {
    on: AtomicBool,
    state: Mutex<Recording>,
}

#[derive(Default)]
struct Recording {
    until: Option<Instant>,
    seen: HashSet<(u32, Part)>,
    order: Vec<(u32, Part)>,
}

impl Recorder {
    /// Records what readers decode for the next `window`.
    pub fn start(&self, window: Duration) {
        let mut r = self.state.lock().expect("recording lock");
        *r = Recording {
            until: Some(Instant::now() + window),
            ..Recording::default()
        };
        self.on.store(true, Ordering::Release);
    }

    /// Notes a part a reader asked for (cheap when not recording: one atomic load).
    pub fn note(&self, entry: u32, part: Part) {
        if !self.on.load(Ordering::Acquire) {
            return;
        }
        let mut r = self.state.lock().expect("recording lock");
        if r.until.is_none_or(|t| Instant::now() >= t) || r.order.len() >= MAX_PARTS {
            self.on.store(false, Ordering::Release);
            return;
        }
        if r.seen.insert((entry, part)) {
            r.order.push((entry, part));
        }
    }

    /// Ends the recording and hands over what it saw.
    pub fn take(&self) -> Vec<(u32, Part)> {
        self.on.store(false, Ordering::Release);
        let mut r = self.state.lock().expect("recording lock");
        r.until = None;
        r.seen.clear();
        std::mem::take(&mut r.order)
    }
}

/// A recorded start-up, by entry name, with the archive version it was recorded on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// (length, mtime) of the archive recorded on: a profile of another version is re-recorded.
    pub recorded_on: (u64, i64),
    pub parts: Vec<(Vec<u8>, Part)>,
}

const WHOLE: u32 = u32::MAX;

impl Profile {
    pub fn of(archive: &Archive, parts: &[(u32, Part)]) -> Profile {
        let index = archive.index();
        Profile {
            recorded_on: identity(archive),
            parts: parts
                .iter()
                .map(|&(i, part)| (index.name(index.entry(i)).to_vec(), part))
                .collect(),
        }
    }

    pub fn is_for(&self, archive: &Archive) -> bool {
        self.recorded_on == identity(archive)
    }

    /// `CFSTART1`, length and mtime of the archive, the count, then per part: the segment number
    /// (`u32::MAX` for a whole entry), the name's length (u16) and the name (all little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.parts.len() * 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.recorded_on.0.to_le_bytes());
        out.extend_from_slice(&self.recorded_on.1.to_le_bytes());
        let parts: Vec<_> = self
            .parts
            .iter()
            .filter(|(name, _)| name.len() <= usize::from(u16::MAX))
            .collect();
        out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for (name, part) in parts {
            let k = match part {
                Part::Whole => WHOLE,
                Part::Segment(k) => *k,
            };
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name);
        }
        out
    }

    /// None for anything that is not a whole, well-formed profile.
    pub fn from_bytes(bytes: &[u8]) -> Option<Profile> {
        let mut r = bytes.strip_prefix(MAGIC)?;
        let len = u64::from_le_bytes(take(&mut r)?);
        let mtime = i64::from_le_bytes(take(&mut r)?);
        let count = u32::from_le_bytes(take(&mut r)?) as usize;
        // Each part takes at least 6 bytes: a count beyond that is a lie, not an allocation.
        let mut parts = Vec::with_capacity(count.min(r.len() / 6));
        for _ in 0..count {
            let k = u32::from_le_bytes(take(&mut r)?);
            let n = usize::from(u16::from_le_bytes(take(&mut r)?));
            let name = r.get(..n)?.to_vec();
            r = &r[n..];
            let part = if k == WHOLE {
                Part::Whole
            } else {
                Part::Segment(k)
            };
            parts.push((name, part));
        }
        r.is_empty().then_some(Profile {
            recorded_on: (len, mtime),
            parts,
        })
    }

    /// The parts by number in `archive`; names it lacks, and segments it does not have, are skipped.
    pub fn resolve(&self, archive: &Archive) -> Vec<(u32, Part)> {
        let index = archive.index();
        let by_name = index.by_name();
        self.parts
            .iter()
            .filter_map(|(name, part)| {
                let i = *by_name.get(name.as_slice())?;
                let e = index.entry(i);
                let exists = match part {
                    Part::Whole => true,
                    Part::Segment(k) => e
                        .seek
                        .as_ref()
                        .is_some_and(|t| (*k as usize) < t.segments.len()),
                };
                exists.then_some((i, *part))
            })
            .collect()
    }
}

fn take<const N: usize>(r: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = r.split_first_chunk::<N>()?;
    *r = rest;
    Some(*head)
}

fn identity(archive: &Archive) -> (u64, i64) {
    let len = archive.file().metadata().map_or(0, |m| m.len());
    (len, archive.mtime())
}

/// What a prefetch did, for `status` and the log.
#[derive(Debug, Default)]
pub struct Prefetched {
    pub parts: AtomicU64,
    pub decoded_bytes: AtomicU64,
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
}

/// Reads the archive bytes behind `parts` in large sequential reads (so the page cache, or a
/// network filesystem's client cache, holds them) and, at the same time, decodes the compressed
/// parts in the recorded order into the cache's staging area, where they wait for their first
/// reader. Staging is bounded by the cache's memory limit: when it is full, the prefetch waits for
/// readers to take parts, and gives up once they have taken none for `STALL`. A reader asking for
/// a part being staged waits for that one decode instead of starting its own.
pub fn prefetch(
    archive: Arc<Archive>,
    cache: Arc<DecodedCache>,
    parts: Vec<(u32, Part)>,
    done: Arc<Prefetched>,
) {
    let ranges = merged_ranges(&archive, &parts);
    let (a, d) = (archive.clone(), done.clone());
    let reader = std::thread::Builder::new()
        .name("read-ahead".into())
        .spawn(move || read_ahead(&a, &ranges, &d));
    let mut waiting_since = None;
    let mut next = parts.iter().filter(|&&(i, _)| {
        let e = archive.index().entry(i);
        e.method != super::format::METHOD_STORED && !e.encrypted()
    });
    let mut current = next.next();
    while let Some(&(i, part)) = current {
        match cache.stage(&archive, i, part) {
            Staging::Full => {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if since.elapsed() > STALL {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Staging::Decoded(len) => {
                done.parts.fetch_add(1, Ordering::Relaxed);
                done.decoded_bytes.fetch_add(len, Ordering::Relaxed);
            }
            Staging::Skipped => {}
        }
        waiting_since = None;
        current = next.next();
    }
    if let Ok(h) = reader {
        let _ = h.join();
    }
}

/// The archive byte ranges behind `parts`, sorted, merged across small gaps, capped.
fn merged_ranges(archive: &Archive, parts: &[(u32, Part)]) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = parts
        .iter()
        .filter_map(|&(i, part)| {
            let span = archive.span(i);
            match part {
                Part::Whole => Some((span.start, span.end)),
                Part::Segment(k) => {
                    let e = archive.index().entry(i);
                    let table = e.seek.as_ref()?;
                    let data = archive.data_range(i).ok()?;
                    let start = table.segments.get(k as usize)?.0;
                    let end = table
                        .segments
                        .get(k as usize + 1)
                        .map_or(e.compressed_size, |s| s.0);
                    Some((data.start + start, data.start + end))
                }
            }
        })
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    let mut total = 0u64;
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 + MERGE_GAP => {
                total += end.saturating_sub(last.1.max(start));
                last.1 = last.1.max(end);
            }
            _ => {
                total += end - start;
                merged.push((start, end));
            }
        }
        if total >= READ_AHEAD_MAX {
            break;
        }
    }
    merged
}

fn read_ahead(archive: &Archive, ranges: &[(u64, u64)], done: &Prefetched) {
    let mut buf = vec![0u8; READ_CHUNK];
    for &(start, end) in ranges {
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(READ_CHUNK);
            match archive.file().read_at(&mut buf[..n], at) {
                Ok(0) | Err(_) => break,
                Ok(got) => {
                    at += got as u64;
                    done.reads.fetch_add(1, Ordering::Relaxed);
                    done.read_bytes.fetch_add(got as u64, Ordering::Relaxed);
                }
            }
        }
    }
}
