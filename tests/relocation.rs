//! Mount anywhere: an archive's environment served at another prefix than the one its files were
//! written for (another mount root, a snapshot at `NAME@N`), with the files conda bakes the prefix
//! into rewritten for the mount's prefix: scripts' shebangs, text files and binary strings conda
//! recorded with a placeholder. The archive itself stays as written.

mod common;

use std::path::Path;
use std::process::Output;

use common::conda::EnvWorld;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Unmounts what is left mounted at its path, however the test ends.
struct Unmounted(std::path::PathBuf);

impl Drop for Unmounted {
    fn drop(&mut self) {
        if common::is_mounted(&self.0) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

/// A world with the env `demo` (python and the test channel's package with prefix placeholders),
/// made at the world's mount root; None where mounts cannot run.
fn demo_world() -> Option<EnvWorld> {
    if common::skip_without_mounts() {
        return None;
    }
    let w = EnvWorld::new("envs");
    ok_at(
        &w,
        &w.mounts,
        &["create", "demo", "python", "cf-prefix-demo", "-y"],
    );
    Some(w)
}

/// The entry `name` of `archive`, as `unzip -p` gives it.
fn unzip_p(archive: &Path, name: &str) -> String {
    let out = std::process::Command::new("unzip")
        .arg("-p")
        .arg(archive)
        .arg(name)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `conda-fuse ARGS` with the mount root `root`, which must succeed.
fn ok_at(w: &EnvWorld, root: &Path, args: &[&str]) -> String {
    let out = w
        .cf(args)
        .env("CONDA_FUSE_MOUNT_ROOT", root)
        .env("CONDA_FUSE_RUN_LINGER", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} at {}:\n{}",
        root.display(),
        text(&out)
    );
    text(&out)
}

#[test]
fn an_env_runs_at_another_prefix_and_a_snapshot_runs_its_own_scripts() {
    let Some(w) = demo_world() else {
        return;
    };
    let written_for = w.mounts.join("demo/demo");

    // Another mount root: another prefix (as another user's, or a job's scratch).
    let other = w.world.path("elsewhere/envs");
    std::fs::create_dir_all(&other).unwrap();
    let prefix = other.join("demo/demo");
    let p = prefix.display().to_string();
    let hello = ok_at(&w, &other, &["run", "demo", "--", "cf-hello"]);
    assert!(hello.contains(&format!("hello from {p}")), "{hello}");
    let config = format!("{p}/etc/cf-prefix-demo/prefix.txt");
    let script = format!(
        "import os, sys\n\
         t = open('{config}').read()\n\
         print('config=' + repr(t))\n\
         print('sizes', os.stat('{config}').st_size == len(t.encode()))\n\
         b = open(sys.prefix + '/lib/libcfdemo.bin', 'rb').read()\n\
         print('binary=' + b.split(b'\\0')[1].decode())\n\
         print('binary-tail=' + repr(b[-5:]))\n\
         import mmap\n\
         f = open(sys.prefix + '/lib/libcfdemo.bin', 'rb')\n\
         m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n\
         print('mmap-same', m[:] == b)\n"
    );
    let out = ok_at(&w, &other, &["run", "demo", "--", "python", "-c", &script]);
    assert!(
        out.contains(&format!("config='prefix={p}\\nlib={p}/lib\\n'")),
        "{out}"
    );
    assert!(out.contains("sizes True"), "{out}");
    assert!(out.contains(&format!("binary={p}/lib")), "{out}");
    assert!(out.contains("binary-tail=b'tail\\x00'"), "{out}");
    assert!(out.contains("mmap-same True"), "{out}");
    // doctor says so.
    let doctor = text(
        &w.cf(&["doctor"])
            .env("CONDA_FUSE_MOUNT_ROOT", &other)
            .output()
            .unwrap(),
    );
    assert!(
        doctor.contains(&format!(
            "'demo' was written for {}: its files are served rewritten for {p}",
            written_for.display()
        )),
        "{doctor}"
    );
    // status says what is rewritten, and for which prefix the files were written.
    let _unmounted = Unmounted(other.join("demo"));
    ok_at(&w, &other, &["activate", "demo"]);
    let status: serde_json::Value =
        serde_json::from_str(&ok_at(&w, &other, &["status", "demo", "--json"])).unwrap();
    assert_eq!(status["read_only"], false);
    assert_eq!(status["written_for"], written_for.display().to_string());
    assert!(status["relocated_files"].as_u64().unwrap() >= 3, "{status}");
    assert_eq!(status["not_relocated"], serde_json::json!([]));
    ok_at(&w, &other, &["unmount", "demo"]);
    // The archive holds the files as written.
    assert_eq!(
        unzip_p(
            &w.archives.join("demo.zip"),
            "demo/etc/cf-prefix-demo/prefix.txt"
        ),
        format!("prefix={0}\nlib={0}/lib\n", written_for.display())
    );

    // A new version; the old one, run as a snapshot, runs its own scripts.
    ok_at(&w, &w.mounts, &["install", "demo", "six", "-y"]);
    let old = ok_at(&w, &w.mounts, &["run", "demo@1", "--", "cf-hello"]);
    assert!(
        old.contains(&format!(
            "hello from {}",
            w.mounts.join("demo@1/demo").display()
        )),
        "{old}"
    );
    // Its python is the snapshot's: six came with the new version only.
    let out = w
        .cf(&["run", "demo@1", "--", "python", "-c", "import six"])
        .env("CONDA_FUSE_RUN_LINGER", "0")
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("No module named 'six'"),
        "{}",
        text(&out)
    );
}

/// A writable mount at another prefix: conda installs into it with that prefix, a file changed
/// there (copied up) holds it, a script written there names it; the save records which prefix
/// each of those files holds, and copies the others as they are. Mounted anywhere after, old and
/// new files alike are served rewritten for that mount's prefix.
#[test]
fn an_env_changed_at_another_prefix_runs_anywhere() {
    let Some(w) = demo_world() else {
        return;
    };
    let first = w.mounts.join("demo/demo");
    let other = w.world.path("other/envs");
    let third = w.world.path("third/envs");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::create_dir_all(&third).unwrap();
    let at_other = other.join("demo/demo");
    let _unmounted = Unmounted(other.join("demo"));

    // Activate there mounts writable, its files served for this prefix.
    let said = ok_at(&w, &other, &["activate", "demo"]);
    assert!(!said.contains("read-only"), "{said}");
    let status: serde_json::Value =
        serde_json::from_str(&ok_at(&w, &other, &["status", "demo", "--json"])).unwrap();
    assert_eq!(status["read_only"], false, "{status}");
    assert_eq!(status["written_for"], first.display().to_string());
    // A change to a rewritten file copies it up as served; a new script names this prefix.
    let config = at_other.join("etc/cf-prefix-demo/prefix.txt");
    let as_here = |p: &Path| format!("prefix={0}\nlib={0}/lib\n# changed\n", p.display());
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut append = std::fs::OpenOptions::new()
        .append(true)
        .open(&config)
        .unwrap();
    append.write_all(b"# changed\n").unwrap();
    drop(append);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        as_here(&at_other)
    );
    let tool = at_other.join("bin/cf-tool");
    std::fs::write(
        &tool,
        format!(
            "#!{}/bin/python3\nimport sys; print('tool in', sys.prefix)\n",
            at_other.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A symlink into the prefix, as some packages' post-link steps make them.
    std::os::unix::fs::symlink(&tool, at_other.join("bin/cf-tool-link")).unwrap();
    // conda installs a package with a console script (its shebang: this prefix).
    ok_at(&w, &other, &["install", "demo", "wheel", "-y"]);
    let wheel = std::fs::read_to_string(at_other.join("bin/wheel")).unwrap();
    assert!(
        wheel.starts_with(&format!("#!{}/bin/python", at_other.display())),
        "{wheel}"
    );
    ok_at(&w, &other, &["unmount", "demo"]);

    // Anywhere after (a third prefix, and the first): every file names that mount's prefix.
    for (root, prefix) in [
        (&third, third.join("demo/demo")),
        (&w.mounts, first.clone()),
    ] {
        let p = prefix.display().to_string();
        let hello = ok_at(&w, root, &["run", "demo", "--", "cf-hello"]);
        assert!(hello.contains(&format!("hello from {p}")), "{hello}");
        let tool = ok_at(&w, root, &["run", "demo", "--", "cf-tool"]);
        assert!(tool.contains(&format!("tool in {p}")), "{tool}");
        let link = ok_at(
            &w,
            root,
            &[
                "run",
                "demo",
                "--",
                "readlink",
                &format!("{p}/bin/cf-tool-link"),
            ],
        );
        assert_eq!(link.trim(), format!("{p}/bin/cf-tool"));
        let version = ok_at(&w, root, &["run", "demo", "--", "wheel", "version"]);
        assert!(version.contains("wheel"), "{version}");
        let config = ok_at(
            &w,
            root,
            &[
                "run",
                "demo",
                "--",
                "cat",
                &format!("{p}/etc/cf-prefix-demo/prefix.txt"),
            ],
        );
        assert!(config.contains(&as_here(&prefix)), "{config}");
    }
    // The archive holds each file as it was written: the changed config with the prefix it was
    // changed at, the rest with the first.
    let unzip = |name: &str| unzip_p(&w.archives.join("demo.zip"), name);
    assert_eq!(
        unzip("demo/etc/cf-prefix-demo/prefix.txt"),
        as_here(&at_other)
    );
    assert!(
        unzip("demo/bin/cf-hello").starts_with(&format!("#!{}/bin/python", first.display())),
        "unchanged entries are copied as they are"
    );
}

/// An archive of the old bash tool (fuse-zip, env at `MOUNT_ROOT/old/old`) runs at another mount
/// root too.
#[test]
fn an_archive_of_the_old_tool_runs_at_another_prefix() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    w.old_tool_archive();
    let other = w.world.path("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    let hello = ok_at(&w, &other, &["run", "old", "--", "cf-hello"]);
    let prefix = other.join("old/old");
    assert!(
        hello.contains(&format!("hello from {}", prefix.display())),
        "{hello}"
    );
}

/// An env whose files name its prefix through a symlink to the mount root (the old tool under a
/// `$HOME` that is a symlink, as on many clusters; conda-fuse names the real path): the same
/// place, so activate mounts it writable and nothing is rewritten.
#[test]
fn a_prefix_spelled_through_a_symlink_is_the_same_place() {
    if common::skip_without_mounts() {
        return;
    }
    let w = EnvWorld::new("envs");
    let link = w.world.path("home-link");
    std::os::unix::fs::symlink(&w.mounts, &link).unwrap();
    std::fs::create_dir_all(&w.archives).unwrap();
    let point = w.mounts.join("old");
    let m = common::fuse_zip(&w.archives.join("old.zip"), &point, true);
    w.create_demo(&link.join("old/old"), &[]);
    common::fuse_zip_unmount(m);
    let said = ok_at(&w, &w.mounts, &["activate", "old"]);
    assert!(!said.contains("was written for"), "{said}");
    let status: serde_json::Value =
        serde_json::from_str(&ok_at(&w, &w.mounts, &["status", "old", "--json"])).unwrap();
    assert_eq!(status["read_only"], false, "{status}");
    assert_eq!(status["written_for"], serde_json::Value::Null, "{status}");
    ok_at(&w, &w.mounts, &["unmount", "old"]);
}

/// A lab's env, made by one user (root here) and shared read-only in a lab directory, mounted by
/// another (uid 65534) at their own mount root: its config and binary hold their prefix, its
/// scripts name their mount's python, and its commands run for them (`pip list`, `jupyter
/// --version`, a package's console script).
#[test]
fn a_labs_env_serves_each_member_their_own_prefix() {
    if common::skip_without_mounts() {
        return;
    }
    let Some(u) = common::user::User::new() else {
        return;
    };
    let w = EnvWorld::new("envs");
    let packages = ["python", "cf-prefix-demo", "pip", "wheel"];
    let jupyter = ["jupyter-core", "platformdirs", "traitlets"];
    let create = [&["create", "tools"][..], &packages, &jupyter, &["-y"]].concat();
    ok_at(&w, &w.mounts, &create);
    let lab = u.path("lab");
    std::fs::create_dir(&lab).unwrap();
    std::fs::copy(w.archives.join("tools.zip"), lab.join("tools.zip")).unwrap();
    let as_user = |args: &[&str]| text(&u.ok_in_lab(&lab, args));
    let prefix = u.path("envs/tools/tools");
    let p = prefix.display();
    // Their commands run from their mount (each a script whose shebang is served rewritten).
    let run = |command: &[&str]| as_user(&[&["run", "tools", "--"][..], command].concat());
    let hello = run(&["cf-hello"]);
    assert!(hello.contains(&format!("hello from {p}")), "{hello}");
    let pip = run(&["pip", "list"]);
    assert!(
        pip.contains("jupyter_core") && pip.contains("traitlets"),
        "{pip}"
    );
    let version = run(&["jupyter", "--version"]);
    assert!(version.contains("jupyter_core"), "{version}");
    let paths = run(&["jupyter", "--paths"]);
    assert!(paths.contains(&format!("{p}/share/jupyter")), "{paths}");
    let wheel = run(&["wheel", "version"]);
    assert!(wheel.contains("wheel"), "{wheel}");

    let _unmounted = Unmounted(u.path("envs/tools"));
    let activated = as_user(&["activate", "tools"]);
    assert!(activated.contains("read-only"), "{activated}");
    let config = u.read(&prefix.join("etc/cf-prefix-demo/prefix.txt"));
    assert_eq!(
        String::from_utf8_lossy(&config),
        format!("prefix={p}\nlib={p}/lib\n")
    );
    let script = u.read(&prefix.join("bin/cf-hello"));
    let shebang = String::from_utf8_lossy(&script);
    assert!(
        shebang.starts_with(&format!("#!{p}/bin/python3")),
        "{shebang}"
    );
    let binary = u.read(&prefix.join("lib/libcfdemo.bin"));
    let needle = format!("{p}/lib\0");
    assert!(
        binary.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "the binary names the user's prefix"
    );
    as_user(&["unmount", "tools"]);
}
/// `rename OLD NEW`: the archive, its snapshot and its kernelspec follow the name; the env runs at
/// its new prefix without a file of it changed, and so does its snapshot.
#[test]
fn a_renamed_env_runs_under_its_new_name() {
    let Some(w) = demo_world() else {
        return;
    };
    let first = w.mounts.join("demo/demo");
    ok_at(&w, &w.mounts, &["install", "demo", "wheel", "-y"]);
    // What `kernel install` looks for in the archive (the kernel itself is not started here).
    let mkdir =
        "import os, sysconfig; os.makedirs(sysconfig.get_paths()['purelib'] + '/ipykernel')";
    ok_at(
        &w,
        &w.mounts,
        &["run", "demo", "--write", "--", "python", "-c", mkdir],
    );
    ok_at(&w, &w.mounts, &["kernel", "install", "demo"]);

    // Refused while mounted, and onto a name that exists.
    let _unmounted = Unmounted(w.mounts.join("demo"));
    ok_at(&w, &w.mounts, &["activate", "demo"]);
    let out = w.cf(&["rename", "demo", "lab-demo"]).output().unwrap();
    assert!(
        !out.status.success() && text(&out).contains("'demo' is mounted at"),
        "{}",
        text(&out)
    );
    ok_at(&w, &w.mounts, &["unmount", "demo"]);
    std::fs::write(w.archives.join("taken.zip"), b"").unwrap();
    let out = w.cf(&["rename", "demo", "taken"]).output().unwrap();
    assert!(
        !out.status.success() && text(&out).contains("'taken' exists already"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(w.archives.join("taken.zip")).unwrap();

    let said = ok_at(&w, &w.mounts, &["rename", "demo", "lab-demo"]);
    assert!(said.contains("renamed 'demo' to 'lab-demo'"), "{said}");
    assert!(said.contains("1 snapshot(s)"), "{said}");
    assert!(!w.archives.join("demo.zip").exists());
    // Its files are as they were written, under the new name.
    assert_eq!(
        unzip_p(
            &w.archives.join("lab-demo.zip"),
            "lab-demo/etc/cf-prefix-demo/prefix.txt"
        ),
        format!("prefix={0}\nlib={0}/lib\n", first.display())
    );
    // It runs at its new prefix, its snapshot too (without the package the new version added).
    let new = w.mounts.join("lab-demo/lab-demo");
    let hello = ok_at(&w, &w.mounts, &["run", "lab-demo", "--", "cf-hello"]);
    assert!(
        hello.contains(&format!("hello from {}", new.display())),
        "{hello}"
    );
    let version = ok_at(
        &w,
        &w.mounts,
        &["run", "lab-demo", "--", "wheel", "version"],
    );
    assert!(version.contains("wheel"), "{version}");
    let old = ok_at(&w, &w.mounts, &["run", "lab-demo@1", "--", "cf-hello"]);
    assert!(
        old.contains(&format!(
            "hello from {}",
            w.mounts.join("lab-demo@1/lab-demo").display()
        )),
        "{old}"
    );
    // Its history reads the snapshot's packages (conda-meta, under the new name).
    let history = ok_at(&w, &w.mounts, &["history", "lab-demo"]);
    assert!(history.contains("3 packages"), "{history}");
    // The kernelspec launches the new name.
    let kernels = ok_at(&w, &w.mounts, &["kernel", "list"]);
    assert!(
        kernels.contains("lab-demo") && !kernels.contains("conda-fuse-demo"),
        "{kernels}"
    );
    let spec_dir = kernels
        .lines()
        .find(|l| l.starts_with("lab-demo"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap();
    let spec = std::fs::read_to_string(Path::new(spec_dir).join("kernel.json")).unwrap();
    assert!(spec.contains("\"lab-demo\""), "{spec}");
    assert!(!spec.contains("\"demo\""), "{spec}");
}
