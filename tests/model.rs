//! Model-based test of writable mounts: long random sequences of operations run against a mount
//! and against a plain directory, with the trees compared after every step (names, types, modes,
//! link counts, sizes, content, symlink targets) and every result compared too (success, or the
//! same errno). Saves and remounts happen in the middle of the sequence.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::World;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// A small namespace so that operations collide often.
const PATHS: &[&str] = &[
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
enum Op {
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
}

fn random_op(r: &mut Rng) -> Op {
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
        9 => {
            if r.below(2) == 0 {
                Op::Link { from: p, to: q }
            } else {
                Op::Symlink { target: q, path: p }
            }
        }
        _ => Op::Chmod {
            path: p,
            mode: [0o600, 0o755, 0o640, 0o4755][r.below(4) as usize],
        },
    }
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..len).map(|_| (r.next() >> 40) as u8).collect()
}

fn run(root: &Path, op: &Op) -> Result<(), i32> {
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
            let f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p(path))
                .map_err(err)?;
            f.write_all_at(&bytes(*len, *seed), *offset).map_err(err)
        }
        Op::Truncate { path, len } => fs::OpenOptions::new()
            .write(true)
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
        Op::Chmod { path, mode } => {
            // chmod follows symlinks; only change real files and directories.
            match fs::symlink_metadata(p(path)) {
                Ok(m) if m.file_type().is_symlink() => Ok(()),
                Ok(_) => {
                    fs::set_permissions(p(path), fs::Permissions::from_mode(*mode)).map_err(err)
                }
                Err(e) => Err(err(e)),
            }
        }
    }
}

/// (path, kind, mode, nlink, size, crc or target) of every node.
fn snapshot(root: &Path) -> Vec<String> {
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
                format!("dir {:o} nlink {}", md.mode() & 0o7777, md.nlink())
            } else if md.file_type().is_symlink() {
                format!(
                    "symlink -> {}",
                    fs::read_link(root.join(&r)).unwrap().display()
                )
            } else {
                let data = fs::read(root.join(&r)).unwrap();
                format!(
                    "file {:o} nlink {} size {} crc {:08x}",
                    md.mode() & 0o7777,
                    md.nlink(),
                    md.len(),
                    crc32fast::hash(&data)
                )
            };
            out.push(format!("{}: {desc}", r.display()));
        }
    }
    out.sort();
    out
}

/// "path kind mtime" of every node, root included; whole seconds, as archives keep them (a node
/// untouched since the last save shows sub-second digits until the next mount).
fn mtimes(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(root)
        .into_iter()
        .chain(std::iter::once(root.to_path_buf()))
        .map(|p| {
            let md = fs::symlink_metadata(&p).unwrap();
            let kind = if md.is_dir() {
                "dir"
            } else if md.file_type().is_symlink() {
                "symlink"
            } else {
                "file"
            };
            format!("{} {kind} {}", p.display(), md.mtime())
        })
        .collect();
    out.sort();
    out
}

/// The lines only one side has, marked with the side.
fn differences(native: &[String], mount: &[String]) -> String {
    let only = |x: &[String], y: &[String], tag: &str| {
        x.iter()
            .filter(|l| !y.contains(l))
            .map(|l| format!("{tag} {l}\n"))
            .collect::<String>()
    };
    only(native, mount, "native:") + &only(mount, native, "mount: ")
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(root).into_iter().flatten() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn seed_tree(root: &Path) {
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

fn run_model(seed: u64, steps: usize) {
    let w = World::new();
    let native = w.path("native");
    let src = w.path("src");
    seed_tree(&native);
    seed_tree(&src);
    let archive = w.path("m.zip");
    w.pack(&src, &archive, &[]);
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    let mount = |w: &World| w.ok([OsStr::new("mount"), archive.as_os_str(), point.as_os_str()]);
    mount(&w);
    let guard = common::Mount {
        world: &w,
        point: point.clone(),
    };
    let mut r = Rng(seed);
    let mut event = "none";
    let mut history = Vec::new();
    for step in 0..steps {
        let op = random_op(&mut r);
        history.push(format!("{step}: {op:?}"));
        let expected = run(&native, &op);
        let actual = run(&point, &op);
        assert_eq!(
            actual, expected,
            "seed {seed} step {step}: {op:?}: result differs (mount vs native)"
        );
        let (a, b) = (snapshot(&native), snapshot(&point));
        if a != b && std::env::var_os("MODEL_DEBUG").is_some() {
            for j in walk(&w.state_dir().join("upper"))
                .into_iter()
                .filter(|p| p.ends_with("journal"))
            {
                for rec in conda_fuse::overlay::journal::Journal::read(&j).unwrap() {
                    eprintln!("journal: {:?}", rec.op);
                }
            }
            eprintln!("history: {history:#?}");
        }
        assert!(
            a == b,
            "seed {seed} step {step} after {op:?} (previous event: {event}): trees differ\n{}",
            differences(&a, &b)
        );
        event = "none";
        match r.below(40) {
            2 => {
                // kill -9 of the daemon: every change made so far comes back from the journal,
                // mtimes included.
                let before = mtimes(&point);
                let status: serde_json::Value = serde_json::from_str(&w.ok([
                    OsStr::new("status"),
                    point.as_os_str(),
                    OsStr::new("--json"),
                ]))
                .unwrap();
                let pid = status["pid"].as_i64().unwrap() as i32;
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                while conda_fuse::process::is_conda_fuse(pid as u32) {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                w.ok([OsStr::new("unmount"), point.as_os_str()]);
                mount(&w);
                let after = mtimes(&point);
                if before != after && std::env::var_os("MODEL_DEBUG").is_some() {
                    eprintln!(
                        "recent: {:#?}",
                        &history[history.len().saturating_sub(25)..]
                    );
                    for j in walk(&w.state_dir().join("upper"))
                        .into_iter()
                        .filter(|p| p.ends_with("journal"))
                    {
                        for rec in conda_fuse::overlay::journal::Journal::read(&j).unwrap() {
                            eprintln!("journal: {:?} {:?}", rec.t, rec.op);
                        }
                    }
                }
                assert!(
                    before == after,
                    "seed {seed} step {step}: mtimes changed by kill -9 and replay\n{}",
                    differences(&before, &after)
                );
                event = "kill -9 and remount";
                history.push("KILL".into());
            }
            0 => {
                w.ok([OsStr::new("commit"), point.as_os_str()]);
                event = "commit";
                history.push("COMMIT".into());
            }
            1 => {
                w.ok([OsStr::new("unmount"), point.as_os_str()]);
                mount(&w);
                event = "unmount and mount";
                history.push("REMOUNT".into());
            }
            _ => {}
        }
    }
    // Finally the saved archive alone holds the same tree.
    w.ok([OsStr::new("unmount"), point.as_os_str()]);
    drop(guard);
    let m = w.mount_ro(&archive, "check");
    assert_eq!(
        snapshot(&native),
        snapshot(&m.point),
        "seed {seed}: saved archive differs"
    );
}

#[test]
fn random_operations_match_a_native_directory() {
    // MODEL_SEEDS=N runs more sequences (CI runs 5).
    let seeds: u64 = std::env::var("MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for seed in 1..=seeds {
        run_model(0x9e37_79b9_7f4a_7c15 ^ seed, 400);
    }
}
