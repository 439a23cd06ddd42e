//! Model-based test of writable mounts: long random sequences of operations (`common::model`) run
//! against a mount and against a plain directory, with the trees compared after every step (names,
//! types, modes, link counts, sizes, content, symlink targets) and every result compared too
//! (success, or the same errno). Saves, remounts and kill -9 happen in the middle of the sequence.
//! `tests/semantics.rs` runs the same model without a kernel.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::World;
use common::model::{Rng, differences, random_op, run, seed_tree, snapshot};

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
        assert!(
            a == b,
            "seed {seed} step {step} after {op:?} (previous event: {event}): trees differ\n{}\n{}",
            differences(&a, &b),
            history[history.len().saturating_sub(25)..].join("\n")
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
                assert!(
                    before == after,
                    "seed {seed} step {step}: mtimes changed by kill -9 and replay\n{}\n{}",
                    differences(&before, &after),
                    history[history.len().saturating_sub(25)..].join("\n")
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
    if common::skip_without_mounts() {
        return;
    }
    // MODEL_SEEDS=N runs more sequences (CI runs 5).
    let seeds: u64 = std::env::var("MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for seed in 1..=seeds {
        run_model(0x9e37_79b9_7f4a_7c15 ^ seed, 400);
    }
}
