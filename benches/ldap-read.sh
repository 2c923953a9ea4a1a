#!/usr/bin/env bash
# R (issue 16), the read side of an LDAP run, for two builds side by side:
# ROWS entries (dirsync-genroster's LDIF, ldapadd) in one throwaway slapd
# (benches/slapd.sh); then, TRIES times interleaved: the paged `ldapsearch`
# of the scope (the same attributes), and `dirsync check` of the same roster
# (every row unchanged: nothing to write) with each build; `snapshot_ms`
# from each run's log. Stops the server on exit.
#
#   benches/ldap-read.sh OLD_BIN_DIR NEW_BIN_DIR      # ROWS=100000 TRIES=5
set -euo pipefail
ROWS=${ROWS:-100000}; TRIES=${TRIES:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
OLD=$1 NEW=$2
work=$(mktemp -d /tmp/ldapr.XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=$("$root/benches/slapd.sh" "$work/s" "$port" 2>/dev/null)
stop() { kill "$pid" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; rm -rf "$work"; }
trap stop EXIT
svc="cn=dirsync,ou=services,dc=example,dc=org"
"$NEW/dirsync-genroster" --rows "$ROWS" --out "$work/g.csv"
"$NEW/dirsync-genroster" --rows "$ROWS" --format ldif --out "$work/base.ldif"
python3 - "$work/g.csv" "$work/base.csv" <<'PY'
import csv, sys
r = csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))
w = csv.writer(open(sys.argv[2], "w", newline="", encoding="utf-8"), lineterminator="\n")
for row in r: w.writerow(row[:9] + row[10:])
PY
ldapadd -x -H "ldap://127.0.0.1:$port" -D cn=admin,dc=example,dc=org -w admin-secret -f "$work/base.ldif" >/dev/null
echo dirsync-secret >"$work/bind.secret"
cat >"$work/dirsync.toml" <<EOT
[targets.bench]
kind = "ldap"
url = "ldap://127.0.0.1:$port"
bind_dn = "$svc"
bind_password_file = "bind.secret"
base = "ou=people,dc=example,dc=org"
leavers = "ou=leavers,dc=example,dc=org"
[policies]
bench = "bench.toml"
EOT
cp "$root/benches/ldap-policy.toml" "$work/bench.toml"
now() { date +%s.%N; }
for i in $(seq 1 "$TRIES"); do
  t0=$(now); ldapsearch -x -H "ldap://127.0.0.1:$port" -D "$svc" -w dirsync-secret -LLL -E pr=1000/noprompt \
     -b ou=people,dc=example,dc=org '(&(objectClass=inetOrgPerson)(uid=*))' uid givenName sn mail title departmentNumber l employeeType telephoneNumber pwdAccountLockedTime >/dev/null; t1=$(now)
  line="try $i: ldapsearch $(python3 -c "print(f'{$t1-$t0:.2f}')")"
  for b in OLD NEW; do
    d=${!b}
    t0=$(now); DIRSYNC_LOG=info "$d/dirsync" --config "$work/dirsync.toml" check "$work/base.csv" --results "$work/r.csv" >"$work/out" 2>"$work/log" || true; t1=$(now)
    line="$line | $b check $(python3 -c "print(f'{$t1-$t0:.2f}')") s ($(grep -o 'snapshot_ms=[0-9]*' "$work/log" | tail -1))"
  done
  echo "$line"
done
head -1 "$work/out"
