//! The filesystem's semantics without a kernel: `Filesystem` over a writable overlay in a temporary
//! directory, driven by a kernel in miniature (`common::kernel`). Runs as any user, in seconds: the
//! model test against a native directory (with saves and crashes), a write that waits for a save,
//! the root's attributes across saves and crashes, and the kernel's reference counts.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use common::kernel::{self, Kernel, errno};
use common::model::{self, Rng};
use conda_fuse::archive::{BuildOptions, Compression};
use conda_fuse::fs::Filesystem;

fn save(fs: &Filesystem, progress: &mut dyn FnMut(u64, u64)) {
    let opts = BuildOptions {
        compression: Compression::SAVE,
        threads: 2,
        spill_dir: std::env::temp_dir(),
    };
    conda_fuse::commit::save(fs.overlay(), &opts, 0, progress).expect("save");
}

/// `env.zip` in a new temporary directory, holding `files`.
fn packed(files: &[(&str, &[u8])]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for (name, data) in files {
        fs::write(src.join(name), data).unwrap();
    }
    let archive = dir.path().join("env.zip");
    kernel::pack(&src, &archive);
    (dir, archive)
}

/// Waits until thread `tid` of this process sleeps (blocked on a lock); fails, saying so, if the
/// thread is gone (it finished: nothing blocked it) or does not block within 30 s.
fn wait_until_blocked(tid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .unwrap_or_else(|_| panic!("thread {tid} finished: nothing blocked it"));
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        if state == Some('S') {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "thread {tid} did not block within 30 s (state {state:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_write_during_a_save_copies_up_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::create_dir_all(src.join("z")).unwrap();
    fs::write(src.join("a/first"), b"first\n").unwrap();
    for i in 0..200 {
        fs::write(src.join(format!("z/f{i:03}")), format!("file {i}\n")).unwrap();
    }
    let archive = dir.path().join("env.zip");
    kernel::pack(&src, &archive);
    let (fs, _) = kernel::open_writable(&archive, &dir.path().join("upper"));
    let fs = Arc::new(fs);
    // A new entry early in the tree: in the saved archive every file of z/ has the next number.
    Kernel::new(&fs).write("a/new", 0, b"new\n").unwrap();

    // The writer starts once the save holds the gate (from its first progress report), so its
    // write can only wait for it.
    let writer_tid = Arc::new(AtomicI32::new(0));
    let wrote = Arc::new(AtomicBool::new(false));
    let mut writer = None;
    save(&fs, &mut |_, _| {
        if writer.is_some() {
            return;
        }
        let (fs, tid, done) = (fs.clone(), writer_tid.clone(), wrote.clone());
        writer = Some(std::thread::spawn(move || {
            tid.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
            let k = Kernel::new(&fs);
            let r = k.write("z/f150", 9, b"appended\n");
            done.store(true, Ordering::SeqCst);
            r
        }));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while writer_tid.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never started"
            );
            std::thread::yield_now();
        }
        wait_until_blocked(writer_tid.load(Ordering::SeqCst));
        assert!(
            !wrote.load(Ordering::SeqCst),
            "the write went past a running save"
        );
    });
    let writer = writer.expect("the save reported progress");
    writer.join().unwrap().unwrap();
    let k = Kernel::new(&fs);
    assert_eq!(k.read("z/f150").unwrap(), b"file 150\nappended\n");
    assert_eq!(k.read("z/f151").unwrap(), b"file 151\n");
    // And the next save makes exactly that permanent.
    save(&fs, &mut |_, _| {});
    drop(k);
    drop(fs);
    let (fs, _) = kernel::open_writable(&archive, &dir.path().join("upper"));
    assert_eq!(
        Kernel::new(&fs).read("z/f150").unwrap(),
        b"file 150\nappended\n"
    );
}

/// The mount's root is no entry of the archive: it shows the archive's mtime. After a save it must
/// show what a fresh mount of the new archive shows, or a crash changes it.
#[test]
fn the_root_keeps_its_attributes_across_a_save_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    let archive = dir.path().join("env.zip");
    kernel::pack(&src, &archive);
    let upper = dir.path().join("upper");
    let (fs, _) = kernel::open_writable(&archive, &upper);
    Kernel::new(&fs).write("g", 0, b"changed the root").unwrap();
    // The save finishes in a later second than the last change in the root.
    let second = conda_fuse::clock::now().0;
    while conda_fuse::clock::now().0 == second {
        std::thread::sleep(Duration::from_millis(20));
    }
    save(&fs, &mut |_, _| {});
    Kernel::new(&fs)
        .write("f", 0, b"a change below the root")
        .unwrap();
    let before = Kernel::new(&fs).mtimes();
    drop(fs); // a crash: nothing is flushed or cleaned up beyond what each change did
    let (fs, recovery) = kernel::open_writable(&archive, &upper);
    assert_eq!(recovery.replayed, 1);
    let after = Kernel::new(&fs).mtimes();
    assert_eq!(before, after, "{}", model::differences(&before, &after));
}

