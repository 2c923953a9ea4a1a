#!/usr/bin/env bash
# benches/ldap.sh — the LDAP target against OpenLDAP's own tools, with the
# group memberships real HR files carry (issue 16: P2g, P1, R).
#
#   cargo build --release --bins && benches/ldap.sh            # 100k rows, 1.5 % churn
#   ROWS=20000 CHURN=1.5 benches/ldap.sh                        # smaller
#   BINS=/path/to/bins benches/ldap.sh                          # another build
#
# Starts throwaway slapd servers (benches/slapd.sh: the recipe of
# tests/support/servers.rs — mdb with dbnosync, ppolicy, equality indexes)
# with the six groupOfNames groups of dirsync-genroster (each with one
# placeholder member), and measures with the same generated people:
#   P2g initial load: `dirsync apply` of ROWS people with their groups into
#       server A vs `ldapadd -c` of the same entries into server B, then one
#       `ldapmodify` per group adding its full member list; two rounds on
#       fresh pairs of servers, dirsync first in one and second in the other
#       (the order alone swung a load by 1.7x on this VM); the sums compared;
#   P1  next night (CHURN %: adds, updates, leavers, their memberships):
#       `dirsync apply` end to end on A vs, on B, the paged `ldapsearch` of
#       the scope and of the groups + `ldapmodify -c` of exactly the changes
#       dirsync made (benches/ldif_diff.py: one modify per entry, one modrdn
#       per move, one modify per group); then B must equal A;
#   R   the same next-night file again on A: zero writes (cn=Monitor), vs
#       the same paged reads alone; three of each, alternating, medians.
# Both clients bind as the same service account. No passwords are set
# (passwords.generate = "never": hashing is the server's cost, the same for
# both). P1 and R run on the second round's servers. Every server is
# stopped on exit.
set -euo pipefail

