#!/usr/bin/env bash
# E1 and E2 of issue 16: the embedded SQLite target (the default a newcomer
# gets), side by side with the `sqlite3` client, in one run.
#
#   benches/sqlite.sh                 # N=100000 TRIES=3
#   N=20000 TRIES=5 benches/sqlite.sh
#
# Loads N rows from `dirsync-genroster --seed 7` (with their groups) into a
# fresh target once, then, TRIES times, interleaved:
#   E1  `dirsync check` of the next night (1.5 % churn): the run's
#       `snapshot_ms` (connect, catalogue check, read of users + memberships)
#       vs `sqlite3` reading the same columns of `users` and `user_groups`
#       (process start to exit);
#   E2  `dirsync apply` of the next night on a fresh copy of the loaded
#       target, end to end, vs E1's `sqlite3` read + the same file parsed and
#       planned by that `dirsync check` (`parse_ms` + `plan_ms` of its log);
#   R   `dirsync apply` of the same night again (nothing to write).
# Best of TRIES for each side; ratios of the bests. No server is started.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
TRIES=${TRIES:-3}
TARGET=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d /tmp/dirsync-bench-sqlite.XXXXXX)
trap 'rm -rf "$work"' EXIT

# DS=/path/to/dirsync (or BINS=DIR) skips the build (e.g. to compare two builds).
[ -n "${BINS:-}" ] && DS=${DS:-$BINS/dirsync}
if [ -z "${DS:-}" ]; then
    cargo build --release --bins -q
fi
# Copies: other builds in the same target dir must not swap them mid-run.
cp "${DS:-$TARGET/release/dirsync}" "$work/dirsync"
cp "$(dirname "${DS:-$TARGET/release/dirsync}")/dirsync-genroster" "$work/"
DS=$work/dirsync
"$work/dirsync-genroster" --rows "$N" --seed 7 --out "$work/base.csv"
"$work/dirsync-genroster" --rows "$N" --seed 7 --next-night 1.5 --out "$work/next.csv" 2>/dev/null

mkdir -p "$work/loaded/policies"
sed -e 's/^adds = { max = 10000 }/adds = { max = 10000000 }/' -e 's/^generate = "new"/generate = "never"/' \
    -e 's/^updates = { max_percent = 50.0 }/updates = { max_percent = 100.0 }/' \
    config/example/policies/staff.toml >"$work/loaded/policies/staff.toml"
printf '[service]\nstate_dir = "state"\n[targets.staff]\nkind = "sql"\nurl = "sqlite://state/directory.db"\ncreate_schema = true\n[policies]\nstaff = "policies/staff.toml"\n' \
    >"$work/loaded/dirsync.toml"
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg); $(sqlite3 --version | cut -d' ' -f1)"
echo "== initial load of $N rows (once)"
"$DS" --config "$work/loaded/dirsync.toml" apply "$work/base.csv" --results "$work/load.csv" | head -1
DB=$work/loaded/state/directory.db
MANAGED=$(sed -n 's/^managed = \[\(.*\)\]/\1/p' "$work/loaded/policies/staff.toml" | tr '"' "'")
READ="SELECT username, first_name, last_name, email, title, department, site, user_type, phone, status, left_at FROM users;
SELECT username, group_name FROM user_groups WHERE group_name IN ($MANAGED);"
echo "   $(sqlite3 "$DB" 'SELECT count(*) FROM users') users, $(sqlite3 "$DB" 'SELECT count(*) FROM user_groups') memberships"

now() { date +%s.%N; }
best() { python3 -c "import sys; print(f'{min(float(x) for x in sys.argv[1:]):.3f}')" "$@"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
E1_DS=() E1_SQL=() E2_DS=() R_DS=() CORE=()
for i in $(seq 1 "$TRIES"); do
    DIRSYNC_LOG=info "$DS" --config "$work/loaded/dirsync.toml" check "$work/next.csv" --results "$work/check.csv" \
        >/dev/null 2>"$work/check.log"
    ms() { grep -o "$1=[0-9]*" "$work/check.log" | tail -1 | cut -d= -f2; }
    E1_DS+=("$(python3 -c "print($(ms snapshot_ms) / 1000)")")
    CORE+=("$(python3 -c "print(($(ms parse_ms) + $(ms plan_ms)) / 1000)")")
    t0=$(now); sqlite3 "$DB" "$READ" >/dev/null; t1=$(now)
    E1_SQL+=("$(python3 -c "print($t1 - $t0)")")

    rm -rf "$work/night" && cp -r "$work/loaded" "$work/night"
    # The copy's own writeback is not the run's: flushed before the clock starts.
    sync
    t0=$(now); "$DS" --config "$work/night/dirsync.toml" apply "$work/next.csv" --results "$work/night.csv" >"$work/night.out"; t1=$(now)
    E2_DS+=("$(python3 -c "print($t1 - $t0)")")
    t0=$(now); "$DS" --config "$work/night/dirsync.toml" apply "$work/next.csv" --results "$work/again.csv" >"$work/again.out"; t1=$(now)
    R_DS+=("$(python3 -c "print($t1 - $t0)")")
    echo "try $i: E1 dirsync ${E1_DS[-1]} s, sqlite3 ${E1_SQL[-1]} s | E2 apply ${E2_DS[-1]} s, parse+plan ${CORE[-1]} s | R ${R_DS[-1]} s"
done
echo "night:   $(head -1 "$work/night.out")"
echo "re-run:  $(head -1 "$work/again.out")"

e1=$(best "${E1_DS[@]}") sq=$(best "${E1_SQL[@]}") e2=$(best "${E2_DS[@]}") core=$(best "${CORE[@]}") r=$(best "${R_DS[@]}")
floor=$(python3 -c "print(f'{$sq + $core:.3f}')")
echo
echo "== results, best of $TRIES ($N rows, release build)"
echo "E1 snapshot read: dirsync ${e1} s, sqlite3 ${sq} s, ratio $(ratio "$e1" "$sq") (target <= 2)"
echo "E2 nightly apply: dirsync ${e2} s, sqlite3 read + parse + plan ${floor} s (${sq} + ${core}), ratio $(ratio "$e2" "$floor") (target <= 1.5)"
echo "R  re-run, nothing to write: dirsync ${r} s ($(ratio "$r" "$floor") x the E2 floor)"
