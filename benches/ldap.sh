#!/usr/bin/env bash
# benches/ldap.sh — the LDAP target against OpenLDAP's own tools.
#
#   cargo build --release --bins && benches/ldap.sh            # 100k rows, 1.5 % churn
#   ROWS=20000 CHURN=1.5 benches/ldap.sh                        # smaller
#
# Starts two throwaway slapd servers (benches/slapd.sh: the same recipe as
# tests/support/servers.rs — mdb with dbnosync, ppolicy, equality indexes on
# objectClass/uid/mail/cn) and measures, with the same generated people:
#   P2  initial load: `dirsync apply` of ROWS adds into server A
#       vs `ldapadd -c` of the same entries as LDIF into server B;
#   P1  next night (CHURN % adds, updates, leavers): `dirsync apply` end to
#       end on A vs paged `ldapsearch` of the scope + `ldapmodify` of exactly
#       those changes on B;
#   R   the same next-night file again on A: zero writes, vs the paged read.
# Both clients bind as the same service account. No passwords are set
# (passwords.generate = "never"): hashing cost is the server's and is the
# same for both; it is not what this measures.
set -euo pipefail

ROWS=${ROWS:-100000}
CHURN=${CHURN:-1.5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
for b in dirsync dirsync-genroster; do
  [[ -x $bin/$b ]] || { echo "missing $bin/$b: run cargo build --release --bins" >&2; exit 2; }
done
for b in /usr/sbin/slapd /usr/bin/ldapadd /usr/bin/ldapsearch; do
  [[ -x $b ]] || { echo "missing $b: run scripts/install-test-deps (Debian slapd, ldap-utils)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/dirsync-ldap-bench.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

port_a=$(free_port)
port_b=$(free_port)
pids+=("$("$root/benches/slapd.sh" "$work/slapd-a" "$port_a" 2>/dev/null)")
pids+=("$("$root/benches/slapd.sh" "$work/slapd-b" "$port_b" 2>/dev/null)")
svc="cn=dirsync,ou=services,dc=example,dc=org"
svc_pw=dirsync-secret
auth_b=(-x -H "ldap://127.0.0.1:$port_b" -D "$svc" -w "$svc_pw")
auth_a=(-x -H "ldap://127.0.0.1:$port_a" -D "$svc" -w "$svc_pw")

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }
writes() { # completed add+modify+delete+modrdn on server $1
  ldapsearch -x -H "ldap://127.0.0.1:$1" -D "cn=admin,dc=example,dc=org" -w admin-secret -LLL \
    -b cn=Operations,cn=Monitor '(|(cn=Add)(cn=Modify)(cn=Delete)(cn=Modrdn))' monitorOpCompleted |
    awk '/^monitorOpCompleted:/ {s += $2} END {print s + 0}'
}

echo "# generating $ROWS people (and the next night, $CHURN % churn)"
"$bin/dirsync-genroster" --rows "$ROWS" --out "$work/base.groups.csv"
"$bin/dirsync-genroster" --rows "$ROWS" --format ldif --out "$work/base.ldif"
"$bin/dirsync-genroster" --rows "$ROWS" --next-night "$CHURN" --out "$work/next.groups.csv" 2>"$work/churn.txt"
cat "$work/churn.txt"
# ldapadd's LDIF has no groups: drop the groups column so both write the same.
for f in base next; do
  python3 - "$work/$f.groups.csv" "$work/$f.csv" <<'PY'
import csv, sys
r = csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))
w = csv.writer(open(sys.argv[2], "w", newline="", encoding="utf-8"), lineterminator="\n")
for row in r:
    w.writerow(row[:9] + row[10:])
PY
done

echo "$svc_pw" >"$work/bind.secret"
cat >"$work/dirsync.toml" <<EOF
[targets.bench]
kind = "ldap"
url = "ldap://127.0.0.1:$port_a"
bind_dn = "$svc"
bind_password_file = "bind.secret"
base = "ou=people,dc=example,dc=org"
leavers = "ou=leavers,dc=example,dc=org"
${DIRSYNC_TARGET_EXTRA:-}
[policies]
bench = "bench.toml"
EOF
cp "$root/benches/ldap-policy.toml" "$work/bench.toml"
dirsync() { "$bin/dirsync" --config "$work/dirsync.toml" "$@"; }

echo
echo "# P2: initial load of $ROWS entries"
t=$(now); dirsync apply "$work/base.csv" --results "$work/base.results.csv" >"$work/p2.out"; p2_dirsync=$(since "$t")
cat "$work/p2.out"
t=$(now); ldapadd -c "${auth_b[@]}" -f "$work/base.ldif" >/dev/null; p2_ldapadd=$(since "$t")
count_a=$(ldapsearch "${auth_a[@]}" -LLL -E pr=1000/noprompt -b ou=people,dc=example,dc=org '(uid=*)' 1.1 | grep -c '^dn:')
count_b=$(ldapsearch "${auth_b[@]}" -LLL -E pr=1000/noprompt -b ou=people,dc=example,dc=org '(uid=*)' 1.1 | grep -c '^dn:')
echo "entries: dirsync $count_a, ldapadd $count_b"

