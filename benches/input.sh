#!/usr/bin/env bash
# Parse throughput of CSV beside XLSX (BENCHMARKS.md, "Input").
#   benches/input.sh            # SIZES="100000" by default
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-100000}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo build --release --bin dirsync-genroster
for n in $SIZES; do
  "${CARGO_TARGET_DIR:-target}/release/dirsync-genroster" --rows "$n" --seed 7 > "$tmp/base-$n.csv"
  ROSTER="$tmp/base-$n.csv" cargo bench --bench input
done
