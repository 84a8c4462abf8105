#!/usr/bin/env bash
# The release build of one target, reproducible: the same commit gives the same bytes wherever
# it is checked out and whoever builds it. Paths of the build machine that would end up in panic
# locations (the cargo registry, the checkout, the toolchain) are remapped to fixed ones; the
# revision comes from git. Used by .ci/run and .github/workflows/release.yml.
#   bash .ci/release-build.sh x86_64-unknown-linux-musl
set -euo pipefail
cd "$(dirname "$0")/.."
target=$1
cargo_home=${CARGO_HOME:-$HOME/.cargo}
sysroot=$(rustc --print sysroot)
# Added to .cargo/config.toml's flags for the target (cargo merges the two lists).
var="CARGO_TARGET_$(printf %s "$target" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
export "$var=--remap-path-prefix=$cargo_home/registry/src=/cargo/registry/src --remap-path-prefix=$cargo_home/git/checkouts=/cargo/git --remap-path-prefix=$sysroot=/rust/sysroot --remap-path-prefix=$PWD=/build"
ECS_EXPORTER_REVISION=$(git rev-parse --short=12 HEAD)
export ECS_EXPORTER_REVISION
cargo build --quiet --release --locked --target "$target"
