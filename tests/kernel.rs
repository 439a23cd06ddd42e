//! Jupyter kernels from archived environments, for real: ipykernel inside an env archive (a venv
//! with ipykernel from PyPI, packed), jupyter_client (in the tests' Python) starting the kernel
//! from the kernelspec `conda-fuse kernel install` wrote, code that imports from the env, shutdown,
//! and the mount gone afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::World;
use common::jupyter::{client_python, ipykernel_env};

/// Unmounts whatever the kernel left mounted, even when the test fails.
struct Unmount<'w>(&'w World, PathBuf);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        common::force_unmount(self.0, &self.1);
    }
}

#[test]
fn a_kernelspec_starts_the_env_kernel_through_a_mount_that_goes_with_it() {
    if common::skip_without_mounts() {
        return;
    }
    let Some(py) = client_python() else {
        eprintln!(
            "skipped: CONDA_FUSE_TEST_PYTHON lacks jupyter_client (tests/run-all.sh installs it)"
        );
        return;
    };
    kernel_story(World::new(), &py);
}

/// The same with archives, state, kernelspec and mount root on a network filesystem.
#[test]
fn a_kernel_runs_with_the_home_on_a_network_filesystem() {
    if common::skip_without_mounts() {
        return;
    }
    let Some(py) = client_python() else {
        eprintln!(
            "skipped: CONDA_FUSE_TEST_PYTHON lacks jupyter_client (tests/run-all.sh installs it)"
        );
        return;
    };
    if let Some(w) = World::on_netfs() {
        kernel_story(w, &py);
    }
}

fn kernel_story(w: World, py: &Path) {
    let (archives, mounts, jupyter) = (w.path("archives"), w.path("envs"), w.path("jupyter"));
    std::fs::create_dir_all(&archives).unwrap();
    w.pack(
        ipykernel_env(py),
        &archives.join("jk.zip"),
        &["--prefix-dir", "jk"],
    );
    let plain = w.path("plain");
    std::fs::create_dir_all(plain.join("bin")).unwrap();
    w.pack(
        &plain,
        &archives.join("plain.zip"),
        &["--prefix-dir", "plain"],
    );
    let cf = |args: &[&str]| {
        let mut c = w.cmd(args);
        c.env("CONDA_FUSE_ARCHIVE_PATH", &archives)
            .env("CONDA_FUSE_MOUNT_ROOT", &mounts);
        c.output().unwrap()
    };

    let out = cf(&[
        "kernel",
        "install",
        "plain",
        "--prefix",
        jupyter.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conda-fuse-install plain ipykernel"), "{err}");

    let out = cf(&[
        "kernel",
        "install",
        "jk",
        "--prefix",
        jupyter.to_str().unwrap(),
    ]);
    common::assert_success(&out, "kernel install");
    let spec_dir = jupyter.join("share/jupyter/kernels/conda-fuse-jk");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec_dir.join("kernel.json")).unwrap())
            .unwrap();
    assert_eq!(spec["argv"][1], "kernel");
    assert_eq!(spec["argv"][4], "{connection_file}");
    assert_eq!(
        spec["env"]["CONDA_FUSE_ARCHIVE_PATH"],
        archives.to_str().unwrap()
    );
    let out = cf(&["kernel", "list", "--prefix", jupyter.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("jk "));

    // Jupyter starts it: the env is mounted for the kernel and its code imports from the env.
    let prefix = mounts.join("jk/jk");
    let mut client = Command::new(py);
    client
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kernel_client.py"))
        .arg("conda-fuse-jk")
        .arg("import sys, ipykernel; print(sys.prefix, ipykernel.__version__, ipykernel.__file__)")
        .env("JUPYTER_PATH", jupyter.join("share/jupyter"))
        .env("JUPYTER_RUNTIME_DIR", w.path("jupyter-runtime"))
        .env("CONDA_FUSE_STATE_DIR", w.state_dir())
        .env("CONDA_FUSE_RUNTIME_DIR", w.runtime_dir())
        .env("CONDA_FUSE_RUN_LINGER", "0")
        .env("TMPDIR", w.tmp_dir());
    let _unmount = Unmount(&w, mounts.join("jk"));
    let out = client.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    common::assert_success(&out, "kernel_client.py");
    assert!(text.contains("STATUS ok"), "{text}");
    let expected = format!("OUT {} 6.29.5 {}/lib/", prefix.display(), prefix.display());
    assert!(text.contains(&expected), "want {expected:?} in {text}");

    // The kernel is gone, and so is the mount it needed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while common::is_mounted(&mounts.join("jk")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the kernel's mount stayed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let out = cf(&[
        "kernel",
        "remove",
        "jk",
        "--prefix",
        jupyter.to_str().unwrap(),
    ]);
    common::assert_success(&out, "kernel remove");
    assert!(!spec_dir.exists());
}
