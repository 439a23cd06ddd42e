//! Jupyter for the tests: the tests' Python with jupyter_client (the client that starts kernels
//! from kernelspecs, as Jupyter servers do) and an environment with ipykernel to start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The tests' Python with jupyter_client ($CONDA_FUSE_TEST_PYTHON, as tests/run-all.sh sets it).
pub fn client_python() -> Option<PathBuf> {
    let py = std::env::var_os("CONDA_FUSE_TEST_PYTHON").map(PathBuf::from)?;
    let ok = Command::new(&py)
        .args(["-c", "import jupyter_client"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}

/// A venv with ipykernel (pinned), made once per machine under target/.
pub fn ipykernel_env(py: &Path) -> &'static Path {
    static ENV: OnceLock<PathBuf> = OnceLock::new();
    ENV.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ipykernel-env-6.29.5");
        let env = base.join("env");
        if base.join("complete").exists() {
            return env;
        }
        let _ = std::fs::remove_dir_all(&base);
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap();
            super::assert_success(&out, what);
        };
        run(
            Command::new(py).args(["-m", "venv"]).arg(&env),
            "python -m venv",
        );
        run(
            Command::new(env.join("bin/python")).args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "ipykernel==6.29.5",
            ]),
            "pip install ipykernel",
        );
        std::fs::write(base.join("complete"), b"").unwrap();
        env
    })
}
