#!/usr/bin/env bash
# What the journal costs a run since every run is journaled (issue 12):
# `dirsync check` and `apply` of 100k rows against the embedded SQLite
# target, this tree's release build side by side with a baseline build
# (default: the commit before the one pipeline, 7c7a61e), in one run.
#
#   benches/journal.sh                  # N=100000, BASE=7c7a61e
#   N=20000 BASE=<rev> benches/journal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
BASE=${BASE:-7c7a61e}
work=$(mktemp -d /tmp/dirsync-journal-bench.XXXXXX)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release --bins -q
cp target/release/dirsync "$work/ds-new"
cp target/release/dirsync-genroster "$work/gen"
git worktree add -q "$work/base" "$BASE"
(cd "$work/base" && CARGO_TARGET_DIR="$(cd - >/dev/null; pwd)/target" cargo build --release --bin dirsync -q)
cp target/release/dirsync "$work/ds-old"
cargo build --release --bins -q   # put this tree's build back in target/

cd "$work"
./gen --rows "$N" --seed 7 --out base.csv
./gen --rows "$N" --seed 7 --next-night 1.5 --out next.csv 2>/dev/null
mk() { # a config dir: SQLite target, example policy, no generated passwords
  mkdir -p "$1/policies"
  sed -e 's/^adds = { max = 10000 }/adds = { max = 10000000 }/' -e 's/^generate = "new"/generate = "never"/' \
    "$OLDPWD/config/example/policies/staff.toml" > "$1/policies/staff.toml"
  printf '[targets.staff]\nkind = "sql"\nurl = "sqlite://dir.db"\ncreate_schema = true\n[policies]\nstaff = "policies/staff.toml"\n' > "$1/dirsync.toml"
}
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>err.log || true; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.2f}')"; }
for b in old new; do mk "e-$b"; mk "l-$b"; done
for b in old new; do secs "./ds-$b" --config "l-$b/dirsync.toml" apply base.csv --results r.csv >/dev/null; done
echo "N=$N; seconds, old (baseline $BASE) | new (this tree), three tries each (the first re-apply writes the night; the next two have nothing to do)"
for what in "check, empty target|e|check base.csv" "check next night, loaded target|l|check next.csv" \
            "re-apply next night (nothing to write)|l|apply next.csv --allow-over-limit"; do
  IFS='|' read -r label dir args <<<"$what"
  line="$label:"
  for b in old new; do
    ts=""
    for i in 1 2 3; do
      [ "$dir" = e ] && rm -rf "e-$b/dir.db" "e-$b/state"
      # shellcheck disable=SC2086
      ts="$ts $(secs "./ds-$b" --config "$dir-$b/dirsync.toml" $args --results r.csv)"
    done
    line="$line  $b:$ts"
  done
  echo "$line"
done
