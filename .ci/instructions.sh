#!/usr/bin/env bash
# Instructions per scrape of the in-process pipeline (decode -> collect -> write -> gzip at the
# shipped level; PIPELINE_GZIP_LEVEL=none leaves gzip out) on the Fargate fixture, counted by
# callgrind: a run of N iterations minus a run of 0, divided by N.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
bin=$(cargo test --release --test bench --no-run 2>&1 | grep -o 'target/release/deps/bench-[0-9a-f]*' | head -n 1)
out=$(mktemp -d)
for i in 0 "$n"; do
  PIPELINE_ITERATIONS=$i valgrind --tool=callgrind --callgrind-out-file="$out/cg.$i" \
    "$bin" --ignored --exact pipeline >/dev/null 2>&1
done
zero=$(awk '/^summary:/ {print $2}' "$out/cg.0")
full=$(awk '/^summary:/ {print $2}' "$out/cg.$n")
echo "instructions per scrape: $(( (full - zero) / n )) (callgrind, $n iterations)"
if [ "${2:-}" = "--annotate" ]; then
  callgrind_annotate --inclusive=no "$out/cg.$n" 2>/dev/null | head -n 40
fi
rm -rf "$out"