echo
echo "# P1: next night"
# Exactly the night's changes as LDIF, from dirsync's own dry run on A
# (which also checks the dry run costs no writes).
w0=$(writes "$port_a")
dirsync check "$work/next.csv" --results "$work/next.check.csv" >/dev/null || true
w1=$(writes "$port_a")
python3 - "$work/next.check.csv" "$work/changes.ldif" <<'PY'
import csv, sys, time
rows = csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8"))
out = open(sys.argv[2], "w", encoding="utf-8")
lock = time.strftime("%Y%m%d%H%M%SZ", time.gmtime())
n = {"new": 0, "update": 0, "leaver": 0}
for r in rows:
    u, change = r["username"], r["change"]
    dn = f"uid={u},ou=people,dc=example,dc=org"
    if change == "new":
        n["new"] += 1
        out.write(f"dn: {dn}\nchangetype: add\nobjectClass: top\nobjectClass: person\n"
                  f"objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: {u}\n"
                  f"cn: {r['firstname']} {r['surname']}\ngivenName: {r['firstname']}\nsn: {r['surname']}\n"
                  f"mail: {r['email']}\ntitle: {r['title']}\ndepartmentNumber: {r['department']}\n"
                  f"l: {r['site']}\nemployeeType: {r['user_type']}\ntelephoneNumber: {r['phone'].lstrip(chr(39))}\n\n")
    elif change == "update":
        n["update"] += 1
        out.write(f"dn: {dn}\nchangetype: modify\nreplace: title\ntitle: {r['title']}\n-\n"
                  f"replace: departmentNumber\ndepartmentNumber: {r['department']}\n-\n"
                  f"replace: telephoneNumber\ntelephoneNumber: {r['phone'].lstrip(chr(39))}\n-\n\n")
    elif change == "leaver":
        n["leaver"] += 1
        out.write(f"dn: {dn}\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: {lock}\n-\n\n"
                  f"dn: {dn}\nchangetype: modrdn\nnewrdn: uid={u}\ndeleteoldrdn: 1\nnewsuperior: ou=leavers,dc=example,dc=org\n\n")
print(f"changes: {n['new']} adds, {n['update']} updates, {n['leaver']} leavers")
PY
t=$(now); dirsync apply "$work/next.csv" --results "$work/next.results.csv" >"$work/p1.out"; p1_dirsync=$(since "$t")
cat "$work/p1.out"
t=$(now)
ldapsearch "${auth_b[@]}" -LLL -E pr=1000/noprompt -b ou=people,dc=example,dc=org '(objectClass=inetOrgPerson)' \
  uid givenName sn mail title departmentNumber l employeeType telephoneNumber pwdAccountLockedTime >"$work/scope.ldif"
p1_read=$(since "$t")
t=$(now); ldapmodify -c "${auth_b[@]}" -f "$work/changes.ldif" >/dev/null; p1_write=$(since "$t")
p1_base=$(echo "$p1_read + $p1_write" | bc -l | xargs printf '%.2f')

echo
echo "# R: the same next-night file again"
w2=$(writes "$port_a")
t=$(now); dirsync apply "$work/next.csv" --results "$work/rerun.results.csv" >"$work/r.out"; r_dirsync=$(since "$t")
w3=$(writes "$port_a")
cat "$work/r.out"
t=$(now)
ldapsearch "${auth_a[@]}" -LLL -E pr=1000/noprompt -b ou=people,dc=example,dc=org '(objectClass=inetOrgPerson)' \
  uid givenName sn mail title departmentNumber l employeeType telephoneNumber pwdAccountLockedTime >/dev/null
r_read=$(since "$t")

ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }
echo
echo "## results ($ROWS rows, churn $CHURN %, $(nproc) cores, $(uname -r))"
echo "P2 dirsync apply   ${p2_dirsync}s  ($(rate "$ROWS" "$p2_dirsync") entries/s)"
echo "P2 ldapadd -c      ${p2_ldapadd}s  ($(rate "$ROWS" "$p2_ldapadd") entries/s)"
echo "P2 throughput ratio dirsync/ldapadd: $(ratio "$p2_ldapadd" "$p2_dirsync")x   (target >= 1.5x)"
echo "P1 dirsync apply   ${p1_dirsync}s"
echo "P1 baseline        ${p1_base}s  (paged ldapsearch ${p1_read}s + ldapmodify ${p1_write}s)"
echo "P1 time ratio dirsync/baseline: $(ratio "$p1_dirsync" "$p1_base")x   (target <= 1.3x)"
echo "R  dirsync re-run  ${r_dirsync}s, writes $((w3 - w2)); paged read alone ${r_read}s; ratio $(ratio "$r_dirsync" "$r_read")x"
echo "dry run (check) writes: $((w1 - w0))"
