#!/usr/bin/env bash
# P3 benchmark: dirsync's SQL target on PostgreSQL against psql doing the
# same writes.
#
#   benches/sql.sh [ROWS] [CHURN_PERCENT]      (defaults 100000 and 1.5)
#   env: BATCH (batch_size, default 1000), HASH_ROWS (default 400), BINS (built binaries)
#
# Starts its own throwaway PostgreSQL (same recipe as tests/support/servers.rs:
# initdb --auth=trust --no-sync, fsync/synchronous_commit/full_page_writes off,
# 127.0.0.1 on a free port, in a temp dir), builds release, generates the
# roster with dirsync-genroster, and measures:
#   1. initial load: `dirsync apply` (passwords.generate = "never") vs
#      `psql \copy` of the very rows dirsync wrote (users + memberships);
#   2. nightly churn: `dirsync apply` of the next night's export vs the same
#      sync as a DBA would script it: `\copy` of the file into a staging
#      table, then set-based INSERT / UPDATE / leaver UPDATE and membership
#      changes in one transaction (checked to reach dirsync's state);
#   3. password hashing: hashes/s at the default argon2id parameters
#      (19456 KiB, 2 iterations), from an apply with and without generation.
# Prints numbers and ratios (P3a, P3b of issue 16); BENCHMARKS.md records runs.
set -euo pipefail

ROWS=${1:-100000}
CHURN=${2:-1.5}
HASH_ROWS=${HASH_ROWS:-400}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# PROFILE=debug only to try the script quickly; numbers come from release.
PROFILE=${PROFILE:-release}
# BINS=DIR: take dirsync and dirsync-genroster from DIR (benches/all.sh builds once).
if [ -n "${BINS:-}" ]; then
    :
elif [ "$PROFILE" = release ]; then
    echo "== building $PROFILE"
    cargo build --release --quiet --bin dirsync --bin dirsync-genroster
else
    cargo build --quiet --bin dirsync --bin dirsync-genroster
