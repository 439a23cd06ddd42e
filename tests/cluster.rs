//! Many nodes, one home: commands on one node against another node's live mounts, batch runs on
//! six nodes while a writer on another node commits, a node that dies and a writable mount
//! elsewhere that recovers its acknowledged changes, a node that dies halfway through an install
//! (the env stays as it was), and the writer lock's heartbeat where flock
//! reaches only the node. Nodes are namespaces sharing one home directory (`common/node.rs`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::World;
use common::node::{self, Node, both};

fn skip() -> bool {
    if common::skip_without_mounts() {
        return true;
    }
    if !node::available() {
        eprintln!("skipping: cannot make mount + pid + uts namespaces here (unshare)");
        return true;
    }
    false
}

/// The env `demo` (a `bin/hello` and a `base.txt`), packed into the shared home's archives.
fn make_env(w: &World, on: &Node) -> PathBuf {
    let src = w.path("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("conda-meta")).unwrap();
    std::fs::write(src.join("bin/hello"), b"#!/bin/sh\necho hello from demo\n").unwrap();
    std::fs::set_permissions(
        src.join("bin/hello"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(src.join("base.txt"), b"base\n").unwrap();
    on.ok(["pack", src.to_str().unwrap(), "--name", "demo"]);
    w.path("miniconda_fuse/envs/demo/demo")
}

/// A one-file archive `name` in `w`, packed from `w/src`.
fn small_archive(w: &World, name: &str) -> PathBuf {
    let src = w.path("src");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("lib/mod.py"), b"x = 1\n").unwrap();
    let archive = w.path(name);
    w.pack(&src, &archive, &[]);
    archive
}

fn sh_ok(on: &Node, script: &str) -> String {
    let out = on.sh(script).output().unwrap();
    assert!(
        out.status.success(),
        "on {}: {script}:\n{}",
        on.name,
        both(&out)
    );
    both(&out)
}

#[test]
fn commands_on_one_node_never_touch_another_nodes_live_mount() {
    if skip() {
        return;
    }
    commands_on_other_nodes(World::new());
}

/// The same with the home on a network filesystem, each node a client of its own.
#[test]
fn commands_on_other_nodes_with_the_home_on_a_network_filesystem() {
    if skip() {
        return;
    }
    if let Some(w) = World::on_netfs() {
        commands_on_other_nodes(w);
    }
}

fn commands_on_other_nodes(w: World) {
    let login = Node::boot(&w, "login1");
    let other = Node::boot(&w, "node01");
    let prefix = make_env(&w, &login);
    let p = |rel: &str| prefix.join(rel).display().to_string();
    login.ok(["activate", "demo"]);
    sh_ok(&login, &format!("echo from-login > {}", p("new.txt")));
    let records = || {
        std::fs::read_dir(login.runtime_dir().join("mounts"))
            .unwrap()
            .count()
    };
    let before = records();
    assert!(before >= 2, "a record and a socket on login1");

    // Everything a user may type on another node: nothing of login1's is touched.
    let listed = other.ok(["env-list"]);
    assert!(listed.contains("rw on login1"), "{listed}");
    let _ = other.cf(["doctor"]).output().unwrap();
    other.ok(["paths"]);
    assert!(other.fails(["status", "demo"]).contains("not mounted"));
    assert!(other.fails(["commit", "demo"]).contains("not mounted"));
    // activate there mounts read-only, naming the writer.
    let activated = other.ok(["activate", "demo"]);
    assert!(
        activated.contains("read-only") && activated.contains("login1"),
        "{activated}"
    );
    assert_eq!(sh_ok(&other, &format!("cat {}", p("base.txt"))), "base\n");
    let writable = other.fails(["mount", "--steal-lock", "--read-only", "x", "y"]);
    assert!(writable.contains("cannot be used with"), "{writable}");
    other.ok(["unmount", "demo"]);
    assert!(other.fails(["unmount", "demo"]).contains("not mounted"));
    assert!(other.mounts().is_empty());
    let refused = other.fails(["rm", "demo", "--yes"]);
    assert!(refused.contains("login1"), "{refused}");

    // login1's mount, records and mount point are as they were.
    assert_eq!(records(), before);
    assert_eq!(login.mounts().len(), 1);
    assert!(login.ok(["commit", "demo"]).contains("saved"));
    assert_eq!(
        sh_ok(&login, &format!("cat {}", p("new.txt"))),
        "from-login\n"
    );
    login.ok(["unmount", "demo"]);
    // The mount point stays: another node may have a mount on it.
    assert!(w.path("miniconda_fuse/envs/demo").is_dir());
    let out = other.ok(["run", "demo", "--", "cat", &p("new.txt")]);
    assert!(out.contains("from-login"), "{out}");

    // rm on login1 while node01 has the env mounted read-only (a job using it): the job's mount
    // and its files stay, as its open archive does.
    other.ok(["activate", "demo", "--read-only"]);
    assert!(login.ok(["rm", "demo", "--yes"]).contains("deleted 'demo'"));
    assert_eq!(other.mounts().len(), 1, "node01's mount was detached");
    assert_eq!(
        sh_ok(&other, &format!("cat {}", p("new.txt"))),
        "from-login\n"
    );
    other.ok(["unmount", "demo"]);
    assert!(other.mounts().is_empty());
}

#[test]
fn six_nodes_run_jobs_while_a_writer_on_another_node_commits() {
    if skip() {
        return;
    }
    jobs_while_a_writer_commits(World::new());
}

/// The same with the home on a network filesystem, each node a client of its own: a node's
/// client may still hold the replaced archive's size after another node's save.
#[test]
fn jobs_on_six_nodes_and_a_writer_with_the_home_on_a_network_filesystem() {
    if skip() {
        return;
    }
    if let Some(w) = World::on_netfs() {
        jobs_while_a_writer_commits(w);
    }
}

fn jobs_while_a_writer_commits(w: World) {
    let login = Node::boot(&w, "login1");
    let prefix = make_env(&w, &login);
    let p = |rel: &str| prefix.join(rel).display().to_string();
    login.ok(["activate", "demo"]);
    let nodes: Vec<Node> = (1..=6)
        .map(|i| Node::boot(&w, &format!("node{i:02}")))
        .collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        // Three jobs per node at once, each running twice in a row: one shared read-only mount
        // per node, made by the first job there and unmounted by the last.
        let jobs: Vec<_> = nodes
            .iter()
            .flat_map(|n| (0..3).map(move |j| (n, j)))
            .map(|(n, j)| {
                let job = format!("cat {}; hello; sleep 0.2", p("base.txt"));
                s.spawn(move || {
                    (0..2)
                        .map(|round| {
                            let out = n.cf(["run", "demo", "--", "sh", "-c", &job]).output();
                            (format!("{} job {j} round {round}", n.name), out.unwrap())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A reader that lives through several saves keeps its snapshot.
        let reader = s.spawn(|| {
            let script = format!(
                "ls {dir} > $XDG_RUNTIME_DIR/before; sleep 3; ls {dir} > $XDG_RUNTIME_DIR/after; \
                 cat {base}; diff $XDG_RUNTIME_DIR/before $XDG_RUNTIME_DIR/after",
                dir = prefix.display(),
                base = p("base.txt")
            );
            nodes[0]
                .cf(["run", "demo", "--", "sh", "-c", &script])
                .output()
                .unwrap()
        });
        for i in 0..10 {
            sh_ok(
                &login,
                &format!("echo {i} > {}", p(&format!("file{i}.txt"))),
            );
            let saved = login.ok(["commit", "demo"]);
            assert!(saved.contains("saved"), "commit {i}: {saved}");
        }
        for job in jobs {
            for (what, out) in job.join().unwrap() {
                assert!(out.status.success(), "{what}:\n{}", both(&out));
                let text = both(&out);
                assert!(
                    text.contains("base") && text.contains("hello from demo"),
                    "{what}: {text}"
                );
            }
        }
        let out = reader.join().unwrap();
        assert!(
            out.status.success(),
            "the reader's snapshot changed:\n{}",
            both(&out)
        );
    });
    eprintln!(
        "18 jobs x 2 on 6 nodes and 10 commits on another: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for n in &nodes {
        assert!(
            n.mounts().is_empty(),
            "{} still has {:?}",
            n.name,
            n.mounts()
        );
    }
    assert_eq!(login.mounts().len(), 1);
    login.ok(["unmount", "demo"]);
    let all = nodes[3].ok([
        "run",
        "demo",
        "--",
        "sh",
        "-c",
        &format!("cat {}/file*.txt", prefix.display()),
    ]);
    let expected: String = (0..10).map(|i| format!("{i}\n")).collect();
    assert!(all.contains(&expected), "{all}");
}

#[test]
fn a_dead_nodes_acknowledged_changes_are_recovered_on_another_node() {
    if skip() {
        return;
    }
    dead_node_recovered(World::new());
}

/// The same with archives and upper layers on a network filesystem, each node a client of its own.
#[test]
fn a_dead_nodes_changes_are_recovered_with_the_home_on_a_network_filesystem() {
    if skip() {
        return;
    }
    if let Some(w) = World::on_netfs() {
        dead_node_recovered(w);
    }
}

fn dead_node_recovered(w: World) {
    let beat = |c: &mut std::process::Command| {
        // A beat a second: silent after 6 s, so a loaded machine never looks dead by mistake.
        c.env("CONDA_FUSE_HEARTBEAT", "1");
    };
    let doomed = Node::boot(&w, "node07");
    let prefix = make_env(&w, &doomed);
    let p = |rel: &str| prefix.join(rel).display().to_string();
    let mut c = doomed.cf(["activate", "demo"]);
    beat(&mut c);
    common::assert_success(&c.output().unwrap(), "activate on node07");
    // Acknowledged: written and fsynced (dd conv=fsync), then the node dies. In between, the
    // node that will recover them looks at the unsaved changes (on a network filesystem its
    // client may keep the journal's size from then).
    let rescuer = Node::boot(&w, "node08");
    let write = |name: &str, text: &str| {
        sh_ok(
            &doomed,
            &format!("echo {text} | dd of={} conv=fsync status=none", p(name)),
        )
    };
    write("draft.txt", "draft");
    assert!(rescuer.ok(["env-list"]).contains("rw on node07"));
    write("work.txt", "precious");
    doomed.crash();

    // Its heartbeat is still fresh: held, and the message says by whom and what to do.
    let archive = w.path("miniconda_fuse/archives/demo.zip");
    let point = w.path("miniconda_fuse/envs/demo");
    std::fs::create_dir_all(&point).unwrap();
    let mount = |extra: &[&str]| {
        let mut c = rescuer.cf(["mount"]);
        c.arg(&archive).arg(&point).args(extra);
        beat(&mut c);
        c.output().unwrap()
    };
    let held = mount(&[]);
    assert!(!held.status.success());
    let text = both(&held);
    assert!(
        text.contains("node07") && text.contains("--steal-lock"),
        "{text}"
    );
    // Once it has been silent for six periods, the next writable mount takes over and replays.
    let deadline = Instant::now() + Duration::from_secs(30);
    let taken = loop {
        let out = mount(&[]);
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let text = both(&taken);
    assert!(taken.status.success(), "{text}");
    assert!(
        text.contains("heartbeat stopped") && text.contains("recovered 2"),
        "{text}"
    );
    assert_eq!(
        sh_ok(&rescuer, &format!("cat {}", p("work.txt"))),
        "precious\n"
    );
    rescuer.ok(["unmount", point.to_str().unwrap()]);
    let out = rescuer.ok(["run", "demo", "--", "cat", &p("work.txt")]);
    assert!(out.contains("precious"), "{out}");
}

#[test]
fn a_node_that_dies_mid_install_leaves_the_env_as_it_was() {
    if skip() {
        return;
    }
    dead_node_mid_install(World::new());
}

/// The same with the archive and the state directory on a network filesystem.
#[test]
fn a_node_that_dies_mid_install_with_the_home_on_a_network_filesystem() {
    if skip() {
        return;
    }
    if let Some(w) = World::on_netfs() {
        dead_node_mid_install(w);
    }
}

/// An install is a transaction: its changes wait on the node's own disk (TMPDIR), so a node that
/// dies halfway leaves the env as it was for every other node, and the next install on another
/// node takes the lock once the dead one's heartbeat is silent.
fn dead_node_mid_install(w: World) {
    let conda = |name, file, hang| common::conda::one_file_conda(w.dir.path(), name, file, hang);
    let install = |on: &Node, conda: &str| {
        let mut c = on.cf(["install", "demo", "pkg", "-y"]);
        c.env("CONDA_FUSE_CONDA", conda)
            .env("CONDA_FUSE_HEARTBEAT", "1");
        c
    };
    let doomed = Node::boot(&w, "node07");
    let prefix = make_env(&w, &doomed);
    let (slow, wrote) = conda("slow-conda", "half", true);
    let mut running = install(&doomed, &slow).spawn().unwrap();
    let started = Instant::now();
    while !wrote.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30) && running.try_wait().unwrap().is_none(),
            "the install on node07 never wrote"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing of it is in the shared home's state directory.
    let shared_upper = w.path(".local/state/conda-fuse/upper");
    let files: Vec<_> = walkdir::WalkDir::new(&shared_upper)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    assert!(files.is_empty(), "{files:?}");
    doomed.crash();
    let _ = running.wait();

    let rescuer = Node::boot(&w, "node08");
    let check = format!("test ! -e {}/half.txt && echo untouched", prefix.display());
    let out = rescuer.ok(["run", "demo", "--", "sh", "-c", &check]);
    assert!(out.contains("untouched"), "{out}");
    // Held while the heartbeat is fresh; taken once it has been silent for six periods.
    let (quick, _) = conda("quick-conda", "whole", false);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut refusals = 0;
    let done = loop {
        let out = install(&rescuer, &quick).output().unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        assert!(both(&out).contains("node07"), "{}", both(&out));
        refusals += 1;
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(done.status.success(), "{}", both(&done));
    assert!(refusals > 0, "the dead node's lock was never seen");
    let read = format!(
        "cat {p}/whole.txt && test ! -e {p}/half.txt && echo no-half",
        p = prefix.display()
    );
    let out = rescuer.ok(["run", "demo", "--", "sh", "-c", &read]);
    assert!(out.contains("whole") && out.contains("no-half"), "{out}");
    let list = rescuer.ok(["env-list"]);
    assert!(!list.contains("unsaved"), "{list}");
}

#[test]
fn the_heartbeat_keeps_writers_apart_where_flock_reaches_only_the_node() {
    if skip() {
        return;
    }
    // Flock is not used at all: what BeeGFS, Lustre with localflock or NFS with local_lock give
    // two nodes (each takes "the" lock).
    heartbeat_keeps_writers_apart(World::new(), true);
}

/// The same for real: two nodes, each its own client of a network filesystem whose flock reaches
/// only the node (sshfs), flock used as usual.
#[test]
fn the_heartbeat_keeps_writers_apart_on_a_network_filesystem() {
    if skip() {
        return;
    }
    if let Some(w) = World::on_netfs() {
        heartbeat_keeps_writers_apart(w, false);
    }
}

fn heartbeat_keeps_writers_apart(w: World, flock_off: bool) {
    let knobs = |c: &mut std::process::Command| {
        if flock_off {
            c.env("CONDA_FUSE_FLOCK", "off");
        }
        c.env("CONDA_FUSE_HEARTBEAT", "0.5");
    };
    let first = Node::boot(&w, "login1");
    let second = Node::boot(&w, "login2");
    let prefix = make_env(&w, &first);
    let p = |rel: &str| prefix.join(rel).display().to_string();
    let archive = w.path("miniconda_fuse/archives/demo.zip");
    let point = w.path("miniconda_fuse/envs/demo");
    std::fs::create_dir_all(&point).unwrap();
    let mount = |on: &Node, extra: &[&str]| {
        let mut c = on.cf(["mount"]);
        c.arg(&archive).arg(&point).args(extra);
        knobs(&mut c);
        c.output().unwrap()
    };
    // The second node has looked at the lock while it was free (on a network filesystem its
    // client may cache that), then the first takes it.
    common::assert_success(&mount(&first, &[]), "mount on login1");
    first.ok(["unmount", point.to_str().unwrap()]);
    assert!(second.ok(["env-list"]).contains("demo"));
    common::assert_success(&mount(&first, &[]), "mount on login1");
    sh_ok(&first, &format!("echo one > {}", p("first.txt")));
    // The same node, a second writer: the holder's pid is alive here. Readers are welcome.
    std::fs::create_dir_all(w.path("elsewhere")).unwrap();
    let beside = |extra: &[&str]| {
        let mut c = first.cf(["mount"]);
        c.arg(&archive).arg(w.path("elsewhere")).args(extra);
        knobs(&mut c);
        c.output().unwrap()
    };
    let second_writer = beside(&[]);
    assert!(!second_writer.status.success());
    assert!(
        both(&second_writer).contains("login1"),
        "{}",
        both(&second_writer)
    );
    common::assert_success(&beside(&["--read-only"]), "read-only mount beside it");
    first.ok(["unmount", w.path("elsewhere").to_str().unwrap()]);
    // Another node: held, by the heartbeat alone, for as long as it beats.
    for _ in 0..3 {
        let held = mount(&second, &[]);
        assert!(!held.status.success());
        assert!(both(&held).contains("login1"), "{}", both(&held));
        std::thread::sleep(Duration::from_millis(700));
    }
    // Stolen: the first mount stops accepting changes at its next beat; the thief has them all.
    let stolen = mount(&second, &["--steal-lock"]);
    let text = both(&stolen);
    assert!(
        stolen.status.success() && text.contains("--steal-lock"),
        "{text}"
    );
    // Its next beat finds the record taken (within a period, plus however late a loaded machine
    // runs it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = (0..)
        .map(|k| {
            std::thread::sleep(Duration::from_millis(100));
            let late = p(&format!("late-{k}.txt"));
            first.sh(&format!("echo two > {late}")).output().unwrap()
        })
        .find(|out| !out.status.success() || Instant::now() > deadline)
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        both(&refused).contains("Read-only file system"),
        "{}",
        both(&refused)
    );
    let failed = first.fails(["commit", point.to_str().unwrap()]);
    assert!(failed.contains("taken over"), "{failed}");
    first.ok(["unmount", point.to_str().unwrap()]);
    assert_eq!(sh_ok(&second, &format!("cat {}", p("first.txt"))), "one\n");
    sh_ok(&second, &format!("echo three > {}", p("second.txt")));
    second.ok(["unmount", point.to_str().unwrap()]);
    let out = second.ok([
        "run",
        "demo",
        "--",
        "cat",
        &p("first.txt"),
        &p("second.txt"),
    ]);
    assert!(out.contains("one\nthree\n"), "{out}");
}

/// FUSE filesystems (sshfs, and conda-fuse's own mounts) are among those whose flock reaches only
/// the node: a writable mount of an archive kept on one says, once, what protects it instead.
#[test]
fn archives_where_flock_is_node_local_get_a_note_once() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let outer_archive = small_archive(&w, "outer.zip");
    let outer = w.mount_with(&outer_archive, "outer", |_| {});
    let inner_archive = outer.path("inner.zip");
    std::fs::copy(&outer_archive, &inner_archive).unwrap();
    let point = w.path("inner");
    std::fs::create_dir_all(&point).unwrap();
    let note = "whose flock often reaches only this node";
    for first in [true, false] {
        let out = w
            .cmd([
                std::ffi::OsStr::new("mount"),
                inner_archive.as_os_str(),
                point.as_os_str(),
            ])
            .output()
            .unwrap();
        common::assert_success(&out, "mount of an archive on FUSE");
        let inner = common::Mount {
            world: &w,
            point: point.clone(),
        };
        let text = both(&out);
        assert_eq!(text.contains(note), first, "{text}");
        std::fs::write(inner.path("f"), b"x").unwrap();
        drop(inner);
    }
}

/// Where this node's runtime directory is: `CONDA_FUSE_RUNTIME_DIR`, else `XDG_RUNTIME_DIR`'s
/// `conda-fuse` where that directory exists and is ours (a batch system may pass on the login
/// shell's value to a node where it does not exist), else `/tmp/conda-fuse-$UID`. Runs as any user.
#[test]
fn the_runtime_directory_is_the_nodes_own() {
    let w = World::new();
    let runtime_of = |xdg: Option<&std::path::Path>, explicit: Option<&std::path::Path>| {
        let mut c = w.cmd(["paths"]);
        c.env_remove("CONDA_FUSE_RUNTIME_DIR")
            .env_remove("XDG_RUNTIME_DIR");
        if let Some(x) = xdg {
            c.env("XDG_RUNTIME_DIR", x);
        }
        if let Some(e) = explicit {
            c.env("CONDA_FUSE_RUNTIME_DIR", e);
        }
        let out = c.output().unwrap();
        common::assert_success(&out, "conda-fuse paths");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("runtime"))
            .unwrap()
            .to_string();
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    let fallback = format!("/tmp/conda-fuse-{}", nix::unistd::geteuid());
    assert_eq!(runtime_of(None, None), fallback);
    // Passed on from a login node, missing here.
    assert_eq!(runtime_of(Some(&w.path("run/user/1000")), None), fallback);
    // Someone else's, or open to others: not used either.
    let open = w.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    assert_eq!(runtime_of(Some(&open), None), fallback);
    let mine = w.path("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    assert_eq!(
        runtime_of(Some(&mine), None),
        mine.join("conda-fuse").display().to_string()
    );
    let chosen = w.path("chosen");
    assert_eq!(
        runtime_of(Some(&mine), Some(&chosen)),
        chosen.display().to_string()
    );
}

/// A daemon started by a version before node-local runtime directories recorded itself in the
/// shared state directory. After an upgrade it must still be reachable (to save and unmount it),
/// but only when that record can be nobody else's: its mount here, its socket answering here.
#[test]
fn a_daemon_recorded_by_an_earlier_version_is_still_reached() {
    use sha2::Digest;
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let archive = small_archive(&w, "env.zip");
    let m = w.mount_with(&archive, "mnt", |_| {});
    std::fs::write(m.path("changed.txt"), b"keep me").unwrap();
    // Turn today's record into the one an earlier version wrote: in STATE/mounts, named after the
    // mount point alone, without the node.
    let records = w.runtime_dir().join("mounts");
    let json = std::fs::read_dir(&records)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let point = m.point.canonicalize().unwrap();
    for field in ["host", "boot_id"] {
        record.as_object_mut().unwrap().remove(field);
    }
    let hash = sha2::Sha256::digest(point.as_os_str().as_encoded_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let legacy_dir = w.state_dir().join("mounts");
    std::fs::create_dir_all(&legacy_dir).unwrap();
    std::fs::set_permissions(
        &legacy_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let legacy = legacy_dir.join(format!("mnt-{hex}.json"));
    // Today's daemon makes a vanished record again (`keeper`); an earlier one did not. Where the
    // runtime directory cannot hold records, it cannot, and its socket answers where it moved.
    let moved = w.runtime_dir().join("mounts.moved");
    std::fs::rename(&records, &moved).unwrap();
    std::fs::write(&records, b"not a directory").unwrap();
    let socket = moved.join(json.with_extension("sock").file_name().unwrap());
    record["socket"] = serde_json::json!(socket);
    // A record whose socket answers nobody here is not used: nothing is detached.
    let mut dead = record.clone();
    dead["socket"] = serde_json::json!(w.path("nobody.sock"));
    std::fs::write(&legacy, serde_json::to_vec(&dead).unwrap()).unwrap();
    let refused = w
        .cmd([std::ffi::OsStr::new("unmount"), m.point.as_os_str()])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(common::is_mounted(&m.point));
    // The real one is: status and unmount reach the daemon, which saves.
    std::fs::write(&legacy, serde_json::to_vec(&record).unwrap()).unwrap();
    w.ok([std::ffi::OsStr::new("status"), m.point.as_os_str()]);
    let out = w.ok([std::ffi::OsStr::new("unmount"), m.point.as_os_str()]);
    assert!(out.contains("saved"), "{out}");
    assert!(!common::is_mounted(&m.point));
    std::fs::remove_file(&records).unwrap();
    std::fs::rename(&moved, &records).unwrap();
    let ro = w.mount_ro(&archive, "ro");
    assert_eq!(std::fs::read(ro.path("changed.txt")).unwrap(), b"keep me");
}

/// `--steal-lock` with flock node-local: the old holder, still running, must not save after the
/// steal (its save re-confirms the record before its rename), the thief waits out the old holder's
/// lease before touching the upper layer, a holder frozen across the steal acknowledges nothing
/// afterwards, and the thief's acknowledged change survives the thief's death.
#[test]
fn a_stolen_lock_never_lets_two_writers_save() {
    if skip() {
        return;
    }
    let w = World::new();
    let knobs = |c: &mut std::process::Command| {
        c.env("CONDA_FUSE_FLOCK", "off")
            .env("CONDA_FUSE_HEARTBEAT", "2");
    };
    let a = Node::boot(&w, "nodeA");
    let b = Node::boot(&w, "nodeB");
    let prefix = make_env(&w, &a);
    let p = |rel: &str| prefix.join(rel).display().to_string();
    let archive = w.path("miniconda_fuse/archives/demo.zip");
    let point = w.path("miniconda_fuse/envs/demo");
    std::fs::create_dir_all(&point).unwrap();
    let mount = |on: &Node, extra: &[&str]| {
        let mut c = on.cf(["mount"]);
        c.arg(&archive).arg(&point).args(extra);
        knobs(&mut c);
        c
    };
    common::assert_success(&mount(&a, &[]).output().unwrap(), "mount on nodeA");
    sh_ok(
        &a,
        &format!("echo from-a | dd of={} conv=fsync status=none", p("a.txt")),
    );
    // B steals while A runs, and waits out A's lease; meanwhile A saves: refused.
    let steal = mount(&b, &["--steal-lock"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let commit = a.cf(["commit", point.to_str().unwrap()]).output().unwrap();
    assert!(
        !commit.status.success(),
        "A saved after the steal:\n{}",
        both(&commit)
    );
    assert!(both(&commit).contains("taken over"), "{}", both(&commit));
    let stolen = steal.wait_with_output().unwrap();
    let text = both(&stolen);
    assert!(stolen.status.success(), "{text}");
    assert!(text.contains("waited") && text.contains("lease"), "{text}");
    // A was frozen across the steal: thawed, it acknowledges no write.
    // (The pid is the node's: signals go from inside it.)
    let a_daemon = a.daemon_pid(&point);
    sh_ok(&a, &format!("kill -STOP {a_daemon}"));
    std::thread::sleep(Duration::from_secs(1));
    sh_ok(
        &b,
        &format!("echo from-b | dd of={} conv=fsync status=none", p("b.txt")),
    );
    sh_ok(&a, &format!("kill -CONT {a_daemon}"));
    let late = a
        .sh(&format!("echo late > {}", p("late.txt")))
        .output()
        .unwrap();
    assert!(
        !late.status.success(),
        "a write acknowledged after the steal"
    );
    // B dies with its acknowledged change unsaved; a third mount recovers everything B had.
    let _ = a.cf(["unmount", point.to_str().unwrap()]).output();
    b.crash();
    let c = Node::boot(&w, "nodeC");
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken = loop {
        let out = mount(&c, &[]).output().unwrap();
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(taken.status.success(), "{}", both(&taken));
    assert_eq!(sh_ok(&c, &format!("cat {}", p("a.txt"))), "from-a\n");
    assert_eq!(sh_ok(&c, &format!("cat {}", p("b.txt"))), "from-b\n");
    assert!(
        c.sh(&format!("cat {}", p("late.txt")))
            .output()
            .unwrap()
            .stdout
            .is_empty()
    );
    c.ok(["unmount", point.to_str().unwrap()]);
}
