//! One test environment over three real directory servers: OpenLDAP slapd,
//! Samba as an Active Directory DC, and 389 Directory Server. A case is
//! written once against [`Env`]; what differs between the servers (naming,
//! the key attribute, how a lock or "must change" looks, how writes are
//! counted, the connection's TLS) lives here, so every assertion says the
//! same thing of each server.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::directories::{Ds389, SambaAd};
use crate::servers::Slapd;

pub const BASE: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const LEAVERS: &str = "ou=leavers,dc=example,dc=org";
pub const GROUPS: &str = "ou=groups,dc=example,dc=org";
pub const HEADER: &str = "username,firstname,surname,email,title,department,phone,groups,status";

/// The servers of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OpenLdap,
    SambaAd,
    Ds389,
}

pub enum Server {
    OpenLdap(Slapd),
    SambaAd(SambaAd),
    Ds389(Ds389),
}

/// The policy every case starts from; `{absent}`, `{generate}`, `{ldap}`
/// and `{extra}` are filled in per server and case.
const POLICY: &str = r#"
target = "dir"
[sync]
absent = "{absent}"
[passwords]
generate = "{generate}"
[fields.phone]
clear_when_empty = true
[groups]
managed = ["staff", "vpn"]
[limits]
leavers = { max_percent = 100.0 }
deletes = { max = 100 }
{ldap}
{extra}
"#;

/// The `[ldap]` mapping for RFC servers (OpenLDAP, 389 DS); the fields are
/// [`LDAP_FIELDS`].
const LDAP_RFC: &str = r#"[ldap]
object_classes = ["top", "person", "organizationalPerson", "inetOrgPerson"]
dn = "uid={username},ou={department},ou=people,dc=example,dc=org"
{fields}
[ldap.templates]
cn = "{firstname} {surname}"
[ldap.groups]
type = "groupOfNames"
dn = "cn={group},ou=groups,dc=example,dc=org"
"#;

/// The `[ldap]` mapping for Active Directory: `user` objects named by
/// username, sAMAccountName the key (the flavour's default), a UPN.
const LDAP_AD: &str = r#"[ldap]
object_classes = ["top", "person", "organizationalPerson", "user"]
dn = "CN={username},OU={department},OU=people,DC=example,DC=org"
{fields}
[ldap.templates]
displayName = "{firstname} {surname}"
userPrincipalName = "{username}@example.org"
[ldap.groups]
type = "group"
dn = "CN={group},OU=groups,DC=example,DC=org"
"#;

/// The managed attributes: the same on every server.
const LDAP_FIELDS: &str = r#"[ldap.fields]
firstname = "givenName"
surname = "sn"
email = "mail"
title = "title"
phone = "telephoneNumber""#;

/// An RFC 4514 attribute value, escaped (enough for the tests' names).
pub fn escape_dn_value(v: &str) -> String {
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push_str(&format!("\\{:02X}", c as u32));
            }
            '#' if i == 0 => out.push_str("\\23"),
            _ => out.push(c),
        }
    }
    out
}

/// An RFC 4515 filter value, escaped.
pub fn escape_filter(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

/// A DN in one spelling, for comparing what different servers return (AD
/// answers `CN=…,OU=…,DC=…` and escapes `#` and `,` its own way): each
/// value unescaped, then escaped as [`escape_dn_value`] does, all lower case.
pub fn norm(dn: &str) -> String {
    let mut rdns: Vec<String> = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        // attribute
        let mut attr = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            attr.push(c);
        }
        // value, up to an unescaped ','
        let mut raw: Vec<u8> = Vec::new();
        let mut end = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let a = chars.next().unwrap_or('\\');
                    match (a.to_digit(16), chars.peek().and_then(|b| b.to_digit(16))) {
                        (Some(h), Some(l)) => {
                            chars.next();
                            raw.push((h * 16 + l) as u8);
                        }
                        _ => raw.extend(a.to_string().as_bytes()),
                    }
                }
                ',' => {
                    end = false;
                    break;
                }
                _ => raw.extend(c.to_string().as_bytes()),
            }
        }
        let value = String::from_utf8_lossy(&raw).trim().to_string();
        rdns.push(format!("{}={}", attr.trim(), escape_dn_value(&value)).to_lowercase());
        if end {
            break;
        }
    }
    rdns.join(",")
}

/// The values of an attribute in an LDIF answer (any entry; attribute
/// names compared without case, base64 values decoded).
pub fn values(ldif: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in ldif.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if !name.eq_ignore_ascii_case(attr) {
            continue;
        }
        match rest.strip_prefix(':') {
            Some(b64) => out.push(String::from_utf8_lossy(&decode_b64(b64.trim())).into_owned()),
            None => out.push(rest.trim_start().to_string()),
        }
    }
    out
}

