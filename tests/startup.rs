//! Start-up profiles (`archive::startup`), without a kernel: what a recording keeps, how a profile
//! is stored and read back (and refused when it is not one), and that prefetched parts reach their
//! readers without a second decompression and within the cache's memory limit.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use conda_fuse::archive::cache::Part;
use conda_fuse::archive::startup::{Prefetched, Profile, prefetch};
use conda_fuse::archive::{Archive, CacheLimits, DecodedCache, EntryReader};

/// Compressible content of `len` bytes that differs per `seed`.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefgh"[(i / 7 + seed as usize) % 8] ^ seed)
        .collect()
}

/// A deflate archive of `files` (name, length), in this order.
fn archive(dir: &Path, name: &str, files: &[(&str, usize)]) -> Arc<Archive> {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (k, (file, len)) in files.iter().enumerate() {
        zip.start_file(*file, opts).unwrap();
        zip.write_all(&content(k as u8, *len)).unwrap();
    }
    zip.finish().unwrap();
    Arc::new(Archive::open(&path).unwrap())
}

fn cache(dir: &Path, memory: u64) -> Arc<DecodedCache> {
    let mut limits = CacheLimits::with_memory(memory);
    limits.spill_dir = dir.to_owned();
    Arc::new(DecodedCache::new(limits))
}

fn entry(archive: &Archive, name: &str) -> u32 {
    let index = archive.index();
    (0..index.len() as u32)
        .find(|&i| index.name(index.entry(i)) == name.as_bytes())
        .unwrap()
}

fn read_whole(archive: &Arc<Archive>, cache: &Arc<DecodedCache>, i: u32) -> Vec<u8> {
    let reader = EntryReader::new(archive.clone(), cache.clone(), i);
    reader.read_at(0, reader.size() as usize).unwrap()
}

const FILES: &[(&str, usize)] = &[
    ("env/a.py", 3000),
    ("env/b.pyc", 40_000),
    ("env/lib/c.so", 300_000),
    ("env/d.txt", 10),
];

#[test]
fn a_recording_keeps_what_readers_asked_for_in_first_use_order_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), "a.zip", FILES);
    let c = cache(dir.path(), 16 << 20);
    let (x, y, z) = (
        entry(&a, "env/lib/c.so"),
        entry(&a, "env/a.py"),
        entry(&a, "env/d.txt"),
    );

    read_whole(&a, &c, x); // before the recording: not kept
    c.recorder().start(Duration::from_secs(600));
    for i in [y, x, y, z, x] {
        read_whole(&a, &c, i);
    }
    assert_eq!(
        c.recorder().take(),
        vec![(y, Part::Whole), (x, Part::Whole), (z, Part::Whole)]
    );
    read_whole(&a, &c, y);
    assert_eq!(c.recorder().take(), vec![], "take ends the recording");

    c.recorder().start(Duration::ZERO);
    read_whole(&a, &c, z);
    assert_eq!(
        c.recorder().take(),
        vec![],
        "a window that has ended keeps nothing"
    );
}

#[test]
fn a_profile_reads_back_as_written_and_finds_its_entries_by_name_in_another_version() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), "a.zip", FILES);
    let parts = vec![
        (entry(&a, "env/lib/c.so"), Part::Whole),
        (entry(&a, "env/a.py"), Part::Whole),
        (entry(&a, "env/d.txt"), Part::Whole),
    ];
    let profile = Profile::of(&a, &parts);
    assert!(profile.is_for(&a));
    let back = Profile::from_bytes(&profile.to_bytes()).unwrap();
    assert_eq!(back, profile);
    assert_eq!(back.resolve(&a), parts);

    // A later version: other order (other numbers), d.txt gone, a new file.
    let b = archive(
        dir.path(),
        "b.zip",
        &[
            ("env/new", 5),
            ("env/a.py", 3000),
            ("env/lib/c.so", 300_000),
            ("env/b.pyc", 9),
        ],
    );
    assert_eq!(
        back.resolve(&b),
        vec![
            (entry(&b, "env/lib/c.so"), Part::Whole),
            (entry(&b, "env/a.py"), Part::Whole)
        ]
    );
    // A segment the entry does not have (it has no seek table) is skipped, not trusted.
    let mut segment = back.clone();
    segment.parts = vec![(b"env/a.py".to_vec(), Part::Segment(3))];
    assert_eq!(segment.resolve(&b), vec![]);
}

#[test]
fn anything_but_a_whole_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), "a.zip", FILES);
    let parts: Vec<_> = (0..a.index().len() as u32)
        .map(|i| (i, Part::Whole))
        .collect();
    let bytes = Profile::of(&a, &parts).to_bytes();
    for cut in 0..bytes.len() {
        assert_eq!(Profile::from_bytes(&bytes[..cut]), None, "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Profile::from_bytes(&longer), None, "trailing bytes");
    let mut lying = bytes.clone();
    lying[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        Profile::from_bytes(&lying),
        None,
        "a count beyond the bytes"
    );
    let mut other = bytes;
    other[..8].copy_from_slice(b"CFSTART9");
    assert_eq!(Profile::from_bytes(&other), None, "another format version");
}

#[test]
fn prefetched_parts_reach_their_readers_without_a_second_decompression() {
    let dir = tempfile::tempdir().unwrap();
    let a = archive(dir.path(), "a.zip", FILES);
    let c = cache(dir.path(), 16 << 20);
    let wanted = ["env/b.pyc", "env/lib/c.so", "env/a.py"];
    let parts: Vec<_> = wanted.iter().map(|n| (entry(&a, n), Part::Whole)).collect();
    let done = Arc::new(Prefetched::default());
    prefetch(a.clone(), c.clone(), parts, done.clone());

    let decoded = 40_000 + 300_000 + 3000;
    assert_eq!(done.parts.load(Ordering::Relaxed), 3);
    assert_eq!(done.decoded_bytes.load(Ordering::Relaxed), decoded);
    assert!(
        done.read_bytes.load(Ordering::Relaxed) > 0,
        "the read-ahead read the archive"
    );
    assert_eq!(a.decompressed_bytes(), decoded);
    for (k, (name, len)) in FILES.iter().enumerate() {
        assert_eq!(
            read_whole(&a, &c, entry(&a, name)),
            content(k as u8, *len),
            "{name}"
        );
    }
    // Only the entry that was not prefetched was decompressed by its reader.
    assert_eq!(a.decompressed_bytes(), decoded + 10);
}

#[test]
fn prefetch_stays_within_the_cache_memory_and_gives_up_when_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(String, usize)> = (0..6).map(|k| (format!("env/f{k}"), 40_000)).collect();
    let named: Vec<(&str, usize)> = files.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let a = archive(dir.path(), "a.zip", &named);
    // 100 kB of memory: two 40 kB parts fit the staging area, the third waits for a reader.
    let c = cache(dir.path(), 100_000);
    let parts: Vec<_> = (0..6u32).map(|i| (i, Part::Whole)).collect();
    let done = Arc::new(Prefetched::default());
    prefetch(a.clone(), c.clone(), parts, done.clone());
    assert_eq!(done.parts.load(Ordering::Relaxed), 2);
    assert_eq!(a.decompressed_bytes(), 80_000);
    for (k, (name, len)) in named.iter().enumerate() {
        assert_eq!(
            read_whole(&a, &c, k as u32),
            content(k as u8, *len),
            "{name}"
        );
    }
}
