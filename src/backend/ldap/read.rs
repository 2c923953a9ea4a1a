//! The snapshot: one paged search of the managed scope, and the managed
//! groups' members.

use std::collections::HashMap;

use ldap3::adapters::PagedResults;
use ldap3::{ResultEntry, Scope, SearchEntry, SearchOptions};
use tracing::info;

use super::conn::describe;
use super::dn::{escape_filter_value, normalise, Dn};
use super::norm::{normalised_split, parent};
use super::ops::{self, Lock, UAC_ACCOUNTDISABLE};
use super::LdapBackend;
use crate::backend::BackendError;
use crate::core::{Account, AccountState, Snapshot, UserKey, Value};

pub(super) fn first<'a>(e: &'a SearchEntry, attr: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// A search result entry read in place (ldap3's `RawEntry`: no value is
/// copied, and the BER is not parsed into a tree; lber's parser, one
/// allocation per element, and ldap3's `SearchEntry`, a `String` per value
/// in a `HashMap`, dominated the snapshot's CPU time at 100k entries).
pub(super) struct RawEntry<'a> {
    pub dn: String,
    ber: ldap3::RawEntry<'a>,
}

impl<'a> RawEntry<'a> {
    /// None when the entry is not a well-formed SearchResultEntry with a
    /// UTF-8 DN (the caller reports it).
    fn from_result(re: &'a ResultEntry) -> Option<RawEntry<'a>> {
        let ber = ldap3::RawEntry::parse(re.raw()?)?;
        let dn = std::str::from_utf8(ber.dn()).ok()?.to_owned();
        Some(RawEntry { dn, ber })
    }

    /// The first value of an attribute, if it is UTF-8.
    pub fn first(&self, attr: &str) -> Option<&'a str> {
        self.values(attr).next()
    }

    pub fn values(&self, attr: &str) -> impl Iterator<Item = &'a str> + 'a {
        let found = self.ber.attrs().find(|(k, _)| k.eq_ignore_ascii_case(attr.as_bytes()));
        found
            .into_iter()
            .flat_map(|(_, v)| v)
            .filter_map(|v| std::str::from_utf8(v).ok())
    }
}

impl LdapBackend {
    /// `(objectClass=A)(objectClass=B)…`: what a managed entry is, for the
    /// filters of the snapshot, adoption and a password's entry.
    pub(super) fn class_filter(&self) -> String {
        self.map
            .object_classes
            .iter()
            .map(|c| format!("(objectClass={})", escape_filter_value(c)))
            .collect()
    }

    pub(super) async fn read_snapshot(&self) -> Result<Snapshot, BackendError> {
        let mut attrs: Vec<String> = vec![self.map.key_attr.clone()];
        attrs.extend(self.map.fields.iter().map(|(_, a)| a.clone()));
        attrs.push(self.map.lock.attribute().to_string());
        let classes = self.class_filter();
        let filter = format!("(&{classes}({}=*))", self.map.key_attr);
        let mut snap = Snapshot::new(self.managed.clone());
        snap.case_blind = self.case_blind.clone();
        let mut dn_index: HashMap<String, UserKey> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let scopes = self.scopes();
        // Normalised DNs are needed only to match group members and to skip
        // an entry seen twice through overlapping scopes.
        let need_index = self.map.group_kind.by_dn() && !self.map.group_dns.is_empty();
        let overlap = scopes.len() > 1;
        for base in &scopes {
            self.paged_search(base, Scope::Subtree, &filter, attrs.clone(), |e| {
                let Some((a, norm)) = self.account_of(&e) else {
                    return Ok(());
                };
                if need_index || overlap {
                    let n = norm.unwrap_or_else(|| e.dn.to_lowercase());
                    // dn_index holds every DN taken so far, as `seen` does
                    // when there is no index.
                    if need_index {
                        if overlap && dn_index.contains_key(&n) {
                            return Ok(());
                        }
                        dn_index.insert(n, a.key.clone());
                    } else if !seen.insert(n) {
                        return Ok(());
                    }
                }
                snap.insert(a).map_err(BackendError::Schema)
            })
            .await?;
        }
        if !self.map.group_dns.is_empty() {
            let m = self.memberships(&dn_index).await?;
            snap.add_memberships(m);
        }
        info!(accounts = snap.len(), "LDAP snapshot read.");
        Ok(snap)
    }

    /// The subtrees one snapshot reads: the bases, plus the leavers container
    /// when it is not inside one of them.
    pub(super) fn scopes(&self) -> Vec<String> {
        let mut v = self.target.base.list();
        if let Some(l) = &self.target.leavers {
            let nl = normalise(l);
            let inside = v.iter().any(|b| {
                let nb = normalise(b);
                nl == nb || nl.ends_with(&format!(",{nb}"))
            });
            if !inside {
                v.push(l.clone());
            }
        }
        v
    }

    /// The account an entry holds, and its normalised DN (None when the DN
    /// does not parse).
    fn account_of(&self, e: &RawEntry) -> Option<(Account, Option<String>)> {
        let key = e.first(&self.map.key_attr)?;
        let parsed = Dn::parse(&e.dn).ok();
        let norm = parsed.as_ref().map(normalised_split);
        let in_leavers = match (&norm, &self.leavers_norm) {
            (Some((n, first_end)), Some(c)) => parent(n, *first_end) == c,
            _ => false,
        };
        let account = self.account_at(e, key, parsed.as_ref(), in_leavers);
        Some((account, norm.map(|(n, _)| n)))
    }

