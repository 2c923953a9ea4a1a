#!/usr/bin/env bash
# benches/slapd.sh DIR PORT — start a throwaway slapd in DIR on 127.0.0.1:PORT
# with the same recipe as tests/support/servers.rs (mdb 4 GiB, dbnosync,
# ppolicy, monitor, service account with unlimited size limit). Prints the
# slapd pid. Stop it with: kill "$(cat DIR/slapd.pid)".
set -euo pipefail
dir=$1
port=$2
base="dc=example,dc=org"
admin="cn=admin,$base"
svc="cn=dirsync,ou=services,$base"
policy="cn=default,ou=policies,$base"
mkdir -p "$dir/data"
cat >"$dir/slapd.conf" <<CONF
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload argon2
moduleload pw-sha2
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
database monitor
access to dn.subtree="cn=Monitor"
  by dn.exact="$admin" read
  by dn.exact="$svc" read
  by * none
database mdb
maxsize 4294967296
dbnosync
suffix "$base"
rootdn "$admin"
rootpw admin-secret
directory $dir/data
lastmod on
index objectClass eq
index uid eq
index mail eq
index cn eq
limits dn.exact="$svc" size=unlimited time=unlimited
access to attrs=userPassword
  by dn.exact="$svc" write
  by self write
  by anonymous auth
  by * none
access to *
  by dn.exact="$svc" write
  by self read
  by users read
  by * none
overlay ppolicy
ppolicy_default "$policy"
CONF
cat >"$dir/base.ldif" <<LDIF
dn: $base
objectClass: top
objectClass: dcObject
objectClass: organization
o: example.org
dc: example

dn: ou=people,$base
objectClass: organizationalUnit
ou: people

dn: ou=leavers,$base
objectClass: organizationalUnit
ou: leavers

dn: ou=groups,$base
objectClass: organizationalUnit
ou: groups

dn: ou=services,$base
objectClass: organizationalUnit
ou: services

dn: $svc
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: dirsync
userPassword: dirsync-secret

dn: ou=policies,$base
objectClass: organizationalUnit
ou: policies

dn: $policy
objectClass: top
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 0
pwdMustChange: FALSE
pwdAllowUserChange: TRUE
LDIF
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
