//! Entries the writes need and the directory lacks: the organisational
//! units a new or moved DN is placed in (`[ldap] create_containers`) and
//! the managed groups members join (`[groups] create_missing`). Found for
//! the preview and the `containers` limit; created first when applying.
//! Never outside the policy's scope: only `ou=` entries strictly below a
//! managed base, and only the policy's managed groups at their configured
//! DNs (a group's own container is never made).

use std::collections::HashMap;

use super::dn::{normalise, Dn};
use super::ops::{Mapping, Membership, OpSteps, Step};
use super::{GroupKind, LdapBackend};
use crate::backend::{BackendError, Missing, MissingKind, Op};
use crate::core::Secret;

impl LdapBackend {
    /// The containers (top-down) and groups the steps need to exist.
    fn needs(&self, steps: &OpSteps) -> (Vec<String>, Vec<String>) {
        let mut containers = Vec::new();
        if self.map.create_containers {
            for s in &steps.steps {
                let parent = match s {
                    Step::Add { dn, .. } => Dn::parse(dn).ok().map(|d| d.split_first().1),
                    Step::Rename { new_superior, .. } => new_superior.as_deref().and_then(|d| Dn::parse(d).ok()),
                    _ => None,
                };
                let mut chain = Vec::new();
                let mut at = parent;
                while let Some(d) = at.filter(|d| self.below_base(&d.to_string_escaped())) {
                    chain.push(d.to_string_escaped());
                    at = Some(d.split_first().1);
                }
                chain.reverse();
                containers.extend(chain);
            }
        }
        let groups = if self.map.create_groups {
            steps.group_add.iter().map(|m| m.group_dn.clone()).collect()
        } else {
            Vec::new()
        };
        (containers, groups)
    }

    /// Strictly below one of the managed bases.
    fn below_base(&self, dn: &str) -> bool {
        below(&self.target.base.list(), dn)
    }

    /// The add that creates container `dn`, or why it is not made.
    pub(super) fn container_step(&self, dn: &str) -> Result<Step, String> {
        container_entry(&self.target.base.list(), dn)
    }

    /// The add that creates managed group `dn` with its first `members`.
    pub(super) fn group_step(&self, dn: &str, members: &[String]) -> Result<Step, String> {
        group_entry(&self.map, dn, members)
    }

    /// Whether a missing `dn` is one `apply` creates.
    pub(super) fn will_create(&self, dn: &str) -> bool {
        (self.map.create_containers && self.container_step(dn).is_ok())
            || (self.map.create_groups && self.group_step(dn, &[String::new()]).is_ok())
    }

    /// Whether `dn` exists, asked once per DN.
    async fn exists_cached(&self, dn: &str, seen: &mut HashMap<String, bool>) -> Result<bool, BackendError> {
        let n = normalise(dn);
        if let Some(b) = seen.get(&n) {
            return Ok(*b);
        }
        let b = self.pool.exists(0, dn).await.map_err(BackendError::Other)?;
        seen.insert(n, b);
        Ok(b)
    }

