//! A plan and what the journal holds of it. A run's first pass journals its
//! plan; every later pass (a resume after a crash or a target failure, or
//! an approval) plans the same file again against the target as it is now
//! and merges: what the journal says was done keeps its outcome; what was
//! intended but not confirmed is planned afresh (an add that landed is now
//! "unchanged", so it is confirmed, never repeated); an approved held change
//! is applied only while it is still the change the operator was shown.

use std::collections::HashMap;

use crate::core::plan::Breach;
use crate::core::plan::ChangeKind;
use crate::core::report::item_message;
use crate::core::{Change, Entry, Outcome, Plan, PlanItem, Policy, Roster, UserKey, Verdict};
use crate::journal::{ItemId, ItemRecord};

const CONFIRMED: &str = "applied before an interruption; confirmed by reading the target again";

/// Each plan item's identity and what is decided of it so far.
pub(super) struct Progress {
    pub ids: Vec<ItemId>,
    pub outcomes: Vec<Option<Outcome>>,
    /// Messages as journaled (used as they are in the results).
    pub messages: Vec<Option<String>>,
    /// Items decided here whose outcome is not journaled yet.
    pub unjournaled: Vec<usize>,
    /// Approved items: applied only when their change still reads the same.
    pub approved: Vec<bool>,
}

pub(super) fn item_id(item: &PlanItem) -> ItemId {
    match (item.entry(), &item.key) {
        (Some(e), _) => ItemId::Row(e),
        (None, Some(k)) => ItemId::absent(k),
        (None, None) => ItemId::Absent(String::new()),
    }
}

/// What a change does, as shown to people; an approval compares it.
pub(super) fn detail(item: &PlanItem, policy: &Policy) -> Option<String> {
    match &item.change {
        Change::Update(d) | Change::Rejoin(d) => Some(d.describe(policy)),
        Change::Reset(d) if d.is_empty() => Some("password".into()),
        Change::Reset(d) => Some(format!("password; {}", d.describe(policy))),
        _ => None,
    }
}

fn line_of(item: &PlanItem, roster: &Roster) -> Option<i64> {
    let origin = match roster.entries.get(item.entry()?)? {
        Entry::Valid(p) => roster.persons.get(*p)?.origin,
        Entry::Rejected(r) => r.origin,
    };
    i64::try_from(origin.line).ok()
}

/// How to approve a held class, appended to its rows' messages.
pub(super) fn approve_how(run: i64, item: &PlanItem) -> String {
    match item.change.class() {
        Some(c) => format!(
            "to apply it after review: dirsync runs approve {run} --class {}",
            c.as_str()
        ),
        None => format!("to apply it after review: dirsync runs approve {run}"),
    }
}

/// The first pass: what the plan alone decides, and the records to journal
/// (the items that change, are rejected or are held).
pub(super) fn first(
    plan: &Plan,
    roster: &Roster,
    policy: &Policy,
    run: i64,
    preview: bool,
) -> (Progress, Vec<ItemRecord>) {
    let n = plan.items.len();
    let mut p = Progress {
        ids: plan.items.iter().map(item_id).collect(),
        outcomes: Vec::with_capacity(n),
        messages: vec![None; n],
        unjournaled: Vec::new(),
        approved: vec![false; n],
    };
    let mut records = Vec::with_capacity(n);
    for (i, item) in plan.items.iter().enumerate() {
        let o = Outcome::from_plan(item, preview);
        let message = o.as_ref().map(|o| {
            let m = item_message(item, o, roster, policy);
            if o.verdict == Verdict::Held {
                format!("{m}; {}", approve_how(run, item))
            } else {
                m
            }
        });
        let verdict = o.as_ref().map(|o| o.verdict);
        p.outcomes.push(o);
        // What a run changes, rejects or holds is journaled; an unchanged
        // row or an ignored absent account is not (100k of them cost a
        // quarter of a second a night): a resumed pass plans it afresh and,
        // finding it still needs nothing, reports it unchanged.
        if matches!(item.change.kind(), ChangeKind::Unchanged | ChangeKind::Absent) {
            p.messages[i] = message;
            continue;
        }
        p.messages[i] = message.clone();
        records.push(ItemRecord {
            id: p.ids[i].clone(),
            line: line_of(item, roster),
            user_key: item.key.as_ref().map(|k| k.as_str().to_string()),
            change: item.change.kind(),
            detail: detail(item, policy),
            intent: false,
            approved: false,
            verdict,
            message,
        });
    }
    (p, records)
}

