//! The operation generator of the model-based tests, and how each operation runs on a native
//! directory: random sequences over a small namespace (so operations collide often), run against
//! conda-fuse and against the native directory, must give the same results and trees.

use std::fs;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A small namespace so that operations collide often.
pub const PATHS: &[&str] = &[
    "a",
    "b",
    "c",
    "d",
    "d/a",
    "d/e",
    "d/e/f",
    "e",
    "e/x",
    "g/h",
    "base/bin/tool",
    "base/lib",
    "base/lib/m.py",
];

#[derive(Debug, Clone)]
pub enum Op {
    Write {
        path: String,
        offset: u64,
        len: usize,
        seed: u64,
    },
    Truncate {
        path: String,
        len: u64,
    },
    Mkdir {
        path: String,
    },
    Rmdir {
        path: String,
    },
    Unlink {
        path: String,
    },
    Rename {
        from: String,
        to: String,
        flags: u32,
    },
    Link {
        from: String,
        to: String,
    },
    Symlink {
        target: String,
        path: String,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    Mkfifo {
        path: String,
    },
}

pub fn random_op(r: &mut Rng) -> Op {
    let p = r.pick(PATHS).to_string();
    let q = r.pick(PATHS).to_string();
    match r.below(11) {
        0 | 1 => Op::Write {
            path: p,
            offset: r.below(3) * 70_000,
            len: r.below(150_000) as usize,
            seed: r.next(),
        },
        2 => Op::Truncate {
            path: p,
            len: r.below(3) * 50_000,
        },
        3 | 4 => Op::Mkdir { path: p },
        5 => Op::Rmdir { path: p },
        6 => Op::Unlink { path: p },
        7 | 8 => Op::Rename {
            from: p,
            to: q,
            flags: [0, 0, libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE][r.below(4) as usize],
        },
        9 => match r.below(5) {
            0 | 1 => Op::Link { from: p, to: q },
            2 | 3 => Op::Symlink { target: q, path: p },
            _ => Op::Mkfifo { path: p },
        },
        _ => Op::Chmod {
            path: p,
            mode: [0o600, 0o755, 0o640, 0o4755][r.below(4) as usize],
        },
    }
}

pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..len).map(|_| (r.next() >> 40) as u8).collect()
}

/// Runs `op` on the directory `root` (a native one, or a mount); the errno on failure.
pub fn run(root: &Path, op: &Op) -> Result<(), i32> {
    let p = |s: &str| root.join(s);
    let err = |e: io::Error| e.raw_os_error().unwrap_or(-1);
    let nix_err = |e: nix::errno::Errno| e as i32;
    match op {
        Op::Write {
            path,
            offset,
            len,
            seed,
        } => {
            // O_NONBLOCK: a FIFO without a reader is ENXIO instead of a wait for ever.
            let f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NONBLOCK)
                .open(p(path))
                .map_err(err)?;
            f.write_all_at(&bytes(*len, *seed), *offset).map_err(err)
        }
        Op::Truncate { path, len } => fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(p(path))
            .and_then(|f| f.set_len(*len))
            .map_err(err),
        Op::Mkdir { path } => fs::create_dir(p(path)).map_err(err),
        Op::Rmdir { path } => fs::remove_dir(p(path)).map_err(err),
        Op::Unlink { path } => fs::remove_file(p(path)).map_err(err),
        Op::Rename { from, to, flags } => nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &p(from),
            nix::fcntl::AT_FDCWD,
            &p(to),
            nix::fcntl::RenameFlags::from_bits_truncate(*flags),
        )
        .map_err(nix_err),
        Op::Link { from, to } => fs::hard_link(p(from), p(to)).map_err(err),
        Op::Symlink { target, path } => std::os::unix::fs::symlink(target, p(path)).map_err(err),
        Op::Mkfifo { path } => {
            nix::unistd::mkfifo(&p(path), nix::sys::stat::Mode::from_bits_truncate(0o666))
                .map_err(nix_err)
        }
        Op::Chmod { path, mode } => {
            // chmod follows symlinks; only change real files and directories, and keep
            // directories usable by their owner (tests may run as an ordinary user).
            match fs::symlink_metadata(p(path)) {
                Ok(m) if m.file_type().is_symlink() => Ok(()),
                Ok(m) => {
                    let mode = chmod_mode(*mode, m.is_dir());
                    fs::set_permissions(p(path), fs::Permissions::from_mode(mode)).map_err(err)
                }
                Err(e) => Err(err(e)),
            }
        }
    }
}

/// The mode a model chmod sets: directories always stay usable by their owner.
pub fn chmod_mode(mode: u32, dir: bool) -> u32 {
    if dir { mode | 0o700 } else { mode }
}

/// "path: kind mode nlink size crc-or-target" of every node, sorted.
pub fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(root.join(&rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let md = fs::symlink_metadata(root.join(&r)).unwrap();
            let desc = if md.is_dir() {
                stack.push(r.clone());
                describe_dir(md.mode(), md.nlink())
            } else if md.file_type().is_symlink() {
                describe_symlink(
                    fs::read_link(root.join(&r))
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes(),
                )
            } else if !md.is_file() {
                describe_special(md.mode(), md.nlink())
            } else {
                describe_file(md.mode(), md.nlink(), &fs::read(root.join(&r)).unwrap())
            };
            out.push(format!("{}: {desc}", r.display()));
        }
    }
    out.sort();
    out
}

pub fn describe_dir(mode: u32, nlink: u64) -> String {
    format!("dir {:o} nlink {nlink}", mode & 0o7777)
}

pub fn describe_symlink(target: &[u8]) -> String {
    format!("symlink -> {}", String::from_utf8_lossy(target))
}

/// A FIFO, socket or device: its type and mode (as `ls -l` shows them).
pub fn describe_special(mode: u32, nlink: u64) -> String {
    format!("special {:o} nlink {nlink}", mode)
}

pub fn describe_file(mode: u32, nlink: u64, data: &[u8]) -> String {
    format!(
        "file {:o} nlink {nlink} size {} crc {:08x}",
        mode & 0o7777,
        data.len(),
        crc32fast::hash(data)
    )
}

/// The lines only one side has, marked with the side.
pub fn differences(native: &[String], other: &[String]) -> String {
    let only = |x: &[String], y: &[String], tag: &str| {
        x.iter()
            .filter(|l| !y.contains(l))
            .map(|l| format!("{tag} {l}\n"))
            .collect::<String>()
    };
    only(native, other, "native:") + &only(other, native, "other: ")
}

/// The starting tree of every model run.
pub fn seed_tree(root: &Path) {
    fs::create_dir_all(root.join("base/bin")).unwrap();
    fs::create_dir_all(root.join("base/lib")).unwrap();
    fs::write(root.join("base/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    fs::set_permissions(
        root.join("base/bin/tool"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(root.join("base/lib/m.py"), b"x = 1\n".repeat(300_000)).unwrap();
    fs::write(root.join("a"), bytes(5000, 9)).unwrap();
}