/// The writer lock's record says whether its holder has unsaved changes, before the first one is
/// acknowledged and until a save: another user who finds the record of a dead holder knows there
/// is work only that holder's user can recover.
#[test]
fn the_lock_record_says_whether_changes_are_unsaved() {
    let (dir, archive) = packed(&[("f", b"x")]);
    let (fs, _) = kernel::open_writable(&archive, &dir.path().join("upper"));
    let unsaved = || {
        let text = fs::read_to_string(dir.path().join("env.zip.lock")).unwrap();
        let record: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        record["unsaved"].as_bool().unwrap()
    };
    assert!(!unsaved());
    Kernel::new(&fs).mkdir("new").unwrap();
    assert!(unsaved());
    save(&fs, &mut |_, _| {});
    assert!(!unsaved());
    Kernel::new(&fs).write("f", 0, b"y").unwrap();
    assert!(unsaved(), "a write after a save marks it again");
}

/// Many threads forgetting the last references of one node at once never wrap its count (which
/// would keep a deleted file's data forever) nor free it twice.
#[test]
fn concurrent_forgets_never_wrap_the_reference_count() {
    let (dir, archive) = packed(&[("keep", b"k")]);
    let (fs, _) = kernel::open_writable(&archive, &dir.path().join("upper"));
    let fs = Arc::new(fs);
    for round in 0..50 {
        let name = format!("f{round}");
        let k = Kernel::new(&fs);
        k.write(&name, 0, b"data").unwrap();
        // The kernel holds 8 references, then drops them from 8 threads at once.
        let mut ino = 0;
        for _ in 0..8 {
            ino = fs.lookup(1, name.as_bytes()).unwrap().ino;
        }
        k.unlink(&name).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let fs = fs.clone();
                std::thread::spawn(move || fs.forget(ino, 1))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            fs.getattr(ino).map_err(errno).err(),
            Some(nix::errno::Errno::ENOENT),
            "round {round}"
        );
        assert_eq!(
            fs.overlay().pending().files,
            0,
            "round {round}: its data is gone"
        );
    }
}

/// A build loop in a long-lived mount creates and deletes files for ever; their inode numbers are
/// reused (with a new generation), so the daemon does not grow without bound.
#[test]
fn inode_numbers_of_deleted_files_are_reused_with_a_new_generation() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let archive = dir.path().join("env.zip");
    kernel::pack(&src, &archive);
    let (fs, _) = kernel::open_writable(&archive, &dir.path().join("upper"));
    let k = Kernel::new(&fs);
    let slots = fs.overlay().view().tree().len();
    let mut seen = std::collections::HashSet::new();
    for i in 0..1000 {
        k.write("obj.o", 0, format!("{i}").as_bytes()).unwrap();
        let n = fs.lookup(1, b"obj.o").unwrap();
        assert!(
            seen.insert((n.ino, n.generation)),
            "({}, {}) handed out twice",
            n.ino,
            n.generation
        );
        fs.forget(n.ino, 1);
        k.unlink("obj.o").unwrap();
    }
    assert!(fs.overlay().view().tree().len() <= slots + 1);
}

fn run_model(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let native = dir.path().join("native");
    let src = dir.path().join("src");
    model::seed_tree(&native);
    model::seed_tree(&src);
    let archive = dir.path().join("m.zip");
    kernel::pack(&src, &archive);
    let upper = dir.path().join("upper");
    let (mut fs, _) = kernel::open_writable(&archive, &upper);
    let mut r = Rng(seed);
    let mut history = Vec::new();
    for step in 0..steps {
        let op = model::random_op(&mut r);
        history.push(format!("{step}: {op:?}"));
        let expected = model::run(&native, &op);
        let actual = Kernel::new(&fs).run(&op);
        assert_eq!(
            actual,
            expected,
            "seed {seed} step {step}: {op:?}: result differs (conda-fuse vs native)\n{}",
            history[history.len().saturating_sub(20)..].join("\n")
        );
        let (a, b) = (model::snapshot(&native), Kernel::new(&fs).snapshot());
        assert!(
            a == b,
            "seed {seed} step {step} after {op:?}: trees differ\n{}\n{}",
            model::differences(&a, &b),
            history[history.len().saturating_sub(20)..].join("\n")
        );
        match r.below(30) {
            0 => {
                save(&fs, &mut |_, _| {});
                history.push("SAVE".into());
            }
            1 => {
                // A crash: the daemon's memory is gone, the journal and data files stay.
                let before = Kernel::new(&fs).mtimes();
                drop(fs);
                fs = kernel::open_writable(&archive, &upper).0;
                let after = Kernel::new(&fs).mtimes();
                assert!(
                    before == after,
                    "seed {seed} step {step}: mtimes changed by a crash and replay\n{}",
                    model::differences(&before, &after)
                );
                history.push("CRASH".into());
            }
            _ => {}
        }
    }
    save(&fs, &mut |_, _| {});
    drop(fs);
    let (fs, _) = kernel::open_writable(&archive, &upper);
    assert_eq!(
        model::snapshot(&native),
        Kernel::new(&fs).snapshot(),
        "seed {seed}: saved archive differs"
    );
}

#[test]
fn random_operations_match_a_native_directory_without_a_kernel() {
    // SEMANTIC_SEEDS=N runs more sequences.
    let seeds: u64 = std::env::var("SEMANTIC_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for seed in 1..=seeds {
        run_model(0x2545_f491_4f6c_dd1d ^ seed, 300);
    }
}
