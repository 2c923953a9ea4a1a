//! `sync.adopt` on an LDAP target: the accounts to adopt are the entries
//! under the managed bases with the mapping's object classes but without
//! the key attribute (people an admin created by hand before dirsync).
//! Adopting one gives it the row's key — which brings it into the managed
//! scope — moves it to the DN the template gives, and writes the row's
//! differences, like an update.

use std::collections::HashMap;

use ldap3::Scope;
use tracing::info;

use super::dn::escape_filter_value;
use super::ops::{m, Builder, ModKind, OpSteps, Step};
use super::LdapBackend;
use crate::backend::BackendError;
use crate::core::{Account, Diff, UserKey};

impl LdapBackend {
    /// The entries in scope without the key attribute, keyed by their DN
    /// (they have no username yet), with their managed groups.
    pub(super) async fn adoptable(&self) -> Result<Vec<Account>, BackendError> {
        let mut attrs: Vec<String> = self.map.fields.iter().map(|(_, a)| a.clone()).collect();
        attrs.push(self.map.lock.attribute().to_string());
        let classes: String = self
            .map
            .object_classes
            .iter()
            .map(|c| format!("(objectClass={})", escape_filter_value(c)))
            .collect();
        let filter = format!("(&{classes}(!({}=*)))", self.map.key_attr);
        let mut accounts = Vec::new();
        let mut index: HashMap<String, UserKey> = HashMap::new();
        for base in self.target.base.list() {
            self.paged_search(&base, Scope::Subtree, &filter, attrs.clone(), |e| {
                let (a, dn) = self.account_keyed(&e, &e.dn);
                let n = dn.map(|d| d.normalised()).unwrap_or_else(|| e.dn.to_lowercase());
                if index.insert(n, a.key.clone()).is_none() {
                    accounts.push(a);
                }
                Ok(())
            })
            .await?;
        }
        if !accounts.is_empty() && !self.map.group_dns.is_empty() && self.map.group_kind.by_dn() {
            let at: HashMap<UserKey, usize> = accounts.iter().enumerate().map(|(i, a)| (a.key.clone(), i)).collect();
            for (user, group) in self.memberships(&index).await? {
                if let Some(&i) = at.get(&user) {
                    accounts[i].groups.push(group);
                }
            }
        }
        info!(
            accounts = accounts.len(),
            "LDAP entries without a username read (sync.adopt)."
        );
        Ok(accounts)
    }
}

impl Builder<'_> {
    /// Adopt the snapshot's entry: an update that also sets the key
    /// attribute on the entry's final DN.
    pub(super) fn adopt(&self, diff: &Diff) -> Result<OpSteps, String> {
        let mut s = self.update(diff, false)?;
        let key = m(ModKind::Replace, &self.map.key_attr, &[self.op.key.as_str()]);
        let final_dn = match s.steps.first() {
            Some(Step::Rename { new_dn, .. }) => new_dn.clone(),
            _ => self.current_dn()?,
        };
        match s.steps.iter_mut().find(|st| matches!(st, Step::Modify { .. })) {
            Some(Step::Modify { mods, .. }) => mods.insert(0, key),
            _ => s.steps.push(Step::Modify {
                dn: final_dn,
                mods: vec![key],
            }),
        }
        Ok(s)
    }
}