    /// The account an entry holds under `key`, and its parsed DN.
    pub(super) fn account_keyed(&self, e: &RawEntry, key: &str) -> (Account, Option<Dn>) {
        let parsed = Dn::parse(&e.dn).ok();
        let in_leavers = match (&parsed, &self.leavers_norm) {
            (Some(d), Some(c)) => {
                let (n, first_end) = normalised_split(d);
                parent(&n, first_end) == c
            }
            _ => false,
        };
        (self.account_at(e, key, parsed.as_ref(), in_leavers), parsed)
    }

    /// The account an entry at `parsed` holds under `key`.
    fn account_at(&self, e: &RawEntry, key: &str, parsed: Option<&Dn>, in_leavers: bool) -> Account {
        let mut attrs: Vec<Option<Value>> = vec![None; self.managed.len()];
        for (i, a) in &self.map.fields {
            attrs[*i] = e.first(a).map(Value::from);
        }
        if let Some(d) = parsed {
            for (f, v) in self.map.dn.extract(d) {
                if let Some(i) = self.map.attributes.iter().position(|a| *a == f) {
                    if attrs[i].is_none() {
                        attrs[i] = Some(Value::from(v));
                    }
                }
            }
        }
        let mut left_at = None;
        let locked = match &self.map.lock {
            Lock::Uac => {
                let uac = e.first("userAccountControl").and_then(|v| v.parse::<u32>().ok());
                if let Some(u) = uac {
                    if let Ok(mut m) = self.uac.lock() {
                        m.insert(UserKey::new(key).folded().to_string(), u);
                    }
                }
                uac.is_some_and(|u| u & UAC_ACCOUNTDISABLE != 0)
            }
            Lock::PwdLockedTime => match e.first("pwdAccountLockedTime") {
                Some(t) => {
                    left_at = ops::parse_generalized_time(t);
                    true
                }
                None => false,
            },
            Lock::Attribute(a, v) => e.first(a).is_some_and(|x| x.eq_ignore_ascii_case(v)),
        };
        Account {
            key: UserKey::new(key),
            attrs,
            groups: Vec::new(),
            state: if locked || in_leavers {
                AccountState::Leaver
            } else {
                AccountState::Active
            },
            left_at,
            locator: Some(e.dn.clone()),
        }
    }

    /// One paged search; each entry goes to `each` as it arrives.
    pub(super) async fn paged_search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
        mut each: impl FnMut(RawEntry<'_>) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let mut ldap = self.pool.get(0).await?;
        let mut stream = ldap
            .with_timeout(self.pool.op_timeout())
            .with_search_options(SearchOptions::new().raw_entries(true))
            .streaming_search_with(PagedResults::new(self.target.page_size), base, scope, filter, attrs)
            .await
            .map_err(|e| BackendError::Other(format!("search of {base}: {e}")))?;
        loop {
            match stream.next().await {
                Ok(Some(entry)) => match RawEntry::from_result(&entry) {
                    Some(e) => each(e)?,
                    None => return Err(BackendError::Other(format!("search of {base}: a malformed entry"))),
                },
                Ok(None) => break,
                Err(e) => {
                    self.pool.drop_conn(0).await;
                    return Err(BackendError::Connect(format!("search of {base}: {e}")));
                }
            }
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok(()),
            32 => Err(BackendError::Schema(format!(
                "the managed base {base} does not exist; create it or fix the target's base"
            ))),
            _ => Err(BackendError::Other(format!("search of {base}: {}", describe(&res)))),
        }
    }

    /// Read the managed groups' members (one search per parent container).
    pub(super) async fn memberships(
        &self,
        dn_index: &HashMap<String, UserKey>,
    ) -> Result<Vec<(UserKey, Value)>, BackendError> {
        let mut by_parent: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (name, gdn) in &self.map.group_dns {
            let parsed = Dn::parse(gdn).map_err(BackendError::Schema)?;
            let parent = parsed.split_first().1.to_string_escaped();
            let np = normalise(&parent);
            match by_parent.iter_mut().find(|(p, _)| normalise(p) == np) {
                Some((_, v)) => v.push((normalise(gdn), name.clone())),
                None => by_parent.push((parent, vec![(normalise(gdn), name.clone())])),
            }
        }
        let kind = self.map.group_kind;
        let attr = kind.member_attribute();
        let mut out = Vec::new();
        for (parent, groups) in by_parent {
            let filter = format!("(objectClass={})", escape_filter_value(kind.object_class()));
            self.paged_search(&parent, Scope::OneLevel, &filter, vec![attr.to_string()], |e| {
                let ng = normalise(&e.dn);
                let Some((_, name)) = groups.iter().find(|(g, _)| *g == ng) else {
                    return Ok(());
                };
                for v in e.values(attr) {
                    let user = if kind.by_dn() {
                        dn_index.get(&normalise(v)).cloned()
                    } else {
                        Some(UserKey::new(v))
                    };
                    if let Some(u) = user {
                        out.push((u, Value::from(name.as_str())));
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod raw_tests;
