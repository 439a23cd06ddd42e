//! An entry over 4 GiB (zip64) survives pack, mount, unzip and Python's zipfile.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;

use common::World;

const SIZE: u64 = (4 << 30) + (1 << 20) + 3;

fn crc_of(mut r: impl Read) -> (u32, u64) {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return (h.finalize(), total);
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
}

#[test]
fn entry_over_4_gib_round_trips() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(&src).unwrap();
    let f = fs::File::create(src.join("huge.bin")).unwrap();
    f.set_len(SIZE).unwrap();
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(&common::fixture::noise(1 << 20, 3), 3 << 30)
        .unwrap();
    f.write_all_at(b"end", SIZE - 3).unwrap();
    drop(f);
    fs::write(src.join("small"), b"after the big one").unwrap();
    let expected = crc_of(fs::File::open(src.join("huge.bin")).unwrap());

    let archive = w.path("big.zip");
    w.pack(&src, &archive, &["--level", "1"]);
    let m = w.mount_ro(&archive, "mnt");
    assert_eq!(fs::metadata(m.path("huge.bin")).unwrap().len(), SIZE);
    assert_eq!(
        crc_of(fs::File::open(m.path("huge.bin")).unwrap()),
        expected
    );
    // Random access far into the entry (served from a decompressed temporary file).
    let mut tail = [0u8; 3];
    fs::File::open(m.path("huge.bin"))
        .unwrap()
        .read_exact_at(&mut tail, SIZE - 3)
        .unwrap();
    assert_eq!(&tail, b"end");
    assert_eq!(fs::read(m.path("small")).unwrap(), b"after the big one");

    // Other readers agree on the zip64 sizes and the content.
    let listing = common::run(std::process::Command::new("unzip").arg("-Zl").arg(&archive));
    assert!(String::from_utf8_lossy(&listing.stdout).contains(&SIZE.to_string()));
    let out = common::run(
        std::process::Command::new("python3")
            .arg("-c")
            .arg("import zipfile,sys,zlib\nz=zipfile.ZipFile(sys.argv[1])\nc=0\nwith z.open('huge.bin') as f:\n    for b in iter(lambda: f.read(1<<22), b''): c=zlib.crc32(b,c)\nprint(c, z.getinfo('huge.bin').file_size)")
            .arg(&archive),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} {}", expected.0, SIZE)
    );
}

/// Sizes whose seek table would have filled the central header's extra field to the brim (5458 to
/// 5460 one-MiB segments, ~5.3 GiB): pack writes an archive every reader reads, and it saves.
#[test]
fn the_largest_seek_tables_still_fit_their_header() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("src");
    fs::create_dir_all(&src).unwrap();
    for (name, segments) in [("a", 5454u64), ("b", 5455), ("c", 5458), ("d", 5460)] {
        let f = fs::File::create(src.join(name)).unwrap();
        let size = (segments << 20) - 7;
        f.set_len(size).unwrap();
        f.write_all_at(name.as_bytes(), size - 1).unwrap();
    }
    let archive = w.path("tables.zip");
    w.pack(&src, &archive, &["--level", "1"]);
    let out = common::run(
        std::process::Command::new("python3")
            .arg("-c")
            .arg("import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nprint(sorted((i.filename, i.file_size) for i in z.infolist()))")
            .arg(&archive),
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&format!("('d', {})", (5460u64 << 20) - 7)),
        "{listing}"
    );
    common::run(std::process::Command::new("unzip").arg("-Zl").arg(&archive));
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    w.ok([
        std::ffi::OsStr::new("mount"),
        archive.as_os_str(),
        point.as_os_str(),
    ]);
    let m = common::Mount {
        world: &w,
        point: point.clone(),
    };
    let mut last = [0u8; 1];
    let d = fs::File::open(m.path("d")).unwrap();
    d.read_exact_at(&mut last, (5460u64 << 20) - 8).unwrap();
    assert_eq!(&last, b"d");
    fs::write(m.path("changed"), b"x").unwrap();
    w.ok([std::ffi::OsStr::new("commit"), point.as_os_str()]);
}
