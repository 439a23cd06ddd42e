//! pip installs real packages (from PyPI) into a mounted environment; the changes are saved, and a
//! read-only mount of the saved archive imports them. The environment is a venv of the test
//! machine's Python, packed into an archive like any environment.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::process::Command;

use common::{Mount, World};

#[test]
fn pip_install_into_a_mount_is_saved_and_importable() {
    if common::skip_without_mounts() {
        return;
    }
    let w = World::new();
    let src = w.path("env");
    common::run(Command::new("python3").args(["-m", "venv"]).arg(&src));
    let archive = w.path("env.zip");
    w.pack(&src, &archive, &[]);
    let point = w.path("mnt");
    fs::create_dir_all(&point).unwrap();
    w.ok([OsStr::new("mount"), archive.as_os_str(), point.as_os_str()]);
    let m = Mount { world: &w, point };
    let pip = Command::new(m.path("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "-q",
            "requests",
            "rich",
        ])
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .output()
        .unwrap();
    common::assert_success(&pip, "pip install requests rich (needs PyPI)");
    let check = "import requests, rich, sys; print(requests.__version__, sys.prefix)";
    let out = common::run(Command::new(m.path("bin/python")).args(["-c", check]));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&*m.point.to_string_lossy()));
    w.ok([OsStr::new("commit"), m.point.as_os_str()]);
    w.ok([OsStr::new("unmount"), m.point.as_os_str()]);
    drop(m);

    // The saved archive alone, mounted read-only, imports what pip installed.
    let ro = w.mount_ro(&archive, "mnt");
    let out = common::run(Command::new(ro.path("bin/python")).args(["-c", check]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&*ro.point.to_string_lossy()), "{text}");
    let listing = common::run(Command::new("unzip").arg("-Z1").arg(&archive));
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        names.contains("site-packages/requests/__init__.py")
            && names.contains("site-packages/rich/")
    );
}
