//! The LDAP target's own config: the connection (`[targets.NAME]`, kind =
//! "ldap") and the mapping onto entries (`[ldap]` in a policy).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::dn::{Ava, Dn, DnTemplate, Template};
use crate::core::Policy;

/// Which directory server's semantics to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// OpenLDAP (and other RFC servers): ppolicy, Password Modify, `pwdReset`.
    #[default]
    Openldap,
    /// Active Directory: `userAccountControl`, `unicodePwd`, `pwdLastSet`.
    Ad,
    /// 389 Directory Server / Red Hat Directory Server: `nsAccountLock`,
    /// Password Modify, `passwordExpirationTime` for "change at next login".
    #[serde(rename = "389ds")]
    Ds389,
}

impl Flavour {
    /// The server checks entries against the schema as published (AD lets
    /// any object class take attributes its schema does not list for it).
    pub fn strict_schema(self) -> bool {
        self != Flavour::Ad
    }

    /// The server moves DN-valued memberships along with a renamed entry
    /// (AD's `member` is a linked attribute).
    pub fn moves_memberships(self) -> bool {
        self == Flavour::Ad
    }
}

/// One base DN or several.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Bases {
    One(String),
    Many(Vec<String>),
}

impl Bases {
    pub fn list(&self) -> Vec<String> {
        match self {
            Bases::One(s) => vec![s.clone()],
            Bases::Many(v) => v.clone(),
        }
    }
}

/// `[targets.NAME]` with `kind = "ldap"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapTarget {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file with the CA certificate(s) that signed the server's certificate
    /// (default: the system's trust store).
    pub ca_file: Option<PathBuf>,
    /// The DN dirsync binds as.
    pub bind_dn: String,
    /// File holding the bind password.
    pub bind_password_file: Option<PathBuf>,
    /// Environment variable holding the bind password.
    pub bind_password_env: Option<String>,
    /// The managed subtree(s): one DN or a list. Only entries under them are read or written.
    pub base: Bases,
    /// Where leavers are moved (read as part of the managed scope). None: leavers stay where they are.
    pub leavers: Option<String>,
    /// Entries per page of the snapshot's paged search (RFC 2696).
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// Write operations in flight at once (pipelined over the connections).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Connections used for writes (each carries many operations).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// New entries added per LDAP transaction (RFC 5805; OpenLDAP's mdb
    /// commits them in one database write: initial loads about 1.5x faster).
    /// Default 0: off. Experimental: slapd 2.5.13 segfaults now and then
    /// under transactions (about one test run in eight on a loaded machine,
    /// with one transaction open at a time); the run then ends as a target
    /// error and the next run completes it. Servers without transactions
    /// are detected; entries are then added one by one.
    #[serde(default = "default_transaction_size")]
    pub transaction_size: usize,
    /// Ops handed to one apply call (group memberships are batched per call).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// "openldap" (default), "ad" or "389ds".
    #[serde(default)]
    pub flavour: Flavour,
    /// Seconds to wait for a TCP/TLS connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for one operation's answer.
    #[serde(default = "default_op_timeout")]
    pub op_timeout_secs: u64,
    /// Attempts after a transient failure (busy, unavailable, connection lost), with backoff.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

const fn default_page_size() -> i32 {
    1000
}
const fn default_max_in_flight() -> usize {
    32
}
const fn default_connections() -> usize {
    2
}
const fn default_transaction_size() -> usize {
    0
}
const fn default_batch_size() -> usize {
    2000
}
const fn default_connect_timeout() -> u64 {
    10
}
const fn default_op_timeout() -> u64 {
    60
}
const fn default_retries() -> u32 {
    6
}

impl LdapTarget {
    pub(crate) fn resolved(mut self, dir: &Path) -> Result<LdapTarget, String> {
        let mut problems = Vec::new();
        let scheme_ok = self.url.starts_with("ldap://") || self.url.starts_with("ldaps://");
        if !scheme_ok {
            problems.push(format!("url {:?}: use ldap://HOST:PORT or ldaps://HOST:PORT", self.url));
        }
        if self.url.contains('@') {
            problems.push("url: no credentials in the URL; use bind_password_file or bind_password_env".into());
        }
        if self.starttls && self.url.starts_with("ldaps://") {
            problems.push("starttls: not with ldaps:// (the connection is already TLS)".into());
        }
        if self.bind_password_file.is_none() && self.bind_password_env.is_none() {
            problems.push("set bind_password_file or bind_password_env (passwords are never written inline)".into());
        }
        if let Err(e) = Dn::parse(&self.bind_dn) {
            problems.push(format!("bind_dn: {e}"));
        }
        let bases = self.base.list();
        if bases.is_empty() {
            problems.push("base: name at least one managed subtree".into());
        }
        for b in bases.iter().chain(self.leavers.iter()) {
            if Dn::parse(b).map(|d| d.0.is_empty()).unwrap_or(true) {
                problems.push(format!("{b:?} is not a DN"));
            }
        }
        if !(1..=100_000).contains(&self.page_size) {
            problems.push("page_size: between 1 and 100000".into());
        }
        if self.max_in_flight == 0 || self.connections == 0 || self.batch_size == 0 {
            problems.push("max_in_flight, connections and batch_size: at least 1".into());
        }
        for p in self.bind_password_file.iter_mut().chain(self.ca_file.iter_mut()) {
            *p = crate::paths::resolve(dir, p);
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "ldap {} ({:?}{}) base {}",
            self.url,
            self.flavour,
            if self.starttls { ", starttls" } else { "" },
            self.base.list().join(" + ")
        )
    }

