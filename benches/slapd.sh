#!/usr/bin/env bash
# benches/slapd.sh DIR PORT — start a throwaway slapd in DIR on 127.0.0.1:PORT
# with the same recipe as tests/support/servers.rs: its templates
# tests/support/slapd.conf.in (mdb 4 GiB, dbnosync, ppolicy, monitor, service
# account with unlimited size limit) and tests/support/slapd-base.ldif.in.
# Prints the slapd pid. Stop it with: kill "$(cat DIR/slapd.pid)".
set -euo pipefail
dir=$1
port=$2
support="$(cd "$(dirname "$0")/../tests/support" && pwd)"
base="dc=example,dc=org"
admin="cn=admin,$base"
# fill TEMPLATE: its @NAME@ placeholders replaced (the values hold no `|`).
fill() {
  sed -e "s|@DIR@|$dir|g" \
    -e "s|@BASE@|$base|g" \
    -e "s|@ADMIN_DN@|$admin|g" \
    -e "s|@ADMIN_PASSWORD@|admin-secret|g" \
    -e "s|@SERVICE_DN@|cn=dirsync,ou=services,$base|g" \
    -e "s|@SERVICE_PASSWORD@|dirsync-secret|g" \
    -e "s|@PEOPLE_DN@|ou=people,$base|g" \
    -e "s|@LEAVERS_DN@|ou=leavers,$base|g" \
    -e "s|@GROUPS_DN@|ou=groups,$base|g" \
    -e "s|@POLICY_DN@|cn=default,ou=policies,$base|g" \
    "$1"
}
mkdir -p "$dir/data"
fill "$support/slapd.conf.in" >"$dir/slapd.conf"
fill "$support/slapd-base.ldif.in" >"$dir/base.ldif"
/usr/sbin/slapadd -q -f "$dir/slapd.conf" -l "$dir/base.ldif" >/dev/null
/usr/sbin/slapd -h "ldap://127.0.0.1:$port/" -f "$dir/slapd.conf" >"$dir/server.log" 2>&1
for _ in $(seq 100); do
  if ldapsearch -x -H "ldap://127.0.0.1:$port" -D "$admin" -w admin-secret -b "$base" -s base 1.1 >/dev/null 2>&1; then
    cat "$dir/slapd.pid"
    exit 0
  fi
  sleep 0.1
done
echo "slapd did not start; see $dir/server.log" >&2
exit 1