/// The DNs of an LDIF answer, normalised with [`norm`].
pub fn dns(ldif: &str) -> Vec<String> {
    values(ldif, "dn").iter().map(|d| norm(d)).collect()
}

/// Entries in an LDIF answer.
pub fn entries(ldif: &str) -> usize {
    ldif.lines().filter(|l| l.starts_with("dn:")).count()
}

fn decode_b64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub results: String,
}

impl Run {
    /// The results row of a username: (change, result, message).
    pub fn row(&self, user: &str) -> (String, String, String) {
        let mut r = csv::ReaderBuilder::new().from_reader(self.results.as_bytes());
        let headers = r.headers().cloned().unwrap_or_default();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (u, c, res, m) = (col("username"), col("change"), col("result"), col("message"));
        for rec in r.records().flatten() {
            let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
            if get(u) == user {
                return (get(c), get(res), get(m));
            }
        }
        panic!("no results row for {user:?}:\n{}", self.results)
    }
}

pub struct Env {
    pub kind: Kind,
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A fresh server of `kind` with the test tree (OUs Finance and Sales,
    /// managed groups staff and vpn, unmanaged wiki, each with a
    /// placeholder member), and a config and policy for it.
    pub fn start(kind: Kind, absent: &str, extra: &str) -> Env {
        let server = match kind {
            Kind::OpenLdap => Slapd::start().map(Server::OpenLdap),
            Kind::SambaAd => SambaAd::start().map(Server::SambaAd),
            Kind::Ds389 => Ds389::start().map(Server::Ds389),
        };
        let server = server.unwrap_or_else(|e| panic!("cannot start {kind:?} for the LDAP tests: {e}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env { kind, server, dir };
        if env.ad() {
            // AD records an account's first logon (lastLogonTimestamp), a
            // write; the service account logs on once before any counting.
            let (dn, pw) = env.service();
            env.bind_check(dn, pw).expect("the service account binds");
        }
        env.add_ous(PEOPLE, &["Finance", "Sales"]);
        for g in ["staff", "vpn", "wiki"] {
            env.add_group(g);
        }
        std::fs::write(env.path("bind.secret"), format!("{}\n", env.service().1)).expect("write bind.secret");
        env.write_config("");
        env.write_policy(absent, extra);
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ad(&self) -> bool {
        self.kind == Kind::SambaAd
    }

    fn service(&self) -> (&'static str, &'static str) {
        match &self.server {
            Server::OpenLdap(_) => (Slapd::SERVICE_DN, Slapd::SERVICE_PASSWORD),
            Server::SambaAd(_) => (SambaAd::SERVICE_DN, SambaAd::SERVICE_PASSWORD),
            Server::Ds389(_) => (Ds389::SERVICE_DN, Ds389::SERVICE_PASSWORD),
        }
    }

    /// The connection part of `[targets.dir]`: plain LDAP for slapd,
    /// StartTLS for 389 DS, LDAPS for AD, each verifying the test CA.
    pub fn connection_toml(&self) -> String {
        match &self.server {
            Server::OpenLdap(s) => format!("url = \"{}\"\n", s.url()),
            Server::SambaAd(s) => format!(
                "url = \"{}\"\nca_file = \"{}\"\nflavour = \"ad\"\n",
                s.ldaps_url(),
                s.ca_file().display()
            ),
            Server::Ds389(s) => format!(
                "url = \"{}\"\nstarttls = true\nca_file = \"{}\"\nflavour = \"389ds\"\n",
                s.url(),
                s.ca_file().display()
            ),
        }
    }

    /// `[targets.dir]` bound as `bind_dn` (default: the service account).
    pub fn write_config_as(&self, bind_dn: Option<&str>, target_extra: &str) {
        let cfg = format!(
            "[targets.dir]\nkind = \"ldap\"\n{conn}bind_dn = \"{bind}\"\nbind_password_file = \"bind.secret\"\n\
             base = \"{PEOPLE}\"\nleavers = \"{LEAVERS}\"\nretries = 8\n{target_extra}\n[policies]\np = \"policy.toml\"\n",
            conn = self.connection_toml(),
            bind = bind_dn.unwrap_or(self.service().0),
        );
        std::fs::write(self.path("dirsync.toml"), cfg).expect("write dirsync.toml");
    }

    pub fn write_config(&self, target_extra: &str) {
        self.write_config_as(None, target_extra);
    }

    pub fn policy_text(&self, absent: &str, extra: &str) -> String {
        // AD cannot enable an account without a password: new users get one.
        let generate = if self.ad() { "new" } else { "never" };
        let ldap = if self.ad() { LDAP_AD } else { LDAP_RFC };
        POLICY
            .replace("{absent}", absent)
            .replace("{generate}", generate)
            .replace("{ldap}", &ldap.replace("{fields}", LDAP_FIELDS))
            .replace("{extra}", extra)
    }

    pub fn write_policy(&self, absent: &str, extra: &str) {
        std::fs::write(self.path("policy.toml"), self.policy_text(absent, extra)).expect("write policy");
    }

    /// Edit the policy file in place.
    pub fn edit_policy(&self, edit: impl Fn(String) -> String) {
        let p = std::fs::read_to_string(self.path("policy.toml")).expect("read policy");
        std::fs::write(self.path("policy.toml"), edit(p)).expect("write policy");
    }

    pub fn csv(&self, rows: &[&str]) -> PathBuf {
        self.csv_with(HEADER, rows)
    }

    pub fn csv_with(&self, header: &str, rows: &[&str]) -> PathBuf {
        let path = self.path("roster.csv");
        let mut text = format!("{header}\n");
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(&path, text).expect("write roster");
        path
    }

    pub fn dirsync(&self, verb: &str, file: &Path, extra: &[&str]) -> Run {
        let results = self.path("results.csv");
        let _ = std::fs::remove_file(&results);
        let out = Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--config")
            .arg(self.path("dirsync.toml"))
            .arg(verb)
            .arg(file)
            .arg("--results")
            .arg(&results)
            .args(extra)
            .output()
            .expect("run dirsync");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            results: std::fs::read_to_string(&results).unwrap_or_default(),
        };
        eprintln!(
            "dirsync {verb} ({:?}): exit {}\n{}{}",
            self.kind, run.code, run.stdout, run.stderr
        );
        run
    }

    pub fn apply(&self, rows: &[&str]) -> Run {
        let f = self.csv(rows);
        self.dirsync("apply", &f, &[])
    }

    // ---- the directory, read and written by an independent client ----

    pub fn ldapsearch(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<String, String> {
        match &self.server {
            Server::OpenLdap(s) => s.ldapsearch(base, filter, attrs),
            Server::SambaAd(s) => s.ldapsearch(base, filter, attrs),
            Server::Ds389(s) => s.ldapsearch(base, filter, attrs),
        }
    }

    /// Search the whole tree (as the server's administrator).
    pub fn search(&self, filter: &str, attrs: &[&str]) -> String {
        self.ldapsearch(BASE, filter, attrs)
            .unwrap_or_else(|e| panic!("ldapsearch {filter}: {e}"))
    }

    pub fn ldapadd(&self, ldif: &str) {
        let r = match &self.server {
            Server::OpenLdap(s) => s.ldapadd_ldif(ldif),
            Server::SambaAd(s) => s.ldapadd_ldif(ldif),
            Server::Ds389(s) => s.ldapadd_ldif(ldif),
        };
        r.unwrap_or_else(|e| panic!("ldapadd: {e}\n{ldif}"));
    }

    pub fn ldapmodify(&self, ldif: &str) {
        let r = match &self.server {
            Server::OpenLdap(s) => s.ldapmodify_ldif(ldif),
            Server::SambaAd(s) => s.ldapmodify_ldif(ldif),
            Server::Ds389(s) => s.ldapmodify_ldif(ldif),
        };
        r.unwrap_or_else(|e| panic!("ldapmodify: {e}\n{ldif}"));
    }

    pub fn bind_check(&self, dn: &str, password: &str) -> Result<(), String> {
        match &self.server {
            Server::OpenLdap(s) => s.bind_check(dn, password),
            Server::SambaAd(s) => s.bind_check(dn, password),
            Server::Ds389(s) => s.bind_check(dn, password),
        }
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.server {
            Server::OpenLdap(s) => s.is_running(),
            Server::SambaAd(s) => s.is_running(),
            Server::Ds389(s) => s.is_running(),
        }
    }

    /// Stop the server (its data stays; `restart` brings it back).
    pub fn stop(&mut self) {
        let r = match &mut self.server {
            Server::OpenLdap(s) => s.stop(),
            Server::SambaAd(s) => s.stop(),
            Server::Ds389(s) => s.stop(),
        };
        r.unwrap_or_else(|e| panic!("stop {:?}: {e}", self.kind));
    }

    pub fn restart(&mut self) {
        let r = match &mut self.server {
            Server::OpenLdap(s) => s.restart(),
            Server::SambaAd(s) => s.restart(),
            Server::Ds389(s) => s.restart(),
        };
        r.unwrap_or_else(|e| panic!("restart {:?}: {e}", self.kind));
    }

    /// Completed writes (adds, modifies, deletes, renames) the server has
    /// counted: slapd's cn=Monitor, 389 DS's cn=snmp,cn=monitor, and AD's
    /// highestCommittedUSN (which every committed change raises).
    pub fn writes(&self) -> u64 {
        match &self.server {
            Server::OpenLdap(s) => s.op_counts().expect("monitor counters").writes(),
            Server::Ds389(_) => {
                let ldif = self
                    .ldapsearch(
                        "cn=snmp,cn=monitor",
                        "(objectClass=*)",
                        &["addentryops", "removeentryops", "modifyentryops", "modifyrdnops"],
                    )
                    .expect("389 DS snmp counters");
                ["addentryops", "removeentryops", "modifyentryops", "modifyrdnops"]
                    .iter()
                    .map(|a| {
                        values(&ldif, a)
                            .first()
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(0)
                    })
                    .sum()
            }
            Server::SambaAd(s) => {
                let mut cmd = s.client("ldapsearch", None).expect("ldapsearch");
                cmd.args(["-LLL", "-b", "", "-s", "base", "(objectClass=*)", "highestCommittedUSN"]);
                let out = cmd.output().expect("run ldapsearch");
                let text = String::from_utf8_lossy(&out.stdout);
                values(&text, "highestCommittedUSN")
                    .first()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no highestCommittedUSN: {text}"))
            }
        }
    }

    // ---- what differs between the servers ----

    /// The attribute holding the username.
    pub fn key_attr(&self) -> &'static str {
        if self.ad() {
            "sAMAccountName"
        } else {
            "uid"
        }
    }

    /// The attribute that names an entry for life (a move keeps it).
    pub fn entry_id_attr(&self) -> &'static str {
        match self.kind {
            Kind::OpenLdap => "entryUUID",
            Kind::SambaAd => "objectGUID",
            Kind::Ds389 => "nsUniqueId",
        }
    }

    /// The attribute the `{firstname} {surname}` template fills.
    pub fn name_attr(&self) -> &'static str {
        if self.ad() {
            "displayName"
        } else {
            "cn"
        }
    }

    /// Filter for the accounts dirsync creates.
    pub fn person_filter(&self) -> &'static str {
        if self.ad() {
            "(&(objectCategory=person)(objectClass=user))"
        } else {
            "(objectClass=inetOrgPerson)"
        }
    }

