#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (as root on Debian/Ubuntu), then
# `cargo test --release`. The tests mount real FUSE filesystems (root, /dev/fuse) and drive the
# real tools they interoperate with: zip, unzip, fuse-zip, python3.
#
#   tests/run-all.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(fuse3 zip unzip fuse-zip python3 util-linux procps gcc libc6-dev)
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

echo "==> cargo test --release"
cargo test --release --locked "$@"
