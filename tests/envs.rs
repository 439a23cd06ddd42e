//! Environments by name beyond the happy path: failed or refused creates leave nothing behind,
//! hostile names are refused, rm asks and refuses, concurrent batch runs share one mount, stale
//! mounts are cleaned up by the next command, doctor reports, and the hooks in shells/ are current.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

use common::conda::EnvWorld;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(w: &EnvWorld, args: &[&str]) -> String {
    let o = w.cf(args).output().unwrap();
    assert!(
        o.status.success(),
        "conda-fuse {args:?} failed:\n{}",
        text(&o)
    );
    text(&o)
}

fn fails(w: &EnvWorld, args: &[&str]) -> String {
    let o = w.cf(args).output().unwrap();
    assert!(
        !o.status.success(),
        "conda-fuse {args:?} should fail:\n{}",
        text(&o)
    );
    text(&o)
}

/// Nothing of `name` is left: no archive (final or temporary), no mount point, no mounts, no lock.
fn assert_no_trace(w: &EnvWorld, name: &str) {
    let archives: Vec<_> = std::fs::read_dir(&w.archives)
        .map_or(Vec::new(), |d| d.flatten().map(|e| e.file_name()).collect());
    assert!(
        archives.iter().all(|f| !f.to_string_lossy().contains(name)),
        "left in archives: {archives:?}"
    );
    assert!(!w.mounts.join(name).exists(), "mount point left");
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(w.world.dir.path().to_str().unwrap())
    );
}

#[test]
fn failed_and_refused_creates_leave_nothing_behind() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    // conda cannot solve: nothing is kept.
    let out = fails(&w, &["create", "broken", "no-such-package", "-y"]);
    assert!(
        out.contains("conda create failed") && out.contains("nothing was kept"),
        "{out}"
    );
    assert_no_trace(&w, "broken");
    // The user answers no at conda's question.
    let mut child = w
        .cf(&["create", "declined", "python"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert_no_trace(&w, "declined");
    // A create killed half-way leaves a hidden temporary archive; the next create of that name
    // cleans it up and succeeds. (One claimed seconds ago and not mounted yet is a create that
    // is starting, on this node or another: left alone.)
    std::fs::create_dir_all(&w.archives).unwrap();
    let leftover = w.archives.join(".again.creating.zip");
    std::fs::write(&leftover, b"half-written").unwrap();
    let out = fails(&w, &["create", "again", "python", "-y"]);
    assert!(
        out.contains("another conda-fuse-create again is running"),
        "{out}"
    );
    assert!(leftover.exists());
    let a_minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(a_minute_ago)
        .unwrap();
    ok(&w, &["create", "again", "python", "-y"]);
    assert!(w.archives.join("again.zip").is_file());
    assert!(!w.archives.join(".again.creating.zip").exists());
    // A new env has no earlier version: its first save keeps no snapshot (of the empty archive).
    assert!(
        !w.archives.join(".snapshots").exists(),
        "a create left snapshots"
    );
    // An existing name is refused, pointing at the list.
    let out = fails(&w, &["create", "again", "python", "-y"]);
    assert!(
        out.contains("exists already") && out.contains("conda-fuse-env-list"),
        "{out}"
    );
    // Arguments pass through exactly, quoting kept: a spec with a space is one argument.
    let out = fails(&w, &["create", "spaced", "python >=3.999", "-y"]);
    assert!(out.contains("'python >=3.999'"), "{out}");
    assert_no_trace(&w, "spaced");
}

#[test]
fn hostile_names_are_refused_everywhere() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    for name in ["a b", "$(touch pwned)", "x;y", "../up", "-rf", "it's", ""] {
        for cmd in ["create", "activate", "install", "remove", "rm", "run"] {
            let mut args = vec![cmd, "--", name];
            if cmd == "run" {
                args = vec![cmd, name, "--", "true"];
            }
            let out = fails(&w, &args);
            assert!(
                out.contains("not a usable environment name") || out.contains("error:"),
                "{cmd} {name:?}: {out}"
            );
        }
    }
    assert!(!w.home.join("pwned").exists());
    // In the shells too: the functions pass the name on as one word.
    let (ok, out) = w.shell(
        common::conda::Sh::Bash,
        &["conda-fuse-activate '$(touch pwned2)' ; test ! -e pwned2"],
    );
    assert!(ok, "{out}");
    assert!(out.contains("not a usable environment name"), "{out}");
}

