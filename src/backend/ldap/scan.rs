//! The snapshot's read of the managed subtrees, on a task of its own, and
//! how an entry becomes an account.
//!
//! Why a task: ldap3's connection runs on a runtime worker and hands each
//! message over a channel; a reader on the command's own thread (where the
//! run's future is polled) was woken across threads for every few entries
//! received (24,000 context switches for 100k entries, against 600 for
//! `ldapsearch`). Spawned, the reader is woken on the worker that received
//! the entries.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::PagedResults;
use ldap3::{Ldap, LdapResult, Scope, SearchOptions};

use super::dn::{at_or_below, Dn};
use super::norm::{normalise_dn, normalised_split, parent};
use super::ops::{self, Lock, Mapping, UAC_ACCOUNTDISABLE};
use super::rc::describe;
use super::read::RawEntry;
use crate::backend::BackendError;
use crate::core::{Account, AccountState, Attrs, Snapshot, UserKey, Value};

/// How entries become accounts: what of the backend that needs.
pub(super) struct Reader {
    pub map: Arc<Mapping>,
    /// How many policy attributes an account has.
    pub n_attrs: usize,
    /// The leavers container, normalised (`dn::normalise`).
    pub leavers_norm: Option<String>,
}

impl Reader {
    /// The account an entry holds, its `userAccountControl` (AD), and its
    /// normalised DN (None when the DN does not parse).
    fn account_of(&self, e: &RawEntry) -> Option<(Account, Option<u32>, Option<String>)> {
        let key = e.first(&self.map.key_attr)?;
        let parsed = Dn::parse(&e.dn).ok();
        let norm = parsed.as_ref().map(normalised_split);
        let in_leavers = match (&norm, &self.leavers_norm) {
            (Some((n, first_end)), Some(c)) => parent(n, *first_end) == c,
            _ => false,
        };
        let (account, uac) = self.account_at(e, key, parsed.as_ref(), in_leavers);
        Some((account, uac, norm.map(|(n, _)| n)))
    }

    /// The account an entry holds under `key`, its `userAccountControl`
    /// (AD), and its parsed DN.
    pub(super) fn account_keyed(&self, e: &RawEntry, key: &str) -> (Account, Option<u32>, Option<Dn>) {
        let parsed = Dn::parse(&e.dn).ok();
        let in_leavers = match (&parsed, &self.leavers_norm) {
            (Some(d), Some(c)) => {
                let (n, first_end) = normalised_split(d);
                parent(&n, first_end) == c
            }
            _ => false,
        };
        let (a, uac) = self.account_at(e, key, parsed.as_ref(), in_leavers);
        (a, uac, parsed)
    }

