//! Pure: one planned change → the LDAP operations that make it, for OpenLDAP
//! and Active Directory. No I/O, so the exact modifications are unit-tested.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha512};

use super::config::{Flavour, GroupKind, PasswordMethod};
use super::dn::{Dn, DnTemplate, Template};
use crate::backend::Op;
use crate::core::{Change, Diff, Secret};

/// AD `userAccountControl` bits.
pub const UAC_ACCOUNTDISABLE: u32 = 0x2;
pub const UAC_NORMAL_ACCOUNT: u32 = 0x200;
/// Characters AD refuses in sAMAccountName.
const SAM_FORBIDDEN: &str = "\"/\\[]:;|=,+*?<>@";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModKind {
    Add,
    Delete,
    Replace,
}

/// One modification of a modify request.
#[derive(Clone, PartialEq, Eq)]
pub struct Modification {
    pub kind: ModKind,
    pub attr: String,
    pub values: Vec<Vec<u8>>,
}

fn is_secret_attr(a: &str) -> bool {
    a.eq_ignore_ascii_case("userPassword") || a.eq_ignore_ascii_case("unicodePwd")
}

fn show_values(attr: &str, values: &[Vec<u8>]) -> String {
    if is_secret_attr(attr) {
        return "***SECRET***".into();
    }
    let v: Vec<String> = values.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect();
    format!("{v:?}")
}

impl fmt::Debug for Modification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} {}",
            self.kind,
            self.attr,
            show_values(&self.attr, &self.values)
        )
    }
}

pub(super) fn m(kind: ModKind, attr: &str, values: &[&str]) -> Modification {
    Modification {
        kind,
        attr: attr.to_string(),
        values: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
    }
}

/// One LDAP operation on an account entry.
#[derive(Clone, PartialEq, Eq)]
pub enum Step {
    Add {
        dn: String,
        attrs: Vec<(String, Vec<Vec<u8>>)>,
    },
    Modify {
        dn: String,
        mods: Vec<Modification>,
    },
    /// modrdn: keep the entry, change its RDN and/or parent.
    Rename {
        dn: String,
        new_rdn: String,
        new_superior: Option<String>,
        new_dn: String,
    },
    Delete {
        dn: String,
    },
    /// Password Modify extended operation (RFC 3062).
    SetPassword {
        dn: String,
        password: Secret,
    },
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Add { dn, attrs } => {
                write!(f, "add {dn}")?;
                for (a, v) in attrs {
                    write!(f, "; {a}: {}", show_values(a, v))?;
                }
                Ok(())
            }
            Step::Modify { dn, mods } => write!(f, "modify {dn} {mods:?}"),
            Step::Rename {
                dn,
                new_rdn,
                new_superior,
                ..
            } => write!(f, "modrdn {dn} -> {new_rdn} under {new_superior:?}"),
            Step::Delete { dn } => write!(f, "delete {dn}"),
            Step::SetPassword { dn, .. } => write!(f, "passmod {dn} ***SECRET***"),
        }
    }
}

/// A membership change on a managed group entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub group_dn: String,
    pub attr: &'static str,
    pub value: String,
}

/// Everything one change needs, in the order it runs: memberships removed
/// (with the DN the account has now), entry steps, then — only when those
/// succeeded — memberships that follow a moved entry (old DN out) and
/// memberships added (with its final DN).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpSteps {
    pub group_remove: Vec<Membership>,
    pub steps: Vec<Step>,
    pub group_remove_after: Vec<Membership>,
    pub group_add: Vec<Membership>,
}

/// How a leaver's account is disabled (resolved from the flavour and
/// `[ldap.leaver]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    /// OpenLDAP ppolicy: `pwdAccountLockedTime` (also the leave date).
    PwdLockedTime,
    /// Active Directory: `userAccountControl` bit 2 (ACCOUNTDISABLE).
    Uac,
    /// An attribute set to a value: `nsAccountLock: TRUE` on 389 DS, or
    /// `[ldap.leaver] method = "attribute"`.
    Attribute(String, String),
}

impl Lock {
    /// The attribute that says whether an account is locked.
    pub fn attribute(&self) -> &str {
        match self {
            Lock::PwdLockedTime => "pwdAccountLockedTime",
            Lock::Uac => "userAccountControl",
            Lock::Attribute(a, _) => a,
        }
    }
}

