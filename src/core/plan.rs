//! The pure diff: roster × snapshot × policy → one change per row and per
//! absent account, then the safety limits on the whole plan.

use super::policy::{AbsentAction, Existing, Limit, OnLimit, Policy, UpdateRule};
use super::roster::{Entry, Roster};
use super::snapshot::{Account, Snapshot};
use super::types::{AccountState, Person, Value};

mod changes;
mod item;
pub use changes::*;
pub use item::*;

const DAY: i64 = 86_400;

/// Decide every change. `now` is Unix seconds (for leaver grace periods).
pub fn plan(roster: &Roster, snapshot: &Snapshot, policy: &Policy, now: i64, opts: PlanOptions) -> Plan {
    let mut items = Vec::with_capacity(roster.entries.len());
    let mut seen = vec![false; snapshot.len()];
    let adoptable = super::adopt::Adoptable::index(snapshot, policy);
    for (ei, entry) in roster.entries.iter().enumerate() {
        match entry {
            Entry::Rejected(r) => {
                let (key, errors) = (&r.key, &r.errors);
                let account = key.as_ref().and_then(|k| snapshot.get(k)).map(|(i, _)| i);
                if let Some(a) = account {
                    seen[a] = true;
                }
                let change = Change::Reject(Box::new(errors.clone()));
                items.push(PlanItem::new(key.clone(), Some(ei), None, account, change));
            }
            Entry::Valid(pi) => {
                let person = &roster.persons[*pi];
                let found = snapshot.get(&person.key);
                if let Some((a, _)) = found {
                    seen[a] = true;
                }
                let timing = super::schedule::timing(&person.dates, &policy.lifecycle, now);
                let state = timing.state(person.state);
                let acct = found.map(|(_, a)| a);
                let (mut change, mut note) = decide(person, state, acct, roster, snapshot, policy, now);
                let mut account = found.map(|(i, _)| i);
                if change == Change::Add && timing.create.is_none() {
                    (change, account, note) = adoptable.adopt(person, roster, snapshot, policy, note);
                }
                let due;
                (change, note, due) = timing.schedule(change, note, &person.dates, &policy.lifecycle);
                let hold = policy_hold(&change, policy);
                let mut item = PlanItem::new(Some(person.key.clone()), Some(ei), Some(*pi), account, change);
                item.set_hold(hold);
                item.set_note(note);
                item.set_due(due);
                items.push(item);
            }
        }
    }

    // Accounts in scope that the file does not name.
    let no_valid_rows = roster.persons.is_empty();
    let mut absent: Vec<usize> = (0..snapshot.len())
        .filter(|i| !seen[*i] && !snapshot.is_adoptable(*i))
        .collect();
    absent.sort_by(|a, b| snapshot.account(*a).key.cmp(&snapshot.account(*b).key));
    for a in absent {
        let acct = snapshot.account(a);
        if policy.is_protected(&acct.key) {
            continue;
        }
        let (change, note) = if no_valid_rows {
            (
                Change::Absent,
                "not in the file; left alone because the file has no valid rows".to_string(),
            )
        } else if acct.state == AccountState::Leaver && grace_over(acct, policy, now) {
            (Change::Delete, "leaver past sync.delete_leavers_after_days".to_string())
        } else {
            match (policy.sync.absent, acct.state) {
                (AbsentAction::Ignore, _) => (
                    Change::Absent,
                    "not in the file; left alone (sync.absent = ignore)".into(),
                ),
                (AbsentAction::Leaver, AccountState::Active) => {
                    (Change::Leave, "not in the file (sync.absent = leaver)".into())
                }
                (AbsentAction::Leaver, AccountState::Leaver) => {
                    (Change::Absent, "not in the file; already a leaver".into())
                }
                (AbsentAction::Delete, _) => (Change::Delete, "not in the file (sync.absent = delete)".into()),
            }
        };
        let mut item = PlanItem::new(Some(acct.key.clone()), None, None, Some(a), change);
        item.set_note(Some(note));
        items.push(item);
    }

    let mut plan = Plan {
        items,
        breaches: Vec::new(),
        stopped: false,
    };
    apply_limits(&mut plan, snapshot.managed_len(), policy, opts);
    super::capacity::apply_capacity(&mut plan, snapshot, policy, opts);
    plan
}

fn grace_over(acct: &Account, policy: &Policy, now: i64) -> bool {
    match (policy.sync.delete_leavers_after_days, acct.left_at) {
        (Some(days), Some(left)) => now - left >= i64::from(days) * DAY,
        _ => false,
    }
}

