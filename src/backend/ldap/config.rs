//! The LDAP target's own config: the connection (`[targets.NAME]`, kind =
//! "ldap") here, and the mapping onto entries (`[ldap]` in a policy) in
//! mapping.rs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::dn::Dn;

mod mapping;

pub use mapping::{GroupKind, GroupMapping, LdapMapping, LeaverMapping, LeaverMethod, PasswordMethod};

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