    /// The DN an account gets in `parent` (normalised).
    pub fn user_dn_in(&self, user: &str, parent: &str) -> String {
        let rdn = if self.ad() { "cn" } else { "uid" };
        norm(&format!("{rdn}={},{parent}", escape_dn_value(user)))
    }

    /// The DN of an active account in a department (normalised).
    pub fn user_dn(&self, user: &str, dept: &str) -> String {
        self.user_dn_in(user, &format!("ou={},{PEOPLE}", escape_dn_value(dept)))
    }

    pub fn group_dn(&self, group: &str) -> String {
        norm(&format!("cn={group},{GROUPS}"))
    }

    /// A member every test group has from the start (a group needs one on
    /// RFC servers; on AD it is the service account).
    pub fn placeholder(&self) -> String {
        if self.ad() {
            norm(SambaAd::SERVICE_DN)
        } else {
            "cn=placeholder".into()
        }
    }

    pub fn add_ous(&self, parent: &str, names: &[&str]) {
        let mut ldif = String::new();
        for n in names {
            ldif.push_str(&format!(
                "dn: ou={},{parent}\nobjectClass: organizationalUnit\nou: {n}\n\n",
                escape_dn_value(n)
            ));
        }
        self.ldapadd(&ldif);
    }

    pub fn add_group(&self, name: &str) {
        let ldif = if self.ad() {
            format!(
                "dn: CN={name},{GROUPS}\nobjectClass: group\nsAMAccountName: {name}\nmember: {}\n",
                SambaAd::SERVICE_DN
            )
        } else {
            format!("dn: cn={name},{GROUPS}\nobjectClass: groupOfNames\ncn: {name}\nmember: cn=placeholder\n")
        };
        self.ldapadd(&ldif);
    }

