//! Writes and the dry run: ops → steps → the server, pipelined; the same
//! steps checked against the server's schema without writing.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tracing::{debug, info, warn};

use futures::StreamExt;
use ldap3::{Scope, SearchEntry};

use super::conn::coalesce;
use super::dn::{normalise, Dn};
use super::ops::{Builder, Membership, OpSteps, Step};
use super::read::first;
use super::schema::Schema;
use super::txn::TxnFailure;
use super::{Flavour, LdapBackend};
use crate::backend::{BackendError, Op, OpResult};

impl LdapBackend {
    async fn schema(&self) -> Result<&Schema, BackendError> {
        self.schema
            .get_or_try_init(|| async {
                let mut ldap = self.pool.get(0).await?;
                let t = self.pool.op_timeout();
                let root = ldap
                    .with_timeout(t)
                    .search("", Scope::Base, "(objectClass=*)", vec!["subschemaSubentry"])
                    .await
                    .map_err(|e| BackendError::Other(format!("reading the root DSE: {e}")))?;
                let sub = root
                    .0
                    .into_iter()
                    .next()
                    .map(SearchEntry::construct)
                    .and_then(|e| first(&e, "subschemaSubentry").map(str::to_string))
                    .unwrap_or_else(|| "cn=Subschema".to_string());
                let r = ldap
                    .with_timeout(t)
                    .search(
                        &sub,
                        Scope::Base,
                        "(objectClass=subschema)",
                        vec!["objectClasses", "attributeTypes"],
                    )
                    .await
                    .map_err(|e| BackendError::Other(format!("reading the schema {sub}: {e}")))?;
                let e = r.0.into_iter().next().map(SearchEntry::construct).ok_or_else(|| {
                    BackendError::Schema(format!("the schema entry {sub} is not readable by the bind DN"))
                })?;
                let get = |a: &str| {
                    e.attrs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(a))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                Ok(Schema::new(&get("objectClasses"), &get("attributeTypes")))
            })
            .await
    }

    pub(super) fn build(&self, op: &Op<'_>) -> Result<OpSteps, String> {
        let uac = if self.map.flavour == Flavour::Ad {
            self.uac.lock().ok().and_then(|m| m.get(op.key.folded()).copied())
        } else {
            None
        };
        let mut salt = [0u8; 8];
        rand::Rng::fill(&mut rand::rng(), &mut salt);
        Builder {
            map: &self.map,
            op,
            uac,
            salt,
        }
        .build()
    }

    /// One phase of group changes for a batch: coalesced per group, falling
    /// back to one value at a time when the combined modify fails.
    pub(super) async fn members_phase(&self, add: bool, items: Vec<(usize, &Membership)>, errs: &mut [Vec<String>]) {
        for (group, attr, members) in coalesce(&items) {
            let values: Vec<String> = members.iter().map(|(_, v)| v.clone()).collect();
            if self.pool.run_members(0, add, &group, attr, &values).await.is_ok() {
                continue;
            }
            for (op, v) in &members {
                if let Err(e) = self
                    .pool
                    .run_members(0, add, &group, attr, std::slice::from_ref(v))
                    .await
                {
                    errs[*op].push(e);
                }
            }
        }
    }

