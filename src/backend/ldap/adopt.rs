//! `sync.adopt` on an LDAP target: the accounts to adopt are the entries
//! under the managed bases with the mapping's object classes but without
//! the key attribute (people an admin created by hand before dirsync), and
//! those in `[ldap] adopt_from` containers outside the bases (on Active
//! Directory, where every account has a key, the only ones). Adopting one
//! gives it the row's key and moves it to the DN the template gives —
//! which brings it into the managed scope — and writes the row's
//! differences, like an update.

use std::collections::HashSet;

use ldap3::Scope;
use tracing::info;

use super::dn::{at_or_below, below, normalise};
use super::ops::{m, Builder, ModKind, OpSteps, Step};
use super::scan::Members;
use super::LdapBackend;
use crate::backend::BackendError;
use crate::core::{Account, Diff};

impl LdapBackend {
    /// The accounts a row may adopt — entries in the base without the key
    /// attribute, and entries in `adopt_from` — keyed by their DN (none has
    /// a username dirsync knows yet), with their managed groups.
    pub(super) async fn adoptable(&self) -> Result<Vec<Account>, BackendError> {
        let mut attrs: Vec<String> = self.map.fields.iter().map(|(_, a)| a.clone()).collect();
        attrs.push(self.map.lock.attribute().to_string());
        let classes = self.class_filter();
        let unkeyed = format!("(&{classes}(!({}=*)))", self.map.key_attr);
        let any = format!("(&{classes})");
        // Each account with its normalised DN (an entry seen through two
        // places is taken once).
        let mut found: Vec<(Account, String)> = Vec::new();
        let mut seen = HashSet::new();
        let places = self
            .target
            .base
            .list()
            .into_iter()
            .map(|b| (b, &unkeyed))
            .chain(self.map.adopt_from.iter().map(|b| (b.clone(), &any)));
        for (base, filter) in places {
            self.paged_search(&base, Scope::Subtree, filter, attrs.clone(), |e| {
                let (a, dn) = self.account_keyed(&e, &e.dn);
                let n = dn.map(|d| d.normalised()).unwrap_or_else(|| e.dn.to_lowercase());
                if seen.insert(n.clone()) {
                    found.push((a, n));
                }
                Ok(())
            })
            .await?;
        }
        if !found.is_empty() && !self.map.group_dns.is_empty() && self.map.group_kind.by_dn() {
            let members = Members::of(self.group_members(0).await?);
            for (a, n) in &mut found {
                a.groups = members.groups_of(n);
            }
        }
        let accounts: Vec<Account> = found.into_iter().map(|(a, _)| a).collect();
        info!(
            accounts = accounts.len(),
            "LDAP accounts outside the managed scope read (sync.adopt)."
        );
        Ok(accounts)
    }
}

impl Builder<'_> {
    /// Adopt the snapshot's entry: an update that also sets the key
    /// attribute on the entry's final DN.
    pub(super) fn adopt(&self, diff: &Diff) -> Result<OpSteps, String> {
        let mut s = self.update(diff, false)?;
        let mut mods = vec![m(ModKind::Replace, &self.map.key_attr, &[self.op.key.as_str()])];
        // The entry takes a new username: what the templates make of it too.
        for (attr, t, _) in &self.map.templates {
            if t.fields().any(|f| f == "username") {
                let v = t.render(&|f| self.value(f));
                let values: &[&str] = if v.is_empty() { &[] } else { &[v.as_str()] };
                mods.push(m(ModKind::Replace, attr, values));
            }
        }
        let final_dn = match s.steps.first() {
            Some(Step::Rename { new_dn, .. }) => new_dn.clone(),
            _ => self.current_dn()?,
        };
        match s.steps.iter_mut().find(|st| matches!(st, Step::Modify { .. })) {
            Some(Step::Modify { mods: existing, .. }) => {
                existing.retain(|x| !mods.iter().any(|n| n.attr.eq_ignore_ascii_case(&x.attr)));
                mods.append(existing);
                *existing = mods;
            }
            _ => s.steps.push(Step::Modify { dn: final_dn, mods }),
        }
        Ok(s)
    }
}

/// Why `[ldap] adopt_from` is wrong, if it is: every entry a DN, none
/// inside a managed base or holding one (its accounts would be managed
/// ones).
pub(super) fn check_adopt_from(from: &[String], bases: &[String]) -> Option<String> {
    let mut problems = Vec::new();
    for f in from {
        if super::dn::Dn::parse(f).is_err() {
            problems.push(format!("ldap.adopt_from: {f:?} is not a DN"));
            continue;
        }
        let nf = normalise(f);
        for b in bases {
            let nb = normalise(b);
            if at_or_below(&nf, &nb) || below(&nb, &nf) {
                problems.push(format!(
                    "ldap.adopt_from: {f:?} overlaps the managed base {b:?}; name containers outside it"
                ));
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn adopt_from_lies_outside_the_managed_bases() {
        let bases = ["ou=people,dc=example,dc=org".to_string()];
        let ok = ["cn=Users,dc=example,dc=org".to_string()];
        assert_eq!(super::check_adopt_from(&ok, &bases), None);
        for bad in [
            "ou=Finance,ou=people,dc=example,dc=org",
            "dc=example,dc=org",
            "OU=People,DC=example,DC=org",
        ] {
            let why = super::check_adopt_from(&[bad.to_string()], &bases).unwrap_or_default();
            assert!(why.contains("overlaps the managed base"), "{bad}: {why}");
        }
        assert!(super::check_adopt_from(&["no dn".to_string()], &bases).is_some());
    }
}