    /// The account's entry (LDIF) found by username.
    pub fn user(&self, user: &str, attrs: &[&str]) -> String {
        self.search(&format!("({}={})", self.key_attr(), escape_filter(user)), attrs)
    }

    /// The members of a group (normalised DNs).
    pub fn members(&self, group: &str) -> Vec<String> {
        let ldif = self
            .ldapsearch(GROUPS, &format!("(cn={group})"), &["member"])
            .unwrap_or_else(|e| panic!("group {group}: {e}"));
        values(&ldif, "member").iter().map(|m| norm(m)).collect()
    }

    /// The accounts dirsync manages (active and leavers).
    pub fn people(&self) -> usize {
        [PEOPLE, LEAVERS]
            .iter()
            .map(|b| {
                entries(
                    &self
                        .ldapsearch(b, self.person_filter(), &["1.1"])
                        .expect("count people"),
                )
            })
            .sum()
    }

    /// Whether the account is disabled the server's way: ppolicy's
    /// pwdAccountLockedTime, AD's ACCOUNTDISABLE bit, 389 DS's nsAccountLock.
    pub fn is_locked(&self, user: &str) -> bool {
        match self.kind {
            Kind::OpenLdap => !values(&self.user(user, &["pwdAccountLockedTime"]), "pwdAccountLockedTime").is_empty(),
            Kind::SambaAd => values(&self.user(user, &["userAccountControl"]), "userAccountControl")
                .first()
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|u| u & 2 != 0),
            Kind::Ds389 => values(&self.user(user, &["nsAccountLock"]), "nsAccountLock")
                .first()
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }
    }

    /// The usernames of locked accounts.
    pub fn locked(&self) -> Vec<String> {
        let lock = match self.kind {
            Kind::OpenLdap => "(pwdAccountLockedTime=*)",
            Kind::SambaAd => "(userAccountControl:1.2.840.113556.1.4.803:=2)",
            Kind::Ds389 => "(nsAccountLock=TRUE)",
        };
        let filter = format!("(&{}{lock})", self.person_filter());
        let mut out = Vec::new();
        for b in [PEOPLE, LEAVERS] {
            let ldif = self
                .ldapsearch(b, &filter, &[self.key_attr()])
                .expect("locked accounts");
            out.extend(values(&ldif, self.key_attr()));
        }
        out.sort();
        out
    }

    /// Whether the account must change its password at the next login:
    /// pwdReset, pwdLastSet = 0, or 389 DS's reset expiration time.
    pub fn must_change(&self, user: &str) -> bool {
        let (attr, value) = match self.kind {
            Kind::OpenLdap => ("pwdReset", "TRUE"),
            Kind::SambaAd => ("pwdLastSet", "0"),
            Kind::Ds389 => ("passwordExpirationTime", "19700101000000Z"),
        };
        values(&self.user(user, &[attr]), attr).iter().any(|v| v == value)
    }

    /// An account with read access only, outside the managed tree; its
    /// password is the service account's (so `bind.secret` serves both).
    pub fn add_reader(&self) -> String {
        let pw = self.service().1;
        match &self.server {
            Server::SambaAd(_) => {
                let dn = format!("CN=reader,{}", SambaAd::USERS_DN);
                self.ldapadd(&format!(
                    "dn: {dn}\nobjectClass: user\nsAMAccountName: reader\nunicodePwd:: {}\nuserAccountControl: 66048\n",
                    crate::directories::unicode_pwd_base64(pw)
                ));
                dn
            }
            _ => {
                let dn = format!("uid=reader,{BASE}");
                self.ldapadd(&format!(
                    "dn: {dn}\nobjectClass: inetOrgPerson\nuid: reader\ncn: reader\nsn: reader\nuserPassword: {pw}\n"
                ));
                dn
            }
        }
    }

    /// Make the server refuse passwords shorter than 8 characters.
    pub fn require_long_passwords(&self) {
        match self.kind {
            Kind::OpenLdap => self.ldapmodify(&format!(
                "dn: {}\nchangetype: modify\nreplace: pwdMinLength\npwdMinLength: 8\n-\nreplace: pwdCheckQuality\npwdCheckQuality: 2\n",
                Slapd::POLICY_DN
            )),
            Kind::SambaAd => self.ldapmodify(&format!(
                "dn: {}\nchangetype: modify\nreplace: minPwdLength\nminPwdLength: 8\n",
                SambaAd::BASE
            )),
            Kind::Ds389 => self.ldapmodify(
                "dn: cn=config\nchangetype: modify\nreplace: passwordCheckSyntax\npasswordCheckSyntax: on\n-\n\
                 replace: passwordMinLength\npasswordMinLength: 8\n",
            ),
        }
    }
}
