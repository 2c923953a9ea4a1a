//! Entries the plan's writes need that the target lacks (`[ldap]
//! create_containers`, `[groups] create_missing`): asked of the backend once,
//! when a run is first planned and before anything is journaled, so that
//! the preview lists them and `limits.containers` holds them back. The
//! backend creates them itself when it applies the writes.

use crate::backend::{Backend, BackendError, MissingKind, Op};
use crate::core::{Change, Hold, Plan, Policy, Roster, Snapshot};

/// Note on each item what it makes the backend create; over
/// `limits.containers`, skip every item that needs something created.
pub(super) async fn plan_missing(
    backend: &dyn Backend,
    plan: &mut Plan,
    roster: &Roster,
    snapshot: &Snapshot,
    policy: &Policy,
    now: i64,
) -> Result<(), BackendError> {
    let idx: Vec<usize> = (0..plan.items.len())
        .filter(|&i| {
            let it = &plan.items[i];
            it.will_write()
                && it.key.is_some()
                && matches!(
                    it.change,
                    Change::Add | Change::Update(_) | Change::Rejoin(_) | Change::Adopt(_)
                )
        })
        .collect();
    if idx.is_empty() {
        return Ok(());
    }
    let missing = {
        let ops: Vec<Op<'_>> = idx
            .iter()
            .filter_map(|&i| {
                let it = &plan.items[i];
                Some(Op {
                    change: &it.change,
                    key: it.key.as_ref()?,
                    person: it.person().map(|p| &roster.persons[p]),
                    account: it.account().map(|a| snapshot.account(a)),
                    password: None,
                    must_change: false,
                    now,
                })
            })
            .collect();
        backend.missing(&ops).await?
    };
    let over = policy.limits.containers.max.filter(|max| missing.len() > *max);
    for m in &missing {
        let what = match m.kind {
            MissingKind::Container => "container",
            MissingKind::Group => "group",
        };
        for &k in &m.ops {
            let Some(item) = idx.get(k).and_then(|&i| plan.items.get_mut(i)) else {
                continue;
            };
            match over {
                Some(max) if !item.is_held() => {
                    item.set_hold(Some(Hold::Policy(format!(
                        "needs the {what} {}, which does not exist; this file needs {} new containers and groups, \
                         over limits.containers (max = {max}): nothing is created; create them by hand or raise the limit",
                        m.dn,
                        missing.len()
                    ))))
                }
                Some(_) => {}
                None => {
                    let note = format!("creates the {what} {} ({})", m.dn, m.kind.setting());
                    item.add_note(note);
                }
            }
        }
    }
    Ok(())
}