    pub(super) async fn check_ops(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        let schema = self.schema().await?;
        let strict = self.map.flavour.strict_schema();
        let mut exists: HashMap<String, bool> = HashMap::new();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let steps = match self.build(op) {
                Ok(s) => s,
                Err(e) => {
                    out.push(Some(e));
                    continue;
                }
            };
            let mut problems: Vec<String> = Vec::new();
            let mut need: Vec<String> = Vec::new();
            for s in &steps.steps {
                match s {
                    Step::Add { dn, attrs } => {
                        problems.extend(schema.check_add(attrs, strict));
                        if let Ok(d) = Dn::parse(dn) {
                            need.push(d.split_first().1.to_string_escaped());
                        }
                    }
                    Step::Modify { mods, .. } => {
                        let (must, may) = schema.allowed(&self.map.object_classes).map_err(BackendError::Schema)?;
                        let mut allowed: Vec<String> = must.into_iter().chain(may).collect();
                        if !strict {
                            allowed.push("*extensible*".into());
                        }
                        for m in mods {
                            if let Some(p) = schema.check_attribute(&m.attr, &m.values, &allowed) {
                                problems.push(p);
                            }
                            if m.values.is_empty() && schema.is_required(&m.attr, &self.map.object_classes) {
                                problems.push(format!(
                                    "{} is required by the object classes and an empty cell would remove it",
                                    m.attr
                                ));
                            }
                        }
                    }
                    Step::Rename { new_superior, .. } => need.extend(new_superior.iter().cloned()),
                    Step::Delete { .. } | Step::SetPassword { .. } => {}
                }
            }
            for m in steps.group_add.iter().chain(&steps.group_remove) {
                need.push(m.group_dn.clone());
            }
            for dn in need {
                let n = normalise(&dn);
                let ok = match exists.get(&n) {
                    Some(b) => *b,
                    None => {
                        let b = self.pool.exists(0, &dn).await.map_err(BackendError::Other)?;
                        exists.insert(n, b);
                        b
                    }
                };
                if !ok && !self.will_create(&dn) {
                    problems.push(format!("{dn} does not exist"));
                }
            }
            problems.dedup();
            out.push((!problems.is_empty()).then(|| problems.join("; ")));
        }
        Ok(out)
    }

    pub(super) async fn apply_ops(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError> {
        // A server that stays down fails the run as a whole, not row by row.
        let mut up = Err(BackendError::Connect("not tried".into()));
        for attempt in 0..=self.target.retries {
            up = self.pool.get(0).await.map(|_| ());
            if up.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis((200u64 << attempt.min(5)).min(5_000))).await;
        }
        up?;
        let built: Vec<Result<OpSteps, String>> = ops.iter().map(|op| self.build(op)).collect();
        let mut errs: Vec<Vec<String>> = built
            .iter()
            .map(|b| b.as_ref().err().cloned().into_iter().collect())
            .collect();
        let ok = |k: usize| built[k].as_ref().ok();

        let removes: Vec<(usize, &Membership)> = (0..ops.len())
            .filter_map(|k| ok(k).map(|s| (k, s)))
            .flat_map(|(k, s)| s.group_remove.iter().map(move |m| (k, m)))
            .collect();
        self.members_phase(false, removes, &mut errs).await;
        self.create_containers(&built, &mut errs).await;

        let conns = self.pool.size();
        let pool = &self.pool;
        let in_flight = self.target.max_in_flight.max(1);
        // Plain adds go in LDAP transactions (one mdb write per group); the
        // ops of a group that is not committed are then made one by one.
        let plain_add = |k: usize| ok(k).is_some_and(|s| matches!(s.steps.as_slice(), [Step::Add { .. }]));
        let mut one_by_one: Vec<(usize, bool)> = Vec::new();
        let txn_size = self.target.transaction_size;
        if txn_size > 1 && self.txn.load(Ordering::Relaxed) {
            let adds: Vec<usize> = (0..ops.len()).filter(|k| plain_add(*k)).collect();
            one_by_one.extend((0..ops.len()).filter(|k| !plain_add(*k)).map(|k| (k, false)));
            // A lone add gains nothing from a transaction.
            let (groups, lone): (Vec<&[usize]>, Vec<&[usize]>) = adds.chunks(txn_size).partition(|g| g.len() > 1);
            one_by_one.extend(lone.iter().flat_map(|g| g.iter()).map(|k| (*k, false)));
            let groups = &groups;
            let mut committed = futures::stream::iter(0..groups.len())
                .map(|g| {
                    let ks = groups[g];
                    async move {
                        let steps: Vec<&Step> = ks.iter().filter_map(|k| ok(*k).map(|s| &s.steps[0])).collect();
                        (ks, pool.add_in_txn(g % conns, &steps, in_flight).await)
                    }
                })
                // One transaction at a time: slapd 2.5.13 crashed with two
                // transactions open on two connections at once.
                .buffer_unordered(1);
            while let Some((ks, r)) = committed.next().await {
                match r {
                    Ok(()) => {}
                    Err(TxnFailure::Unsupported(m)) => {
                        if self.txn.swap(false, Ordering::Relaxed) {
                            info!(reason = ?m, "The server does not support LDAP transactions; adding entries one by one.");
                        }
                        one_by_one.extend(ks.iter().map(|k| (*k, false)));
                    }
                    Err(TxnFailure::Lost(m)) => {
                        warn!(error = ?m, "Connection lost during a transaction; adding its entries one by one.");
                        one_by_one.extend(ks.iter().map(|k| (*k, true)));
                    }
                    Err(TxnFailure::Refused(m)) => {
                        debug!(error = ?m, "A transaction was refused; adding its entries one by one.");
                        one_by_one.extend(ks.iter().map(|k| (*k, false)));
                    }
                }
            }
        } else {
            one_by_one.extend((0..ops.len()).map(|k| (k, false)));
        }
        // Unordered: a slow operation never holds back the ones behind it.
        let mut entry_results: Vec<Result<(), String>> = vec![Ok(()); ops.len()];
        let mut finished = futures::stream::iter(one_by_one)
            .map(|(k, uncertain)| {
                let steps = ok(k).map(|s| s.steps.as_slice()).unwrap_or(&[]);
                async move {
                    for (n, s) in steps.iter().enumerate() {
                        if let Err(e) = pool.run_step(k % conns, s, uncertain).await {
                            // An entry added by this op whose password or
                            // enabling then failed is taken out again, so the
                            // row can simply be sent again.
                            let e = match (n, steps.first()) {
                                (1.., Some(Step::Add { dn, .. })) => {
                                    let undo = Step::Delete { dn: dn.clone() };
                                    match pool.run_step(k % conns, &undo, false).await {
                                        Ok(()) => format!(
                                            "{e}; the new entry was removed again: fix this and send the row again"
                                        ),
                                        Err(d) => format!(
                                            "{e}; the new entry {dn} was left half made (removing it failed: {d})"
                                        ),
                                    }
                                }
                                _ => e,
                            };
                            return (k, Err(e));
                        }
                    }
                    (k, Ok(()))
                }
            })
            .buffer_unordered(in_flight);
        while let Some((k, r)) = finished.next().await {
            entry_results[k] = r;
        }
        drop(finished);
        for (k, r) in entry_results.iter().enumerate() {
            if let Err(e) = r {
                errs[k].push(e.clone());
            }
        }

        let done = |k: usize| entry_results[k].is_ok() && built[k].is_ok();
        let after: Vec<(usize, &Membership)> = (0..ops.len())
            .filter(|k| done(*k))
            .filter_map(|k| ok(k).map(|s| (k, s)))
            .flat_map(|(k, s)| s.group_remove_after.iter().map(move |m| (k, m)))
            .collect();
        self.members_phase(false, after, &mut errs).await;
        // Members added to groups wait for the end of the run (`held`).
        let adds: Vec<(usize, Membership)> = (0..ops.len())
            .filter(|k| done(*k))
            .filter_map(|k| ok(k).map(|s| (k, s)))
            .flat_map(|(k, s)| s.group_add.iter().map(move |m| (k, m.clone())))
            .collect();

        // The server went away during the batch: the run fails as a whole
        // (what was not written is planned again on the next run) rather
        // than row by row.
        if let Some(why) = self.pool.gone() {
            let why = why.trim_start_matches("cannot connect: ");
            return Err(BackendError::Connect(format!(
                "the server stopped answering during the run ({why})"
            )));
        }
        self.hold(ops.len(), adds);
        Ok(errs
            .into_iter()
            .map(|e| if e.is_empty() { Ok(()) } else { Err(e.join("; ")) })
            .collect())
    }
}