    pub fn encrypted(&self) -> bool {
        self.starttls || self.url.starts_with("ldaps://")
    }
}

/// How a leaver is disabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaverMethod {
    /// OpenLDAP ppolicy: `pwdAccountLockedTime` (binds then fail). AD:
    /// `userAccountControl` bit 2. 389 DS: `nsAccountLock: TRUE`.
    #[default]
    Lock,
    /// Set `leaver.attribute` to `leaver.value` (servers without ppolicy).
    Attribute,
}

/// `[ldap.leaver]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaverMapping {
    pub method: LeaverMethod,
    /// For method = "attribute": the attribute and its leaver value.
    pub attribute: Option<String>,
    pub value: Option<String>,
    /// Remove leavers from the managed groups (default true).
    pub strip_groups: Option<bool>,
}

/// Group entry types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum GroupKind {
    /// `member` holds user DNs.
    #[default]
    #[serde(rename = "groupOfNames")]
    GroupOfNames,
    /// `uniqueMember` holds user DNs.
    #[serde(rename = "groupOfUniqueNames")]
    GroupOfUniqueNames,
    /// `memberUid` holds usernames.
    #[serde(rename = "posixGroup")]
    PosixGroup,
    /// AD `group`: `member` holds user DNs.
    #[serde(rename = "group")]
    AdGroup,
}

impl GroupKind {
    pub fn member_attribute(self) -> &'static str {
        match self {
            GroupKind::GroupOfNames | GroupKind::AdGroup => "member",
            GroupKind::GroupOfUniqueNames => "uniqueMember",
            GroupKind::PosixGroup => "memberUid",
        }
    }
    pub fn object_class(self) -> &'static str {
        match self {
            GroupKind::GroupOfNames => "groupOfNames",
            GroupKind::GroupOfUniqueNames => "groupOfUniqueNames",
            GroupKind::PosixGroup => "posixGroup",
            GroupKind::AdGroup => "group",
        }
    }
    pub fn by_dn(self) -> bool {
        self != GroupKind::PosixGroup
    }
}

/// `[ldap.groups]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// "groupOfNames", "groupOfUniqueNames", "posixGroup" or "group" (AD).
    #[serde(rename = "type", default)]
    pub kind: GroupKind,
    /// DN of a managed group, `{group}` being its name (for example
    /// `cn={group},ou=groups,dc=example,dc=org`).
    pub dn: Option<String>,
    /// Group name → DN, for groups that do not follow `dn`.
    #[serde(default)]
    pub dns: BTreeMap<String, String>,
}

/// How passwords are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordMethod {
    /// Password Modify extended operation (RFC 3062): the server hashes it under its own policy.
    #[default]
    Passmod,
    /// A salted SHA-512 hash (`{SSHA512}`) written to `userPassword` in the same add.
    Ssha512,
}

/// `[ldap]` in a policy: how rows become entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapMapping {
    /// Object classes of new entries.
    pub object_classes: Vec<String>,
    /// DN template of an account; `{field}` placeholders, values escaped per RFC 4514.
    pub dn: String,
    /// The attribute holding the username (default: the first RDN's attribute
    /// when it is `{username}`; AD: sAMAccountName).
    pub key_attribute: Option<String>,
    /// Field → attribute: written, read back and compared (these are the managed attributes).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Attribute → template of fields (`cn = "{firstname} {surname}"`): written on
    /// add and rewritten when a field it uses changes.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    #[serde(default)]
    pub leaver: LeaverMapping,
    pub groups: Option<GroupMapping>,
    /// "passmod" (default) or "ssha512". AD always uses unicodePwd.
    #[serde(default)]
    pub password_method: PasswordMethod,
    /// Create the organisational units (`ou=`) a new entry's DN needs when
    /// they do not exist yet (a new department), only below the target's
    /// base; listed in the preview, counted by `limits.containers`.
    #[serde(default)]
    pub create_containers: bool,
    /// `sync.adopt`: containers outside the base whose entries (with the
    /// object classes) a row may adopt, besides the entries in the base
    /// without the key attribute; adopting one moves it into the base.
    /// Needed on Active Directory, where every account has a key.
    #[serde(default)]
    pub adopt_from: Vec<String>,
}

impl LdapMapping {
    /// Field names a template may use.
    fn known_field(policy: &Policy, f: &str) -> bool {
        f == "username" || policy.attribute_index(f).is_some()
    }