fn decide(
    person: &Person,
    state: AccountState,
    account: Option<&Account>,
    roster: &Roster,
    snapshot: &Snapshot,
    policy: &Policy,
    now: i64,
) -> (Change, Option<String>) {
    let Some(acct) = account else {
        return match state {
            AccountState::Active => (Change::Add, None),
            AccountState::Leaver => (
                Change::Unchanged,
                Some("leaver not in the target; nothing to do".into()),
            ),
        };
    };
    match (state, acct.state) {
        (AccountState::Leaver, AccountState::Active) => (Change::Leave, None),
        (AccountState::Leaver, AccountState::Leaver) => {
            if grace_over(acct, policy, now) {
                (
                    Change::Delete,
                    Some("leaver past sync.delete_leavers_after_days".into()),
                )
            } else {
                (Change::Unchanged, Some("already a leaver".into()))
            }
        }
        (AccountState::Active, AccountState::Leaver) => {
            let mut d = diff(person, acct, roster, snapshot, policy);
            // A rejoiner gets the row's groups back even if they equal what
            // the snapshot remembers: leaving stripped them.
            d.groups_remove.clear();
            (Change::Rejoin(Box::new(d)), None)
        }
        (AccountState::Active, AccountState::Active) => {
            let d = diff(person, acct, roster, snapshot, policy);
            // Only a row flagged in the invite column touches an existing
            // account's password: a password column in a nightly file must
            // not reset every account every night. Its password is set;
            // without one it gets what `[passwords] existing` says.
            let reset = person.invite && (person.password.is_some() || policy.passwords.existing != Existing::Keep);
            if reset {
                return (Change::Reset(Box::new(d)), None);
            }
            if d.is_empty() {
                (Change::Unchanged, None)
            } else {
                (Change::Update(Box::new(d)), None)
            }
        }
    }
}

pub(super) fn diff(person: &Person, acct: &Account, roster: &Roster, snapshot: &Snapshot, policy: &Policy) -> Diff {
    let mut d = Diff::default();
    for (i, new) in person.attrs.iter().enumerate() {
        // Not stored, or the directory's own (update = "create-only" or "never").
        if !snapshot.managed.get(i).copied().unwrap_or(false) || policy.attr_rule(i).update != UpdateRule::Always {
            continue;
        }
        // Borrow; clone only what differs.
        let old = acct.attrs.get(i);
        let case_blind = snapshot.case_blind.get(i).copied().unwrap_or(false);
        let same = |o: &str, v: &str| {
            if case_blind {
                o.to_lowercase() == v.to_lowercase()
            } else {
                o == v
            }
        };
        match new {
            Some(v) if !old.is_some_and(|o| same(o, v)) => d.attrs.push(AttrChange {
                attr: i,
                old: old.map(Value::from),
                new: Some(Value::from(v)),
            }),
            None if old.is_some()
                && roster.present.get(i).copied().unwrap_or(false)
                && policy.attr_rule(i).clear_when_empty =>
            {
                d.attrs.push(AttrChange {
                    attr: i,
                    old: old.map(Value::from),
                    new: None,
                })
            }
            _ => {}
        }
    }
    if let Some(want) = &person.groups {
        for g in want {
            if !acct.groups.iter().any(|h| h.eq_ignore_ascii_case(g)) {
                d.groups_add.push(g.clone());
            }
        }
        for h in &acct.groups {
            if policy.is_managed_group(h) && !want.iter().any(|g| g.eq_ignore_ascii_case(h)) {
                d.groups_remove.push(h.clone());
            }
        }
    }
    d
}

fn policy_hold(change: &Change, policy: &Policy) -> Option<Hold> {
    match change {
        Change::Add if !policy.sync.add => Some(Hold::Policy(
            "new accounts are not allowed by this policy (sync.add = false)".into(),
        )),
        Change::Update(_) | Change::Reset(_) if !policy.sync.update => Some(Hold::Policy(
            "updates are not allowed by this policy (sync.update = false)".into(),
        )),
        _ => None,
    }
}

fn limit_for(policy: &Policy, class: Class) -> Limit {
    let l = &policy.limits;
    match class {
        Class::Adds => l.adds,
        Class::Updates => l.updates,
        Class::Leavers => l.leavers,
        Class::Rejoins => l.rejoins,
        Class::Deletes => l.deletes,
        Class::Adopts => l.adopts,
        Class::PasswordResets => l.password_resets,
    }
}

fn apply_limits(plan: &mut Plan, managed: usize, policy: &Policy, opts: PlanOptions) {
    for class in Class::ALL {
        let count = plan
            .items
            .iter()
            .filter(|i| i.change.class() == Some(class) && !i.is_held())
            .count();
        if count == 0 {
            continue;
        }
        let limit = limit_for(policy, class);
        let mut over = None;
        if let Some(max) = limit.max {
            if count > max {
                over = Some(format!("max = {max}"));
            }
        }
        if let Some(pct) = limit.max_percent {
            // With no managed accounts a percentage means nothing; only the
            // absolute bound applies (a first load into an empty target).
            if managed > 0 && (count as f64) * 100.0 > pct * managed as f64 {
                let actual = count as f64 * 100.0 / managed as f64;
                over = Some(match over {
                    Some(o) => format!("{o}, max_percent = {pct} (this is {actual:.1}%)"),
                    None => format!("max_percent = {pct} (this is {actual:.1}%)"),
                });
            }
        }
        if let Some(limit) = over {
            plan.breaches.push(Breach {
                class,
                count,
                managed,
                limit,
            });
        }
    }
    if plan.breaches.is_empty() || opts.allow_over_limit {
        return;
    }
    let stop = policy.limits.on_limit == OnLimit::Stop;
    plan.stopped = stop;
    for item in plan.items.iter_mut().filter(|i| !i.is_held()) {
        let Some(class) = item.change.class() else { continue };
        let breach = plan.breaches.iter().find(|b| b.class == class);
        let reason = match (breach, stop) {
            (Some(b), _) => b.to_string(),
            (None, true) => {
                let all: Vec<String> = plan.breaches.iter().map(|b| b.to_string()).collect();
                format!("run stopped (limits.on_limit = stop): {}", all.join("; "))
            }
            (None, false) => continue,
        };
        item.set_hold(Some(Hold::Limit(reason)));
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
