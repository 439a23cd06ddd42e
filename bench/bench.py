#!/usr/bin/env python3
"""conda-fuse benchmark: every figure is a ratio against the same work on a native directory (or
the named tool) measured in the same run; medians of several runs, interleaved.

    python3 bench/bench.py [--ref-env DIR] [--work DIR] [--runs N] [--fuse-zip] [--only SECTION] [--out FILE]

--ref-env defaults to building one with ../shared/make-ref-env.sh (about 67k entries, 1.1 GB).
Cold figures drop the page cache (root only). Results go to stdout and bench/results/latest.md.
"""

import argparse
import json
import re
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMPORT = "import numpy, scipy.linalg, pandas, matplotlib, sklearn"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def timed(cmd, **kw):
    t = time.perf_counter()
    sh(cmd, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def drop_caches():
    sh("sync")
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


class Conda:
    def __init__(self, binary, state):
        self.bin = binary
        self.env = dict(os.environ, CONDA_FUSE_STATE_DIR=str(state))

    def run(self, *args):
        return subprocess.run([self.bin, *map(str, args)], check=True, env=self.env,
                              stdout=subprocess.PIPE, text=True).stdout

    def mount(self, archive, point, writable=False):
        point.mkdir(parents=True, exist_ok=True)
        self.run("mount", archive, point, *([] if writable else ["--read-only"]))
        return json.loads(self.run("status", point, "--json"))["pid"]

    def unmount(self, point):
        subprocess.run([self.bin, "unmount", str(point)], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rss_kib(pid):
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def median_pair(n, native, mounted):
    """Runs both n times, interleaved; returns (median native, median mounted)."""
    a, b = [], []
    for _ in range(n):
        a.append(native())
        b.append(mounted())
    return statistics.median(a), statistics.median(b)


def writable_section(args, cf, binary, ref, work, ours_zip, row, rows):
    """Copy in, save, save after a small change, reads on a writable mount."""
    import shutil as sh_
    empty_dir, empty_zip = work / "empty", work / "empty.zip"
    empty_dir.mkdir(exist_ok=True)
    empty_zip.unlink(missing_ok=True)
    sh([str(binary), "pack", str(empty_dir), "-o", str(empty_zip)], env=cf.env, stdout=subprocess.DEVNULL)
    wmnt = work / "wmnt"
    # Copy the environment in: cp -a, then sync, so that both end with the data on disk. The
    # source is read once first, so both runs copy from the page cache.
    sh(f"tar -cf - {ref} | wc -c", stdout=subprocess.DEVNULL)
    native_times, mount_times = [], []
    for k in range(2):
        dest = work / f"native-copy-{k}"
        dest.mkdir()
        sh("sync")
        native_times.append(timed(f"cp -a {ref}/. {dest}/ && sync"))
        pid = cf.mount(empty_zip, wmnt, writable=True)
        sh("sync")
        mount_times.append(timed(f"cp -a {ref}/. {wmnt}/ && sync"))
        rss, hwm = rss_kib(pid)
        if k == 0:
            # Save the whole environment (the first copy), then throw the second away.
            t_save = timed([str(binary), "unmount", str(wmnt)], env=cf.env)
        else:
            subprocess.run([str(binary), "unmount", str(wmnt), "--discard"], env=cf.env, stdout=subprocess.DEVNULL)
    n, m = statistics.median(native_times), statistics.median(mount_times)
    rows.append(("copy the env into an empty writable mount (cp -a + sync), throughput", f"{n:.2f} s", f"{m:.2f} s", f"{n / m:.2f}x", ">= 0.8x", n / m >= 0.8))
    print(f"copy in: native {native_times}, mount {mount_times}", file=sys.stderr)
    rows.append(("daemon memory after copying the env in (RSS / peak)", "-", f"{rss / 1024:.0f} / {hwm / 1024:.0f} MiB", "-", "< 256 MiB", hwm < 256 * 1024))
    t_zip = timed(["zip", "-r", "-q", "-y", str(work / "again.zip"), "."], cwd=ref)
    (work / "again.zip").unlink()
    row("save the whole env (unmount after copying it in, vs zip -r -q -y)", t_zip, t_save, 0.6)

    # A small change: pip install requests rich into a mounted copy of the packed environment.
    copy = work / "small-change.zip"
    sh_.copyfile(ours_zip, copy)
    cf.mount(copy, wmnt, writable=True)
    try:
        sh([str(wmnt / "bin/python3"), "-m", "pip", "install", "-q", "--no-cache-dir",
            "--disable-pip-version-check", "requests", "rich"],
           env=dict(os.environ, PIP_ROOT_USER_ACTION="ignore"), stdout=subprocess.DEVNULL)
        sh("sync")
        t_commit = timed([str(binary), "commit", str(wmnt)], env=cf.env)
        # Reads of unchanged files: the same warm import on this writable mount and a read-only one.
        ro = work / "romnt"
        cf.mount(ours_zip, ro)
        try:
            timed([str(ro / "bin/python3"), "-c", IMPORT])
            timed([str(wmnt / "bin/python3"), "-c", IMPORT])
            a, b = median_pair(args.runs, lambda: timed([str(ro / "bin/python3"), "-c", IMPORT]),
                               lambda: timed([str(wmnt / "bin/python3"), "-c", IMPORT]))
            rows.append(("warm import on a writable mount (vs read-only)", f"{a:.2f} s (ro)", f"{b:.2f} s", f"{b / a:.2f}x", "~1.0x", b / a <= 1.05))
        finally:
            cf.unmount(ro)
    finally:
        cf.unmount(wmnt)
    elsewhere = work / "elsewhere.zip"
    sh("sync")
    t_cp = timed(f"cp {copy} {elsewhere} && sync")
    elsewhere.unlink()
    t_cp_nosync = timed(f"cp {copy} {elsewhere}")
    elsewhere.unlink()
    row("save after pip install requests rich (vs cp ARCHIVE elsewhere + sync)", t_cp, t_commit, 2.0)
    rows.append(("  the same, vs cp ARCHIVE without sync", f"{t_cp_nosync:.2f} s", f"{t_commit:.2f} s", f"{t_commit / t_cp_nosync:.1f}x", "(our save fsyncs)", True))
    for k in range(2):
        sh_.rmtree(work / f"native-copy-{k}", ignore_errors=True)


def names_section(args, binary, ref, work, row, rows):
    """Environments by name: batch jobs through `run`."""
    env = dict(os.environ, CONDA_FUSE_STATE_DIR=str(work / "state"), CONDA_FUSE_RUN_LINGER="0",
               CONDA_FUSE_ARCHIVE_PATH=str(work / "archives"), CONDA_FUSE_MOUNT_ROOT=str(work / "envs"))
    cf = [str(binary)]
    if not (work / "archives/bench.zip").exists():
        sh(cf + ["pack", str(ref), "--name", "bench"], env=env, stdout=subprocess.DEVNULL)

    # A batch job: `conda-fuse run` mounts read-only, runs, unmounts; against the same command on
    # the native directory. Page cache warm (the archive's and the tree's), the mount fresh each time.
    native_py = [str(ref / "bin/python3"), "-c", IMPORT]
    run_job = cf + ["run", "bench", "--", "python3", "-c", IMPORT]
    timed(native_py)
    timed(run_job, env=env)
    n, m = median_pair(args.runs, lambda: timed(native_py), lambda: timed(run_job, env=env))
    row("batch job: conda-fuse run NAME -- python -c 'import ...' (mount + import + unmount)", n, m, 1.2)
    # The same without the start-up profile the first job recorded (what every job paid before).
    no_profile = dict(env, CONDA_FUSE_PREFETCH="off")
    n, m = median_pair(args.runs, lambda: timed(run_job, env=no_profile), lambda: timed(run_job, env=env))
    row("batch job with the start-up prefetch vs without it (CONDA_FUSE_PREFETCH=off)", n, m, 0.9)
    # The next job on the node right after one: the mount the previous one made lingers.
    lingering = dict(env, CONDA_FUSE_RUN_LINGER="60")
    timed(run_job, env=lingering)
    n, m = median_pair(args.runs, lambda: timed(native_py), lambda: timed(run_job, env=lingering))
    row("the next batch job on the node (the previous job's mount lingers; CONDA_FUSE_RUN_LINGER)", n, m, 1.1)
    subprocess.run(cf + ["unmount", "bench"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Jobs on a host where the env is mounted already (activated, or another run holds it).
    sh(cf + ["activate", "bench"], env=env, stdout=subprocess.DEVNULL)
    try:
        timed(run_job, env=env)
        n, m = median_pair(args.runs, lambda: timed(native_py), lambda: timed(run_job, env=env))
        row("batch job, env mounted already (conda-fuse run, shared mount)", n, m, 1.15)
    finally:
        subprocess.run(cf + ["unmount", "bench", "--discard"], env=env, stdout=subprocess.DEVNULL)


class Node:
    """A cluster node on this machine: new mount + pid + uts namespaces with their own host name
    and XDG_RUNTIME_DIR (a tmpfs only the node sees), sharing the home directory (as
    tests/common/node.rs makes them)."""

    def __init__(self, name, work):
        self.run = work / f"run-{name}"
        self.run.mkdir(mode=0o700, parents=True, exist_ok=True)
        script = f"mount -t tmpfs -o mode=0700 node-run {self.run} && hostname {name} && exec sleep infinity"
        self.proc = subprocess.Popen(["unshare", "-m", "-p", "-f", "-u", "--mount-proc",
                                      "--propagation", "private", "sh", "-c", script])
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        for _ in range(1000):
            kids = children.read_text().split()
            if kids and Path(f"/proc/{kids[0]}/comm").read_text().strip() == "sleep":
                self.init = int(kids[0])
                return
            time.sleep(0.01)
        raise RuntimeError(f"node {name} did not boot")

    def command(self, cmd):
        return ["nsenter", "-t", str(self.init), "-m", "-u", "-p", "--",
                "env", f"XDG_RUNTIME_DIR={self.run}", *cmd]

    def kill(self):
        subprocess.run(["kill", "-9", str(self.init)], stderr=subprocess.DEVNULL)
        self.proc.kill()
        self.proc.wait()


def cluster_section(args, binary, ref, work, row, rows):
    """Job start on many nodes at once: every node mounts the env for its own job, all at the same
    moment (a job array starting), against the same imports natively, also all at once."""
    env = dict(os.environ, CONDA_FUSE_STATE_DIR=str(work / "state"), CONDA_FUSE_RUN_LINGER="0",
               CONDA_FUSE_ARCHIVE_PATH=str(work / "archives"), CONDA_FUSE_MOUNT_ROOT=str(work / "envs"))
    env.pop("CONDA_FUSE_RUNTIME_DIR", None)
    env.pop("XDG_RUNTIME_DIR", None)
    if not (work / "archives/bench.zip").exists():
        sh([str(binary), "pack", str(ref), "--name", "bench"], env=env, stdout=subprocess.DEVNULL)
    nodes = [Node(f"node{i:02}", work) for i in range(1, args.nodes + 1)]
    try:
        def at_once(cmd):
            """Starts cmd on every node at the same moment; returns the slowest job's seconds."""
            t = time.perf_counter()
            procs = [subprocess.Popen(n.command(cmd), env=env, stdout=subprocess.DEVNULL) for n in nodes]
            codes = [p.wait() for p in procs]
            if any(codes):
                raise RuntimeError(f"a job failed: {cmd} -> {codes}")
            return time.perf_counter() - t

        native = [str(ref / "bin/python3"), "-c", IMPORT]
        job = [str(binary), "run", "bench", "--", "python3", "-c", IMPORT]
        at_once(native)
        at_once(job)
        n, m = median_pair(args.runs, lambda: at_once(native), lambda: at_once(job))
        row(f"job array start: {len(nodes)} nodes at once, each mounting for its job "
            f"(conda-fuse run; slowest job)", n, m, 1.5)
    finally:
        for node in nodes:
            node.kill()


def jobs_section(args, binary, ref, work, row, rows):
    """Batch jobs with mounts of their own (a user + mount namespace per job and node): the cost
    one `run` pays for it against a mount shared outside jobs and against the native import; and
    a job array on a real Slurm cluster (tests/support/slurm.sh: three nodes on this machine), nine
    tasks, three per node, each importing the stack, against the same tasks on the native tree."""
    env = dict(os.environ, CONDA_FUSE_STATE_DIR=str(work / "state"), CONDA_FUSE_RUN_LINGER="0",
               CONDA_FUSE_ARCHIVE_PATH=str(work / "archives"), CONDA_FUSE_MOUNT_ROOT=str(work / "envs"))
    for v in ("CONDA_FUSE_RUNTIME_DIR", "XDG_RUNTIME_DIR", "SLURM_JOB_ID", "CONDA_FUSE_JOB_ID"):
        env.pop(v, None)
    if not (work / "archives/bench.zip").exists():
        sh([str(binary), "pack", str(ref), "--name", "bench"], env=env, stdout=subprocess.DEVNULL)
    native = [str(ref / "bin/python3"), "-c", IMPORT]
    job = [str(binary), "run", "bench", "--", "python3", "-c", IMPORT]
    counter = iter(range(10**6))
    shared = dict(env, CONDA_FUSE_JOB_ID="none")
    own = lambda: dict(env, CONDA_FUSE_JOB_ID=f"bench-{next(counter)}")  # a new job each time
    timed(native)
    timed(job, env=shared)
    timed(job, env=own())
    n, m = median_pair(args.runs, lambda: timed(job, env=shared), lambda: timed(job, env=own()))
    row("one run in a batch job, its own namespace + mount + import (vs a fresh mount shared "
        "outside jobs)", n, m, 1.1)
    n, m = median_pair(args.runs, lambda: timed(native), lambda: timed(job, env=own()))
    row("one run in a batch job, its own namespace + mount + import (vs the native import)", n, m, 1.6)

    slurm = work / "slurm"
    script = REPO / "tests/support/slurm.sh"
    sh([str(script), "up", str(slurm)], stdout=subprocess.DEVNULL)
    try:
        senv = dict(env, SLURM_CONF=str(slurm / "slurm.conf"))
        out = work / "job-out"
        out.mkdir(exist_ok=True)

        def array(cmd):
            """Nine tasks, three per node at once; seconds from the first start to the last end."""
            for f in out.glob("*"):
                f.unlink()
            task = work / "task.sh"
            task.write_text("#!/bin/bash\n" +
                            f"export HOME={work} PATH={binary.parent}:/usr/bin:/bin\n" +
                            'python3 -c "import time; print(time.time())" > /dev/null\n' +
                            "s=$(date +%s.%N)\n" + shlex.join(cmd) + " > /dev/null\n" +
                            f"echo $s $(date +%s.%N) $? > {out}/$SLURM_JOB_ID\n")
            task.chmod(0o755)
            ids = []
            for n in ("n1", "n2", "n3"):
                r = subprocess.run(["sbatch", "--parsable", "--array=1-3", "-w", n,
                                    f"--output={out}/log-%A_%a", str(task)],
                                   env=senv, check=True, stdout=subprocess.PIPE, text=True)
                ids.append(r.stdout.strip())
            deadline = time.time() + 600
            while subprocess.run(["squeue", "-h", "-j", ",".join(ids)], env=senv,
                                 stdout=subprocess.PIPE, text=True).stdout.strip():
                if time.time() > deadline:
                    raise RuntimeError("the job array did not end")
                time.sleep(0.2)
            spans = [tuple(map(float, f.read_text().split())) for f in out.iterdir()
                     if not f.name.startswith("log-")]
            if len(spans) != 9 or any(code != 0 for _, _, code in spans):
                raise RuntimeError(f"not all 9 tasks succeeded: {spans}")
            spans = [(s, e) for s, e, _ in spans]
            return max(e for _, e in spans) - min(s for s, _ in spans)

        array(native)
        array(job)
        n, m = median_pair(args.runs, lambda: array(native), lambda: array(job))
        row("job array on Slurm: 9 tasks on 3 nodes at once, each importing the stack through "
            "`conda-fuse run` (first start to last end)", n, m, 1.3)
    finally:
        subprocess.run([str(script), "down", str(slurm)], stdout=subprocess.DEVNULL)


def netfs_section(args, binary, ref, work, row, rows):
    """A cluster's shared filesystem (../shared/netfs-sim.sh: sshfs of an SFTP server on loopback,
    where every metadata operation and uncached read is a protocol round trip): a cold job start
    with the archive there, against a cold native import from local disk and against the env as a
    native tree there; the next job on the node (the mount lingering) against a warm native import."""
    script = str(REPO.parent / "shared/netfs-sim.sh")
    export, mnt = work / "netfs-export", work / "netfs"
    (export / "archives").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CONDA_FUSE_STATE_DIR=str(work / "state"), CONDA_FUSE_RUN_LINGER="0",
               CONDA_FUSE_ARCHIVE_PATH=str(mnt / "archives"), CONDA_FUSE_MOUNT_ROOT=str(work / "envs"))
    if not (export / "archives/bench.zip").exists():
        sh([str(binary), "pack", str(ref), "--name", "bench"], stdout=subprocess.DEVNULL,
           env=dict(env, CONDA_FUSE_ARCHIVE_PATH=str(export / "archives")))
    if not (export / "tree").exists():
        sh(["cp", "-a", str(ref), str(export / "tree")])
    sh([script, "up", str(export), str(mnt)])
    job = [str(binary), "run", "bench", "--", "python3", "-c", IMPORT]
    native_local = [str(ref / "bin/python3"), "-c", IMPORT]
    native_there = [str(mnt / "tree/bin/python3"), "-c", IMPORT]
    try:
        def cold(cmd, e=None):
            sh([script, "remount", str(mnt)])  # a cold client; drops the page cache too
            return timed(cmd, env=e)

        def cold_local():
            drop_caches()
            return timed(native_local)

        cold(job, env)
        a, b = median_pair(args.cold_runs, cold_local, lambda: cold(job, env))
        row("cold job start, archive on the network filesystem (mount + import; vs a cold native "
            "import from local disk)", a, b, 1.3)
        a, b = median_pair(args.cold_runs, lambda: cold(native_there), lambda: cold(job, env))
        row("cold job start, archive on the network filesystem (vs the env as a native tree there, "
            "cold)", a, b, 0.5)
        no_profile = dict(env, CONDA_FUSE_PREFETCH="off")
        a, b = median_pair(args.cold_runs, lambda: cold(job, no_profile), lambda: cold(job, env))
        row("cold job start, archive on the network filesystem, with the start-up prefetch vs "
            "without it (CONDA_FUSE_PREFETCH=off)", a, b, 0.8)
        lingering = dict(env, CONDA_FUSE_RUN_LINGER="60")
        timed(job, env=lingering)
        a, b = median_pair(args.runs, lambda: timed(native_local), lambda: timed(job, env=lingering))
        row("the next job on the node, archive on the network filesystem (the mount lingers; vs a "
            "warm native import from local disk)", a, b, 1.1)
    finally:
        subprocess.run([str(binary), "unmount", "bench"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        sh([script, "down", str(mnt)])


def threads_section(args, cf, ref, work, ours_zip, row, rows):
    """How many threads serve the kernel's requests: measured, not assumed (on 2 vCPUs more
    threads can be slower). Warm import on a mount, and a job's import on a fresh mount."""
    native = [str(ref / "bin/python3"), "-c", IMPORT]
    for n in (1, 2, 4, 8):
        point = work / f"threads-{n}"
        point.mkdir(exist_ok=True)
        mount = [cf.bin, "mount", str(ours_zip), str(point), "--read-only", "--threads", str(n)]
        sh(mount, env=cf.env, stdout=subprocess.DEVNULL)
        py = [str(point / "bin/python3"), "-c", IMPORT]
        try:
            timed(py)
            a, b = median_pair(args.runs, lambda: timed(native), lambda: timed(py))
            row(f"warm import, {n} serving thread(s)", a, b, 1.1)
        finally:
            cf.unmount(point)

        def fresh():
            sh(mount, env=cf.env, stdout=subprocess.DEVNULL)
            try:
                return timed(py)
            finally:
                cf.unmount(point)

        a, b = median_pair(args.runs, lambda: timed(native), fresh)
        row(f"import on a fresh mount, {n} serving thread(s)", a, b, 1.5)


def read_section(args, cf, ref, work, ours_zip, info_zip, row, rows):
    """Reads through a read-only mount: warm and cold, memory, fuse-zip for reference."""
    root = os.geteuid() == 0
    mnt = work / "mnt"
    py_native, py_mount = ref / "bin/python3", mnt / "bin/python3"
    try:
        cf.mount(ours_zip, mnt)
        # Warm: one run of each first, then interleaved medians.
        timed([str(py_native), "-c", IMPORT])
        timed([str(py_mount), "-c", IMPORT])
        n, m = median_pair(args.runs, lambda: timed([str(py_native), "-c", IMPORT]),
                           lambda: timed([str(py_mount), "-c", IMPORT]))
        row("warm import numpy, scipy.linalg, pandas, matplotlib, sklearn", n, m, 1.10)
        # Python 3.14 no longer calls isatty() on the files it imports; emulated (bench/py314-open).
        e314 = dict(os.environ, PYTHONPATH=str(REPO / "bench/py314-open"))
        n, m = median_pair(args.runs, lambda: timed([str(py_native), "-c", IMPORT], env=e314),
                           lambda: timed([str(py_mount), "-c", IMPORT], env=e314))
        row("warm import as above, Python 3.14's open() (no isatty per file; emulated on 3.11)", n, m, 1.05)
        find = "find {} -type f | wc -l"
        timed(find.format(ref))
        timed(find.format(mnt))
        n, m = median_pair(args.runs, lambda: timed(find.format(ref)), lambda: timed(find.format(mnt)))
        row("warm find -type f, counted", n, m, 2.0)
        cf.unmount(mnt)

        if root:
            tar = "cd {} && tar -cf - . | wc -c"

            def cold_native_tar():
                drop_caches()
                return timed(tar.format(ref))

            def cold_mount_tar():
                drop_caches()
                cf.mount(ours_zip, mnt)
                try:
                    return timed(tar.format(mnt))
                finally:
                    cf.unmount(mnt)

            n, m = median_pair(args.cold_runs, cold_native_tar, cold_mount_tar)
            row("cold full read (tar of the whole tree)", n, m, 1.5)

            def cold_native_import():
                drop_caches()
                return timed([str(py_native), "-c", IMPORT])

            def cold_mount_import():
                drop_caches()
                cf.mount(ours_zip, mnt)
                try:
                    return timed([str(py_mount), "-c", IMPORT])
                finally:
                    cf.unmount(mnt)

            n, m = median_pair(args.cold_runs, cold_native_import, cold_mount_import)
            row("cold import (caches dropped, fresh mount)", n, m, 1.3)

        # Memory: resident size of the daemon after reading every byte of the environment.
        pid = cf.mount(ours_zip, mnt)
        sh(f"cd {mnt} && tar -cf - . | wc -c", stdout=subprocess.DEVNULL)
        sh(f"{py_mount} -c '{IMPORT}'", stdout=subprocess.DEVNULL)
        rss, hwm = rss_kib(pid)
        rows.append(("daemon memory after reading everything (RSS / peak)", "-", f"{rss / 1024:.0f} / {hwm / 1024:.0f} MiB", "-", "< 256 MiB", hwm < 256 * 1024))
        print(f"daemon RSS {rss} KiB, peak {hwm} KiB", file=sys.stderr)
        cf.unmount(mnt)

        if args.fuse_zip:
            fz = work / "fz"
            fz.mkdir(exist_ok=True)
            sh(["fuse-zip", "-r", str(info_zip), str(fz)])
            try:
                timed([str(fz / "bin/python3"), "-c", IMPORT])
                n, m = median_pair(3, lambda: timed([str(py_native), "-c", IMPORT]),
                                   lambda: timed([str(fz / "bin/python3"), "-c", IMPORT]))
                rows.append(("fuse-zip: warm import", f"{n:.2f} s", f"{m:.2f} s (fuse-zip)", f"{m / n:.2f}x", "(reference)", True))
                timed(find.format(fz))
                n, m = median_pair(3, lambda: timed(find.format(ref)), lambda: timed(find.format(fz)))
                rows.append(("fuse-zip: warm find", f"{n:.2f} s", f"{m:.2f} s (fuse-zip)", f"{m / n:.2f}x", "(reference)", True))
            finally:
                sh(["fusermount3", "-u", str(fz)])
    finally:
        cf.unmount(mnt)


def relocation_section(args, cf, binary, ref, work, row, rows):
    """pack --name (files as they are, their prefix recorded) against pack -o; then one archive
    mounted read-only at the prefix its files hold and at another (served rewritten): mount time,
    warm and cold import."""
    archives, envs, other = work / "rel-archives", work / "rel-envs", work / "rel-other"
    for d in (archives, envs, other):
        d.mkdir(parents=True, exist_ok=True)
    env = dict(cf.env, CONDA_FUSE_ARCHIVE_PATH=str(archives), CONDA_FUSE_MOUNT_ROOT=str(envs))
    plain, named = work / "plain.zip", archives / "named.zip"
    for p in (plain, named):
        p.unlink(missing_ok=True)
    # Both from a warm page cache: the difference is finding which files hold the prefix.
    sh(f"tar -cf - {ref} | wc -c", stdout=subprocess.DEVNULL)
    t_plain = timed([str(binary), "pack", str(ref), "-o", str(plain), "--prefix-dir", "named"], env=env)
    t_named = timed([str(binary), "pack", str(ref), "--name", "named"], env=env)
    plain.unlink()
    named.unlink()
    row("pack --name (files as they are, their prefix recorded; vs pack -o of the same tree)", t_plain, t_named, 1.1)

    # An archive whose files hold the prefix of its mount at `envs` (as if installed there): a
    # copy of the reference env (hard links) with the scripts naming its prefix rewritten, as
    # conda's install would have written them.
    archive = archives / "rel.zip"
    own, moved = envs / "rel", other / "rel"
    if not archive.exists():
        copy = work / "rel-copy"
        shutil.rmtree(copy, ignore_errors=True)
        sh(["cp", "-al", str(ref), str(copy)])
        at = str(own / "rel").encode()
        for script in (copy / "bin").iterdir():
            if script.is_symlink() or not script.is_file():
                continue
            data = script.read_bytes()
            if data.startswith(b"#!" + str(ref).encode() + b"/"):
                fresh = script.with_name(script.name + ".new")
                fresh.write_bytes(data.replace(str(ref).encode(), at))
                shutil.copymode(script, fresh)
                fresh.replace(script)  # a new file: the reference env's stays as it is
        sh([str(binary), "pack", str(copy), "--name", "rel", "--from-prefix", str(own / "rel")], env=env,
           stdout=subprocess.DEVNULL)
        shutil.rmtree(copy)

    def mount_time(point):
        def once():
            t = timed([str(binary), "mount", "--read-only", str(archive), str(point)], env=cf.env)
            cf.unmount(point)
            return t
        return once

    for p in (own, moved):
        p.mkdir(parents=True, exist_ok=True)
    n, m = median_pair(args.runs, mount_time(own), mount_time(moved))
    row("mount at another prefix (files served rewritten) vs at the archive's own prefix", n, m, 1.10)
    try:
        cf.mount(archive, own)
        cf.mount(archive, moved)
        status = json.loads(cf.run("status", moved, "--json"))
        print(f"relocated files: {status.get('relocated_files')} (written for {status.get('written_for')})",
              file=sys.stderr)
        py_own, py_moved = own / "rel/bin/python3", moved / "rel/bin/python3"
        timed([str(py_own), "-c", IMPORT])
        timed([str(py_moved), "-c", IMPORT])
        n, m = median_pair(args.runs, lambda: timed([str(py_own), "-c", IMPORT]),
                           lambda: timed([str(py_moved), "-c", IMPORT]))
        row("warm import at another prefix vs at the archive's own prefix", n, m, 1.02)
    finally:
        cf.unmount(own)
        cf.unmount(moved)
    if os.geteuid() == 0:
        def cold(point):
            def once():
                drop_caches()
                cf.mount(archive, point)
                try:
                    return timed([str(point / "rel/bin/python3"), "-c", IMPORT])
                finally:
                    cf.unmount(point)
            return once
        n, m = median_pair(args.cold_runs, cold(own), cold(moved))
        row("cold import at another prefix vs at the archive's own prefix", n, m, 1.02)


# The scientific stack as the reference env has it, converted from wheels into conda packages.
SCI_STACK = ["numpy==2.4.6", "scipy==1.17.1", "pandas==3.1.1", "matplotlib==3.11.2", "scikit-learn==1.9.1",
             "contourpy==1.3.3", "cycler==0.12.1", "fonttools==4.68.0", "kiwisolver==1.5.1", "packaging==26.4",
             "pillow==13.0.0", "pyparsing==3.3.2", "python-dateutil==2.9.0.post0", "six==1.17.0",
             "joblib==1.6.0", "threadpoolctl==3.8.0"]
ONE_MORE = "mpmath==1.3.0"


def install_section(args, binary, work, row, rows):
    """A realistic install: `conda create` of the scientific stack from a local channel built like
    the tests' (tests/support/make_channel.py: this CPython and converted wheels) with the tests'
    conda-compatible installer (py-rattler), into a conda-fuse env (create = new archive, mount,
    conda create, save) vs into a native prefix; then `conda install` of one more package (with
    its save). The package cache is warm for both (one create first), as on a user's second env."""
    py = REPO / "target/test-venv/bin/python"
    if not py.exists() or subprocess.run([str(py), "-c", "import rattler, conda_package_handling"],
                                         capture_output=True).returncode:
        shutil.rmtree(py.parent.parent, ignore_errors=True)
        sh([sys.executable, "-m", "venv", str(py.parent.parent)])
        sh([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "py-rattler",
            "conda-package-handling"])
    channel = work / "sci-channel"
    if not (channel / "linux-64/repodata.json").exists():
        wheels = work / "sci-wheels"
        sh([str(py), "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "-d", str(wheels),
            *SCI_STACK, ONE_MORE])
        sh([str(py), str(REPO / "tests/support/make_channel.py"), str(channel), str(wheels)],
           stdout=subprocess.DEVNULL)
    fake_conda = str(REPO / "tests/support/fake_conda.py")
    env = dict(os.environ, CONDA_FUSE_STATE_DIR=str(work / "install-state"), CONDA_FUSE_RUN_LINGER="0",
               CONDA_FUSE_ARCHIVE_PATH=str(work / "install-archives"),
               CONDA_FUSE_MOUNT_ROOT=str(work / "install-envs"), CONDA_FUSE_CONDA=f"{py} {fake_conda}",
               FAKE_CONDA_CHANNEL=str(channel), FAKE_CONDA_PKGS=str(work / "install-pkgs"))
    specs = ["python"] + [s.split("==")[0] for s in SCI_STACK]
    native = work / "install-native"
    counter = iter(range(1000))

    def native_create():
        shutil.rmtree(native, ignore_errors=True)
        return timed([str(py), fake_conda, "create", "--prefix", str(native), "-y", "-q", *specs], env=env)

    def native_install():
        return timed([str(py), fake_conda, "install", "--prefix", str(native), "-y", "-q", "mpmath"], env=env)

    names = []

    def ours_create():
        names.append(f"sci{next(counter)}")
        return timed([str(binary), "create", names[-1], "-y", "-q", *specs], env=env)

    def ours_install():
        return timed([str(binary), "install", names[-1], "-y", "-q", "mpmath"], env=env)

    # conda links files from its package cache: by hard links when the cache shares the prefix's
    # filesystem (a native create then copies nothing), by copies otherwise (always so into a mount).
    shm = Path(tempfile.mkdtemp(prefix="cf-bench-pkgs-", dir="/dev/shm"))
    try:
        for where, pkgs in (("package cache on the prefix's filesystem: native hard-links", work / "install-pkgs"),
                            ("package cache on another filesystem (tmpfs): native copies", shm)):
            env["FAKE_CONDA_PKGS"] = str(pkgs)
            native_create()  # fills the package cache
            created, installed = ([], []), ([], [])
            for _ in range(args.cold_runs):
                created[0].append(native_create())
                created[1].append(ours_create())
                installed[0].append(native_install())
                installed[1].append(ours_install())
            row(f"conda create of the scientific stack (16 packages + python; conda-fuse: new archive, "
                f"mount, conda create, save; vs a native prefix; {where})", statistics.median(created[0]),
                statistics.median(created[1]), 1.5)
            row(f"conda install of one more package into it (mount, install, save; vs native; {where})",
                statistics.median(installed[0]), statistics.median(installed[1]), 1.5)
        if os.geteuid() == 0:
            install_on_netfs(args, binary, work, env, specs, native_create, native_install, native, shm, row)
    finally:
        for name in names:
            subprocess.run([str(binary), "rm", "-y", "-f", name], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(native, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


# FUSE opcodes (include/uapi/linux/fuse.h) of the requests a writer sends.
FUSE_OPS = {1: "lookup", 2: "forget", 3: "getattr", 4: "setattr", 14: "open", 15: "read", 16: "write",
            18: "release", 20: "fsync", 21: "setxattr", 22: "getxattr", 25: "flush", 35: "create",
            42: "batch_forget"}


def fuse_requests_section(args, cf, binary, work, rows):
    """FUSE requests per file created, by opcode: the daemon's reads of /dev/fuse under strace while
    `cp -a` and Python's shutil.copy2 (how conda links a file by copy) write 200 small files into
    an empty writable mount. Every request is a round trip through the kernel for every file conda
    writes."""
    if not shutil.which("strace"):
        print("fuse requests: strace not found, skipped", file=sys.stderr)
        return
    src = work / "fr-src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir()
    for i in range(200):
        (src / f"f{i}.py").write_bytes(b"x" * 3000)
    empty_dir, empty_zip, mnt = work / "fr-empty", work / "fr-empty.zip", work / "fr-mnt"
    empty_dir.mkdir(exist_ok=True)
    empty_zip.unlink(missing_ok=True)
    sh([str(binary), "pack", str(empty_dir), "-o", str(empty_zip)], env=cf.env, stdout=subprocess.DEVNULL)
    copy2 = ("import os, shutil, sys\n"
             "for n in sorted(os.listdir(sys.argv[1])):\n"
             "    shutil.copy2(os.path.join(sys.argv[1], n), os.path.join(sys.argv[2], n))\n")
    for name, cmd in (("cp -a", ["cp", "-a", f"{src}/.", f"{mnt}/"]),
                      ("shutil.copy2", [sys.executable, "-c", copy2, str(src), str(mnt)])):
        pid = cf.mount(empty_zip, mnt, writable=True)
        trace = work / "fr-trace"
        tracer = subprocess.Popen(["strace", "-f", "-p", str(pid), "-e", "trace=read", "-s", "16", "-xx",
                                   "-o", str(trace)], stderr=subprocess.DEVNULL)
        time.sleep(1)  # attached to every thread
        try:
            sh(cmd)
            sh("sync")
            time.sleep(0.5)
        finally:
            tracer.terminate()
            tracer.wait(timeout=10)
            subprocess.run([str(binary), "unmount", str(mnt), "--discard"], env=cf.env, stdout=subprocess.DEVNULL)
        counts = {}
        for line in trace.read_text().splitlines():
            m = re.search(r'(?:read\(\d+, |resumed>)"((?:\\x[0-9a-f]{2}){8,})', line)
            if not m:
                continue
            header = bytes(int(x, 16) for x in re.findall(r"\\x([0-9a-f]{2})", m.group(1)))
            op = FUSE_OPS.get(int.from_bytes(header[4:8], "little"))
            if op:
                counts[op] = counts.get(op, 0) + 1
        trace.unlink()
        per_file = {op: n / 200 for op, n in sorted(counts.items(), key=lambda kv: -kv[1])}
        total = sum(per_file.values())
        detail = ", ".join(f"{op} {n:g}" for op, n in per_file.items())
        rows.append((f"FUSE requests per small file created by {name} ({detail})", "-", f"{total:g}", "-", "-", True))
        print(f"fuse requests, {name}: {total:g} per file: {detail}", file=sys.stderr)
    shutil.rmtree(src, ignore_errors=True)


def install_on_netfs(args, binary, work, env, specs, native_create, native_install, native, pkgs, row):
    """The same create and install with archives and state on the network-filesystem stand-in, as
    on a cluster's shared home: against the same tree written there natively (`cp -rP`; the
    installer itself cannot write there: hard links and symlink times fail on sshfs), and against
    conda-fuse keeping a transaction's changes in the shared state directory as before
    (`CONDA_FUSE_UPPER_DIR` there), in the same run."""
    script = str(REPO.parent / "shared/netfs-sim.sh")
    export, mnt = work / "inst-netfs-export", work / "inst-netfs"
    shutil.rmtree(export, ignore_errors=True)
    export.mkdir(parents=True)
    env = dict(env, FAKE_CONDA_PKGS=str(pkgs), CONDA_FUSE_ARCHIVE_PATH=str(mnt / "archives"),
               CONDA_FUSE_STATE_DIR=str(mnt / "state"))
    shared_upper = dict(env, CONDA_FUSE_UPPER_DIR=str(mnt / "state/upper"))
    sh([script, "up", str(export), str(mnt)])
    counter = iter(range(1000))
    try:
        native_create()
        def native_there():
            dest = mnt / f"tree-{next(counter)}"
            t = timed(f"cp -rP --preserve=mode {native}/. {dest}/ && sync")  # sshfs keeps no owners or symlink times
            shutil.rmtree(dest)
            return t
        def ours(e):
            def once():
                name = f"net{next(counter)}"
                t_create = timed([str(binary), "create", name, "-y", "-q", *specs], env=e)
                t_install = timed([str(binary), "install", name, "-y", "-q", "mpmath"], env=e)
                subprocess.run([str(binary), "rm", "-y", "-f", name], env=e, stdout=subprocess.DEVNULL)
                return t_create, t_install
            return once
        base = [native_there() for _ in range(args.cold_runs)]
        # One more package written there natively: the files its conda-meta record lists, and
        # the record, copied into a prefix there (the tree of the create above, after it was timed).
        native_install()
        record = next((native / "conda-meta").glob("mpmath-*.json"))
        listed = json.loads(record.read_text())["files"] + [f"conda-meta/{record.name}"]
        file_list = work / "mpmath-files"
        file_list.write_text("\n".join(listed) + "\n")

        def native_package_there():
            dest = mnt / f"pkg-{next(counter)}"
            dest.mkdir()
            t = timed(f"cd {native} && xargs -d '\\n' -a {file_list} cp -P --parents --preserve=mode -t {dest} && sync")
            shutil.rmtree(dest)
            return t
        package_base = [native_package_there() for _ in range(args.cold_runs)]
        now = [ours(env)() for _ in range(args.cold_runs)]
        before = [ours(shared_upper)() for _ in range(args.cold_runs)]
        m = statistics.median
        row("conda create of the scientific stack, archives and state on the network-filesystem stand-in "
            "(vs the same tree written there natively, cp -rP + sync)", m(base), m(c for c, _ in now), 0.5)
        row("  the same create, vs conda-fuse keeping the transaction's changes in the shared state dir "
            "(as before)", m(c for c, _ in before), m(c for c, _ in now), 0.5)
        row("conda install of one more package + save there, vs the transaction's changes in the shared "
            "state dir (as before)", m(i for _, i in before), m(i for _, i in now), 1.0)
        row(f"conda install of one more package + save there, vs its {len(listed)} files written into a prefix "
            "there natively (cp --parents + sync)", m(package_base), m(i for _, i in now), 0.5)
    finally:
        sh([script, "down", str(mnt)])
        shutil.rmtree(export, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref-env", type=Path)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--fuse-zip", action="store_true", help="also measure fuse-zip (the old tool)")
    ap.add_argument("--only", choices=["read", "write", "requests", "names", "cluster", "threads", "netfs", "install", "jobs", "relocation"], help="measure one section (with pack)")
    ap.add_argument("--nodes", type=int, default=6, help="simulated nodes of the cluster section (root only)")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/latest.md")
    args = ap.parse_args()

    root = os.geteuid() == 0
    binary = REPO / "target/release/conda-fuse"
    if not binary.exists():
        sh(["cargo", "build", "--release", "--quiet"], cwd=REPO)
    work = args.work or Path(tempfile.mkdtemp(prefix="conda-fuse-bench-", dir=REPO / "target"))
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()  # conda-fuse takes absolute places only
    ref = args.ref_env.resolve() if args.ref_env else None
    if ref is None:
        ref = work / "refenv"
        if not ref.exists():
            script = REPO.parent / "shared/make-ref-env.sh"
            print(f"building the reference environment with {script} ...", file=sys.stderr)
            sh([str(script), str(ref)])
    cf = Conda(str(binary), work / "state")
    rows = []  # (figure, native or tool, conda-fuse, ratio, target, ok)

    def row(name, base, ours, target, unit="s", lower=True):
        ratio = ours / base
        ok = ratio <= target if lower else ratio >= target
        rows.append((name, f"{base:.2f} {unit}", f"{ours:.2f} {unit}", f"{ratio:.2f}x", f"<= {target}x" if lower else f">= {target}x", ok))
        print(f"{name}: base {base:.3f}, conda-fuse {ours:.3f}, ratio {ratio:.2f} (target {target})", file=sys.stderr)

    # Pack, from a cold cache each time: conda-fuse vs Info-ZIP `zip -r -q -y`.
    ours_zip, info_zip = work / "ref.zip", work / "ref-infozip.zip"
    for p in (ours_zip, info_zip):
        p.unlink(missing_ok=True)
    if root:
        drop_caches()
    t_ours = timed([str(binary), "pack", str(ref), "-o", str(ours_zip)], env=cf.env)
    if root:
        drop_caches()
    t_zip = timed(["zip", "-r", "-q", "-y", str(info_zip), "."], cwd=ref)
    row("pack (vs zip -r -q -y)", t_zip, t_ours, 0.6)
    s_ours, s_zip = ours_zip.stat().st_size, info_zip.stat().st_size
    rows.append(("archive size (vs zip)", f"{s_zip / 2**20:.1f} MiB", f"{s_ours / 2**20:.1f} MiB", f"{s_ours / s_zip:.3f}x", "<= 1.0x", s_ours <= s_zip))

    if args.only in (None, "read"):
        read_section(args, cf, ref, work, ours_zip, info_zip, row, rows)
    if args.only in (None, "write"):
        writable_section(args, cf, binary, ref, work, ours_zip, row, rows)
        if root:
            fuse_requests_section(args, cf, binary, work, rows)
    if args.only == "requests":
        fuse_requests_section(args, cf, binary, work, rows)
    if args.only in (None, "names"):
        names_section(args, binary, ref, work, row, rows)
    if args.only in (None, "netfs") and root:
        netfs_section(args, binary, ref, work, row, rows)
    if args.only == "threads":
        threads_section(args, cf, ref, work, ours_zip, row, rows)
    if args.only in (None, "relocation"):
        relocation_section(args, cf, binary, ref, work, row, rows)
    if args.only in (None, "install"):
        install_section(args, binary, work, row, rows)
    if args.only in (None, "cluster") and root:
        cluster_section(args, binary, ref, work, row, rows)
    if args.only in (None, "jobs") and root:
        jobs_section(args, binary, ref, work, row, rows)

    cores = os.cpu_count()
    lines = [
        f"Reference environment: {ref} ({sum(1 for _ in ref.rglob('*'))} entries); {cores} cores; "
        f"medians of {args.runs} warm / {args.cold_runs} cold runs; {time.strftime('%Y-%m-%d')}.",
        "",
        "| figure | native dir (or zip) | conda-fuse | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, base, ours, ratio, target, ok in rows:
        lines.append(f"| {name} | {base} | {ours} | {ratio} | {target} | {'yes' if ok else 'NO'} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    if args.work is None and args.ref_env is not None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