    pub fn check(&self, policy: &Policy, target: &LdapTarget) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.object_classes.is_empty() {
            problems.push("ldap.object_classes: name the object classes of new entries".to_string());
        }
        match DnTemplate::parse(&self.dn) {
            Err(e) => problems.push(format!("ldap.dn: {e}")),
            Ok(t) => {
                for f in t.fields() {
                    if !Self::known_field(policy, f) {
                        problems.push(format!(
                            "ldap.dn: {{{f}}} is not a field of this policy (fields: username, {})",
                            policy.attributes.join(", ")
                        ));
                    } else if policy
                        .attribute_index(f)
                        .is_some_and(|i| !policy.attr_rule(i).update.on_create())
                    {
                        problems.push(format!(
                            "ldap.dn: {{{f}}} has update = \"never\", but a new entry's DN writes it; use another field or update = \"create-only\""
                        ));
                    }
                }
                if !t.fields().any(|f| f == "username") && self.key_attribute.is_none() {
                    problems.push("ldap.dn: use {username} in the DN or set ldap.key_attribute".into());
                }
                // The literal tail of the template must lie in a managed base.
                let mut tail: Vec<Vec<Ava>> = t
                    .rdns
                    .iter()
                    .rev()
                    .take_while(|(_, v)| v.fields().next().is_none())
                    .map(|(a, v)| {
                        vec![Ava {
                            attr: a.clone(),
                            value: v.render(&|_| None),
                        }]
                    })
                    .collect();
                tail.reverse();
                let ns = Dn(tail).normalised();
                let inside = target.base.list().iter().any(|b| {
                    let nb = super::dn::normalise(b);
                    ns == nb || ns.ends_with(&format!(",{nb}"))
                });
                if !inside {
                    problems.push(format!(
                        "ldap.dn: {:?} puts entries outside the managed base ({})",
                        self.dn,
                        target.base.list().join(", ")
                    ));
                }
            }
        }
        if target.flavour != Flavour::Ad && self.key_attribute.is_none() {
            if let Ok(t) = DnTemplate::parse(&self.dn) {
                if t.rdns.first().and_then(|(_, v)| v.sole_field()) != Some("username") {
                    problems.push("ldap.key_attribute: needed when the first RDN is not {username}".into());
                }
            }
        }
        for (f, a) in &self.fields {
            if !Self::known_field(policy, f) || f == "username" {
                problems.push(format!(
                    "ldap.fields.{f}: not an attribute field of this policy (fields: {})",
                    policy.attributes.join(", ")
                ));
            }
            if !valid_attr(a) {
                problems.push(format!("ldap.fields.{f}: {a:?} is not an attribute name"));
            }
        }
        for (a, t) in &self.templates {
            if !valid_attr(a) {
                problems.push(format!("ldap.templates: {a:?} is not an attribute name"));
            }
            match Template::parse(t) {
                Err(e) => problems.push(format!("ldap.templates.{a}: {e}")),
                Ok(t) => {
                    for f in t.fields() {
                        if !Self::known_field(policy, f) {
                            problems.push(format!("ldap.templates.{a}: {{{f}}} is not a field of this policy"));
                        }
                    }
                }
            }
            if self.fields.values().any(|x| x.eq_ignore_ascii_case(a)) {
                problems.push(format!(
                    "ldap.templates.{a}: {a} is also in ldap.fields; map it one way only"
                ));
            }
        }
        if self.leaver.method == LeaverMethod::Attribute
            && (self.leaver.attribute.is_none() || self.leaver.value.is_none())
        {
            problems.push("ldap.leaver: method = \"attribute\" needs attribute and value".into());
        }
        match &self.groups {
            Some(g) => {
                if policy.groups.managed.is_empty() {
                    problems.push("ldap.groups is set but groups.managed is empty".into());
                }
                for name in &policy.groups.managed {
                    let explicit = g.dns.keys().any(|k| k.eq_ignore_ascii_case(name));
                    if !explicit && g.dn.is_none() {
                        problems.push(format!("ldap.groups: no DN for managed group {name:?}; set dn or dns"));
                    }
                }
                if let Some(d) = &g.dn {
                    match DnTemplate::parse(d) {
                        Ok(t) if t.fields().all(|f| f == "group") && t.fields().count() == 1 => {}
                        Ok(_) => problems.push("ldap.groups.dn: use exactly one placeholder, {group}".into()),
                        Err(e) => problems.push(format!("ldap.groups.dn: {e}")),
                    }
                }
                for (k, d) in &g.dns {
                    if Dn::parse(d).is_err() {
                        problems.push(format!("ldap.groups.dns.{k}: {d:?} is not a DN"));
                    }
                }
            }
            None if !policy.groups.managed.is_empty() => {
                problems.push("groups.managed is set: add [ldap.groups] (type and dn) to say where they live".into())
            }
            None => {}
        }
        if let Some(p) = super::adopt::check_adopt_from(&self.adopt_from, &target.base.list()) {
            problems.push(p);
        }
        if target.flavour == Flavour::Ad && !target.encrypted() {
            problems.push(
                "flavour = \"ad\": Active Directory needs an encrypted connection (simple binds, unicodePwd): use ldaps:// or starttls = true"
                    .into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// An attribute description: a name (letters, digits, '-') or an OID, with options.
pub fn valid_attr(a: &str) -> bool {
    !a.is_empty()
        && a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';')
}