#[test]
fn rm_shows_asks_and_refuses_while_mounted() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    ok(&w, &["create", "gone", "python", "-y"]);
    // No terminal and no --yes: refused, nothing deleted.
    let out = fails(&w, &["rm", "gone"]);
    assert!(
        out.contains("archive") && out.contains("pass --yes"),
        "{out}"
    );
    assert!(w.archives.join("gone.zip").exists());
    // Mounted: refused without --force.
    ok(&w, &["activate", "gone"]);
    let out = fails(&w, &["rm", "gone", "--yes"]);
    assert!(
        out.contains("is mounted") && out.contains("--force"),
        "{out}"
    );
    // Unsaved changes, then --force: unmounted, everything deleted (upper layer included).
    std::fs::write(w.mounts.join("gone/gone/new-file"), b"x").unwrap();
    let out = ok(&w, &["rm", "gone", "--yes", "--force"]);
    assert!(
        out.contains("unsaved changes") && out.contains("deleted 'gone'"),
        "{out}"
    );
    // The mount point stays, empty (another node may have a mount on it).
    let point = w.mounts.join("gone");
    assert_eq!(std::fs::read_dir(&point).unwrap().count(), 0);
    std::fs::remove_dir(&point).unwrap();
    assert_no_trace(&w, "gone");
    let upper = w.world.state_dir().join("upper");
    let left: Vec<_> = std::fs::read_dir(&upper)
        .map_or(Vec::new(), |d| d.flatten().map(|e| e.file_name()).collect());
    assert!(
        left.iter()
            .all(|f| !f.to_string_lossy().starts_with("gone.zip")),
        "{left:?}"
    );
    let out = fails(&w, &["rm", "gone", "--yes"]);
    assert!(out.contains("there is no environment 'gone'"), "{out}");
}

#[test]
fn concurrent_runs_share_one_mount_and_the_last_unmounts() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    ok(&w, &["create", "job", "python", "-y"]);
    let gate = w.world.path("gate");
    let script = format!(
        "import os, sys, time\nopen(sys.argv[1], 'a').close()\nwhile not os.path.exists('{}'): time.sleep(0.05)\nsys.exit(int(sys.argv[2]))",
        gate.display()
    );
    let started: Vec<_> = (0..3)
        .map(|i| w.world.path(&format!("started-{i}")))
        .collect();
    let mut runs: Vec<_> = (0..3)
        .map(|i| {
            w.cf(&[
                "run",
                "job",
                "--",
                "python",
                "-c",
                &script,
                started[i].to_str().unwrap(),
                &format!("{}", 3 + i),
            ])
            .spawn()
            .unwrap()
        })
        .collect();
    while !started.iter().all(|s| s.exists()) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // One mount, read-only, serving all three.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mountinfo
            .matches(w.mounts.join("job").to_str().unwrap())
            .count(),
        1
    );
    let list = ok(&w, &["env-list"]);
    assert!(list.contains("ro (pid"), "{list}");
    std::fs::write(&gate, b"").unwrap();
    let codes: Vec<_> = runs.iter_mut().map(|r| r.wait().unwrap().code()).collect();
    assert_eq!(
        codes,
        [Some(3), Some(4), Some(5)],
        "each run returns its command's exit code"
    );
    assert!(
        !common::is_mounted(&w.mounts.join("job")),
        "the last run unmounts"
    );
    // A mount the user made stays after a run.
    ok(&w, &["activate", "job"]);
    let out = ok(
        &w,
        &[
            "run",
            "job",
            "--",
            "python",
            "-c",
            "import sys; print(sys.prefix)",
        ],
    );
    assert!(
        out.contains(w.mounts.join("job/job").to_str().unwrap()),
        "{out}"
    );
    assert!(common::is_mounted(&w.mounts.join("job")));
    ok(&w, &["unmount", "job"]);
}

