#!/usr/bin/env bash
# Installs conda-fuse and shows it working on a small example.
#
#   ./install.sh [--prefix DIR] [--binary FILE] [--no-demo] [--rc | --no-rc]
#
# - installs what conda-fuse needs from the system (fuse3; a C compiler to build) when run as root
#   on Debian/Ubuntu, and says what is missing otherwise;
# - builds the binary with cargo and installs it to PREFIX/bin (default: ~/.local/bin, or
#   /usr/local/bin when run as root); --binary installs that prebuilt binary instead (the one a
#   wheel or the conda package carries: no Rust toolchain needed);
# - with your consent (asked on a terminal; --rc says yes, --no-rc no) adds the hook line that
#   defines the conda-fuse-* shell functions to the rc file of your shell ($SHELL: bash, zsh or
#   fish), once: running install.sh again does not add it twice;
# - demo: packs this machine's Python standard library into one zip archive, mounts it read-only,
#   imports modules from the mount, shows the daemon's status and unmounts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=""
demo=1
rc=ask
binary=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --binary) binary=${2:?--binary needs a file}; shift 2 ;;
    --binary=*) binary=${1#--binary=}; shift ;;
    --no-demo) demo=0; shift ;;
    --rc) rc=yes; shift ;;
    --no-rc) rc=no; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z $prefix ]]; then
  if [[ $(id -u) == 0 ]]; then prefix=/usr/local; else prefix=$HOME/.local; fi
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# System packages.
need=()
command -v fusermount3 >/dev/null || need+=(fuse3)
[[ -n $binary ]] || command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v python3 >/dev/null || need+=(python3)
if [[ ${#need[@]} -gt 0 ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "install.sh: missing ${need[*]}; install them (sudo apt-get install ${need[*]}) and run again" >&2
    exit 1
  fi
fi

if [[ -n $binary ]]; then
  [[ -x $binary ]] || { echo "install.sh: --binary $binary is not an executable file" >&2; exit 1; }
else
  # Rust toolchain.
  if ! command -v cargo >/dev/null; then
    [[ -x $HOME/.cargo/bin/cargo ]] && export PATH=$HOME/.cargo/bin:$PATH
  fi
  if ! command -v cargo >/dev/null; then
    say "installing the Rust toolchain (rustup)"
    command -v curl >/dev/null || { [[ $(id -u) == 0 ]] && apt-get install -y -qq curl >/dev/null; }
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH=$HOME/.cargo/bin:$PATH
  fi

  say "building conda-fuse"
  (cd "$here" && cargo build --release --locked --quiet)
  binary=$here/target/release/conda-fuse
fi
install -d "$prefix/bin"
install -m 755 "$binary" "$prefix/bin/conda-fuse"
say "installed $prefix/bin/conda-fuse ($("$prefix/bin/conda-fuse" --version))"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on your PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac

# The shell hook: one line in the rc file of the user's shell, added once, with consent. The
# binary knows the line and the file (`conda-fuse shell-hook SHELL --rc-file / --add-to-rc`).
add_hook() {
  local shell rc_file
  shell=$(basename "${SHELL:-bash}")
  case $shell in
    bash|zsh|fish) ;;
    *) echo "note: no hook for the shell '$shell'; conda-fuse has hooks for bash, zsh and fish (conda-fuse shell-hook --help)"; return ;;
  esac
  rc_file=$("$prefix/bin/conda-fuse" shell-hook "$shell" --rc-file)
  if grep -qsF "conda-fuse shell-hook" "$rc_file"; then
    say "the $shell hook is already in $rc_file"
    return
  fi
  if [[ $rc == ask ]]; then
    rc=no
    if [[ -t 0 ]]; then
      read -r -p "Add the line that defines the conda-fuse-* functions to $rc_file? [y/N] " answer
      [[ $answer == [yY]* ]] && rc=yes
    fi
  fi
  if [[ $rc == yes ]]; then
    "$prefix/bin/conda-fuse" shell-hook "$shell" --add-to-rc
  else
    echo "note: to define the conda-fuse-* functions in new shells, run: conda-fuse shell-hook $shell --add-to-rc"
  fi
}
add_hook

[[ $demo == 1 ]] || exit 0

# Demo: the standard library as the environment "stdlib-demo" (one archive, in a temporary
# archive path), used by a batch job through `conda-fuse run`, which mounts it and unmounts it.
cf=$prefix/bin/conda-fuse
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/conda-fuse-demo.XXXXXX")
export CONDA_FUSE_ARCHIVE_PATH=$demo_dir/archives CONDA_FUSE_MOUNT_ROOT=$demo_dir/envs
cleanup() {
  "$cf" unmount stdlib-demo >/dev/null 2>&1 || true
  rm -rf "$demo_dir"
}
trap cleanup EXIT
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
# The standard library without third-party packages: a few thousand files, like a small environment.
mkdir "$demo_dir/stdlib-demo"
tar -C "$stdlib" --exclude=./site-packages --exclude=./dist-packages -cf - . | tar -C "$demo_dir/stdlib-demo" -xf -
say "demo: packing the Python standard library ($(find "$demo_dir/stdlib-demo" | wc -l) entries) as the environment stdlib-demo"
"$cf" pack "$demo_dir/stdlib-demo" --name stdlib-demo
"$cf" env-list
say "demo: a batch job imports from it (conda-fuse run mounts it read-only, and unmounts after)"
"$cf" run stdlib-demo -- python3 -I -c '
import os, sys
sys.path.insert(0, os.environ["CONDA_PREFIX"])
import json, csv, email.mime.text, xml.dom.minidom, unittest
print("json imported from", json.__file__)
print("json round trip:", json.loads(json.dumps({"conda": "fuse"})))
'
say "demo: mounted by hand, writable: a change, saved into the archive at unmount"
prefix_dir=$("$cf" activate stdlib-demo)
echo "conda-fuse was here" >"$prefix_dir/NOTE.txt"
"$cf" status stdlib-demo
"$cf" unmount stdlib-demo
python3 -c 'import sys, zipfile; print("in the archive:", zipfile.ZipFile(sys.argv[1]).read("stdlib-demo/NOTE.txt").decode(), end="")' \
  "$CONDA_FUSE_ARCHIVE_PATH/stdlib-demo.zip"
say "done: conda-fuse works on this machine"