fi
DIRSYNC=${BINS:-${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE}/dirsync
GEN=${BINS:-${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE}/dirsync-genroster

BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$BIN/postgres" ] || { echo "PostgreSQL not found: run scripts/install-test-deps" >&2; exit 2; }
WORK=$(mktemp -d /tmp/dirsync-bench-sql.XXXXXX)
RUNAS=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$WORK"
    # setpriv execs postgres in place (runuser forks and waits, so $! was
    # runuser's pid and the server outlived the bench).
    RUNAS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGPID=
cleanup() {
    # The postmaster's own pid, from its pid file (also if PGPID were a wrapper).
    local pid
    pid=$(head -1 "$WORK/data/postmaster.pid" 2>/dev/null || true)
    for p in $pid $PGPID; do kill -INT "$p" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        alive=
        for p in $pid $PGPID; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    [ -n "$PGPID" ] && wait "$PGPID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

"${RUNAS[@]}" "$BIN/initdb" -D "$WORK/data" -U postgres --auth=trust --no-sync --no-locale -E UTF8 >/dev/null
"${RUNAS[@]}" "$BIN/postgres" -D "$WORK/data" -c listen_addresses=127.0.0.1 -c port="$PORT" \
    -c unix_socket_directories="$WORK" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    >"$WORK/server.log" 2>&1 &
PGPID=$!
PSQL=("$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
for _ in $(seq 1 100); do "${PSQL[@]}" -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'
PSQL+=(-d bench)

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

echo "== generating $ROWS rows and the next night ($CHURN% churn)"
"$GEN" --rows "$ROWS" --out "$WORK/base.csv"
"$GEN" --rows "$ROWS" --next-night "$CHURN" --out "$WORK/next.csv"

SCHEMA="
CREATE TABLE users (
  username varchar(64) PRIMARY KEY,
  first_name varchar(100), last_name varchar(100), email varchar(254),
  title varchar(200), department varchar(100), site varchar(100),
  user_type varchar(32), phone varchar(40),
  status varchar(16) NOT NULL DEFAULT 'active',
  left_at bigint,
  must_change_password boolean NOT NULL DEFAULT false,
  password_hash varchar(255)
);
CREATE TABLE user_groups (username varchar(64) NOT NULL, group_name varchar(64) NOT NULL,
  PRIMARY KEY (username, group_name));"
"${PSQL[@]}" -c "$SCHEMA"

policy() { # policy GENERATE
    cat <<EOF
target = "bench"
[passwords]
generate = "$1"
[limits]
adds = { max_percent = 100.0 }
updates = { max_percent = 100.0 }
leavers = { max_percent = 100.0 }
[groups]
managed = ["staff", "vpn", "finance-share", "eng-wiki", "sales-crm", "hr-portal"]
[sql]
table = "users"
key = "username"
status_column = "status"
left_at_column = "left_at"
must_change_column = "must_change_password"
password_column = "password_hash"
[sql.columns]
firstname = "first_name"
surname = "last_name"
email = "email"
title = "title"
department = "department"
site = "site"
user_type = "user_type"
phone = "phone"
[sql.groups]
table = "user_groups"
user_column = "username"
group_column = "group_name"
EOF
}
BATCH=${BATCH:-1000}
cat >"$WORK/dirsync.toml" <<EOF
[targets.bench]
kind = "sql"
url = "postgres://postgres@127.0.0.1:$PORT/bench"
batch_size = $BATCH
[policies]
never = "never.toml"
generate = "generate.toml"
EOF
policy never >"$WORK/never.toml"
policy new >"$WORK/generate.toml"
run() { "$DIRSYNC" --config "$WORK/dirsync.toml" apply --policy "$@" --results "$WORK/results.csv"; }

echo "== P3 initial load: dirsync apply"
t0=$(now); run never "$WORK/base.csv"; t1=$(now)
LOAD=$(secs "$t0" "$t1")
"${PSQL[@]}" -c "\\copy users TO '$WORK/users.before.csv' WITH (FORMAT csv)"
"${PSQL[@]}" -c "\\copy user_groups TO '$WORK/groups.before.csv' WITH (FORMAT csv)"
NUSERS=$("${PSQL[@]}" -c 'SELECT count(*) FROM users')
NGROUPS=$("${PSQL[@]}" -c 'SELECT count(*) FROM user_groups')

echo "== P3 initial load: psql \\copy of the same rows"
"${PSQL[@]}" -c 'TRUNCATE users, user_groups'
"${PSQL[@]}" -c 'VACUUM users' -c 'VACUUM user_groups'
t0=$(now)
"${PSQL[@]}" -c "\\copy users FROM '$WORK/users.before.csv' WITH (FORMAT csv)" \
    -c "\\copy user_groups FROM '$WORK/groups.before.csv' WITH (FORMAT csv)"
t1=$(now)
COPY=$(secs "$t0" "$t1")
"${PSQL[@]}" -c 'VACUUM ANALYZE users' -c 'VACUUM ANALYZE user_groups'

echo "== P3 nightly churn: dirsync apply"
"${PSQL[@]}" -c 'CREATE TABLE users_before AS SELECT * FROM users' \
    -c 'CREATE TABLE groups_before AS SELECT * FROM user_groups'
t0=$(now); SUMMARY=$(run never "$WORK/next.csv" | head -1) || true; t1=$(now)
NIGHT=$(secs "$t0" "$t1")

echo "== P3 nightly churn: the same sync as a DBA would script it in psql"
# The file \copy'd into a staging table, then set-based statements in one
# transaction: new users, changed users, leavers, membership changes.
"${PSQL[@]}" -c 'CREATE TABLE users_dirsync AS SELECT * FROM users' \
    -c 'CREATE TABLE groups_dirsync AS SELECT * FROM user_groups'
cat >"$WORK/night.sql" <<EOF
BEGIN;
CREATE TEMP TABLE staging (username text, firstname text, surname text, email text, title text,
  department text, site text, user_type text, phone text, groups text, status text, must_change text)
  ON COMMIT DROP;
\\copy staging FROM '$WORK/next.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO users (username, first_name, last_name, email, title, department, site, user_type, phone, status, must_change_password)
  SELECT s.username, s.firstname, s.surname, s.email, s.title, s.department, s.site, s.user_type, s.phone, 'active', true
  FROM staging s WHERE coalesce(s.status, '') <> 'leaver'
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.username = s.username);
UPDATE users u SET first_name = s.firstname, last_name = s.surname, email = s.email, title = s.title,
  department = s.department, site = s.site, user_type = s.user_type, phone = s.phone
  FROM staging s WHERE u.username = s.username AND coalesce(s.status, '') <> 'leaver'
  AND (u.first_name, u.last_name, u.email, u.title, u.department, u.site, u.user_type, u.phone)
      IS DISTINCT FROM (s.firstname, s.surname, s.email, s.title, s.department, s.site, s.user_type, s.phone);
UPDATE users u SET status = 'leaver', left_at = extract(epoch FROM now())::bigint
  FROM staging s WHERE u.username = s.username AND s.status = 'leaver' AND u.status <> 'leaver';
CREATE TEMP TABLE wanted ON COMMIT DROP AS
  SELECT DISTINCT s.username, g AS group_name FROM staging s, unnest(string_to_array(s.groups, ';')) g
  WHERE g IN ('staff', 'vpn', 'finance-share', 'eng-wiki', 'sales-crm', 'hr-portal')
  AND coalesce(s.status, '') <> 'leaver';
DELETE FROM user_groups x USING staging s WHERE x.username = s.username
  AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.username = x.username AND w.group_name = x.group_name);
INSERT INTO user_groups SELECT w.username, w.group_name FROM wanted w
  WHERE NOT EXISTS (SELECT 1 FROM user_groups x WHERE x.username = w.username AND x.group_name = w.group_name);
COMMIT;
EOF
"${PSQL[@]}" -c 'TRUNCATE users, user_groups' \
    -c 'INSERT INTO users SELECT * FROM users_before' -c 'INSERT INTO user_groups SELECT * FROM groups_before' \
    -c 'VACUUM ANALYZE users' -c 'VACUUM ANALYZE user_groups'
t0=$(now); "${PSQL[@]}" -f "$WORK/night.sql"; t1=$(now)
PSQLNIGHT=$(secs "$t0" "$t1")
# The script must reach dirsync's state: every column the same, the
# leavers' timestamps only both set (they are taken a moment apart). New
# accounts must change their password (the policy's default), leavers get
# the status column's leaver value.
COLS="username, first_name, last_name, email, title, department, site, user_type, phone, status,
  left_at IS NULL, must_change_password, password_hash"
DIFF=$("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM ((SELECT $COLS FROM users EXCEPT SELECT $COLS FROM users_dirsync)
    UNION ALL (SELECT $COLS FROM users_dirsync EXCEPT SELECT $COLS FROM users)) d)
  + (SELECT count(*) FROM ((SELECT * FROM user_groups EXCEPT SELECT * FROM groups_dirsync)
    UNION ALL (SELECT * FROM groups_dirsync EXCEPT SELECT * FROM user_groups)) g)")
[ "$DIFF" = 0 ] || { echo "P3b: the psql script's result differs from dirsync's in $DIFF rows" >&2; exit 1; }
echo "the psql script reached dirsync's state (0 rows differ)"

echo "== the floor: dirsync check of the same file (read, parse, plan, results; no writes)"
t0=$(now); "$DIRSYNC" --config "$WORK/dirsync.toml" check --policy never "$WORK/next.csv" --results "$WORK/check.csv" >/dev/null || true; t1=$(now)
FLOOR=$(secs "$t0" "$t1")

echo "== password hashing at the default argon2id parameters ($HASH_ROWS new users)"
head -n $((HASH_ROWS + 1)) "$WORK/base.csv" >"$WORK/hash.csv"
"${PSQL[@]}" -c 'TRUNCATE users, user_groups'
t0=$(now); run never "$WORK/hash.csv"; t1=$(now)
NOHASH=$(secs "$t0" "$t1")
"${PSQL[@]}" -c 'TRUNCATE users, user_groups'
t0=$(now); run generate "$WORK/hash.csv"; t1=$(now)
WITHHASH=$(secs "$t0" "$t1")
HPS=$(python3 -c "print(f'{$HASH_ROWS / max($WITHHASH - $NOHASH, 1e-9):.0f}')")

echo
echo "== results ($(nproc) CPUs, $(uname -r), $("$BIN/postgres" --version), batch_size $BATCH)"
echo "rows loaded: $NUSERS users, $NGROUPS memberships"
echo "P3a initial load: dirsync apply ${LOAD}s | psql \\copy of the same rows ${COPY}s | ratio $(ratio "$LOAD" "$COPY") (target <= 1.5)"
echo "nightly churn: $SUMMARY"
echo "P3b nightly churn: dirsync apply ${NIGHT}s | psql: \\copy to staging + set-based sync in one transaction ${PSQLNIGHT}s | ratio $(ratio "$NIGHT" "$PSQLNIGHT") (target <= 1.3)"
echo "nightly floor: dirsync check (same file, no writes) ${FLOOR}s"
echo "hashing: $HASH_ROWS users ${NOHASH}s without, ${WITHHASH}s with generated passwords: $HPS argon2id hashes/s (19456 KiB, t=2, p=1)"