#[test]
fn stale_mounts_are_cleaned_up_by_the_next_command() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    ok(&w, &["create", "st", "python", "-y"]);
    ok(&w, &["activate", "st"]);
    std::fs::write(w.mounts.join("st/st/unsaved"), b"keep me").unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&ok(&w, &["status", "st", "--json"])).unwrap();
    let pid = status["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The kernel keeps answering stat from its caches; the daemon's exit is what makes it stale.
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(common::is_mounted(&w.mounts.join("st")));
    let list = ok(&w, &["env-list"]);
    assert!(
        list.contains("stale") && list.contains("conda-fuse-unmount st"),
        "{list}"
    );
    let doctor = w.cf(&["doctor"]).output().unwrap();
    assert!(
        text(&doctor).contains("stale mount at"),
        "{}",
        text(&doctor)
    );
    // activate cleans up and mounts again; the unsaved change comes back from the upper layer.
    let out = ok(&w, &["activate", "st"]);
    assert!(out.contains("cleaned up the stale mount"), "{out}");
    assert_eq!(
        std::fs::read(w.mounts.join("st/st/unsaved")).unwrap(),
        b"keep me"
    );
    ok(&w, &["unmount", "st"]);
}

#[test]
fn doctor_checks_and_explains() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    let out = text(&w.cf(&["doctor"]).output().unwrap());
    for want in [
        "/dev/fuse can be opened",
        "conda: ",
        "fake-conda",
        "archives ",
        "free",
        "bash: the hook is not in",
    ] {
        assert!(out.contains(want), "want {want:?} in:\n{out}");
    }
    assert!(
        out.contains("fix: echo 'eval \"$(conda-fuse shell-hook bash)\"' >>"),
        "{out}"
    );
    std::fs::write(
        w.home.join(".bashrc"),
        "eval \"$(conda-fuse shell-hook bash)\"\n",
    )
    .unwrap();
    let out = ok(&w, &["doctor"]);
    assert!(out.contains("bash: the hook is in"), "{out}");
    // No conda at all: said, with what needs it.
    let out = text(
        &w.cf(&["doctor"])
            .env("CONDA_FUSE_CONDA", "")
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap(),
    );
    assert!(
        out.contains("no conda found") && out.contains("create, install and remove"),
        "{out}"
    );
}

/// shells/ holds the hooks pre-rendered for packagers; they must match what the binary prints.
#[test]
fn shells_directory_matches_the_binary() {
    if common::skip_without_mounts() {
        return;
    }
    for (shell, file) in [
        ("bash", "conda-fuse.bash"),
        ("zsh", "conda-fuse.zsh"),
        ("fish", "conda-fuse.fish"),
    ] {
        let out = Command::new(common::bin())
            .args(["shell-hook", shell])
            .output()
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("shells")
            .join(file);
        let have = std::fs::read(&path).unwrap_or_default();
        assert!(
            have == out.stdout,
            "{} is out of date; regenerate with: conda-fuse shell-hook {shell} > shells/{file}",
            path.display()
        );
    }
}

/// `shell-hook SHELL --add-to-rc` (what install.sh runs with the user's consent) adds the line once,
/// where the shell reads it, and doctor then finds it.
#[test]
fn hook_line_goes_into_the_rc_file_once() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    let zdotdir = w.home.join("zdot");
    let zsh = |args: &[&str]| {
        let o = w
            .cf(args)
            .env("ZDOTDIR", &zdotdir)
            .env("SHELL", "/bin/zsh")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "conda-fuse {args:?} failed:\n{}",
            text(&o)
        );
        text(&o)
    };
    assert_eq!(
        zsh(&["shell-hook", "zsh", "--rc-file"]).trim(),
        zdotdir.join(".zshrc").to_str().unwrap()
    );
    assert!(zsh(&["shell-hook", "zsh", "--add-to-rc"]).contains("added to"));
    assert!(zsh(&["shell-hook", "zsh", "--add-to-rc"]).contains("already"));
    let rc = std::fs::read_to_string(zdotdir.join(".zshrc")).unwrap();
    assert_eq!(
        rc.matches("eval \"$(conda-fuse shell-hook zsh)\"").count(),
        1,
        "{rc}"
    );
    assert!(zsh(&["doctor"]).contains(&format!(
        "zsh: the hook is in {}",
        zdotdir.join(".zshrc").display()
    )));
    // The line works in zsh: the rc file defines the functions (the world's shell has them
    // already, so they are removed first).
    let source = format!("source {}", zdotdir.join(".zshrc").display());
    let steps = [
        "unfunction conda-fuse-activate",
        "! whence conda-fuse-activate",
        &source,
        "whence -w conda-fuse-activate",
    ];
    let (ok, out) = w.shell(common::conda::Sh::Zsh, &steps);
    assert!(ok && out.contains("conda-fuse-activate: function"), "{out}");
}