/// A later pass: merge the journaled records into a fresh plan. Items of the
/// first plan that the target no longer shows are appended to the plan.
pub(super) fn merge(plan: &mut Plan, mut records: HashMap<ItemId, ItemRecord>, policy: &Policy) -> Progress {
    let n = plan.items.len();
    let mut p = Progress {
        ids: plan.items.iter().map(item_id).collect(),
        outcomes: vec![None; n],
        messages: vec![None; n],
        unjournaled: Vec::new(),
        approved: vec![false; n],
    };
    for (i, item) in plan.items.iter_mut().enumerate() {
        let Some(r) = records.remove(&p.ids[i]) else {
            // Not journaled: it needed nothing in the first plan. If it
            // needs a write now, the target changed while the run was
            // interrupted: leave it to the next file.
            p.outcomes[i] = Some(Outcome::from_plan(item, false).unwrap_or_else(|| {
                Outcome::new(
                    Verdict::Skipped,
                    Some(
                        "not in this run's original plan (the target changed during the run); the next file handles it"
                            .into(),
                    ),
                )
            }));
            continue;
        };
        if let Some(v) = r.verdict {
            if item.change.kind() != r.change {
                item.change = r.change.bare();
            }
            p.outcomes[i] = Some(Outcome::new(v, None));
            p.messages[i] = Some(r.message.unwrap_or_default());
            continue;
        }
        let writes = item.will_write();
        if r.approved {
            p.approved[i] = true;
            let same = item.change.kind() == r.change && detail(item, policy) == r.detail;
            if writes && same {
                continue; // applied by the caller
            }
            let why = if r.intent && !writes {
                CONFIRMED.to_string()
            } else if !writes {
                "approved, but no longer needed: the target already matches (someone fixed it); nothing written".into()
            } else {
                format!(
                    "approved, but not applied: the change is no longer the one shown ({} → {}); the next file handles it",
                    r.detail.as_deref().unwrap_or(r.change.as_str()),
                    detail(item, policy).as_deref().unwrap_or(item.change.name())
                )
            };
            let verdict = if r.intent && !writes {
                Verdict::Done
            } else {
                Verdict::Skipped
            };
            item.change = r.change.bare();
            p.outcomes[i] = Some(Outcome::new(verdict, Some(why)));
            p.unjournaled.push(i);
            continue;
        }
        if writes {
            continue; // applied by the caller
        }
        if r.intent {
            // Intended, not confirmed, and the target now needs nothing:
            // the write landed before the interruption.
            item.change = r.change.bare();
            p.outcomes[i] = Some(Outcome::new(Verdict::Done, Some(CONFIRMED.into())));
        } else {
            p.outcomes[i] =
                Some(Outcome::from_plan(item, false).unwrap_or_else(|| Outcome::new(Verdict::Skipped, None)));
        }
        p.unjournaled.push(i);
    }
    // Items of the first plan the target no longer shows (a deleted account).
    let mut leftovers: Vec<ItemRecord> = records.into_values().collect();
    leftovers.sort_by(|a, b| a.id.cmp(&b.id));
    for r in leftovers {
        let (o, msg) = match r.verdict {
            Some(v) => (Outcome::new(v, None), r.message.clone().unwrap_or_default()),
            None if r.intent && r.change == crate::core::plan::ChangeKind::Delete => {
                (Outcome::new(Verdict::Done, None), format!("deleted; {CONFIRMED}"))
            }
            None => (
                Outcome::new(Verdict::Failed, None),
                "the account left the target while the run was interrupted; check it".to_string(),
            ),
        };
        let key = r.user_key.as_deref().map(UserKey::new);
        plan.items.push(PlanItem::new(key, None, None, None, r.change.bare()));
        let i = plan.items.len() - 1;
        p.ids.push(r.id.clone());
        p.outcomes.push(Some(o));
        p.messages.push(Some(msg));
        p.approved.push(r.approved);
        if r.verdict.is_none() {
            p.unjournaled.push(i);
        }
    }
    p
}

/// The breaches a resumed run reports: those of its first plan.
pub(super) fn first_breaches(journaled: &[Breach], fresh: &[Breach], resuming: bool) -> Vec<Breach> {
    if resuming {
        journaled.to_vec()
    } else {
        fresh.to_vec()
    }
}
