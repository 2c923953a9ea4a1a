//! The snapshot: one paged search of the managed scope, and the managed
//! groups' members.

use std::sync::Arc;

use ldap3::{ResultEntry, Scope, SearchEntry};
use tracing::info;

use super::dn::{at_or_below, escape_filter_value, normalise, Dn};
use super::norm::normalise_dn;
use super::scan::{search_pages, Members, MembersReady, Reader, Scan, Scanned};
use super::LdapBackend;
use crate::backend::BackendError;
use crate::core::{Account, Snapshot, UserKey, Value};

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
    pub(super) fn from_result(re: &'a ResultEntry) -> Option<RawEntry<'a>> {
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
        let by_dn = self.map.group_kind.by_dn() && !self.map.group_dns.is_empty();
        // The groups' members by DN, for the scan to give each person its
        // groups as it is taken (see `scan::Members`). With two connections
        // they are read meanwhile on the second (a server keeps one paged
        // search per connection: a second one there voids the first one's
        // cookie) and the people read before they are in are matched at the
        // end; with one, first.
        let ready: Option<MembersReady> = by_dn.then(Default::default);
        let scan = Scan {
            reader: self.reader(),
            scopes: self.scopes(),
            filter,
            attrs,
            page_size: self.target.page_size,
            timeout: self.pool.op_timeout(),
            members: ready.clone(),
        };
        // (group, member) pairs as read; DNs go into `ready` instead.
        let groups = |conn: usize| {
            let ready = &ready;
            async move {
                let members = self.group_members(conn).await?;
                match ready {
                    Some(r) => {
                        let _ = r.set(Members::of(members));
                        Ok(Vec::new())
                    }
                    None => Ok(members),
                }
            }
        };
        let ldap = self.pool.get(0).await?;
        let (scanned, members) = if self.pool.size() > 1 {
            tokio::join!(scan.spawn(ldap, snap), groups(1))
        } else {
            let members = groups(0).await?;
            (scan.spawn(ldap, snap).await, Ok(members))
        };
        let scanned = match scanned {
            Ok(s) => s,
            Err(e) => {
                if matches!(e, BackendError::Connect(_)) {
                    self.pool.drop_conn(0).await;
                }
                return Err(e);
            }
        };
        let Scanned { mut snap, uac, early } = scanned;
        if !uac.is_empty() {
            if let Ok(mut m) = self.uac.lock() {
                m.extend(uac);
            }
        }
        let members = members?;
        match ready.as_deref().and_then(|r| r.get()) {
            Some(m) => snap.add_memberships(
                early
                    .into_iter()
                    .flat_map(|(n, key)| m.groups_of(&n).into_iter().map(move |g| (key.clone(), g))),
            ),
            // posixGroup: members are account names.
            None => snap.add_memberships(
                members
                    .into_iter()
                    .map(|(group, name)| (UserKey::new(&name), Value::from(group))),
            ),
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
            let inside = v.iter().any(|b| at_or_below(&nl, &normalise(b)));
            if !inside {
                v.push(l.clone());
            }
        }
        v
    }

    /// How this backend's entries become accounts (see `scan`).
    pub(super) fn reader(&self) -> Reader {
        Reader {
            map: Arc::clone(&self.map),
            n_attrs: self.managed.len(),
            leavers_norm: self.leavers_norm.clone(),
        }
    }

    /// The account an entry holds under `key`, and its parsed DN.
    pub(super) fn account_keyed(&self, e: &RawEntry, key: &str) -> (Account, Option<Dn>) {
        let (a, uac, parsed) = self.reader().account_keyed(e, key);
        if let (Some(u), Ok(mut m)) = (uac, self.uac.lock()) {
            m.insert(a.key.folded().to_string(), u);
        }
        (a, parsed)
    }

    /// One paged search; each entry goes to `each` as it arrives.
    pub(super) async fn paged_search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
        each: impl FnMut(RawEntry<'_>) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        self.paged_search_on(0, (base, scope, filter), attrs, each).await
    }

    /// [`Self::paged_search`] on connection `conn` of the pool.
    async fn paged_search_on(
        &self,
        conn: usize,
        (base, scope, filter): (&str, Scope, &str),
        attrs: Vec<String>,
        each: impl FnMut(RawEntry<'_>) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let ldap = self.pool.get(conn).await?;
        let page = (self.target.page_size, self.pool.op_timeout());
        let r = search_pages(ldap, page, base, scope, filter, attrs, each).await;
        if let Err(BackendError::Connect(_)) = &r {
            self.pool.drop_conn(conn).await;
        }
        r
    }

    /// Read the managed groups' members (one search per parent container):
    /// (group name, member value) pairs, read on connection `conn`; member
    /// DNs come normalised (`dn::normalise`, by `norm::normalise_dn`).
    pub(super) async fn group_members(&self, conn: usize) -> Result<Vec<(&str, String)>, BackendError> {
        let mut by_parent: Vec<(String, Vec<(String, &str)>)> = Vec::new();
        for (name, gdn) in &self.map.group_dns {
            let parsed = Dn::parse(gdn).map_err(BackendError::Schema)?;
            let parent = parsed.split_first().1.to_string_escaped();
            let np = normalise(&parent);
            match by_parent.iter_mut().find(|(p, _)| normalise(p) == np) {
                Some((_, v)) => v.push((normalise(gdn), name.as_str())),
                None => by_parent.push((parent, vec![(normalise(gdn), name.as_str())])),
            }
        }
        let kind = self.map.group_kind;
        let (attr, by_dn) = (kind.member_attribute(), kind.by_dn());
        let mut out = Vec::new();
        for (parent, groups) in by_parent {
            let filter = format!("(objectClass={})", escape_filter_value(kind.object_class()));
            let at = (parent.as_str(), Scope::OneLevel, filter.as_str());
            self.paged_search_on(conn, at, vec![attr.to_string()], |e| {
                let ng = normalise(&e.dn);
                let Some((_, name)) = groups.iter().find(|(g, _)| *g == ng) else {
                    return Ok(());
                };
                // Member DNs normalised here, while the people are still
                // being read, not after.
                match by_dn {
                    true => out.extend(e.values(attr).map(|v| (*name, normalise_dn(v)))),
                    false => out.extend(e.values(attr).map(|v| (*name, v.to_string()))),
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