#[test]
fn a_runs_decision_is_private_and_waits_a_bounded_time_naming_its_holder() {
    if common::skip_without_mounts() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let w = EnvWorld::new("envs");
    let src = w.world.path("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("conda-meta")).unwrap();
    std::fs::write(src.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(
        src.join("bin/hello"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ok(&w, &["pack", src.to_str().unwrap(), "--name", "job"]);
    assert!(ok(&w, &["run", "job", "--", "hello"]).contains("hello"));
    let runs = w.world.runtime_dir().join("runs");
    // One lock and one directory of pid files, named after the mount point on this node.
    let named = |ext: Option<&str>| {
        std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().and_then(|e| e.to_str()) == ext)
            .unwrap()
    };
    let (lock, counts) = (named(Some("lock")), named(None));
    assert!(
        lock.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("job-")
    );
    for (p, mode) in [(&runs, 0o700), (&counts, 0o700), (&lock, 0o600)] {
        assert_eq!(
            std::fs::metadata(p).unwrap().mode() & 0o777,
            mode,
            "{}",
            p.display()
        );
    }
    // Another run holds the decision and hangs: this one gives up in time, saying who.
    let file = std::fs::OpenOptions::new().write(true).open(&lock).unwrap();
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).unwrap();
    std::fs::write(&lock, b"pid 4242 on node17 since 12:00").unwrap();
    let o = w
        .cf(&["run", "job", "--", "hello"])
        .env("CONDA_FUSE_RUN_WAIT", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("pid 4242 on node17"), "{t}");
    drop(held);
    assert!(ok(&w, &["run", "job", "--", "hello"]).contains("hello"));
}

/// Waits (at most 20 s) for `point` to be unmounted; whether it was.
fn unmounted_within_bound(point: &std::path::Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while common::is_mounted(point) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    !common::is_mounted(point)
}

#[test]
fn a_runs_mount_lingers_for_the_next_job_and_yields_to_a_writer() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    ok(&w, &["create", "job", "python", "-y"]);
    let point = w.mounts.join("job");
    let run = |linger: &str| {
        let out = w
            .cf(&["run", "job", "--", "python", "-c", "print('ran')"])
            .env("CONDA_FUSE_RUN_LINGER", linger)
            .output()
            .unwrap();
        assert!(
            out.status.success() && text(&out).contains("ran"),
            "{}",
            text(&out)
        );
    };
    // The mount stays for the next job, which finds it.
    run("2");
    assert!(common::is_mounted(&point));
    run("2");
    assert!(common::is_mounted(&point));
    // Once the linger time is over with no job, its daemon unmounts it.
    assert!(
        unmounted_within_bound(&point),
        "still mounted after the linger time"
    );
    // A lingering read-only mount yields to a command that needs the env writable.
    run("600");
    assert!(common::is_mounted(&point));
    let prefix = ok(&w, &["activate", "job"]);
    assert!(prefix.contains("job"), "{prefix}");
    let rows: serde_json::Value = serde_json::from_str(&ok(&w, &["env-list", "--json"])).unwrap();
    assert_eq!(rows[0]["mounted"], "rw", "{rows:#}");
    ok(&w, &["unmount", "job"]);
    // A user unmounts the lingering mount and mounts the env again: that mount is theirs, and is
    // still there well after the runs' linger time.
    run("2");
    ok(&w, &["unmount", "job"]);
    ok(&w, &["activate", "job"]);
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(
        common::is_mounted(&point),
        "the user's mount was taken away"
    );
    ok(&w, &["unmount", "job"]);
    // With 0, the mount goes with the last job.
    run("0");
    assert!(!common::is_mounted(&point));
    // A lingering mount yields to rollback and rm too (nothing of it is unsaved: it is
    // read-only), but a mount a user made does not.
    ok(&w, &["install", "job", "six", "-y"]);
    run("600");
    assert!(common::is_mounted(&point));
    let out = ok(&w, &["rollback", "job"]);
    assert!(out.contains("rolled 'job' back"), "{out}");
    run("600");
    ok(&w, &["activate", "job", "--read-only"]);
    let err = fails(&w, &["rm", "job", "--yes"]);
    assert!(err.contains("unmount it first"), "{err}");
    ok(&w, &["unmount", "job"]);
    run("600");
    let out = ok(&w, &["rm", "job", "--yes"]);
    assert!(out.contains("deleted 'job'"), "{out}");
    assert!(!common::is_mounted(&point));
}

/// Another node saves (or rolls back) the environment while this node's runs left their mount
/// lingering: the next run gets the new version, not the one the lingering mount serves.
#[test]
fn a_lingering_run_mount_never_serves_a_replaced_version() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    let version = |v: &str| {
        let src = w.world.path(&format!("src-{v}"));
        std::fs::create_dir_all(src.join("conda-meta")).unwrap();
        std::fs::write(src.join("version.txt"), v).unwrap();
        src
    };
    std::fs::create_dir_all(&w.archives).unwrap();
    let archive = w.archives.join("job.zip");
    w.world
        .pack(&version("v1"), &archive, &["--prefix-dir", "job"]);
    let file = w.mounts.join("job/job/version.txt");
    let run = || cat_in_run(&w, "job", &file, "600");
    assert!(run().contains("v1"));
    assert!(common::is_mounted(&w.mounts.join("job")), "lingers");
    // What a save on another node does: a new archive renamed over the old one.
    let next = w.archives.join(".next.zip");
    w.world
        .pack(&version("v2"), &next, &["--prefix-dir", "job"]);
    std::fs::rename(&next, &archive).unwrap();
    let out = run();
    assert!(
        out.contains("v2") && out.contains("was saved since it was mounted here"),
        "{out}"
    );
    let _ = w.cf(&["unmount", "job"]).output();
}

