//! The policy's `[ldap]` mapping: how rows become entries (object classes, DN
//! template, fields, templates), how leavers are disabled, where groups live,
//! how passwords are written; and its check against the policy and the target.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::dn::{at_or_below, normalise, Ava, Dn, DnTemplate, Template};
use super::{Flavour, LdapTarget};
use crate::core::Policy;

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
                let inside = target.base.list().iter().any(|b| at_or_below(&ns, &normalise(b)));
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
        if let Some(p) = super::super::adopt::check_adopt_from(&self.adopt_from, &target.base.list()) {
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