/// The mapping, resolved against the policy's attribute list.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub flavour: Flavour,
    pub object_classes: Vec<String>,
    pub dn: DnTemplate,
    pub key_attr: String,
    /// (policy attribute index, LDAP attribute)
    pub fields: Vec<(usize, String)>,
    /// Policy attributes dirsync never writes (`update = "never"`): read only.
    pub never: Vec<usize>,
    /// (LDAP attribute, template, policy attribute indexes it uses, uses the username)
    pub templates: Vec<(String, Template, Vec<usize>)>,
    /// Policy attribute names, to resolve template placeholders.
    pub attributes: Vec<String>,
    pub lock: Lock,
    pub strip_groups: bool,
    pub leavers_container: Option<String>,
    pub group_kind: GroupKind,
    /// Managed group name (policy spelling) → DN.
    pub group_dns: Vec<(String, String)>,
    pub password: PasswordMethod,
    /// `[ldap] create_containers`: make the missing OUs of a new DN.
    pub create_containers: bool,
    /// `[groups] create_missing`: make a missing managed group.
    pub create_groups: bool,
    /// `[ldap] adopt_from`: containers outside the base to adopt accounts from.
    pub adopt_from: Vec<String>,
    /// `deliver = "activation"`: a new account without a password waits for
    /// its user to set one (AD: created disabled, enabled by the activation).
    pub activation: bool,
}

impl Mapping {
    pub fn group_dn(&self, name: &str) -> Option<&str> {
        self.group_dns
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, d)| d.as_str())
    }

    fn membership(&self, group: &str, dn: &str, key: &str) -> Result<Membership, String> {
        let group_dn = self
            .group_dn(group)
            .ok_or_else(|| format!("group {group:?} is not a managed group with a DN"))?;
        let attr = self.group_kind.member_attribute();
        let value = if self.group_kind.by_dn() { dn } else { key };
        Ok(Membership {
            group_dn: group_dn.to_string(),
            attr,
            value: value.to_string(),
        })
    }
}

/// `YYYYMMDDHHMMSSZ` for Unix seconds.
pub fn generalized_time(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "19700101000000Z".into(),
    }
}

/// Unix seconds of a GeneralizedTime (`YYYYMMDDHHMMSS[.f]Z`).
pub fn parse_generalized_time(s: &str) -> Option<i64> {
    let d = s.get(..14)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| d[a..b].parse::<u32>().ok();
    let month = time::Month::try_from(n(4, 6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(n(0, 4)? as i32, month, n(6, 8)? as u8).ok()?;
    let t = time::Time::from_hms(n(8, 10)? as u8, n(10, 12)? as u8, n(12, 14)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp())
}

/// `{SSHA512}` of a password with the given salt.
pub fn ssha512(password: &str, salt: &[u8]) -> String {
    let mut h = Sha512::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut bytes = h.finalize().to_vec();
    bytes.extend_from_slice(salt);
    format!("{{SSHA512}}{}", STANDARD.encode(&bytes))
}

/// AD's `unicodePwd`: the password in double quotes, UTF-16LE.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

/// sAMAccountName rules, checked before anything is written.
pub fn check_sam_account_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n > 20 {
        return Err(format!(
            "sAMAccountName {name:?} is {n} characters; Active Directory allows at most 20: shorten the username"
        ));
    }
    if let Some(c) = name.chars().find(|c| SAM_FORBIDDEN.contains(*c) || c.is_control()) {
        return Err(format!(
            "sAMAccountName {name:?} contains {c:?}, which Active Directory refuses"
        ));
    }
    if name.ends_with('.') {
        return Err(format!(
            "sAMAccountName {name:?} ends with '.', which Active Directory refuses"
        ));
    }
    Ok(())
}

/// Builds the steps of one op. `uac` is the account's current
/// `userAccountControl` (AD), `salt` the salt for a hashed password.
pub struct Builder<'a> {
    pub map: &'a Mapping,
    pub op: &'a Op<'a>,
    pub uac: Option<u32>,
    pub salt: [u8; 8],
}

mod build;
mod reset;
#[cfg(test)]
pub(super) mod tests;
