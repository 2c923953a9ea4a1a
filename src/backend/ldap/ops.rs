//! Pure: one planned change → the LDAP operations that make it, for OpenLDAP
//! and Active Directory. No I/O, so the exact modifications are unit-tested.

use std::fmt;

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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// `{SSHA512}` of a password with the given salt.
pub fn ssha512(password: &str, salt: &[u8]) -> String {
    let mut h = Sha512::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut bytes = h.finalize().to_vec();
    bytes.extend_from_slice(salt);
    format!("{{SSHA512}}{}", base64(&bytes))
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

impl Builder<'_> {
    /// A field's value for templates: the row's, else (unless the row clears
    /// it) what the target holds.
    pub(super) fn value(&self, field: &str) -> Option<String> {
        if field == "username" {
            return Some(self.op.key.as_str().to_string());
        }
        let i = self.map.attributes.iter().position(|a| a == field)?;
        if let Some(v) = self.op.person.and_then(|p| p.attrs.get(i).cloned().flatten()) {
            return Some(v.to_string());
        }
        let cleared = self
            .diff()
            .is_some_and(|d| d.attrs.iter().any(|c| c.attr == i && c.new.is_none()));
        if cleared {
            return None;
        }
        self.op
            .account
            .and_then(|a| a.attrs.get(i).cloned().flatten())
            .map(|v| v.to_string())
    }

    fn diff(&self) -> Option<&Diff> {
        match self.op.change {
            Change::Update(d) | Change::Rejoin(d) | Change::Adopt(d) | Change::Reset(d) => Some(d),
            _ => None,
        }
    }

    fn target_dn(&self) -> Result<Dn, String> {
        self.map.dn.render(&|f| self.value(f))
    }

    pub(super) fn current_dn(&self) -> Result<String, String> {
        self.op
            .account
            .and_then(|a| a.locator.clone())
            .ok_or_else(|| "the account's DN is unknown (not in the snapshot)".to_string())
    }

    fn key(&self) -> &str {
        self.op.key.as_str()
    }

    pub fn build(&self) -> Result<OpSteps, String> {
        if self.map.flavour == Flavour::Ad && self.map.key_attr.eq_ignore_ascii_case("sAMAccountName") {
            if let Change::Add = self.op.change {
                check_sam_account_name(self.key())?;
            }
        }
        match self.op.change {
            Change::Add => self.add(),
            Change::Update(d) => self.update(d, false),
            Change::Rejoin(d) => self.update(d, true),
            Change::Reset(d) => self.reset(d),
            Change::Leave => self.leave(),
            Change::Delete => self.delete(),
            // `config check` refuses sync.adopt on LDAP targets; never planned here.
            Change::Adopt(d) => self.adopt(d),
            Change::Unchanged | Change::Absent | Change::Reject(_) | Change::Scheduled => Ok(OpSteps::default()),
        }
    }

    fn add(&self) -> Result<OpSteps, String> {
        let person = self.op.person.ok_or("an add without its row")?;
        let dn = self.target_dn()?;
        let dn_s = dn.to_string_escaped();
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        let mut put = |attr: &str, v: Vec<u8>| {
            if let Some((_, vals)) = attrs.iter_mut().find(|(a, _)| a.eq_ignore_ascii_case(attr)) {
                if !vals.contains(&v) {
                    vals.push(v);
                }
            } else {
                attrs.push((attr.to_string(), vec![v]));
            }
        };
        for oc in &self.map.object_classes {
            put("objectClass", oc.as_bytes().to_vec());
        }
        put(&self.map.key_attr, self.key().as_bytes().to_vec());
        for (i, attr) in self.map.fields.iter().filter(|(i, _)| !self.map.never.contains(i)) {
            if let Some(v) = person.attrs.get(*i).cloned().flatten() {
                put(attr, v.as_bytes().to_vec());
            }
        }
        for (attr, t, _) in &self.map.templates {
            let v = t.render(&|f| self.value(f));
            if !v.is_empty() {
                put(attr, v.into_bytes());
            }
        }
        // The naming value must be in the entry.
        if let Some(ava) = dn.0.first().and_then(|r| r.first()) {
            put(&ava.attr, ava.value.as_bytes().to_vec());
        }
        let mut steps = Vec::new();
        match self.map.flavour {
            Flavour::Openldap | Flavour::Ds389 => {
                if let (Some(pw), PasswordMethod::Ssha512) = (self.op.password, self.map.password) {
                    put("userPassword", ssha512(pw.expose(), &self.salt).into_bytes());
                }
                let passmod = self.map.password == PasswordMethod::Passmod;
                if self.op.must_change && self.op.password.is_some() && !passmod {
                    let (attr, value) = self.must_change_value();
                    put(attr, value.as_bytes().to_vec());
                }
                steps.push(Step::Add {
                    dn: dn_s.clone(),
                    attrs,
                });
                if let (Some(pw), PasswordMethod::Passmod) = (self.op.password, self.map.password) {
                    steps.push(Step::SetPassword {
                        dn: dn_s.clone(),
                        password: pw.clone(),
                    });
                    // ppolicy clears pwdReset on an administrative reset
                    // (without pwdMustChange), and 389 DS sets its own
                    // expiration time, so the flag is set afterwards.
                    if self.op.must_change {
                        let (attr, value) = self.must_change_value();
                        steps.push(Step::Modify {
                            dn: dn_s.clone(),
                            mods: vec![m(ModKind::Replace, attr, &[value])],
                        });
                    }
                }
            }
            Flavour::Ad => {
                // Windows refuses to enable an account without a password
                // (Samba allows it): never create one that cannot be enabled.
                let pending = self.op.password.is_none() && self.map.activation;
                if self.op.password.is_none() && !pending {
                    return Err(
                        "Active Directory cannot enable an account without a password: give the row \
                                a password or set [passwords] generate = \"new\""
                            .into(),
                    );
                }
                // Created disabled with its password in the same add (so a
                // password the domain's policy refuses writes nothing), then
                // enabled: Windows refuses to enable an account first.
                if let Some(pw) = self.op.password {
                    put("unicodePwd", unicode_pwd(pw.expose()));
                }
                put(
                    "userAccountControl",
                    (UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE).to_string().into_bytes(),
                );
                steps.push(Step::Add {
                    dn: dn_s.clone(),
                    attrs,
                });
                if !pending {
                    let mut mods = Vec::new();
                    if self.op.must_change {
                        mods.push(m(ModKind::Replace, "pwdLastSet", &["0"]));
                    }
                    mods.push(m(
                        ModKind::Replace,
                        "userAccountControl",
                        &[&UAC_NORMAL_ACCOUNT.to_string()],
                    ));
                    steps.push(Step::Modify { dn: dn_s.clone(), mods });
                }
            }
        }
        let mut group_add = Vec::new();
        for g in person.groups.iter().flatten() {
            group_add.push(self.map.membership(g, &dn_s, self.key())?);
        }
        Ok(OpSteps {
            group_remove: Vec::new(),
            steps,
            group_remove_after: Vec::new(),
            group_add,
        })
    }

    /// Update, or rejoin (unlock, move back, restore groups).
    pub(super) fn update(&self, diff: &Diff, rejoin: bool) -> Result<OpSteps, String> {
        let cur = self.current_dn()?;
        let cur_dn = Dn::parse(&cur)?;
        let want = self.target_dn()?;
        let mut steps = Vec::new();
        let moved = want.normalised() != cur_dn.normalised();
        let final_dn = if moved {
            let (new_rdn, new_parent) = want.split_first();
            let (_, old_parent) = cur_dn.split_first();
            let new_dn = want.to_string_escaped();
            steps.push(Step::Rename {
                dn: cur.clone(),
                new_rdn,
                new_superior: (new_parent.normalised() != old_parent.normalised())
                    .then(|| new_parent.to_string_escaped()),
                new_dn: new_dn.clone(),
            });
            new_dn
        } else {
            cur.clone()
        };
        let mut mods = Vec::new();
        for c in &diff.attrs {
            for (i, attr) in &self.map.fields {
                if *i == c.attr {
                    match &c.new {
                        Some(v) => mods.push(m(ModKind::Replace, attr, &[v.as_str()])),
                        None => mods.push(m(ModKind::Replace, attr, &[])),
                    }
                }
            }
        }
        for (attr, t, uses) in &self.map.templates {
            if diff.attrs.iter().any(|c| uses.contains(&c.attr)) {
                let v = t.render(&|f| self.value(f));
                mods.push(if v.is_empty() {
                    m(ModKind::Replace, attr, &[])
                } else {
                    m(ModKind::Replace, attr, &[v.as_str()])
                });
            }
        }
        if rejoin {
            mods.extend(self.unlock_mods());
        }
        if !mods.is_empty() {
            steps.push(Step::Modify {
                dn: final_dn.clone(),
                mods,
            });
        }
        let mut group_remove = Vec::new();
        let mut group_remove_after = Vec::new();
        let mut group_add = Vec::new();
        for g in &diff.groups_remove {
            group_remove.push(self.map.membership(g, &cur, self.key())?);
        }
        // Memberships that stay follow the entry to its new DN (Active
        // Directory's `member` is a linked attribute: the server moves it).
        if moved && self.map.group_kind.by_dn() && !self.map.flavour.moves_memberships() {
            let account_groups = self.op.account.map(|a| a.groups.as_slice()).unwrap_or(&[]);
            for g in account_groups {
                if !diff.groups_remove.iter().any(|r| r.eq_ignore_ascii_case(g)) {
                    group_remove_after.push(self.map.membership(g, &cur, self.key())?);
                    group_add.push(self.map.membership(g, &final_dn, self.key())?);
                }
            }
        }
        for g in &diff.groups_add {
            group_add.push(self.map.membership(g, &final_dn, self.key())?);
        }
        Ok(OpSteps {
            group_remove,
            steps,
            group_remove_after,
            group_add,
        })
    }

    /// The attribute and value that say "change the password at next login".
    fn must_change_value(&self) -> (&'static str, &'static str) {
        match self.map.flavour {
            Flavour::Openldap => ("pwdReset", "TRUE"),
            Flavour::Ad => ("pwdLastSet", "0"),
            // What 389 DS itself writes on an administrative reset when
            // passwordMustChange is on; binds then may only change the password.
            Flavour::Ds389 => ("passwordExpirationTime", "19700101000000Z"),
        }
    }

    fn unlock_mods(&self) -> Vec<Modification> {
        let mut mods = Vec::new();
        match &self.map.lock {
            Lock::Uac => {
                let uac = self.uac.unwrap_or(UAC_NORMAL_ACCOUNT | UAC_ACCOUNTDISABLE) & !UAC_ACCOUNTDISABLE;
                mods.push(m(ModKind::Replace, "userAccountControl", &[&uac.to_string()]));
            }
            Lock::PwdLockedTime => {
                // Replace with nothing: removes the lock, and is no error when there is none.
                mods.push(m(ModKind::Replace, "pwdAccountLockedTime", &[]));
            }
            Lock::Attribute(attr, _) => {
                // Restore the row's value when the attribute is mapped, else remove it.
                let mapped = self
                    .map
                    .fields
                    .iter()
                    .find(|(_, a)| a.eq_ignore_ascii_case(attr))
                    .and_then(|(i, _)| self.op.person.and_then(|p| p.attrs.get(*i).cloned().flatten()));
                match mapped {
                    Some(v) => mods.push(m(ModKind::Replace, attr, &[v.as_str()])),
                    None => mods.push(m(ModKind::Replace, attr, &[])),
                }
            }
        }
        if self.op.must_change {
            let (attr, value) = self.must_change_value();
            mods.push(m(ModKind::Replace, attr, &[value]));
        }
        // A mapped attribute restored above must not be replaced twice.
        let mut seen: Vec<String> = Vec::new();
        mods.retain(|x| {
            let k = x.attr.to_lowercase();
            if seen.contains(&k) {
                false
            } else {
                seen.push(k);
                true
            }
        });
        mods
    }

    fn leave(&self) -> Result<OpSteps, String> {
        let cur = self.current_dn()?;
        let cur_dn = Dn::parse(&cur)?;
        let mut group_remove = Vec::new();
        if self.map.strip_groups {
            for g in self.op.account.map(|a| a.groups.as_slice()).unwrap_or(&[]) {
                group_remove.push(self.map.membership(g, &cur, self.key())?);
            }
        }
        let lock = match &self.map.lock {
            Lock::Uac => {
                let uac = self.uac.unwrap_or(UAC_NORMAL_ACCOUNT) | UAC_ACCOUNTDISABLE;
                m(ModKind::Replace, "userAccountControl", &[&uac.to_string()])
            }
            Lock::PwdLockedTime => m(
                ModKind::Replace,
                "pwdAccountLockedTime",
                &[&generalized_time(self.op.now)],
            ),
            Lock::Attribute(a, v) => m(ModKind::Replace, a, &[v]),
        };
        let mut steps = vec![Step::Modify {
            dn: cur.clone(),
            mods: vec![lock],
        }];
        if let Some(container) = &self.map.leavers_container {
            let (rdn, parent) = cur_dn.split_first();
            let target = Dn::parse(container)?;
            if parent.normalised() != target.normalised() {
                let new_dn = format!("{rdn},{}", target.to_string_escaped());
                steps.push(Step::Rename {
                    dn: cur.clone(),
                    new_rdn: rdn,
                    new_superior: Some(target.to_string_escaped()),
                    new_dn,
                });
            }
        }
        Ok(OpSteps {
            group_remove,
            steps,
            group_remove_after: Vec::new(),
            group_add: Vec::new(),
        })
    }

    fn delete(&self) -> Result<OpSteps, String> {
        let cur = self.current_dn()?;
        let mut group_remove = Vec::new();
        for g in self.op.account.map(|a| a.groups.as_slice()).unwrap_or(&[]) {
            group_remove.push(self.map.membership(g, &cur, self.key())?);
        }
        Ok(OpSteps {
            group_remove,
            steps: vec![Step::Delete { dn: cur }],
            group_remove_after: Vec::new(),
            group_add: Vec::new(),
        })
    }
}

mod reset;
#[cfg(test)]
pub(super) mod tests;
