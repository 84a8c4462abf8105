#!/usr/bin/env bash
# Builds the scratch image for linux/amd64 and linux/arm64 with buildah (no daemon: vfs storage,
# chroot isolation, in a throwaway storage root), checks each image's config, checks that a
# second build of the same binaries has the same digest (timestamps fixed to the commit's time,
# SOURCE_DATE_EPOCH), runs the binary from each image, and starts the amd64 one as the non-root
# user it declares. Expects the two release binaries to be built already.
set -euo pipefail
cd "$(dirname "$0")/.."

store=$(mktemp -d)
trap 'buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs rm --all >/dev/null 2>&1 || true; rm -rf "$store"' EXIT
b() { buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"; }

epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
for arch in amd64 arm64; do
  for tag in "$arch" "$arch-again"; do
    b build --quiet --isolation chroot --timestamp "$epoch" --platform "linux/$arch" -f Containerfile \
      -t "localhost/ecs_exporter:$tag" . >/dev/null
  done
  digests=$(b images --digests --format '{{.Tag}} {{.Digest}}' | awk -v a="$arch" '$1 == a || $1 == a "-again" {print $2}' | sort -u)
  if [ "$(printf '%s\n' "$digests" | wc -l)" != 1 ]; then
    echo "image $arch: two builds of the same binaries differ: $digests" >&2
    exit 1
  fi
  echo "image $arch: reproducible, digest $digests"
  config=$(b inspect --type image --format '{{.OCIv1.Architecture}} {{.OCIv1.OS}} {{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.ExposedPorts}}' "localhost/ecs_exporter:$arch")
  want="$arch linux 65534:65534 [/bin/ecs_exporter] map[9779/tcp:{}]"
  if [ "$config" != "$want" ]; then
    echo "image $arch: config is '$config', want '$want'" >&2
    exit 1
  fi
  container=$(b from "localhost/ecs_exporter:$arch")
  root=$(b mount "$container")
  files=$(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')
  [ "$files" = "./bin ./bin/ecs_exporter " ] || { echo "image $arch holds more than the binary: $files" >&2; exit 1; }
  if [ "$arch" = amd64 ]; then
    version=$(chroot --userspec=65534:65534 "$root" /bin/ecs_exporter --version)
  else
    version=$(qemu-aarch64-static "$root/bin/ecs_exporter" --version)
  fi
  case "$version" in
    *"platform:         linux/$arch"*) echo "image $arch: ok, $(stat -c %s "$root/bin/ecs_exporter") byte binary: ${version%%$'\n'*}" ;;
    *) echo "image $arch: --version said: $version" >&2; exit 1 ;;
  esac
  if [ "$arch" = amd64 ]; then
    # Start it from the image as nobody, health-check it with its own --health-check, stop it.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    chroot --userspec=65534:65534 "$root" /bin/ecs_exporter --web.listen-address="127.0.0.1:$port" \
      --ecs.metadata-uri=http://127.0.0.1:9/v4/none 2>/dev/null &
    pid=$!
    ok=""
    for _ in $(seq 50); do
      if chroot --userspec=65534:65534 "$root" /bin/ecs_exporter --health-check --web.listen-address="127.0.0.1:$port" >/dev/null; then ok=1; break; fi
      sleep 0.1
    done
    kill -TERM "$pid"; wait "$pid"; status=$?
    [ -n "$ok" ] || { echo "image amd64: the exporter did not become healthy" >&2; exit 1; }
    [ "$status" = 0 ] || { echo "image amd64: exit status $status after SIGTERM" >&2; exit 1; }
    echo "image amd64: started as 65534:65534, healthy, stopped by SIGTERM with status 0"
  fi
  b umount "$container" >/dev/null
done