ROWS=${ROWS:-100000}
CHURN=${CHURN:-1.5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BINS:-${CARGO_TARGET_DIR:-$root/target}/release}
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
  for p in "${pids[@]}"; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
  [[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

svc="cn=dirsync,ou=services,dc=example,dc=org"
svc_pw=dirsync-secret
admin=(-D cn=admin,dc=example,dc=org -w admin-secret)
ATTRS=(uid givenName sn mail title departmentNumber l employeeType telephoneNumber pwdAccountLockedTime)
GROUP_NAMES="staff vpn finance-share eng-wiki sales-crm hr-portal"

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{$(now) - $1:.2f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
writes() { # completed add+modify+delete+modrdn on server $1
  ldapsearch -x -H "ldap://127.0.0.1:$1" "${admin[@]}" -LLL \
    -b cn=Operations,cn=Monitor '(|(cn=Add)(cn=Modify)(cn=Delete)(cn=Modrdn))' monitorOpCompleted |
    awk '/^monitorOpCompleted:/ {s += $2} END {print s + 0}'
}
# The read a sync needs: the scope's people (paged) and the groups' members.
read_scope() { # auth array name
  local -n auth=$1
  ldapsearch "${auth[@]}" -LLL -E pr=1000/noprompt -b ou=people,dc=example,dc=org \
    '(&(objectClass=inetOrgPerson)(uid=*))' "${ATTRS[@]}" >/dev/null
  ldapsearch "${auth[@]}" -LLL -b ou=groups,dc=example,dc=org '(objectClass=groupOfNames)' member >/dev/null
}
dump() { # port file: everything dirsync manages, for the diff and the final check
  ldapsearch -x -H "ldap://127.0.0.1:$1" "${admin[@]}" -LLL -o ldif-wrap=no -E pr=1000/noprompt \
    -b dc=example,dc=org '(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))' '*' pwdAccountLockedTime >"$2"
}

echo "# generating $ROWS people with their groups (and the next night, $CHURN % churn)"
"$bin/dirsync-genroster" --rows "$ROWS" --out "$work/base.csv"
"$bin/dirsync-genroster" --rows "$ROWS" --format ldif --out "$work/base.ldif"
"$bin/dirsync-genroster" --rows "$ROWS" --next-night "$CHURN" --out "$work/next.csv" 2>"$work/churn.txt"
cat "$work/churn.txt"
for g in $GROUP_NAMES; do
  printf 'dn: cn=%s,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: %s\nmember: cn=admin,dc=example,dc=org\n\n' "$g" "$g"
done >"$work/groups.ldif"
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

echo "$svc_pw" >"$work/bind.secret"
cat >"$work/dirsync.toml.in" <<EOF
[targets.bench]
kind = "ldap"
url = "ldap://127.0.0.1:@PORT@"
bind_dn = "$svc"
bind_password_file = "bind.secret"
base = "ou=people,dc=example,dc=org"
leavers = "ou=leavers,dc=example,dc=org"
${DIRSYNC_TARGET_EXTRA:-}
[policies]
bench = "bench.toml"
EOF
cp "$root/benches/ldap-policy.toml" "$work/bench.toml"
cat >>"$work/bench.toml" <<'EOF'
[groups]
managed = ["staff", "vpn", "finance-share", "eng-wiki", "sales-crm", "hr-portal"]
[ldap.groups]
type = "groupOfNames"
dn = "cn={group},ou=groups,dc=example,dc=org"
EOF
dirsync() { "$bin/dirsync" --config "$cfg" "$@"; }

# One round of P2g: two fresh servers with the empty groups, both loads
# (in the order given: "dirsync" or "ldapadd" first), then both servers
# must hold the same. Leaves port_a, port_b, auth_a, auth_b and cfg (a
# config with a journal of its own) to the round's servers.
round() { # n first
  local n=$1 first=$2 w0 t
  port_a=$(free_port)
  port_b=$(free_port)
  pids+=("$("$root/benches/slapd.sh" "$work/slapd-a$n" "$port_a" 2>/dev/null)")
  pids+=("$("$root/benches/slapd.sh" "$work/slapd-b$n" "$port_b" 2>/dev/null)")
  auth_a=(-x -H "ldap://127.0.0.1:$port_a" -D "$svc" -w "$svc_pw")
  auth_b=(-x -H "ldap://127.0.0.1:$port_b" -D "$svc" -w "$svc_pw")
  for p in "$port_a" "$port_b"; do
    ldapadd -x -H "ldap://127.0.0.1:$p" "${admin[@]}" -f "$work/groups.ldif" >/dev/null
  done
  cfg="$work/dirsync$n.toml"
  sed "s|@PORT@|$port_a|" "$work/dirsync.toml.in" >"$cfg"
  printf '[service]\nstate_dir = "state%s"\n' "$n" >>"$cfg"
  local sides=(dirsync ldapadd)
  [[ $first == dirsync ]] || sides=(ldapadd dirsync)
  for side in "${sides[@]}"; do
    # Each load starts with the disk flushed: the first one's writeback
    # must not land on the second.
    sync
    if [[ $side == dirsync ]]; then
      w0=$(writes "$port_a")
      t=$(now); dirsync apply "$work/base.csv" --results "$work/base.results.csv" >"$work/p2.out"; p2_dirsync[n]=$(since "$t")
      p2_ops=$(($(writes "$port_a") - w0))
      cat "$work/p2.out"
    else
      w0=$(writes "$port_b")
      t=$(now)
      ldapadd -c "${auth_b[@]}" -f "$work/base.ldif" >/dev/null
      ldapmodify "${auth_b[@]}" -f "$work/members.ldif" >/dev/null
      p2_base[n]=$(since "$t")
      p2_base_ops=$(($(writes "$port_b") - w0))
    fi
  done
  dump "$port_a" "$work/a1.ldif"
  dump "$port_b" "$work/b1.ldif"
  cmp -s <(python3 "$root/benches/ldif_diff.py" "$work/b1.ldif" "$work/a1.ldif" /dev/null) <(echo "changes: 0 adds, 0 moves, 0 entry modifies, 0 group modifies, 0 deletes") ||
    { echo "P2g: the two servers differ after the load" >&2; exit 1; }
  echo "round $n ($first first): dirsync ${p2_dirsync[n]} s, ldapadd + ldapmodify ${p2_base[n]} s; both servers hold the same $ROWS people and memberships; write operations: dirsync $p2_ops, ldapadd + ldapmodify $p2_base_ops"
}

echo
echo "# P2g: initial load of $ROWS people with their memberships, twice"
# This VM pays for memory the host has taken back (zeroing pages runs 5 to
# 10x slower then), and a load's time swings by 1.7x with it: in one order,
# the second load ran in 14 s and the first in 28 s. So each side loads once
# first and once second, on fresh servers, and the two rounds are summed.
p2_dirsync=()
p2_base=()
round 1 dirsync
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
round 2 ldapadd
p2_dirsync_sum=$(python3 -c "print(f'{${p2_dirsync[1]} + ${p2_dirsync[2]}:.2f}')")
p2_base_sum=$(python3 -c "print(f'{${p2_base[1]} + ${p2_base[2]}:.2f}')")

echo
echo "# P1: next night"
w0=$(writes "$port_a")
dirsync check "$work/next.csv" --results "$work/next.check.csv" >/dev/null || true
check_writes=$(($(writes "$port_a") - w0))
w0=$(writes "$port_a")
t=$(now); dirsync apply "$work/next.csv" --results "$work/next.results.csv" >"$work/p1.out"; p1_dirsync=$(since "$t")
p1_ops=$(($(writes "$port_a") - w0))
cat "$work/p1.out"
dump "$port_a" "$work/a2.ldif"
python3 "$root/benches/ldif_diff.py" "$work/b1.ldif" "$work/a2.ldif" "$work/changes.ldif"
t=$(now); read_scope auth_b; p1_read=$(since "$t")
w0=$(writes "$port_b")
t=$(now); ldapmodify -c "${auth_b[@]}" -f "$work/changes.ldif" >/dev/null; p1_write=$(since "$t")
p1_base_ops=$(($(writes "$port_b") - w0))
p1_base=$(python3 -c "print(f'{$p1_read + $p1_write:.2f}')")
dump "$port_b" "$work/b2.ldif"
cmp -s <(python3 "$root/benches/ldif_diff.py" "$work/b2.ldif" "$work/a2.ldif" /dev/null) <(echo "changes: 0 adds, 0 moves, 0 entry modifies, 0 group modifies, 0 deletes") ||
  { echo "P1: the baseline did not reach dirsync's state" >&2; exit 1; }
echo "both servers equal after the night; write operations: dirsync $p1_ops, ldapmodify $p1_base_ops"

echo
echo "# R: the same next-night file again"
w0=$(writes "$port_a")
# Three times each, alternating; the medians are compared.
r_d=()
r_r=()
for k in 1 2 3; do
  t=$(now); dirsync apply "$work/next.csv" --results "$work/rerun.results.csv" >"$work/r.out"; r_d+=("$(since "$t")")
  t=$(now); read_scope auth_a; r_r+=("$(since "$t")")
done
r_writes=$(($(writes "$port_a") - w0))
cat "$work/r.out"
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
r_dirsync=$(median "${r_d[@]}")
r_read=$(median "${r_r[@]}")
echo "dirsync ${r_d[*]} s; paged reads ${r_r[*]} s"

echo
echo "## results ($ROWS rows, churn $CHURN %, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(slapd -VV 2>&1 | grep -o 'slapd [0-9.]*' | head -1))"
echo "P2g initial load with groups, two rounds: dirsync ${p2_dirsync[1]} + ${p2_dirsync[2]} = ${p2_dirsync_sum} s | ldapadd + one modify per group ${p2_base[1]} + ${p2_base[2]} = ${p2_base_sum} s | throughput ratio $(ratio "$p2_base_sum" "$p2_dirsync_sum")x (target >= 1.0)"
echo "P1  nightly with group changes: dirsync ${p1_dirsync} s | reads ${p1_read} s + ldapmodify -c ${p1_write} s = ${p1_base} s | ratio $(ratio "$p1_dirsync" "$p1_base")x (target <= 1.3)"
echo "R   re-run, nothing to write (median of 3): dirsync ${r_dirsync} s, ${r_writes} writes | paged reads ${r_read} s | ratio $(ratio "$r_dirsync" "$r_read")x (target <= 1.2)"
echo "dry run (check) writes: $check_writes"
