//! Batch jobs under a real scheduler: the Slurm cluster tests/run-all.sh starts
//! (`tests/support/slurm.sh`: slurmctld and three slurmd, each node its own mount + UTS namespace
//! and /tmp, proctrack/cgroup, so a job's end kills every process it started; n3 refuses user
//! namespaces). Jobs run as uid 65534 with the home of a world of the tests. Scenarios:
//! overlapping jobs on one node where the first ends before the second reads; a job array over
//! three nodes; `srun` across three nodes; a writer job cancelled right after an acknowledged write
//! and a writer job on another node at once; the same overlapping jobs where user namespaces are
//! off. After each, no mount and no conda-fuse process is left on any node.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::jupyter::{client_python, ipykernel_env};
use common::user::{UID, User, chown_tree};

/// The scenarios share one cluster, and each checks that nothing is left on its nodes.
static SERIAL: Mutex<()> = Mutex::new(());

const NODES: [&str; 3] = ["n1", "n2", "n3"];

struct Cluster {
    state: PathBuf,
    user: User,
    /// Jobs run as root (a Jupyter server's kernels need the tests' own Python).
    as_root: bool,
}

fn slurm_state() -> Option<PathBuf> {
    let state = std::env::var_os("CONDA_FUSE_TEST_SLURM").map(PathBuf::from);
    if state.is_none() {
        eprintln!(
            "skipped: no Slurm cluster (CONDA_FUSE_TEST_SLURM is unset; tests/run-all.sh starts \
             one as root)"
        );
    }
    state
}

fn cluster() -> Option<Cluster> {
    let state = slurm_state()?;
    let user = User::new()?;
    Some(Cluster {
        state,
        user,
        as_root: false,
    })
}

impl Cluster {
    fn conf(&self) -> PathBuf {
        self.state.join("slurm.conf")
    }