/// `conda-fuse run SPEC -- cat FILE` lingering `linger` seconds; what it said.
fn cat_in_run(w: &EnvWorld, spec: &str, file: &std::path::Path, linger: &str) -> String {
    let out = w
        .cf(&["run", spec, "--", "cat", file.to_str().unwrap()])
        .env("CONDA_FUSE_RUN_LINGER", linger)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

/// `conda-fuse run job --write -- sh -c SCRIPT`, which must succeed (and so save).
fn change_in_write_run(w: &EnvWorld, script: &str) {
    let out = w
        .cf(&["run", "job", "--write", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// A world with the environment `job` holding `files` (packed, no conda needed).
fn world_with_job(files: &[(&str, &str)]) -> EnvWorld {
    let w = EnvWorld::new("envs");
    let src = w.world.path("src");
    std::fs::create_dir_all(src.join("conda-meta")).unwrap();
    for (name, text) in files {
        let path = src.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::create_dir_all(&w.archives).unwrap();
    w.world
        .pack(&src, &w.archives.join("job.zip"), &["--prefix-dir", "job"]);
    w
}

/// A run that dies without leaving (a Jupyter kernel or a job killed with SIGKILL) leaves no mount
/// behind for ever: its daemon notices and lingers as after a leave. Runs of a snapshot
/// (`NAME@N`) linger and go like any other.
#[test]
fn a_killed_run_and_a_snapshot_run_leave_no_mount_behind() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[("version.txt", "v1")]);
    let point = w.mounts.join("job");

    let mut killed = w
        .cf(&["run", "job", "--", "sleep", "600"])
        .env("CONDA_FUSE_RUN_LINGER", "1")
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !common::is_mounted(&point) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(common::is_mounted(&point), "the run never mounted");
    // As jupyter_client kills a kernel: SIGKILL to its process group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(killed.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    killed.wait().unwrap();
    assert!(
        unmounted_within_bound(&point),
        "the killed run's mount is still there"
    );

    // A new version, so that snapshot 1 is the old one.
    change_in_write_run(&w, "echo v2 > \"$CONDA_PREFIX/version.txt\"");
    let old = w.mounts.join("job@1");
    let file = old.join("job/version.txt");
    let out = cat_in_run(&w, "job@1", &file, "1");
    assert!(out.contains("v1"), "{out}");
    assert!(
        unmounted_within_bound(&old),
        "the snapshot run's mount is still there"
    );
}

/// systemd-logind deletes XDG_RUNTIME_DIR at the last logout while the daemons live on: after the
/// next login, `status`, `commit` and `unmount` find the mount again and nothing is lost.
#[test]
fn a_logout_that_deletes_the_runtime_directory_loses_no_mount() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[]);
    let xdg = w.world.path("run-user");
    std::fs::create_dir(&xdg).unwrap();
    let cf = |args: &[&str]| {
        let mut c = w.cf(args);
        c.env_remove("CONDA_FUSE_RUNTIME_DIR")
            .env("XDG_RUNTIME_DIR", &xdg);
        c.output().unwrap()
    };
    let must = |args: &[&str]| {
        let out = cf(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    must(&["activate", "job"]);
    let point = w.mounts.join("job");
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            if common::is_mounted(self.0) {
                let _ = Command::new("umount").arg("-l").arg(self.0).status();
            }
        }
    }
    let _guard = Unmount(&point);
    std::fs::write(point.join("job/note.txt"), "kept").unwrap();
    // The logout: the directory goes at once (a rename is atomic), the login makes it again.
    let gone = w.world.path("run-user.gone");
    std::fs::rename(&xdg, &gone).unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::create_dir(&xdg).unwrap();
    let status = must(&["status", "job"]);
    assert!(status.contains("unsaved"), "{status}");
    must(&["commit", "job"]);
    must(&["unmount", "job"]);
    assert!(!common::is_mounted(&point));
    let out = must(&[
        "run",
        "job",
        "--",
        "sh",
        "-c",
        "cat \"$CONDA_PREFIX/note.txt\"",
    ]);
    assert!(out.contains("kept"), "{out}");
}

/// Runs `cmd` and returns its output, failing (and killing it) if it does not end within 60 s.
fn output_within_bound(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung for 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// FIFOs a lab member planted in a shared directory as an archive, a lock file or a kernelspec
/// block nothing: each is reported as not a regular file.
#[test]
fn planted_fifos_hang_no_command() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[]);
    let fifo = |p: &std::path::Path| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    };
    fifo(&w.archives.join("planted.zip"));
    fifo(&w.archives.join("job.zip.lock"));
    let jupyter = w.world.path("jupyter");
    fifo(&jupyter.join("share/jupyter/kernels/conda-fuse-planted/kernel.json"));
    for args in [
        &["env-list"][..],
        &["env-list", "--json"],
        &["doctor"],
        &["kernel", "list", "--prefix", jupyter.to_str().unwrap()],
    ] {
        let out = output_within_bound(w.cf(args), &format!("conda-fuse {args:?}"));
        let said = text(&out);
        if args[0] == "env-list" {
            assert!(said.contains("planted"), "{args:?}: {said}");
            assert!(said.contains("not a regular file"), "{args:?}: {said}");
        }
    }
    let out = output_within_bound(
        w.cf(&["run", "job", "--write", "--", "true"]),
        "run --write",
    );
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
}