    /// The entries `ops` need that the directory lacks and that `apply`
    /// creates, parents first.
    pub(super) async fn find_missing(&self, ops: &[Op<'_>]) -> Result<Vec<Missing>, BackendError> {
        let mut out: Vec<Missing> = Vec::new();
        if !self.map.create_containers && !self.map.create_groups {
            return Ok(out);
        }
        let mut seen = HashMap::new();
        // Normalised DN → its place in `out`.
        let mut at: HashMap<String, usize> = HashMap::new();
        // An add is built as it will be made; the password is never sent.
        let stand_in = Secret::new("stand-in");
        for (k, op) in ops.iter().enumerate() {
            let op = Op {
                password: op.password.or(Some(&stand_in)),
                ..*op
            };
            let Ok(steps) = self.build(&op) else { continue };
            let (containers, groups) = self.needs(&steps);
            let wanted = containers
                .into_iter()
                .filter(|d| self.container_step(d).is_ok())
                .map(|d| (d, MissingKind::Container))
                .chain(
                    groups
                        .into_iter()
                        .filter(|d| self.group_step(d, &[String::new()]).is_ok())
                        .map(|d| (d, MissingKind::Group)),
                );
            for (dn, kind) in wanted.collect::<Vec<_>>() {
                let n = normalise(&dn);
                if let Some(m) = at.get(&n).and_then(|&i| out.get_mut(i)) {
                    if m.ops.last() != Some(&k) {
                        m.ops.push(k);
                    }
                } else if !self.exists_cached(&dn, &mut seen).await? {
                    at.insert(n, out.len());
                    out.push(Missing { dn, kind, ops: vec![k] });
                }
            }
        }
        Ok(out)
    }

    /// Before the entries of a batch are written: create the containers
    /// they need. A container that cannot be made fails the ops needing it.
    pub(super) async fn create_containers(&self, built: &[Result<OpSteps, String>], errs: &mut [Vec<String>]) {
        if !self.map.create_containers {
            return;
        }
        let mut seen = HashMap::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        for (k, b) in built.iter().enumerate() {
            let Ok(steps) = b else { continue };
            for dn in self.needs(steps).0 {
                if let Some(e) = failed.get(&normalise(&dn)) {
                    errs[k].push(e.clone());
                    break;
                }
                match self.exists_cached(&dn, &mut seen).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        errs[k].push(e.to_string());
                        break;
                    }
                }
                let made = match self.container_step(&dn) {
                    Ok(step) => self.pool.run_step(0, &step, true).await,
                    Err(e) => Err(e),
                };
                match made {
                    Ok(()) => {
                        tracing::info!(dn = %dn, "Container created (ldap.create_containers).");
                        seen.insert(normalise(&dn), true);
                    }
                    Err(e) => {
                        let e = format!("creating the container {dn}: {e}");
                        failed.insert(normalise(&dn), e.clone());
                        errs[k].push(e);
                        break;
                    }
                }
            }
        }
    }

    /// Before members are added: create each missing managed group with
    /// the members this batch adds to it, in the same add (a groupOfNames
    /// cannot be empty); those memberships are then done.
    pub(super) async fn create_groups<'m>(&self, adds: Vec<(usize, &'m Membership)>) -> Vec<(usize, &'m Membership)> {
        if !self.map.create_groups {
            return adds;
        }
        let mut seen = HashMap::new();
        let mut groups: Vec<String> = adds.iter().map(|(_, m)| m.group_dn.clone()).collect();
        groups.sort_by_key(|g| normalise(g));
        groups.dedup_by_key(|g| normalise(g));
        let mut rest = adds;
        for g in groups {
            if !matches!(self.exists_cached(&g, &mut seen).await, Ok(false)) {
                continue;
            }
            let n = normalise(&g);
            let (mine, others): (Vec<_>, Vec<_>) = rest.into_iter().partition(|(_, m)| normalise(&m.group_dn) == n);
            rest = others;
            let members: Vec<String> = mine.iter().map(|(_, m)| m.value.clone()).collect();
            let made = match self.group_step(&g, &members) {
                Ok(step) => self.pool.run_step(0, &step, false).await,
                Err(e) => Err(e),
            };
            match made {
                Ok(()) => tracing::info!(group = %g, members = members.len(), "Group created (groups.create_missing)."),
                // Made meanwhile by someone else, or refused: the members
                // are added as usual, which says what is wrong if anything.
                Err(e) => {
                    tracing::warn!(group = %g, error = %e, "Cannot create the group; adding its members as usual.");
                    rest.extend(mine);
                }
            }
        }
        rest
    }
}

/// Whether `dn` is strictly below one of `bases`.
fn below(bases: &[String], dn: &str) -> bool {
    let n = normalise(dn);
    bases.iter().any(|b| super::dn::below(&n, &normalise(b)))
}

/// The add that creates the container `dn`: an `ou=` entry strictly below
/// one of `bases`; anything else is refused with why.
fn container_entry(bases: &[String], dn: &str) -> Result<Step, String> {
    let d = Dn::parse(dn)?;
    let ava = d.0.first().and_then(|r| r.first()).ok_or("an empty DN")?;
    if !below(bases, dn) {
        return Err(format!("{dn} is not below the managed base; it is never created"));
    }
    if !ava.attr.eq_ignore_ascii_case("ou") {
        return Err(format!(
            "{dn}: only ou= containers are created (ldap.create_containers)"
        ));
    }
    Ok(Step::Add {
        dn: d.to_string_escaped(),
        attrs: vec![
            (
                "objectClass".into(),
                vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
            ),
            ("ou".into(), vec![ava.value.as_bytes().to_vec()]),
        ],
    })
}

/// The add that creates the managed group `dn` with its first `members`
/// (a groupOfNames cannot be empty); a group the policy does not manage, or
/// a posixGroup (it needs a gidNumber), is refused with why.
fn group_entry(map: &Mapping, dn: &str, members: &[String]) -> Result<Step, String> {
    if !map.group_dns.iter().any(|(_, g)| normalise(g) == normalise(dn)) {
        return Err(format!("{dn} is not a managed group; it is never created"));
    }
    let d = Dn::parse(dn)?;
    let ava = d.0.first().and_then(|r| r.first()).ok_or("an empty DN")?;
    let kind = map.group_kind;
    let mut attrs = Vec::new();
    match kind {
        GroupKind::PosixGroup => {
            return Err(format!(
                "{dn} does not exist and a posixGroup needs a gidNumber: create it by hand"
            ))
        }
        GroupKind::AdGroup => attrs.push(("sAMAccountName".to_string(), vec![ava.value.as_bytes().to_vec()])),
        GroupKind::GroupOfNames | GroupKind::GroupOfUniqueNames => {}
    }
    attrs.push((
        "objectClass".into(),
        vec![b"top".to_vec(), kind.object_class().as_bytes().to_vec()],
    ));
    attrs.push((ava.attr.clone(), vec![ava.value.as_bytes().to_vec()]));
    if !ava.attr.eq_ignore_ascii_case("cn") {
        attrs.push(("cn".into(), vec![ava.value.as_bytes().to_vec()]));
    }
    attrs.push((
        kind.member_attribute().to_string(),
        members.iter().map(|m| m.as_bytes().to_vec()).collect(),
    ));
    Ok(Step::Add {
        dn: d.to_string_escaped(),
        attrs,
    })
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