    fn slurm(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// A job script: the user's home, conda-fuse on PATH, then `body`.
    fn script(&self, name: &str, env: &[(&str, &str)], body: &str) -> PathBuf {
        let bin = Path::new(common::bin()).parent().unwrap();
        let mut text = format!(
            "#!/bin/bash\nexport HOME={home} PATH={bin}:/usr/bin:/bin\nunset \
             CONDA_FUSE_STATE_DIR CONDA_FUSE_RUNTIME_DIR CONDA_FUSE_RUN_LINGER XDG_RUNTIME_DIR\n",
            home = self.user.world.dir.path().display(),
            bin = bin.display()
        );
        for (k, v) in env {
            text.push_str(&format!("export {k}={v}\n"));
        }
        text.push_str(body);
        text.push('\n');
        let path = self.user.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        chown_tree(&path);
        path
    }

    /// Submits `script` as the user; returns the job id.
    fn sbatch(&self, script: &Path, extra: &[&str]) -> u32 {
        let mut sbatch = self.slurm("sbatch");
        sbatch.arg("--parsable");
        if !self.as_root {
            sbatch.args([&format!("--uid={UID}"), &format!("--gid={UID}")]);
        }
        let out = sbatch
            .arg(format!("--chdir={}", self.user.world.dir.path().display()))
            .arg(format!(
                "--output={}/out-%A_%a.txt",
                self.user.world.dir.path().display()
            ))
            .args(extra)
            .arg(script)
            .output()
            .unwrap();
        common::assert_success(&out, "sbatch");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Waits (at most two minutes) until none of `jobs` is queued or running.
    fn wait(&self, jobs: &[u32]) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ids: Vec<String> = jobs.iter().map(u32::to_string).collect();
            let out = self
                .slurm("squeue")
                .args(["-h", "-o", "%i", "-j", &ids.join(",")])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "jobs {ids:?} did not end");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The output of job `id` (task `task` of an array).
    fn output(&self, id: u32, task: Option<u32>) -> String {
        let task = task.map_or("4294967294".to_string(), |t| t.to_string());
        let name = format!("out-{id}_{task}.txt");
        std::fs::read_to_string(self.user.path(&name))
            .or_else(|_| {
                // Jobs that are not arrays are named out-ID_4294967294.txt by %a: either way.
                std::fs::read_to_string(self.user.path(&format!("out-{id}_.txt")))
            })
            .unwrap_or_else(|e| panic!("no output of job {id}: {e}"))
    }

    /// Waits until job `id`'s output shows `text` (at most a minute).
    fn wait_for_output(&self, id: u32, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(self.user.path(&format!("out-{id}_4294967294.txt")))
                .unwrap_or_default();
            if out.contains(text) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never printed {text:?}; it printed:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of node `n`'s slurmd (its namespaces are the node's).
    fn node_pid(&self, n: &str) -> u32 {
        let out = Command::new("pgrep")
            .args([
                "-f",
                &format!("slurmd -D -N {n} -f {}", self.conf().display()),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no slurmd for {n}"))
    }

    /// conda-fuse mounts in any node's namespace, and conda-fuse processes of the user: what a
    /// job left behind.
    fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for n in NODES {
            let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.node_pid(n)))
                .unwrap_or_default();
            left.extend(
                info.lines()
                    .filter(|l| l.contains("conda-fuse"))
                    .map(|l| format!("{n}: {l}")),
            );
        }
        let mut pgrep = Command::new("pgrep");
        pgrep.arg("-a");
        if !self.as_root {
            pgrep.args(["-u", &UID.to_string()]);
        }
        let out = pgrep.arg("-x").arg("conda-fuse").output().unwrap();
        left.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| format!("process {l}")),
        );
        left
    }

    /// Nothing left on any node, once the jobs' ends have been dealt with (a few seconds).
    fn assert_nothing_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind on the nodes:\n{}",
                left.join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The environment `small` in the user's archives: a Python package `pkg` (VALUE = 42).
    fn small_env(&self) {
        let src = self.user.mkdir("src/small/lib/pkg");
        std::fs::write(src.join("__init__.py"), b"VALUE = 42\n").unwrap();
        std::fs::create_dir_all(self.user.path("src/small/conda-meta")).unwrap();
        chown_tree(&self.user.path("src"));
        std::fs::write(
            self.user.path("import_pkg.py"),
            "import os, sys\nsys.path.insert(0, os.environ['CONDA_PREFIX'] + '/lib')\nimport pkg\n\
             print('value', pkg.VALUE)\n",
        )
        .unwrap();
        chown_tree(&self.user.path("import_pkg.py"));
        let out = self.user.run([
            "pack",
            self.user.path("src/small").to_str().unwrap(),
            "--name",
            "small",
        ]);
        common::assert_success(&out, "pack as the user");
    }
}

/// What a job's command runs to import from the environment: the system's Python with the
/// package from the env's prefix (`small_env` writes the script).
const IMPORT: &str = "/usr/bin/python3 $HOME/import_pkg.py";

/// Two overlapping jobs of the user on `node`: the first mounts, reads and holds until the second
/// has printed `second_got_to`; the second reads only once the first has ended (and Slurm killed
/// everything it started). Gates the test opens, not sleeps, order them, so a slow scheduler
/// cannot; every wait in the jobs is bounded (60 s). Returns both outputs.
fn overlapping_jobs_on_one_node(c: &Cluster, node: &str, second_got_to: &str) -> (String, String) {
    c.small_env();
    let (first_may_end, second_may_read) =
        (c.user.path("first-may-end"), c.user.path("second-may-read"));
    let hold = |gate: &Path| {
        format!(
            "for i in $(seq 600); do [ -e {} ] && break; sleep 0.1; done",
            gate.display()
        )
    };
    let first = c.script(
        "first.sh",
        &[],
        &format!(
            "conda-fuse run small -- sh -c '{IMPORT}; echo first-read; {}'\necho first-done",
            hold(&first_may_end)
        ),
    );
    let second = c.script(
        "second.sh",
        &[],
        &format!(
            "conda-fuse run small -- sh -c 'echo second-in; {}; {IMPORT}'\necho second-done",
            hold(&second_may_read)
        ),
    );
    let a = c.sbatch(&first, &["-w", node]);
    c.wait_for_output(a, "first-read");
    let b = c.sbatch(&second, &["-w", node]);
    c.wait_for_output(b, second_got_to);
    std::fs::write(&first_may_end, b"").unwrap();
    c.wait(&[a]);
    std::fs::write(&second_may_read, b"").unwrap();
    c.wait(&[b]);
    (c.output(a, None), c.output(b, None))
}

