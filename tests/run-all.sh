#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (as root on Debian/Ubuntu), then
# `cargo test --release`. The tests mount real FUSE filesystems (root, /dev/fuse; as uid 65534
# too, through setpriv and fusermount3) and drive the real tools they interoperate with: zip,
# unzip, fuse-zip, python3, bash, zsh, fish and pjdfstest; conda environments are installed
# offline by py-rattler (in a venv under target/, from PyPI) from a local channel the tests build;
# homes on a network filesystem live on an SFTP server + sshfs (tests/support/netfs.sh), batch
# jobs run on a real Slurm cluster (slurm-wlm, munge; tests/support/slurm.sh).
# Then tests/packaging.sh builds the PyPI wheel and the conda package and runs the demo with each.
# As an ordinary user, `cargo test` runs the library and semantic suites and skips mount tests.
#
#   tests/run-all.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(fuse3 zip unzip fuse-zip python3 python3-venv util-linux procps gcc libc6-dev zsh fish
  sshfs openssh-server openssh-client slurm-wlm munge lmod patchelf)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "tests/run-all.sh: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
[[ -e /dev/fuse ]] || { echo "tests/run-all.sh: /dev/fuse is missing (modprobe fuse)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || echo "warning: the tests expect root (chown, unshare, umount); some will fail otherwise" >&2
command -v cargo >/dev/null || export PATH=$HOME/.cargo/bin:$PATH

# py-rattler and conda-package-handling for the conda tests, jupyter_client for the kernel test,
# in a venv of the system's Python.
venv=target/test-venv
if ! "$venv/bin/python" -c 'import rattler, conda_package_handling, jupyter_client' 2>/dev/null; then
  echo "==> creating $venv (py-rattler, conda-package-handling, jupyter_client)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check py-rattler conda-package-handling \
    jupyter_client
fi
export CONDA_FUSE_TEST_PYTHON=$PWD/$venv/bin/python

# pjdfstest (the POSIX suite, from crates.io) for tests/posix.rs, under target/tools.
if [[ ! -x target/tools/bin/pjdfstest ]]; then
  echo "==> installing pjdfstest into target/tools"
  cargo install --quiet --locked --root target/tools pjdfstest --version 0.2.2
fi

# The network filesystem the tests keep homes on (tests/netfs.rs and the *_on_a_network_filesystem
# tests): an SFTP server on loopback and an sshfs mount; and the Slurm cluster of tests/jobs.rs
# (slurmctld and three slurmd nodes in namespaces of their own). Both are stopped again however
# the tests end.
if [[ $(id -u) == 0 ]]; then
  netfs=$PWD/target/netfs slurm=$PWD/target/slurm
  tests/support/netfs.sh down "$netfs" 2>/dev/null || true
  tests/support/slurm.sh down "$slurm" 2>/dev/null || true
  trap 'tests/support/slurm.sh down "$slurm"; tests/support/netfs.sh down "$netfs"' EXIT
  echo "==> starting the network-filesystem stand-in (sshfs) at $netfs/home"
  tests/support/netfs.sh up "$netfs"
  export CONDA_FUSE_TEST_NETFS=$netfs
  echo "==> starting a Slurm cluster (n1, n2, n3) under $slurm"
  if tests/support/slurm.sh up "$slurm"; then
    export CONDA_FUSE_TEST_SLURM=$slurm
  else
    echo "warning: Slurm could not start here (see above); tests/jobs.rs skips" >&2
  fi
fi

echo "==> cargo test --release"
cargo test --release --locked "$@"

# The wheel and the conda package, built from this checkout and installed offline
# (CONDA_FUSE_SKIP_PACKAGING=1 leaves them out while iterating on the cargo tests).
if [[ -z ${CONDA_FUSE_SKIP_PACKAGING:-} ]]; then
  echo "==> tests/packaging.sh (the wheel and the conda package)"
  tests/packaging.sh
fi
