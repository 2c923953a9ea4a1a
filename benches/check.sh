#!/usr/bin/env bash
# Benchmark of the spine: time and peak memory of `dirsync check` on 100k and
# 1M rows (SQLite target), and the core time (parse + plan) of 1M rows
# against a 1M-account snapshot beside one pass of the csv crate's reader
# over the same file (P4 of issue 16).
#
#   benches/check.sh            # 100k and 1M
#   SIZES="100000" benches/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100000 1000000"}
work=$(mktemp -d /tmp/dirsync-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# BINS=DIR: take the binaries from DIR (benches/all.sh builds once).
[ -n "${BINS:-}" ] || cargo build --release --bins -q
GEN=${BINS:-${CARGO_TARGET_DIR:-target}/release}/dirsync-genroster
DS=${BINS:-${CARGO_TARGET_DIR:-target}/release}/dirsync
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(uname -r)"

peak() { # peak RSS in MiB and wall seconds of a command, from /usr/bin/time-less bash: poll /proc
  local start end pid hwm=0 v
  start=$(date +%s.%N)
  "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/VmHWM/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
    sleep 0.05
  done
  wait "$pid" || true
  end=$(date +%s.%N)
  printf "wall_s=%s peak_rss_mib=%d" "$(python3 -c "print(round($end - $start, 2))")" "$((hwm / 1024))"
}

for n in $SIZES; do
  $GEN --rows "$n" --seed 7 --out "$work/base-$n.csv"
  $GEN --rows "$n" --seed 7 --next-night 1.5 --out "$work/next-$n.csv" 2>/dev/null
  # A config whose SQLite target is empty: `check` of the whole file (all new).
  mkdir -p "$work/cfg-$n/policies"
  sed -e 's/^must_change_new = true/must_change_new = true/' config/example/policies/staff.toml \
    | sed -e 's/^adds = { max = 10000 }/adds = { max = 10000000 }/' > "$work/cfg-$n/policies/staff.toml"
  cat > "$work/cfg-$n/dirsync.toml" <<TOML
[targets.staff]
kind = "sql"
url = "sqlite://dir.db"
create_schema = true
[policies]
staff = "policies/staff.toml"
TOML
  echo "check $n rows, empty target:   $(peak env DIRSYNC_LOG=info $DS --config "$work/cfg-$n/dirsync.toml" check "$work/base-$n.csv" --results "$work/r.csv")"
  grep -o 'parse_ms=[0-9]* snapshot_ms=[0-9]* plan_ms=[0-9]* journal_ms=[0-9]*' "$work/err" | sed 's/^/    /' || true
  echo "core $n rows vs $n accounts:"
  BASE="$work/base-$n.csv" NEXT="$work/next-$n.csv" cargo bench -q --bench plan 2>/dev/null
done
