//! Property tests of the archive reader: every archive our writer makes reads back exactly, and no
//! mutation of an archive (flipped bytes, truncation, inserted garbage) can make the reader panic,
//! hang or allocate without bound: it returns data or an error. Cases scale with PROPTEST_CASES.

use std::io::Write;
use std::sync::Arc;

use conda_fuse::archive::compress::{self, Compression, Payload};
use conda_fuse::archive::format::HeaderFields;
use conda_fuse::archive::meta::unix_to_dos;
use conda_fuse::archive::write::ZipWriter;
use conda_fuse::archive::{Archive, CacheLimits, DecodedCache, EntryReader, Kind};
use conda_fuse::overlay::tree::{Defaults, Tree};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Spec {
    name: Vec<u8>,
    kind: Kind,
    content: Vec<u8>,
    method: u8,
}

fn spec() -> impl Strategy<Value = Spec> {
    let segment = prop::collection::vec(prop::sample::select(b"ab./\xe9_\x00".to_vec()), 1..12);
    // Small random data, long runs, and entries large enough to get a seek table.
    let content = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..3000),
        2 => (any::<u8>(), 0usize..200_000).prop_map(|(b, n)| vec![b; n]),
        1 => (any::<u8>(), 1_048_577usize..2_600_000).prop_map(|(b, n)| {
            let mut v = vec![b; n];
            v[n / 3] ^= 1;
            v
        }),
    ];
    (
        segment,
        prop::sample::select(vec![Kind::File, Kind::Dir, Kind::Symlink]),
        content,
        0u8..3,
    )
        .prop_map(|(name, kind, content, method)| Spec {
            name,
            kind,
            content: if kind == Kind::Dir {
                Vec::new()
            } else {
                content
            },
            method,
        })
}

/// An archive as our writer makes it, in memory.
fn build(specs: &[Spec]) -> Vec<u8> {
    let mut w = ZipWriter::new(Vec::new());
    for s in specs {
        let c = match s.method {
            0 => Compression::Store,
            1 => Compression::Deflate(6),
            _ => Compression::Zstd(3),
        };
        let mut out = compress::compress_bytes(s.content.clone(), c).unwrap();
        let Payload::Memory(data) = &mut out.payload else {
            unreachable!()
        };
        let mut extra = Vec::new();
        if let Some(t) = &out.seek {
            t.encode(&mut extra);
        }
        let h = HeaderFields {
            name: &s.name,
            method: out.method,
            crc32: out.crc32,
            compressed_size: data.len() as u64,
            uncompressed_size: out.uncompressed_size,
            mode: s.kind.type_bits() | 0o644,
            mtime: 1_600_000_000,
            uid: 1,
            gid: 2,
            dos_datetime: unix_to_dos(1_600_000_000),
            central_extra: &extra,
            flags: None,
        };
        w.add(&h, &mut &data[..]).unwrap();
    }
    w.finish().unwrap().0
}

/// Opens `bytes` as an archive and reads everything it claims to hold; panics only on a bug.
/// (name, content or error) of each entry.
type ReadBack = Vec<(Vec<u8>, Result<Vec<u8>, String>)>;

fn read_everything(bytes: &[u8]) -> Option<ReadBack> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    let archive = Arc::new(Archive::open(&path).ok()?);
    let _ = Tree::build(
        archive.index(),
        Defaults {
            uid: 0,
            gid: 0,
            mtime: 0,
            trust_owners: true,
            perm_mask: 0o7777,
        },
    );
    let mut limits = CacheLimits::with_memory(1 << 20);
    limits.spill = 64 << 20;
    limits.spill_dir = dir.path().to_owned();
    let cache = Arc::new(DecodedCache::new(limits));
    let mut out = Vec::new();
    for i in 0..archive.index().len() as u32 {
        let e = archive.index().entry(i).clone();
        let name = archive.index().name(&e).to_vec();
        let reader = EntryReader::new(archive.clone(), cache.clone(), i);
        // Whole reads for plausible sizes; probes at a few offsets for absurd ones.
        let result = if e.uncompressed_size <= 16 << 20 {
            let mut all = Vec::new();
            let mut off = 0u64;
            loop {
                match reader.read_at(off, 128 * 1024) {
                    Ok(chunk) if chunk.is_empty() => break Ok(all),
                    Ok(chunk) => {
                        off += chunk.len() as u64;
                        all.extend(chunk);
                    }
                    Err(err) => break Err(err.to_string()),
                }
            }
        } else {
            for off in [0, e.uncompressed_size / 2, e.uncompressed_size - 1] {
                let _ = reader.read_at(off, 4096);
            }
            Err("absurd size".into())
        };
        out.push((name, result));
    }
    Some(out)
}

/// PROPTEST_CASES overrides the number of cases (CI runs the defaults; raise it to fuzz longer).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), .. ProptestConfig::default() })]

    #[test]
    fn written_archives_read_back_exactly(specs in prop::collection::vec(spec(), 0..12)) {
        let bytes = build(&specs);
        let read = read_everything(&bytes).expect("our own archive opens");
        prop_assert_eq!(read.len(), specs.len());
        for (s, (name, data)) in specs.iter().zip(read) {
            prop_assert_eq!(&s.name, &name);
            prop_assert_eq!(data.as_ref().map_err(|e| e.as_str()), Ok(&s.content));
        }
        // The zip crate, an independent reader, agrees (it merges duplicate names, so only when
        // names are unique).
        let unique: std::collections::HashSet<_> = specs.iter().map(|s| &s.name).collect();
        if unique.len() != specs.len() {
            return Ok(());
        }
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        for (i, s) in specs.iter().enumerate() {
            let mut f = z.by_index(i).unwrap();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut v).unwrap();
            prop_assert_eq!(&v, &s.content);
            prop_assert_eq!(f.unix_mode().unwrap() & 0o170000, s.kind.type_bits());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), .. ProptestConfig::default() })]

    #[test]
    fn mutated_archives_never_crash_the_reader(
        specs in prop::collection::vec(spec(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in prop::option::of(any::<prop::sample::Index>()),
        insert in prop::option::of((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..64))),
    ) {
        let mut bytes = build(&specs);
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= b;
        }
        if let Some((at, junk)) = insert {
            let i = at.index(bytes.len());
            bytes.splice(i..i, junk);
        }
        if let Some(at) = cut {
            bytes.truncate(at.index(bytes.len()));
        }
        let _ = read_everything(&bytes);
    }
}
