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