/// `kernel install --prefix` into a directory others can write (a JupyterHub's prefix): a
/// kernel.json planted as a symlink is replaced, never written through; a spec directory that is
/// a symlink, or another user's, is refused.
#[test]
fn kernel_install_writes_through_nothing_planted() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[("lib/python3.12/site-packages/ipykernel/__init__.py", "")]);
    let hub = w.world.path("hub");
    let spec = hub.join("share/jupyter/kernels/conda-fuse-job");
    std::fs::create_dir_all(&spec).unwrap();
    let victim = w.world.path("bashrc");
    std::fs::write(&victim, "my shell setup\n").unwrap();
    std::os::unix::fs::symlink(&victim, spec.join("kernel.json")).unwrap();
    let install = || {
        let out = w
            .cf(&[
                "kernel",
                "install",
                "job",
                "--prefix",
                hub.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let (ok, said) = install();
    assert!(ok, "{said}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "my shell setup\n"
    );
    let md = std::fs::symlink_metadata(spec.join("kernel.json")).unwrap();
    assert!(md.is_file(), "kernel.json is still a symlink");

    std::fs::remove_dir_all(&spec).unwrap();
    let elsewhere = w.world.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &spec).unwrap();
    let (ok, said) = install();
    assert!(!ok && said.contains("is a symlink"), "{said}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    if !nix::unistd::geteuid().is_root() {
        return; // giving the directory to another user needs root
    }
    std::fs::remove_file(&spec).unwrap();
    std::fs::create_dir(&spec).unwrap();
    nix::unistd::chown(&spec, Some(1.into()), Some(1.into())).unwrap();
    let (ok, said) = install();
    assert!(!ok && said.contains("belongs to uid 1"), "{said}");
}

/// Package names come from an archive, and kernelspecs from a directory others may write: the
/// terminal control sequences they may hold are shown escaped by history, diff and kernel list.
#[test]
fn history_diff_and_kernel_list_print_no_terminal_escapes() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[("conda-meta/python-3.12.0-h1.json", "{}")]);
    change_in_write_run(
        &w,
        "touch \"$CONDA_PREFIX/conda-meta/$(printf 'ev\\033[2Jil')-1.0-h\\033]0;x\\007.json\"",
    );
    let hub = w.world.path("hub");
    let spec = hub.join("share/jupyter/kernels/conda-fuse-\x1b[31mred");
    std::fs::create_dir_all(&spec).unwrap();
    std::fs::write(
        spec.join("kernel.json"),
        r#"{"argv": [], "display_name": "x", "language": "python",
            "metadata": {"conda_fuse": {"env": "\u001b[2Jcleared"}}}"#,
    )
    .unwrap();
    for args in [
        &["history", "job"][..],
        &["diff", "job"],
        &["kernel", "list", "--prefix", hub.to_str().unwrap()],
    ] {
        let said = ok(&w, args);
        assert!(
            !said.contains('\x1b') && !said.contains('\x07'),
            "{args:?}: {said:?}"
        );
        assert!(
            said.contains("\\x1b"),
            "{args:?} shows the escape escaped: {said}"
        );
    }
}

