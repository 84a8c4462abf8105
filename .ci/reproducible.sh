#!/usr/bin/env bash
# Checks that the release build is reproducible: builds both targets again from a clone of the
# same commit in another directory, with its own target directory, and compares the bytes with
# the binaries .ci/release-build.sh made here. (Run it on a clean checkout: the clone holds only
# what is committed.)
set -euo pipefail
cd "$(dirname "$0")/.."
other=$(mktemp -d /tmp/ecs-exporter-elsewhere.XXXXXX)
trap 'rm -rf "$other"' EXIT
git clone --quiet . "$other/checkout"
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  (unset CARGO_TARGET_DIR; bash "$other/checkout/.ci/release-build.sh" "$target")
  here="target/$target/release/ecs_exporter"
  there="$other/checkout/target/$target/release/ecs_exporter"
  if ! cmp -s "$here" "$there"; then
    echo "$target: the build in $other differs from the one here" >&2
    cmp "$here" "$there" >&2 || true
    exit 1
  fi
  # The same cargo home serves both builds, so also look for any path of this machine.
  leaks=$(strings -n 6 "$here" | grep -F -e "${CARGO_HOME:-$HOME/.cargo}" -e "$PWD" -e "$other" -e "$(rustc --print sysroot)" || true)
  if [ -n "$leaks" ]; then
    echo "$target: paths of the build machine in the binary:" >&2
    echo "$leaks" | head -n 5 >&2
    exit 1
  fi
  echo "$target: reproducible, no build path inside, sha256 $(sha256sum "$here" | cut -d' ' -f1)"
done
