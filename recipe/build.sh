#!/usr/bin/env bash
# Builds conda-fuse into $PREFIX/bin: with conda-forge's compilers and sysroot, or (LOCAL_TOOLCHAIN,
# see local-toolchain.yaml) with the machine's cargo and cargo-zigbuild, for glibc 2.17 either way.
set -euxo pipefail
if [[ -n ${LOCAL_TOOLCHAIN:-} ]]; then
  cargo zigbuild --profile dist --locked --target x86_64-unknown-linux-gnu.2.17
  binary=target/x86_64-unknown-linux-gnu/dist/conda-fuse
else
  cargo build --profile dist --locked
  binary=target/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}/dist/conda-fuse
  [[ -x $binary ]] || binary=target/dist/conda-fuse
fi
install -D -m 755 "$binary" "$PREFIX/bin/conda-fuse"
