//! Group members held back for the run (see `Backend::holds`).
//!
//! slapd (without `sortvals`) checks every value a modify adds against
//! every value the group already has, so a group grown by one modify per
//! batch costs the server Σ (values added × group size): quadratic in the
//! load. The members that a run's writes add are therefore collected here
//! and sent when the pipeline flushes — once, at the end of the run — as
//! one modify per group (split only to stay under the servers' request
//! size limits), after the entries they name exist.

use std::collections::HashMap;

use super::ops::Membership;
use super::{Flavour, LdapBackend};
use crate::backend::BackendError;

/// The most bytes of values one modify carries, under each server's
/// default request size limit: OpenLDAP 4 MiB for a bound client
/// (`sockbuf_max_incoming_auth`), 389 DS 2 MiB (`nsslapd-maxbersize`);
/// Active Directory is given 1 MiB. A group is split only past it: every
/// further part costs the server a check against all values already added.
fn max_modify_bytes(flavour: Flavour) -> usize {
    match flavour {
        Flavour::Openldap => 3 << 20,
        Flavour::Ds389 => 3 << 19,
        Flavour::Ad => 1 << 20,
    }
}

/// A value's share of a request: its bytes and its BER header.
fn cost(m: &Membership) -> usize {
    m.value.len() + 4
}

/// What `apply` has held back since the last flush.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Ops handed to `apply` (in calls that succeeded).
    ops: usize,
    /// (op number since the last flush, member to add).
    members: Vec<(usize, Membership)>,
}

impl LdapBackend {
    /// Hold the member additions of one `apply` call of `ops` ops; `adds`
    /// are numbered within the call.
    pub(super) fn hold(&self, ops: usize, adds: Vec<(usize, Membership)>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let base = held.ops;
        held.ops += ops;
        held.members.extend(adds.into_iter().map(|(k, m)| (base + k, m)));
    }

    /// Send the held members: per group, as few modifies as the size limit
    /// allows (a missing group is created first when `[groups]
    /// create_missing` says so). One entry per held op.
    pub(super) async fn flush_held(&self) -> Result<Vec<Option<String>>, BackendError> {
        let Held { ops, mut members } = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
        let mut errs: Vec<Vec<String>> = vec![Vec::new(); ops];
        by_group(&mut members);
        let items: Vec<(usize, &Membership)> = members.iter().map(|(k, m)| (*k, m)).collect();
        for part in parts(&items, max_modify_bytes(self.map.flavour)) {
            let rest = self.create_groups(part.to_vec()).await;
            self.members_phase(true, rest, &mut errs).await;
        }
        if let Some(why) = self.pool.gone() {
            return Err(BackendError::Connect(format!(
                "the server stopped answering during the run ({})",
                why.trim_start_matches("cannot connect: ")
            )));
        }
        Ok(errs
            .into_iter()
            .map(|e| (!e.is_empty()).then(|| e.join("; ")))
            .collect())
    }
}

/// Sort `members` by group (its normalised DN) and attribute, and give each
/// group one spelling (the first one's), so that a group named with other
/// spacing or case is still one modify. Each spelling is normalised once,
/// not once per member.
fn by_group(members: &mut [(usize, Membership)]) {
    // Spelling → normalised DN; normalised DN → the group's first spelling.
    let mut normalised: HashMap<String, String> = HashMap::new();
    let mut first: HashMap<String, String> = HashMap::new();
    for (_, m) in members.iter() {
        if !normalised.contains_key(&m.group_dn) {
            let n = super::dn::normalise(&m.group_dn);
            first.entry(n.clone()).or_insert_with(|| m.group_dn.clone());
            normalised.insert(m.group_dn.clone(), n);
        }
    }
    // Each group's place in DN order, under its one spelling.
    let mut order: Vec<(&String, &String)> = first.iter().collect();
    order.sort();
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, (_, f))| (f.as_str(), i)).collect();
    for (_, m) in members.iter_mut() {
        if let Some(f) = normalised.get(&m.group_dn).and_then(|n| first.get(n)) {
            if m.group_dn != *f {
                m.group_dn.clone_from(f);
            }
        }
    }
    members.sort_by_cached_key(|(_, m)| (rank.get(m.group_dn.as_str()).copied(), m.attr));
}

/// `items` (sorted by group) cut where the group changes or a part would
/// carry more than `limit` bytes of values.
fn parts<'a, 'm>(items: &'a [(usize, &'m Membership)], limit: usize) -> Vec<&'a [(usize, &'m Membership)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, m)) in items.iter().enumerate() {
        let same = i > start && {
            let prev = items[i - 1].1;
            prev.attr == m.attr && prev.group_dn.eq_ignore_ascii_case(&m.group_dn)
        };
        if i > start && (!same || bytes + cost(m) > limit) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += cost(m);
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(group: &str, value: &str) -> Membership {
        Membership {
            group_dn: group.into(),
            attr: "member",
            value: value.into(),
        }
    }

    #[test]
    fn one_part_per_group_unless_it_is_too_big() {
        let limit = 1000;
        let big = "x".repeat(limit / 2);
        let ms = [
            member("cn=a,dc=x", "u1"),
            member("CN=A,dc=x", "u2"),
            member("cn=b,dc=x", "u3"),
            member("cn=c,dc=x", &big),
            member("cn=c,dc=x", &big),
            member("cn=c,dc=x", "u4"),
        ];
        let items: Vec<(usize, &Membership)> = ms.iter().enumerate().collect();
        let sizes: Vec<usize> = parts(&items, limit).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, vec![2, 1, 1, 2]);
        assert!(parts(&[], limit).is_empty());
    }

    #[test]
    fn a_group_spelt_two_ways_is_one_modify() {
        let mut ms: Vec<(usize, Membership)> = [
            member("cn=b,dc=x", "u1"),
            member("cn=a, dc=x", "u2"),
            member("CN=A,DC=X", "u3"),
            member("cn=a,dc=x", "u4"),
        ]
        .into_iter()
        .enumerate()
        .collect();
        by_group(&mut ms);
        let ops: Vec<usize> = ms.iter().map(|(k, _)| *k).collect();
        assert_eq!(ops, vec![1, 2, 3, 0], "sorted by group, stable within one");
        let items: Vec<(usize, &Membership)> = ms.iter().map(|(k, m)| (*k, m)).collect();
        let cut = parts(&items, 1000);
        assert_eq!(cut.len(), 2, "one part per group");
        let batches = crate::backend::ldap::conn::coalesce(cut[0]);
        assert_eq!(batches.len(), 1, "one modify for the three spellings");
        assert_eq!(batches[0].0, "cn=a, dc=x");
        assert_eq!(batches[0].2.len(), 3);
    }
}