/// Two jobs of one user on one node: the second reads after the first ended (and Slurm killed
/// everything the first started), through a mount of its own; the host never sees either.
#[test]
fn overlapping_jobs_on_one_node_each_have_their_own_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let (first, second) = overlapping_jobs_on_one_node(&c, "n1", "second-in");
    assert!(
        first.contains("value 42") && first.contains("first-done"),
        "{first}"
    );
    assert!(
        second.contains("value 42") && second.contains("second-done"),
        "{second}"
    );
    assert!(!common::is_mounted(
        &c.user.path("miniconda_fuse/envs/small")
    ));
    c.assert_nothing_left();
}

/// Where user namespaces are off (n3), the second job does not use the first job's mount: it
/// waits for it to go (with the first job), then mounts its own.
#[test]
fn where_user_namespaces_are_off_a_job_waits_out_another_jobs_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let (first, second) = overlapping_jobs_on_one_node(&c, "n3", "waiting for it to go");
    assert!(
        first.contains("value 42") && first.contains("first-done"),
        "{first}"
    );
    assert!(
        first.contains("jobs cannot have mounts of their own on n3"),
        "said once, by the first job: {first}"
    );
    // doctor, run in a job on each kind of node, says which it is.
    let doctor = c.script("doctor.sh", &[], "conda-fuse doctor");
    let (d1, d3) = (
        c.sbatch(&doctor, &["-w", "n1"]),
        c.sbatch(&doctor, &["-w", "n3"]),
    );
    c.wait(&[d1, d3]);
    let (d1, d3) = (c.output(d1, None), c.output(d3, None));
    assert!(
        d1.contains("batch jobs get mounts of their own here"),
        "{d1}"
    );
    assert!(
        d3.contains("batch jobs cannot have mounts of their own here")
            && d3.contains("allow unprivileged user namespaces"),
        "{d3}"
    );
    assert!(
        second.contains("waiting for it to go")
            && second.contains("value 42")
            && second.contains("second-done"),
        "{second}"
    );
    c.assert_nothing_left();
}

/// A job array of nine tasks, three on each node (n3 without user namespaces), all importing
/// from one archive at once.
#[test]
fn a_job_array_over_three_nodes_imports_from_one_archive() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    c.small_env();
    let task = c.script(
        "task.sh",
        &[],
        &format!(
            "conda-fuse run small -- sh -c '{IMPORT}; sleep 1' && echo \"task $SLURM_ARRAY_TASK_ID on $(hostname) ok\""
        ),
    );
    let arrays: Vec<(u32, &str)> = NODES
        .iter()
        .map(|&n| (c.sbatch(&task, &["--array=1-3", "-w", n]), n))
        .collect();
    c.wait(&arrays.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    for (id, node) in &arrays {
        for t in 1..=3 {
            let out = c.output(*id, Some(t));
            assert!(
                out.contains("value 42") && out.contains(&format!("task {t} on {node} ok")),
                "array {id} task {t}:\n{out}"
            );
        }
    }
    c.assert_nothing_left();
}

/// `srun -N3 conda-fuse run`: each node's task in that node's job space.
#[test]
fn srun_across_three_nodes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    c.small_env();
    let step = c.script(
        "step.sh",
        &[],
        &format!("conda-fuse run small -- sh -c '{IMPORT}' | sed \"s/^/$(hostname) /\""),
    );
    let out = c
        .slurm("srun")
        .args([
            &format!("--uid={UID}"),
            &format!("--gid={UID}"),
            "-N3",
            "-n3",
            "--ntasks-per-node=1",
        ])
        .arg(format!("--chdir={}", c.user.world.dir.path().display()))
        .arg(&step)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    for n in NODES {
        assert!(text.contains(&format!("{n} value 42")), "{n}:\n{text}");
    }
    c.assert_nothing_left();
}