    /// The account an entry at `parsed` holds under `key`.
    fn account_at(&self, e: &RawEntry, key: &str, parsed: Option<&Dn>, in_leavers: bool) -> (Account, Option<u32>) {
        let mut values: Vec<Option<&str>> = vec![None; self.n_attrs];
        for (i, a) in &self.map.fields {
            values[*i] = e.first(a);
        }
        // A value the entry lacks, read back from its DN.
        let from_dn = parsed.map(|d| self.map.dn.extract(d)).unwrap_or_default();
        for (f, v) in &from_dn {
            if let Some(i) = self.map.attributes.iter().position(|a| a == f) {
                if values[i].is_none() {
                    values[i] = Some(v);
                }
            }
        }
        let attrs = Attrs::pack(values);
        let mut left_at = None;
        let mut uac = None;
        let locked = match &self.map.lock {
            Lock::Uac => {
                uac = e.first("userAccountControl").and_then(|v| v.parse::<u32>().ok());
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
        let account = Account {
            key: UserKey::new(key),
            attrs,
            groups: Vec::new(),
            state: if locked || in_leavers {
                AccountState::Leaver
            } else {
                AccountState::Active
            },
            left_at,
            locator: Some(e.dn.as_str().into()),
        };
        (account, uac)
    }
}

/// One snapshot's read of the managed subtrees.
pub(super) struct Scan {
    pub reader: Reader,
    pub scopes: Vec<String>,
    pub filter: String,
    pub attrs: Vec<String>,
    pub page_size: i32,
    pub timeout: Duration,
    /// The groups' members, read meanwhile: each entry read once they are
    /// in gets its groups as it is taken (see [`Members`]).
    pub members: Option<MembersReady>,
}

/// The managed groups' members by normalised DN: each member's groups, as
/// indexes into `names`, in the order they were read.
pub(super) struct Members {
    pub names: Vec<Value>,
    pub by_dn: HashMap<String, Vec<u16>, foldhash::fast::RandomState>,
}

/// Set by the groups' read (on another connection), looked at by the scan
/// for each entry: the groups are usually in long before the people.
pub(super) type MembersReady = Arc<std::sync::OnceLock<Members>>;

impl Members {
    /// From (group name, normalised member DN) pairs.
    pub(super) fn of(members: Vec<(&str, String)>) -> Members {
        let mut names: Vec<Value> = Vec::new();
        let mut by_dn: HashMap<String, Vec<u16>, foldhash::fast::RandomState> = HashMap::default();
        for (group, dn) in members {
            let g = match names.iter().position(|n| n.as_str() == group) {
                Some(g) => g,
                None => {
                    names.push(Value::from(group));
                    names.len() - 1
                }
            };
            let Ok(g) = u16::try_from(g) else { continue };
            let groups = by_dn.entry(dn).or_default();
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Members { names, by_dn }
    }

    /// The groups of the entry at normalised DN `n`.
    pub(super) fn groups_of(&self, n: &str) -> Vec<Value> {
        self.by_dn
            .get(n)
            .map(|gs| {
                // Sized to the memberships (collected, it would hold room for four).
                let mut v = Vec::with_capacity(gs.len());
                v.extend(gs.iter().filter_map(|&g| self.names.get(usize::from(g)).cloned()));
                v
            })
            .unwrap_or_default()
    }
}

/// What the read gave.
pub(super) struct Scanned {
    pub snap: Snapshot,
    /// AD: each account's `userAccountControl` (key folded).
    pub uac: Vec<(String, u32)>,
    /// Entries taken before the members were in: (normalised DN, key).
    pub early: Vec<(String, UserKey)>,
}

/// A spawned task that is aborted when its handle is dropped (a read the
/// run no longer needs stops with the future that waited for it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Scan {
    /// Read every scope into `snap`, on a task of its own.
    pub(super) async fn spawn(self, ldap: Ldap, snap: Snapshot) -> Result<Scanned, BackendError> {
        let mut task = AbortOnDrop(tokio::spawn(self.run(ldap, snap)));
        match (&mut task.0).await {
            Ok(r) => r,
            Err(e) => Err(BackendError::Other(format!("the snapshot's read failed: {e}"))),
        }
    }

    async fn run(self, ldap: Ldap, mut snap: Snapshot) -> Result<Scanned, BackendError> {
        let mut seen: HashSet<String, foldhash::fast::RandomState> = HashSet::default();
        let mut uac = Vec::new();
        let mut early = Vec::new();
        // Normalised DNs are needed only to match group members and to skip
        // an entry seen twice through overlapping scopes.
        let overlap = scopes_overlap(&self.scopes);
        let members = self.members.as_deref();
        for base in &self.scopes {
            let each = |e: RawEntry<'_>| {
                let Some((mut a, u, norm)) = self.reader.account_of(&e) else {
                    return Ok(());
                };
                if overlap || members.is_some() {
                    let n = norm.unwrap_or_else(|| e.dn.to_lowercase());
                    if overlap && !seen.insert(n.clone()) {
                        return Ok(());
                    }
                    if let Some(m) = members {
                        match m.get() {
                            Some(m) => a.groups = m.groups_of(&n),
                            None => early.push((n, a.key.clone())),
                        }
                    }
                }
                if let Some(u) = u {
                    uac.push((a.key.folded().to_string(), u));
                }
                snap.insert(a).map_err(BackendError::Schema)
            };
            let page = (self.page_size, self.timeout);
            search_pages(
                ldap.clone(),
                page,
                base,
                Scope::Subtree,
                &self.filter,
                self.attrs.clone(),
                each,
            )
            .await?;
        }
        Ok(Scanned { snap, uac, early })
    }
}

/// Whether one scope is another or lies under it: only then can an entry
/// be read twice (the people and the leavers are usually side by side, and
/// then no DN is remembered per entry).
fn scopes_overlap(scopes: &[String]) -> bool {
    let n: Vec<String> = scopes.iter().map(|s| normalise_dn(s)).collect();
    n.iter()
        .enumerate()
        .any(|(i, a)| n[i + 1..].iter().any(|b| at_or_below(a, b) || at_or_below(b, a)))
}

/// One paged search on `ldap` (page size, timeout); each entry goes to
/// `each` as it arrives. A `Connect` error means the connection failed.
pub(super) async fn search_pages(
    mut ldap: Ldap,
    (page_size, timeout): (i32, Duration),
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: Vec<String>,
    mut each: impl FnMut(RawEntry<'_>) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    let mut stream = ldap
        .with_timeout(timeout)
        .with_search_options(SearchOptions::new().raw_entries(true))
        .streaming_search_with(PagedResults::new(page_size), base, scope, filter, attrs)
        .await
        .map_err(|e| BackendError::Other(format!("search of {base}: {e}")))?;
    loop {
        match stream.next().await {
            Ok(Some(entry)) => match RawEntry::from_result(&entry) {
                Some(e) => each(e)?,
                None => return Err(BackendError::Other(format!("search of {base}: a malformed entry"))),
            },
            Ok(None) => break,
            Err(e) => return Err(BackendError::Connect(format!("search of {base}: {e}"))),
        }
    }
    let res: LdapResult = stream.finish().await;
    match res.rc {
        0 => Ok(()),
        32 => Err(BackendError::Schema(format!(
            "the managed base {base} does not exist; create it or fix the target's base"
        ))),
        _ => Err(BackendError::Other(format!("search of {base}: {}", describe(&res)))),
    }
}

#[cfg(test)]
mod tests {
    use super::{scopes_overlap, Members};

    #[test]
    fn members_keep_the_order_read_and_each_group_once() {
        let m = Members::of(vec![
            ("staff", "uid=a,ou=people".to_string()),
            ("vpn", "uid=a,ou=people".to_string()),
            ("staff", "uid=b,ou=people".to_string()),
            ("staff", "uid=a,ou=people".to_string()),
        ]);
        let names = |v: Vec<crate::core::Value>| v.iter().map(|g| g.as_str().to_string()).collect::<Vec<_>>();
        assert_eq!(names(m.groups_of("uid=a,ou=people")), ["staff", "vpn"]);
        assert_eq!(names(m.groups_of("uid=b,ou=people")), ["staff"]);
        assert!(m.groups_of("uid=c,ou=people").is_empty(), "not a member of any");
    }

    #[test]
    fn scopes_overlap_only_when_one_is_under_the_other() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(!scopes_overlap(&s(&[
            "ou=people,dc=example,dc=org",
            "ou=leavers,dc=example,dc=org"
        ])));
        assert!(!scopes_overlap(&s(&["ou=people,dc=example,dc=org"])));
        assert!(scopes_overlap(&s(&[
            "ou=people,dc=example,dc=org",
            "ou=old,OU=People, dc=example,dc=org"
        ])));
        assert!(scopes_overlap(&s(&[
            "dc=example,dc=org",
            "ou=leavers,dc=example,dc=org"
        ])));
        assert!(scopes_overlap(&s(&["ou=a,dc=x", "OU=A,DC=X"])));
        // A suffix of the text that is not a whole RDN is not a parent.
        assert!(!scopes_overlap(&s(&["ou=xpeople,dc=x", "ou=people,dc=x"])));
    }
}
