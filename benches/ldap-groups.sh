#!/usr/bin/env bash
# P2g (issue 16): the initial load of ROWS users WITH their memberships in the
# six groupOfNames groups dirsync-genroster writes, into a throwaway slapd
# (benches/slapd.sh), against `ldapadd` of the same users into a second one
# followed by one `ldapmodify` per group adding its full member list.
#
#   benches/ldap-groups.sh                 # ROWS=20000 (BENCHMARKS.md: 100000)
#   ROWS=20000 EXTRA="batch_size = 10000" benches/ldap-groups.sh
#
# Prints both times, the add/modify operation counts (cn=Monitor) and the
# ratio; checks two groups hold the same members on both servers. Stops
# both servers on exit.
set -euo pipefail
ROWS=${ROWS:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release}
work=$(mktemp -d /tmp/dirsync-ldap-groups.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { # stop both servers and wait (10 s at most) until they are gone
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  [[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
pa=$(free_port); pb=$(free_port)
pids+=("$("$root/benches/slapd.sh" "$work/a" "$pa" 2>/dev/null)")
pids+=("$("$root/benches/slapd.sh" "$work/b" "$pb" 2>/dev/null)")
svc="cn=dirsync,ou=services,dc=example,dc=org"
A=(-x -H "ldap://127.0.0.1:$pa" -D "$svc" -w dirsync-secret)
B=(-x -H "ldap://127.0.0.1:$pb" -D "$svc" -w dirsync-secret)
ops() { ldapsearch -x -H "ldap://127.0.0.1:$1" -D "cn=admin,dc=example,dc=org" -w admin-secret -LLL \
    -b cn=Operations,cn=Monitor '(|(cn=Add)(cn=Modify))' monitorOpCompleted | awk '/^dn: cn=Add/{k="add"} /^dn: cn=Modify/{k="mod"} /^monitorOpCompleted:/{printf "%s=%s ", k, $2}'; }
GRPS="staff vpn finance-share eng-wiki sales-crm hr-portal"
for g in $GRPS; do printf 'dn: cn=%s,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: %s\nmember: cn=admin,dc=example,dc=org\n\n' $g $g; done > "$work/groups.ldif"
ldapadd -x -H "ldap://127.0.0.1:$pa" -D cn=admin,dc=example,dc=org -w admin-secret -f "$work/groups.ldif" >/dev/null
ldapadd -x -H "ldap://127.0.0.1:$pb" -D cn=admin,dc=example,dc=org -w admin-secret -f "$work/groups.ldif" >/dev/null
"$bin/dirsync-genroster" --rows "$ROWS" --out "$work/base.csv"
"$bin/dirsync-genroster" --rows "$ROWS" --format ldif --out "$work/base.ldif"
python3 - "$work/base.csv" "$work/members.ldif" <<'PY'
import csv, sys
m = {}
for row in csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")):
    for g in filter(None, row["groups"].split(";")):
        m.setdefault(g, []).append(f"uid={row['username']},ou=people,dc=example,dc=org")
with open(sys.argv[2], "w") as f:
    for g, ms in m.items():
        f.write(f"dn: cn={g},ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\n")
        f.writelines(f"member: {x}\n" for x in ms)
        f.write("-\n\n")
print(sum(len(v) for v in m.values()), "memberships in", len(m), "groups")
PY
echo dirsync-secret > "$work/bind.secret"
cat >"$work/dirsync.toml" <<EOT
[targets.bench]
kind = "ldap"
url = "ldap://127.0.0.1:$pa"
bind_dn = "$svc"
bind_password_file = "bind.secret"
base = "ou=people,dc=example,dc=org"
leavers = "ou=leavers,dc=example,dc=org"
${EXTRA:-}
[policies]
bench = "bench.toml"
EOT
cp "$root/benches/ldap-policy.toml" "$work/bench.toml"
cat >>"$work/bench.toml" <<'EOT'
[groups]
managed = ["staff", "vpn", "finance-share", "eng-wiki", "sales-crm", "hr-portal"]
[ldap.groups]
type = "groupOfNames"
dn = "cn={group},ou=groups,dc=example,dc=org"
EOT
echo "before: A $(ops $pa) B $(ops $pb)"
t0=$(date +%s.%N); "$bin/dirsync" --config "$work/dirsync.toml" apply "$work/base.csv" --results "$work/r.csv" > "$work/ds.out" || true; head -1 "$work/ds.out"; t1=$(date +%s.%N)
ds=$(echo "$t1 - $t0" | bc)
echo "dirsync: $ds s  ops: $(ops $pa)"
t0=$(date +%s.%N); ldapadd -c "${B[@]}" -f "$work/base.ldif" >/dev/null; t1=$(date +%s.%N)
ldapmodify "${B[@]}" -f "$work/members.ldif" >/dev/null; t2=$(date +%s.%N)
base=$(echo "$t2 - $t0" | bc)
echo "ldapadd users: $(echo "$t1 - $t0" | bc) s, groups: $(echo "$t2 - $t1" | bc) s  ops: $(ops $pb)"
for g in staff vpn; do
  echo "$g: A $(ldapsearch "${A[@]}" -LLL -b cn=$g,ou=groups,dc=example,dc=org -s base member | grep -c '^member:') B $(ldapsearch "${B[@]}" -LLL -b cn=$g,ou=groups,dc=example,dc=org -s base member | grep -c '^member:')"
done
echo "P2g initial load with groups, $ROWS users: dirsync $ds s, ldapadd + group modifies $base s, throughput ratio $(python3 -c "print(f'{$base / $ds:.2f}')") (target >= 1.0)"