/// A `run --write` job is cancelled (as walltime does) right after an acknowledged write; a
/// `run --write` job on another node, started at once, waits for the writer's lease to run out,
/// takes the lock over, finds the write and saves it.
#[test]
fn a_cancelled_writers_acknowledged_write_reaches_the_next_writer_job() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    c.small_env();
    let beat = [("CONDA_FUSE_HEARTBEAT", "1")];
    let writer = c.script(
        "writer.sh",
        &beat,
        "conda-fuse run --write small -- sh -c 'echo precious | dd of=$CONDA_PREFIX/work.txt \
         conv=fsync status=none && echo written && sleep 600'",
    );
    let next = c.script(
        "next.sh",
        &beat,
        "conda-fuse run --write small -- sh -c 'cat $CONDA_PREFIX/work.txt; echo more >> \
         $CONDA_PREFIX/work.txt'\necho next-done",
    );
    let w = c.sbatch(&writer, &["-w", "n1"]);
    c.wait_for_output(w, "written");
    let out = c.slurm("scancel").arg(w.to_string()).output().unwrap();
    common::assert_success(&out, "scancel");
    let n = c.sbatch(&next, &["-w", "n2"]);
    c.wait(&[w, n]);
    let text = c.output(n, None);
    assert!(
        text.contains("heartbeat stopped")
            && text.contains("precious")
            && text.contains("next-done"),
        "{text}"
    );
    // Both writes are in the archive now.
    let check = c.script(
        "check.sh",
        &[],
        "conda-fuse run small -- sh -c 'cat $CONDA_PREFIX/work.txt'",
    );
    let k = c.sbatch(&check, &["-w", "n3"]);
    c.wait(&[k]);
    let text = c.output(k, None);
    assert!(text.contains("precious\nmore"), "{text}");
    c.assert_nothing_left();
}

/// A Jupyter kernel started in a job (a Jupyter server running as the job, as Open OnDemand and
/// batchspawner do): the kernelspec's `conda-fuse kernel launch` mounts the env for the job, the
/// kernel imports from it, and the mount goes with the job.
#[test]
fn a_jupyter_kernel_started_in_a_job_mounts_for_the_job() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(state) = slurm_state() else { return };
    let Some(py) = client_python() else {
        eprintln!(
            "skipped: CONDA_FUSE_TEST_PYTHON lacks jupyter_client (tests/run-all.sh installs it)"
        );
        return;
    };
    // The tests' Python lives in root's home: the server and its kernels run as root here.
    let Some(user) = User::new() else { return };
    let c = Cluster {
        state,
        user,
        as_root: true,
    };
    let home = c.user.world.dir.path();
    // Root's files: root in a job's user namespace has no say over other users' files.
    for e in walkdir::WalkDir::new(home).into_iter().flatten() {
        std::os::unix::fs::lchown(e.path(), Some(0), Some(0)).unwrap();
    }
    let (archives, mounts, jupyter) = (
        home.join("archives"),
        home.join("envs"),
        home.join("jupyter"),
    );
    std::fs::create_dir_all(&archives).unwrap();
    c.user.world.pack(
        ipykernel_env(&py),
        &archives.join("jk.zip"),
        &["--prefix-dir", "jk"],
    );
    let out = c
        .user
        .world
        .cmd([
            "kernel",
            "install",
            "jk",
            "--prefix",
            jupyter.to_str().unwrap(),
        ])
        .env("CONDA_FUSE_ARCHIVE_PATH", &archives)
        .env("CONDA_FUSE_MOUNT_ROOT", &mounts)
        .output()
        .unwrap();
    common::assert_success(&out, "kernel install");
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kernel_client.py");
    let server = c.script(
        "server.sh",
        &[
            ("JUPYTER_PATH", &jupyter.join("share/jupyter").display().to_string()),
            ("JUPYTER_RUNTIME_DIR", &home.join("jupyter-runtime").display().to_string()),
        ],
        &format!(
            "{} {} conda-fuse-jk \"import sys, ipykernel; print(sys.prefix, ipykernel.__version__)\"",
            py.display(),
            client.display()
        ),
    );
    let id = c.sbatch(&server, &["-w", "n2"]);
    c.wait(&[id]);
    let text = c.output(id, None);
    let prefix = mounts.join("jk/jk");
    assert!(
        text.contains("STATUS ok") && text.contains(&format!("OUT {} 6.29.5", prefix.display())),
        "{text}"
    );
    // The host never saw the kernel's mount; nothing is left on the node.
    assert!(!common::is_mounted(&mounts.join("jk")));
    c.assert_nothing_left();
}