/// How many mounts are stacked on `point` (the mount table lists each).
fn mounts_on(point: &std::path::Path) -> usize {
    let point = point.canonicalize().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(point.to_str().unwrap()))
        .count()
}

/// Two terminals activating (or mounting) one environment at once never stack two mounts on its
/// mount point: one mounts, the others find its mount.
#[test]
fn concurrent_activations_never_stack_mounts() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[]);
    let point = w.mounts.join("job");
    let together = |args: &[&str]| -> Vec<Output> {
        let children: Vec<_> = (0..4)
            .map(|_| {
                w.cf(args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    };
    for out in together(&["activate", "job"]) {
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(mounts_on(&point), 1);
    ok(&w, &["unmount", "job"]);
    let archive = w.archives.join("job.zip");
    let outs = together(&["mount", archive.to_str().unwrap(), point.to_str().unwrap()]);
    let mounted = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        mounted,
        1,
        "{:?}",
        outs.iter().map(text).collect::<Vec<_>>()
    );
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(text(o).contains("already a mount point"), "{}", text(o));
    }
    assert_eq!(mounts_on(&point), 1);
    ok(&w, &["unmount", "job"]);
    assert!(!common::is_mounted(&point));
}

/// A name a lab member planted in a shared directory as a symlink to my archive: `rm` of it
/// deletes only that name, never my archive or my unsaved changes (root here, to make the link
/// another user's).
#[test]
fn rm_of_a_name_another_user_planted_deletes_only_the_name() {
    if common::skip_without_mounts() {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: making a symlink another user's needs root");
        return;
    }
    let w = world_with_job(&[("base.txt", "v1\n")]);
    // Unsaved changes left by a daemon that died.
    ok(&w, &["activate", "job"]);
    std::fs::write(w.mounts.join("job/job/unsaved"), b"keep me").unwrap();
    let pid = common::daemon_pid(&w.world, &w.mounts.join("job"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while nix::sys::signal::kill(pid, None).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "daemon {pid} lives on"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let lab = w.world.path("lab");
    std::fs::create_dir(&lab).unwrap();
    let planted = lab.join("evil.zip");
    std::os::unix::fs::symlink(w.archives.join("job.zip"), &planted).unwrap();
    std::os::unix::fs::lchown(&planted, Some(1234), Some(1234)).unwrap();
    let path = format!("{}:{}", w.archives.display(), lab.display());
    let out = w
        .cf(&["rm", "evil", "--yes"])
        .env("CONDA_FUSE_ARCHIVE_PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("only the name") && said.contains("uid 1234") && !said.contains("upper"),
        "{said}"
    );
    assert!(planted.symlink_metadata().is_err());
    // My archive and my unsaved change are all there.
    let out = ok(&w, &["activate", "job"]);
    assert!(out.contains("cleaned up the stale mount"), "{out}");
    assert_eq!(
        std::fs::read(w.mounts.join("job/job/unsaved")).unwrap(),
        b"keep me"
    );
    ok(&w, &["unmount", "job"]);
}

/// A run's pid file whose pid the system has since given to another process (here a `sleep` with
/// that pid, recorded with another start time) does not count as a run: the mount goes when the
/// last real run leaves.
#[test]
fn a_reused_pid_keeps_no_run_mount() {
    if common::skip_without_mounts() {
        return;
    }
    let w = world_with_job(&[("version.txt", "v1")]);
    let point = w.mounts.join("job");
    let file = point.join("job/version.txt");
    assert!(cat_in_run(&w, "job", &file, "0").contains("v1"));
    let runs: Vec<_> = std::fs::read_dir(w.world.runtime_dir().join("runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "one mount point's runs");
    let mut other = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let stale = runs[0].path().join(other.id().to_string());
    std::fs::write(&stale, b"1").unwrap();
    std::fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = cat_in_run(&w, "job", &file, "0");
    let gone = unmounted_within_bound(&point);
    other.kill().unwrap();
    other.wait().unwrap();
    assert!(out.contains("v1"), "{out}");
    assert!(gone, "the run's mount stayed for a pid that is no run");
}

/// A transaction conda-fuse drives (`install` here; remove and create mount the same way) keeps
/// its changes on node-local disk (TMPDIR), never in the shared state directory, and a crash of it
/// leaves the env as it was, never half installed: the next transaction throws the half one away,
/// then saves its own.
#[test]
fn a_crashed_install_leaves_the_env_as_it_was() {
    if common::skip_without_mounts() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let w = EnvWorld::new("envs");
    let src = w.world.path("src");
    std::fs::create_dir_all(src.join("conda-meta")).unwrap();
    std::fs::write(src.join("data.txt"), b"as packed\n").unwrap();
    ok(&w, &["pack", src.to_str().unwrap(), "--name", "job"]);
    let prefix = w.mounts.join("job/job");
    // A conda that writes one file of the package into the prefix, then (the slow one) hangs.
    let conda =
        |name, file, hang| common::conda::one_file_conda(w.world.dir.path(), name, file, hang).0;
    let files_under = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.into_path())
            .collect()
    };
    let mut install = w
        .cf(&["install", "job", "pkg", "-y"])
        .env("CONDA_FUSE_CONDA", conda("slow-conda", "half", true))
        .process_group(0)
        .spawn()
        .unwrap();
    /// Kills the install's process group, however the test ends.
    struct KillGroup(u32);
    impl Drop for KillGroup {
        fn drop(&mut self) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let killed = KillGroup(install.id());
    let started = std::time::Instant::now();
    while !prefix.join("half.txt").exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the install never wrote"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Its change waits under TMPDIR; the shared state directory holds none of it.
    let transactions = w.world.tmp_dir().join(format!(
        "conda-fuse-{}/transactions",
        nix::unistd::geteuid()
    ));
    assert!(
        files_under(&transactions)
            .iter()
            .any(|p| p.ends_with("journal")),
        "no journal under {}",
        transactions.display()
    );
    let shared = w.world.state_dir().join("upper");
    assert_eq!(files_under(&shared), Vec::<std::path::PathBuf>::new());
    // The node dies as far as this install goes: its daemon and the install are killed.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&w, &["status", "job", "--json"])).unwrap();
    let daemon = status["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(killed);
    let _ = install.wait();
    // The env is as it was, with nothing unsaved; the next install goes on and saves.
    let check = "test ! -e \"$CONDA_PREFIX/half.txt\" && echo untouched";
    assert!(ok(&w, &["run", "job", "--", "sh", "-c", check]).contains("untouched"));
    let list: serde_json::Value = serde_json::from_str(&ok(&w, &["env-list", "--json"])).unwrap();
    assert_eq!(list[0]["unsaved_changes"], 0, "{list}");
    let out = w
        .cf(&["install", "job", "pkg", "-y"])
        .env("CONDA_FUSE_CONDA", conda("quick-conda", "whole", false))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let read =
        "cat \"$CONDA_PREFIX/whole.txt\"; test ! -e \"$CONDA_PREFIX/half.txt\" && echo no-half";
    let out = ok(&w, &["run", "job", "--", "sh", "-c", read]);
    assert!(out.contains("whole") && out.contains("no-half"), "{out}");
    assert!(
        files_under(&transactions).is_empty(),
        "a finished transaction leaves nothing: {:?}",
        files_under(&transactions)
    );
}
