#!/usr/bin/env bash
# Installs conda-fuse and shows it working on a small example.
#
#   ./install.sh [--prefix DIR] [--no-demo]
#
# - installs what conda-fuse needs from the system (fuse3; a C compiler to build) when run as root
#   on Debian/Ubuntu, and says what is missing otherwise;
# - builds the binary with cargo and installs it to PREFIX/bin (default: ~/.local/bin, or
#   /usr/local/bin when run as root);
# - demo: packs this machine's Python standard library into one zip archive, mounts it read-only,
#   imports modules from the mount, shows the daemon's status and unmounts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=""
demo=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --no-demo) demo=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
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
command -v cc >/dev/null || need+=(gcc libc6-dev)
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
install -d "$prefix/bin"
install -m 755 "$here/target/release/conda-fuse" "$prefix/bin/conda-fuse"
say "installed $prefix/bin/conda-fuse ($("$prefix/bin/conda-fuse" --version))"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on your PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac

[[ $demo == 1 ]] || exit 0

# Demo: the standard library as one archive, imported through the mount.
cf=$prefix/bin/conda-fuse
demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/conda-fuse-demo.XXXXXX")
cleanup() {
  "$cf" unmount "$demo_dir/mnt" >/dev/null 2>&1 || true
  rm -rf "$demo_dir"
}
trap cleanup EXIT
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
# The standard library without third-party packages: a few thousand files, like a small environment.
mkdir "$demo_dir/env"
tar -C "$stdlib" --exclude=./site-packages --exclude=./dist-packages -cf - . | tar -C "$demo_dir/env" -xf -
say "demo: packing the Python standard library ($(find "$demo_dir/env" | wc -l) entries) into one archive"
"$cf" pack "$demo_dir/env" -o "$demo_dir/stdlib.zip"
mkdir "$demo_dir/mnt"
say "demo: mounting it read-only"
"$cf" mount "$demo_dir/stdlib.zip" "$demo_dir/mnt" --read-only
say "demo: importing from the mount"
python3 -I -c '
import sys
sys.path.insert(0, sys.argv[1])
import json, csv, email.mime.text, xml.dom.minidom, unittest
print("json imported from", json.__file__)
print("json round trip:", json.loads(json.dumps({"conda": "fuse"})))
' "$demo_dir/mnt"
"$cf" status "$demo_dir/mnt"
say "demo: unmounting"
"$cf" unmount "$demo_dir/mnt"
say "done: conda-fuse works on this machine"
