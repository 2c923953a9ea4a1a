//! `[limits] max_accounts`: licence capacity (seed 000: accounts are
//! created "as long as licence spaces are available"). The managed active
//! accounts, plus what the plan adds, rejoins and adopts, minus its
//! leavers and deletes of active accounts, may not exceed the maximum:
//! leavers in the same file free licences first, then adds take them in
//! file order, and the adds beyond are held with how many licences are free.

use super::plan::{Breach, Change, Class, Hold, Plan, PlanOptions};
use super::policy::Policy;
use super::snapshot::Snapshot;
use super::types::AccountState;

/// The `limit` text of a capacity breach (its `Display` names max_accounts).
pub(super) const SETTING: &str = "max_accounts";

/// Hold the adds over `limits.max_accounts` (not when the operator allowed it).
pub(super) fn apply_capacity(plan: &mut Plan, snapshot: &Snapshot, policy: &Policy, opts: PlanOptions) {
    let Some(max) = policy.limits.max_accounts else { return };
    let active = snapshot.active_count() as i64;
    let mut freed = 0i64;
    let mut taken = 0i64;
    for item in plan.items.iter().filter(|i| !i.is_held()) {
        let was_active = item
            .account()
            .filter(|a| !snapshot.is_adoptable(*a))
            .is_some_and(|a| snapshot.account(a).state == AccountState::Active);
        match &item.change {
            Change::Leave => freed += 1,
            Change::Delete if was_active => freed += 1,
            Change::Rejoin(_) | Change::Adopt(_) => taken += 1,
            _ => {}
        }
    }
    let free = (max as i64 - active + freed - taken).max(0);
    let adds = plan
        .items
        .iter()
        .filter(|i| !i.is_held() && i.change == Change::Add)
        .count() as i64;
    if adds <= free || opts.allow_over_limit {
        return;
    }
    let over = (adds - free) as usize;
    let why = format!(
        "{over} of {adds} new accounts exceed limits.max_accounts = {max}: {free} licence(s) free \
         ({active} active accounts, {freed} leaving in this file, {taken} rejoining or adopted); held for approval"
    );
    plan.breaches.push(Breach {
        class: Class::Adds,
        count: over,
        managed: snapshot.managed_len(),
        limit: format!("{SETTING} = {max}: {free} licence(s) free"),
    });
    let mut left = free;
    for item in plan
        .items
        .iter_mut()
        .filter(|i| !i.is_held() && i.change == Change::Add)
    {
        if left > 0 {
            left -= 1;
        } else {
            item.set_hold(Some(Hold::Limit(why.clone())));
        }
    }
}

#[cfg(test)]
mod tests;
