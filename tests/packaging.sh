#!/usr/bin/env bash
# What users install without a Rust toolchain: the PyPI wheel (pyproject.toml: maturin and zig,
# manylinux2014) and the conda package (recipe/: rattler-build). Builds each from this checkout,
# checks that its binary asks for nothing newer than glibc 2.17 (a RHEL 7 login node), installs it
# offline (the wheel into a fresh venv; the package into a fresh prefix with the tests'
# conda-compatible installer, from a local channel) and runs install.sh's demo with it (pack, a
# batch job, a write, a save). Skips, saying so, only when PyPI or crates.io cannot be reached
# for the build tools. tests/run-all.sh runs it after the cargo tests.
#
#   tests/packaging.sh [wheel|conda]...   (default: both)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
parts=("$@")
[[ ${#parts[@]} -gt 0 ]] || parts=(wheel conda)
ceiling=2.17

say() { printf '==> packaging: %s\n' "$*"; }
fail() { echo "tests/packaging.sh: FAILED: $*" >&2; exit 1; }
command -v cargo >/dev/null || export PATH=$HOME/.cargo/bin:$PATH

work=$(mktemp -d "${TMPDIR:-/tmp}/cf-packaging.XXXXXX")
fuse_mode=""
cleanup() {
  [[ -z $fuse_mode ]] || chmod "$fuse_mode" /dev/fuse
  # The demo unmounts what it mounted; a failure halfway must not leave a mount behind either.
  local m
  for m in $(grep -F " $work/" /proc/mounts | cut -d' ' -f2 || true); do
    fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The build tools, pinned, in a venv of their own (PyPI), and rattler-build (crates.io).
tools=target/pkg-venv
if ! "$tools/bin/python" -c 'import maturin, ziglang' 2>/dev/null \
  || ! [[ -x $tools/bin/cargo-zigbuild && -x $tools/bin/auditwheel ]]; then
  say "installing maturin, ziglang, cargo-zigbuild and auditwheel into $tools"
  rm -rf "$tools"
  python3 -m venv "$tools"
  if ! "$tools/bin/pip" install -q --disable-pip-version-check maturin==1.16.0 ziglang==0.17.1 \
      cargo-zigbuild==0.24.1 auditwheel==6.8.2; then
    rm -rf "$tools"
    echo "tests/packaging.sh: skipping: PyPI cannot be reached for maturin, ziglang, cargo-zigbuild" >&2
    exit 0
  fi
fi
export PATH=$root/$tools/bin:$PATH

# The highest GLIBC_ symbol version a binary asks for must be at most $ceiling.
check_glibc() {
  local binary=$1 highest newer
  highest=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  [[ -n $highest ]] || fail "$binary: no GLIBC_ symbol versions (is it dynamically linked?)"
  if [[ $(printf '%s\n%s\n' "$highest" "$ceiling" | sort -V | tail -1) != "$ceiling" ]]; then
    newer=$(objdump -T "$binary" | grep 'GLIBC_' | awk -v c="$ceiling" '{
      v=$0; sub(/.*GLIBC_/, "", v); sub(/[) ].*/, "", v); split(v, a, "."); split(c, b, ".");
      if (a[1] > b[1] || (a[1] == b[1] && a[2] > b[2])) print $NF " (GLIBC_" v ")" }' | sort -u)
    fail "$binary needs glibc $highest, above $ceiling, for: $newer"
  fi
  say "$binary: highest glibc symbol version $highest (<= $ceiling)"
}

# The demo's log ends with the file it wrote read back from the saved archive.
demo_saved() {
  local log=$1 who=$2
  grep -q 'in the archive: conda-fuse was here' "$log" || { cat "$log"; fail "$who: the demo saved nothing"; }
}

# install.sh's demo with a prebuilt binary, in a home of its own.
demo() {
  local binary=$1 name=$2
  mkdir -p "$work/$name-home"
  HOME=$work/$name-home TMPDIR=$work XDG_RUNTIME_DIR='' \
    ./install.sh --binary "$binary" --prefix "$work/$name-installed" --no-rc >"$work/$name-demo.log" 2>&1 \
    || { cat "$work/$name-demo.log"; fail "install.sh's demo with the $name's binary"; }
  demo_saved "$work/$name-demo.log" "the $name's binary"
  say "install.sh's demo ran with the $name's binary (pack, run, write, save)"
}

# recipe/modulefile.lua, pointed at `root`, loaded with Lmod in bash, zsh and fish: conda-fuse on
# PATH and the conda-fuse-* functions defined in the shell that loaded it.
modulefile() {
  local root=$1 init=/usr/share/lmod/lmod/init
  [[ -d $init ]] || fail "Lmod is not installed (apt-get install lmod; tests/run-all.sh does)"
  mkdir -p "$work/modules/conda-fuse"
  sed "s|^local root = .*|local root = \"$root\"|" recipe/modulefile.lua >"$work/modules/conda-fuse/0.1.0.lua"
  local shell script out
  for shell in bash zsh fish; do
    case $shell in
      fish) script="source $init/fish; module use $work/modules; module load conda-fuse; command -v conda-fuse; functions -q conda-fuse-activate; and echo defined" ;;
      *) script="source $init/$shell; module use $work/modules; module load conda-fuse; command -v conda-fuse; typeset -f conda-fuse-activate >/dev/null && echo defined" ;;
    esac
    out=$(env -i HOME="$work" PATH=/usr/bin:/bin TERM=dumb "$shell" -c "$script" 2>&1) || true
    [[ $out == *"$root/bin/conda-fuse"*defined* ]] || fail "module load conda-fuse in $shell: $out"
  done
  say "recipe/modulefile.lua loads in bash, zsh and fish (Lmod)"
}

# An ordinary user (uid 65534, as users are on a cluster) installs the wheel into a venv of their
# own, offline, and runs the demo with it. /dev/fuse is made 0666 as distributions ship it, and
# restored.
user_demo() {
  local wheel=$1 home=$work/user-home
  if [[ $(id -u) != 0 ]]; then
    say "not root: the ordinary user's install is not checked"
    return
  fi
  chmod 0711 "$work"
  install -d -o 65534 -g 65534 -m 0700 "$home"
  install -o 65534 -g 65534 -m 0644 "$wheel" "$home/"
  install -o 65534 -g 65534 -m 0755 install.sh "$home/"
  fuse_mode=$(stat -c %a /dev/fuse)
  chmod 0666 /dev/fuse
  setpriv --reuid 65534 --regid 65534 --clear-groups \
    env -i HOME="$home" TMPDIR="$home" PATH=/usr/bin:/bin bash -c '
      set -e
      cd "$HOME"
      python3 -m venv venv
      venv/bin/pip install -q --disable-pip-version-check --no-index --no-deps ./conda_fuse-*.whl
      ./install.sh --binary venv/bin/conda-fuse --prefix "$HOME/.local" --no-rc' >"$work/user-demo.log" 2>&1 \
    || { cat "$work/user-demo.log"; fail "the wheel installed and run by uid 65534"; }
  chmod "$fuse_mode" /dev/fuse
  fuse_mode=""
  demo_saved "$work/user-demo.log" "uid 65534"
  say "uid 65534 installed the wheel into its own venv and ran the demo with it"
}

wheel() {
  say "building the wheel (maturin --zig, manylinux2014)"
  rm -rf target/wheels
  maturin build --profile dist --locked --zig --compatibility manylinux2014 -o target/wheels
  local wheel
  wheel=$(ls target/wheels/conda_fuse-*manylinux_2_17_x86_64*.whl) || fail "no manylinux_2_17 wheel in target/wheels"
  auditwheel show "$wheel" | tee "$work/auditwheel.txt"
  tr -s ' \n' ' ' <"$work/auditwheel.txt" | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' \
    || fail "auditwheel does not accept $wheel as manylinux_2_17"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q --disable-pip-version-check --no-index --no-deps "$wheel"
  local binary=$work/venv/bin/conda-fuse
  check_glibc "$binary"
  "$binary" --version
  "$binary" shell-hook bash | grep -q 'conda-fuse-activate' || fail "the wheel's shell-hook bash"
  say "wheel $(basename "$wheel"): $(stat -c %s "$wheel") bytes, binary $(stat -c %s "$binary") bytes"
  demo "$binary" wheel
  user_demo "$wheel"
  modulefile "$work/venv"
}

conda() {
  local rattler=target/tools/bin/rattler-build
  if [[ ! -x $rattler ]]; then
    say "installing rattler-build into target/tools (crates.io)"
    if ! cargo install --quiet --locked --root target/tools rattler-build --version 0.27.0 \
        --no-default-features --features rustls-tls,recipe-generation; then
      echo "tests/packaging.sh: skipping the conda package: rattler-build could not be installed from crates.io" >&2
      return 0
    fi
  fi
  say "building the conda package (rattler-build, recipe/recipe.yaml, glibc $ceiling)"
  # No channel is reachable offline: an empty local one stands for conda-forge. rattler-build then
  # runs the recipe's own tests in a fresh environment of the new package.
  local subdir
  for subdir in noarch linux-64; do
    mkdir -p "$work/channel/$subdir"
    echo "{\"info\": {\"subdir\": \"$subdir\"}, \"packages\": {}, \"packages.conda\": {}}" \
      >"$work/channel/$subdir/repodata.json"
  done
  "$rattler" build --recipe recipe/recipe.yaml --variant-config recipe/local-toolchain.yaml \
    --output-dir "$work/bld" --channel "file://$work/channel" >"$work/bld.log" 2>&1 \
    || { tail -50 "$work/bld.log"; fail "rattler-build"; }
  local pkg
  pkg=$(find "$work/bld" -name 'conda-fuse-*.conda' -o -name 'conda-fuse-*.tar.bz2' | head -1)
  [[ -n $pkg ]] || { tail -50 "$work/bld.log"; fail "rattler-build made no package"; }
  # Only the binary and its license, and no link scripts.
  local listing
  listing=$("$CONDA_FUSE_TEST_PYTHON" - "$pkg" <<'EOF'
import sys, tempfile, os
from conda_package_handling import api
with tempfile.TemporaryDirectory() as d:
    api.extract(sys.argv[1], d)
    for r, _, fs in os.walk(d):
        for f in fs:
            print(os.path.relpath(os.path.join(r, f), d))
EOF
)
  echo "$listing" | grep -qx 'bin/conda-fuse' || fail "the package has no bin/conda-fuse: $listing"
  echo "$listing" | grep -q 'post-link\|pre-unlink' && fail "the package has link scripts: $listing"
  echo "$listing" | grep -v '^info/' | grep -vx 'bin/conda-fuse' && fail "the package installs more than the binary"
  say "installing it from a local channel into a fresh prefix (the tests' installer)"
  FAKE_CONDA_CHANNEL=$(dirname "$(dirname "$pkg")") FAKE_CONDA_PKGS=$work/pkgs \
    "$CONDA_FUSE_TEST_PYTHON" tests/support/fake_conda.py create --prefix "$work/prefix" -y -q conda-fuse \
    || fail "installing the conda package"
  local binary=$work/prefix/bin/conda-fuse
  check_glibc "$binary"
  "$binary" --version
  "$binary" shell-hook bash | grep -q 'conda-fuse-activate' || fail "the package's shell-hook bash"
  say "conda package $(basename "$pkg"): $(stat -c %s "$pkg") bytes"
  demo "$binary" conda-package
}

export CONDA_FUSE_TEST_PYTHON=${CONDA_FUSE_TEST_PYTHON:-$root/target/test-venv/bin/python}
for part in "${parts[@]}"; do
  case $part in
    wheel) wheel ;;
    conda) conda ;;
    *) fail "unknown part $part (wheel or conda)" ;;
  esac
done
say "passed: ${parts[*]}"
