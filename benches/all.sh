#!/usr/bin/env bash
# Every measure of issue 16's table, each side by side with its baseline in
# the same run, from one command:
#
#   benches/all.sh                 # N=100000 (P4: 1M rows against 1M accounts)
#   N=20000 P4_ROWS=100000 benches/all.sh
#
# Installs the servers' Debian packages when missing (scripts/install-test-deps),
# builds release once, then runs each bench, which starts and stops its own
# throwaway servers on loopback:
#   benches/sqlite.sh  E1, E2 (and R on SQLite)   embedded SQLite vs `sqlite3`
#   benches/ldap.sh    P2g, P1, R                 slapd vs ldapadd/ldapsearch/ldapmodify
#   benches/sql.sh     P3a, P3b                   PostgreSQL vs psql
#   benches/check.sh   P4                         core vs the csv crate's reader
# and prints the rows of the table together at the end. Each bench's full
# output is kept in the folder it names.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
P4_ROWS=${P4_ROWS:-1000000}
scripts/install-test-deps
cargo build --release --bins -q
bins=$(mktemp -d /tmp/dirsync-bench-bins.XXXXXX)
out=$(mktemp -d /tmp/dirsync-bench-all.XXXXXX)
trap 'rm -rf "$bins"' EXIT
# Copies: a build in the same target dir must not swap them mid-run.
cp "${CARGO_TARGET_DIR:-target}/release/dirsync" "${CARGO_TARGET_DIR:-target}/release/dirsync-genroster" "$bins/"

echo "== $(date -u +%FT%TZ), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg), $(git rev-parse --short HEAD)"
echo "== E1, E2: embedded SQLite ($N rows)"
BINS=$bins N=$N benches/sqlite.sh 2>&1 | tee "$out/sqlite.txt"
echo "== P2g, P1, R: OpenLDAP ($N rows)"
BINS=$bins ROWS=$N benches/ldap.sh 2>&1 | tee "$out/ldap.txt"
echo "== P3a, P3b: PostgreSQL ($N rows)"
BINS=$bins benches/sql.sh "$N" 2>&1 | tee "$out/sql.txt"
echo "== P4: core ($P4_ROWS rows against $P4_ROWS accounts)"
BINS=$bins SIZES=$P4_ROWS benches/check.sh 2>&1 | tee "$out/check.txt"

echo
echo "== issue 16, side by side (full output in $out)"
grep -h -E '^(E1|E2|P2g|P1 |R |P3a|P3b|P4)' "$out/sqlite.txt" "$out/ldap.txt" "$out/sql.txt" "$out/check.txt"
