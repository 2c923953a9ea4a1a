//! The pure diff: roster × snapshot × policy → one change per row and per
//! absent account, then the safety limits on the whole plan.

use std::fmt;

use super::policy::{AbsentAction, Existing, Limit, OnLimit, Policy, UpdateRule};
use super::roster::{Entry, Roster, RowError};
use super::snapshot::{Account, Snapshot};
use super::types::{AccountState, Person, UserKey, Value};

/// What one attribute goes from and to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrChange {
    pub attr: usize,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The difference between a row and its account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub attrs: Vec<AttrChange>,
    pub groups_add: Vec<Value>,
    pub groups_remove: Vec<Value>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.groups_add.is_empty() && self.groups_remove.is_empty()
    }

    /// "title: Clerk → Accountant; groups +vpn −staff" for the results file.
    pub fn describe(&self, policy: &Policy) -> String {
        let mut parts: Vec<String> = self
            .attrs
            .iter()
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    policy.attributes.get(c.attr).map(String::as_str).unwrap_or("?"),
                    c.old.as_deref().unwrap_or("(empty)"),
                    c.new.as_deref().unwrap_or("(empty)")
                )
            })
            .collect();
        if !self.groups_add.is_empty() || !self.groups_remove.is_empty() {
            let g: Vec<String> = self
                .groups_add
                .iter()
                .map(|g| format!("+{g}"))
                .chain(self.groups_remove.iter().map(|g| format!("-{g}")))
                .collect();
            parts.push(format!("groups {}", g.join(" ")));
        }
        parts.join("; ")
    }
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add,
    /// Boxed: most items are unchanged, and the plan holds one per row.
    Update(Box<Diff>),
    Unchanged,
    Leave,
    Rejoin(Box<Diff>),
    Delete,
    /// Absent from the file; the policy says leave it alone.
    Absent,
    Reject(Vec<RowError>),
    /// `sync.adopt`: take over the one unmanaged account with the row's
    /// value (`PlanItem::account`), with the row's differences.
    Adopt(Box<Diff>),
    /// `[lifecycle]`: the row's start date is ahead; the account is created
    /// (or re-enabled) then (`PlanItem::due`).
    Scheduled,
    /// An existing account's password set — from the row, generated, or an
    /// activation link sent (`[passwords] existing`) — with the row's
    /// other differences (maybe none).
    Reset(Box<Diff>),
}

/// Change classes that safety limits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Adds,
    Updates,
    Leavers,
    Rejoins,
    Deletes,
    Adopts,
    #[serde(rename = "password_resets")]
    PasswordResets,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::Adds,
        Class::Updates,
        Class::Leavers,
        Class::Rejoins,
        Class::Deletes,
        Class::Adopts,
        Class::PasswordResets,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Adds => "adds",
            Class::Updates => "updates",
            Class::Leavers => "leavers",
            Class::Rejoins => "rejoins",
            Class::Deletes => "deletes",
            Class::Adopts => "adopts",
            Class::PasswordResets => "password_resets",
        }
    }
}

/// A change without its data: what the journal records and people read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Add,
    Update,
    Unchanged,
    Leave,
    Rejoin,
    Delete,
    Absent,
    Reject,
    Adopt,
    Scheduled,
    Reset,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 11] = [
        ChangeKind::Add,
        ChangeKind::Update,
        ChangeKind::Unchanged,
        ChangeKind::Leave,
        ChangeKind::Rejoin,
        ChangeKind::Delete,
        ChangeKind::Absent,
        ChangeKind::Reject,
        ChangeKind::Adopt,
        ChangeKind::Scheduled,
        ChangeKind::Reset,
    ];

    /// The word in the results file's `change` column (seed: New / Update / Old / Error).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Add => "new",
            ChangeKind::Update => "update",
            ChangeKind::Unchanged => "unchanged",
            ChangeKind::Leave => "leaver",
            ChangeKind::Rejoin => "joiner",
            ChangeKind::Delete => "delete",
            ChangeKind::Absent => "absent",
            ChangeKind::Reject => "error",
            ChangeKind::Adopt => "adopt",
            ChangeKind::Scheduled => "scheduled",
            ChangeKind::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of change a safety-limit class counts.
    pub fn of_class(class: Class) -> ChangeKind {
        match class {
            Class::Adds => ChangeKind::Add,
            Class::Updates => ChangeKind::Update,
            Class::Leavers => ChangeKind::Leave,
            Class::Rejoins => ChangeKind::Rejoin,
            Class::Deletes => ChangeKind::Delete,
            Class::Adopts => ChangeKind::Adopt,
            Class::PasswordResets => ChangeKind::Reset,
        }
    }

    pub fn class(self) -> Option<Class> {
        Class::ALL.into_iter().find(|c| ChangeKind::of_class(*c) == self)
    }

    /// The change as a plan would hold it, without its data (a diff is
    /// empty): for a journaled item whose change is no longer planned.
    pub fn bare(self) -> Change {
        match self {
            ChangeKind::Add => Change::Add,
            ChangeKind::Update => Change::Update(Box::default()),
            ChangeKind::Unchanged => Change::Unchanged,
            ChangeKind::Leave => Change::Leave,
            ChangeKind::Rejoin => Change::Rejoin(Box::default()),
            ChangeKind::Delete => Change::Delete,
            ChangeKind::Absent => Change::Absent,
            ChangeKind::Reject => Change::Reject(Vec::new()),
            ChangeKind::Adopt => Change::Adopt(Box::default()),
            ChangeKind::Scheduled => Change::Scheduled,
            ChangeKind::Reset => Change::Reset(Box::default()),
        }
    }
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Add => ChangeKind::Add,
            Change::Update(_) => ChangeKind::Update,
            Change::Unchanged => ChangeKind::Unchanged,
            Change::Leave => ChangeKind::Leave,
            Change::Rejoin(_) => ChangeKind::Rejoin,
            Change::Delete => ChangeKind::Delete,
            Change::Absent => ChangeKind::Absent,
            Change::Reject(_) => ChangeKind::Reject,
            Change::Adopt(_) => ChangeKind::Adopt,
            Change::Scheduled => ChangeKind::Scheduled,
            Change::Reset(_) => ChangeKind::Reset,
        }
    }

    /// The word in the results file's `change` column (seed: New / Update / Old / Error).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    pub fn class(&self) -> Option<Class> {
        match self {
            Change::Add => Some(Class::Adds),
            Change::Update(_) => Some(Class::Updates),
            Change::Leave => Some(Class::Leavers),
            Change::Rejoin(_) => Some(Class::Rejoins),
            Change::Delete => Some(Class::Deletes),
            Change::Adopt(_) => Some(Class::Adopts),
            Change::Reset(_) => Some(Class::PasswordResets),
            Change::Unchanged | Change::Absent | Change::Reject(_) | Change::Scheduled => None,
        }
    }

    /// Whether applying it writes to the target.
    pub fn writes(&self) -> bool {
        self.class().is_some()
    }
}

/// Why a change is not applied although it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Over a safety limit (result `held`).
    Limit(String),
    /// The policy does not allow this kind of change (result `skipped`).
    Policy(String),
}

/// One item of the plan.
#[derive(Clone, Debug)]
pub struct PlanItem {
    pub key: Option<UserKey>,
    /// Index into `Roster::entries`; `None` for an account absent from the file.
    pub entry: Option<usize>,
    /// Index into `Roster::persons`, for valid rows.
    pub person: Option<usize>,
    /// Index into the snapshot, when the account exists.
    pub account: Option<usize>,
    pub change: Change,
    pub hold: Option<Hold>,
    /// Extra words for the results file.
    pub note: Option<String>,
    /// `[lifecycle]`: when something the row's dates put ahead falls due
    /// (Unix seconds): a scheduled creation, a future last day.
    pub due: Option<i64>,
}

impl PlanItem {
    pub fn is_absent(&self) -> bool {
        self.entry.is_none()
    }
    pub fn will_write(&self) -> bool {
        self.change.writes() && self.hold.is_none()
    }
}

/// A safety limit that the plan exceeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Breach {
    pub class: Class,
    pub count: usize,
    pub managed: usize,
    pub limit: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.limit.starts_with(super::capacity::SETTING) {
            return write!(f, "{} adds exceed limits.{}; held for approval", self.count, self.limit);
        }
        write!(
            f,
            "{} {} exceed limits.{} ({}; {} managed accounts); held for approval",
            self.count,
            self.class.as_str(),
            self.class.as_str(),
            self.limit,
            self.managed
        )
    }
}

/// The whole plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Roster entries in input order, then absent accounts in key order.
    pub items: Vec<PlanItem>,
    pub breaches: Vec<Breach>,
    /// `on_limit = "stop"` and a limit was exceeded: nothing is written.
    pub stopped: bool,
}

impl Plan {
    pub fn count(&self, class: Class) -> usize {
        self.items.iter().filter(|i| i.change.class() == Some(class)).count()
    }

    /// The earliest time something of this plan falls due (`[lifecycle]`).
    pub fn next_due(&self) -> Option<i64> {
        self.items.iter().filter_map(|i| i.due).min()
    }
}

/// Options an operator sets per run.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// Apply classes over their limits (the operator has looked).
    pub allow_over_limit: bool,
}

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
                items.push(PlanItem {
                    key: key.clone(),
                    entry: Some(ei),
                    person: None,
                    account,
                    change: Change::Reject(errors.clone()),
                    hold: None,
                    note: None,
                    due: None,
                });
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
                items.push(PlanItem {
                    key: Some(person.key.clone()),
                    entry: Some(ei),
                    person: Some(*pi),
                    account,
                    change,
                    hold,
                    note,
                    due,
                });
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
        items.push(PlanItem {
            key: Some(acct.key.clone()),
            entry: None,
            person: None,
            account: Some(a),
            change,
            hold: None,
            note: Some(note),
            due: None,
        });
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
        let old = acct.attrs.get(i).and_then(|v| v.as_ref());
        let case_blind = snapshot.case_blind.get(i).copied().unwrap_or(false);
        let same = |o: &Value, v: &Value| {
            if case_blind {
                o.as_str().to_lowercase() == v.as_str().to_lowercase()
            } else {
                o.as_str() == v.as_str()
            }
        };
        match new {
            Some(v) if !old.is_some_and(|o| same(o, v)) => d.attrs.push(AttrChange {
                attr: i,
                old: old.cloned(),
                new: Some(v.clone()),
            }),
            None if old.is_some()
                && roster.present.get(i).copied().unwrap_or(false)
                && policy.attr_rule(i).clear_when_empty =>
            {
                d.attrs.push(AttrChange {
                    attr: i,
                    old: old.cloned(),
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
            .filter(|i| i.change.class() == Some(class) && i.hold.is_none())
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
    for item in plan.items.iter_mut().filter(|i| i.hold.is_none()) {
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
        item.hold = Some(Hold::Limit(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::{GroupRules, Limits, PasswordRules, RosterRules, SyncRules};
    use crate::core::roster::parse_roster;
    use std::collections::BTreeMap;

    fn policy(sync: SyncRules, limits: Limits) -> Policy {
        Policy::compile(
            "t",
            RosterRules::default(),
            BTreeMap::new(),
            sync,
            PasswordRules::default(),
            limits,
            GroupRules {
                managed: vec!["staff".into(), "vpn".into()],
                default: vec![],
                create_missing: false,
            },
        )
        .unwrap() // ok: test
    }

    fn account(p: &Policy, key: &str, first: &str, state: AccountState, groups: &[&str]) -> Account {
        let mut attrs = vec![None; p.attributes.len()];
        attrs[0] = Some(Value::from(first));
        attrs[1] = Some(Value::from("Smith"));
        attrs[2] = Some(Value::from(format!("{}@example.org", key.to_lowercase())));
        Account {
            key: UserKey::new(key),
            attrs,
            groups: groups.iter().map(|g| Value::from(*g)).collect(),
            state,
            left_at: None,
            locator: None,
        }
    }

    fn snapshot(p: &Policy, accounts: Vec<Account>) -> Snapshot {
        let mut managed = vec![false; p.attributes.len()];
        managed[..4].iter_mut().for_each(|m| *m = true);
        let mut s = Snapshot::new(managed);
        for a in accounts {
            s.insert(a).unwrap(); // ok: test
        }
        s
    }

    fn changes(plan: &Plan) -> Vec<(String, &'static str, bool)> {
        plan.items
            .iter()
            .map(|i| {
                let k = i.key.as_ref().map(|k| k.as_str().to_string()).unwrap_or_default();
                let name = if i.is_absent() { "absent" } else { i.change.name() };
                (k, name, i.hold.is_some())
            })
            .collect()
    }

    const HEAD: &str = "username,firstname,surname,email,groups,status\n";

    #[test]
    fn every_kind_of_change() {
        let p = policy(
            SyncRules::default(),
            Limits {
                leavers: Limit::default(),
                ..Limits::default()
            },
        );
        let snap = snapshot(
            &p,
            vec![
                account(&p, "same", "Sam", AccountState::Active, &["staff"]),
                account(&p, "Renamed", "Old", AccountState::Active, &["staff"]),
                account(&p, "leaving", "Lee", AccountState::Active, &["staff", "vpn"]),
                account(&p, "back", "Bea", AccountState::Leaver, &[]),
                account(&p, "gone", "Gus", AccountState::Active, &[]),
            ],
        );
        let text = format!(
            "{HEAD}new,Nia,Smith,new@example.org,staff,\n\
             same,Sam,Smith,same@example.org,staff,\n\
             renamed,New,Smith,renamed@example.org,staff;vpn,\n\
             leaving,Lee,Smith,leaving@example.org,,leaver\n\
             back,Bea,Smith,back@example.org,vpn,\n\
             bad,Bad,Smith,not-an-email,,\n"
        );
        let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
        let plan = plan(&roster, &snap, &p, 0, PlanOptions::default());
        assert_eq!(
            changes(&plan),
            vec![
                ("new".into(), "new", false),
                ("same".into(), "unchanged", false),
                ("renamed".into(), "update", false),
                ("leaving".into(), "leaver", false),
                ("back".into(), "joiner", false),
                ("bad".into(), "error", false),
                ("gone".into(), "absent", false),
            ]
        );
        // The update is exactly the differing attribute and the added group;
        // the key's spelling in the target is not a difference.
        let Change::Update(d) = &plan.items[2].change else {
            panic!("not an update")
        };
        assert_eq!(
            d.attrs,
            vec![AttrChange {
                attr: 0,
                old: Some("Old".into()),
                new: Some("New".into())
            }]
        );
        assert_eq!(d.groups_add, vec![Value::from("vpn")]);
        assert!(d.groups_remove.is_empty());
        assert_eq!(d.describe(&p), "firstname: Old → New; groups +vpn");
        // The joiner gets the row's groups back.
        let Change::Rejoin(d) = &plan.items[4].change else {
            panic!("not a rejoin")
        };
        assert_eq!(d.groups_add, vec![Value::from("vpn")]);
        // Absent with the default policy writes nothing.
        assert!(!plan.items[6].will_write());
    }

    #[test]
    fn a_case_blind_attribute_differing_only_in_case_is_unchanged() {
        // firstname stands in for a DN component such as the department's OU.
        let p = policy(SyncRules::default(), Limits::default());
        let text = format!("{HEAD}a,SAM,Smith,a@example.org,staff,\n");
        let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
        let mut snap = snapshot(&p, vec![account(&p, "a", "Sam", AccountState::Active, &["staff"])]);
        let plan_with = |snap: &Snapshot| plan(&roster, snap, &p, 0, PlanOptions::default());
        assert_eq!(
            plan_with(&snap).items[0].change.name(),
            "update",
            "compared exactly by default"
        );
        snap.case_blind = vec![true; p.attributes.len()];
        assert_eq!(plan_with(&snap).items[0].change.name(), "unchanged");
        // Any other difference is still a change.
        let mut other = snapshot(&p, vec![account(&p, "a", "Samuel", AccountState::Active, &["staff"])]);
        other.case_blind = vec![true; p.attributes.len()];
        assert_eq!(plan_with(&other).items[0].change.name(), "update");
    }

    #[test]
    fn groups_outside_the_managed_set_are_never_removed() {
        let p = policy(SyncRules::default(), Limits::default());
        let snap = snapshot(
            &p,
            vec![account(&p, "a", "A", AccountState::Active, &["staff", "vpn", "wheel"])],
        );
        let roster = parse_roster(format!("{HEAD}a,A,Smith,a@example.org,staff,\n").as_bytes(), &p).unwrap(); // ok: test
        let plan = plan(&roster, &snap, &p, 0, PlanOptions::default());
        let Change::Update(d) = &plan.items[0].change else {
            panic!("{:?}", plan.items[0].change)
        };
        assert_eq!(d.groups_remove, vec![Value::from("vpn")]);
    }

    #[test]
    fn absent_policies() {
        for (absent, expect, writes) in [
            (AbsentAction::Ignore, "absent", false),
            (AbsentAction::Leaver, "leaver", true),
            (AbsentAction::Delete, "delete", true),
        ] {
            let p = policy(
                SyncRules {
                    absent,
                    ..Default::default()
                },
                Limits::default(),
            );
            let snap = snapshot(
                &p,
                (0..20)
                    .map(|i| account(&p, &format!("u{i}"), "X", AccountState::Active, &[]))
                    .collect(),
            );
            let roster = parse_roster(
                format!(
                    "{HEAD}{}",
                    (1..20)
                        .map(|i| format!("u{i},X,Smith,u{i}@example.org,,\n"))
                        .collect::<String>()
                )
                .as_bytes(),
                &p,
            )
            .unwrap(); // ok: test
            let plan = plan(&roster, &snap, &p, 0, PlanOptions { allow_over_limit: true });
            let last = plan.items.last().unwrap(); // ok: test
            assert!(last.is_absent());
            assert_eq!(last.key.as_ref().unwrap().as_str(), "u0"); // ok: test
            assert_eq!(last.change.name(), expect, "{absent:?}");
            assert_eq!(last.will_write(), writes, "{absent:?}");
        }
    }

    #[test]
    fn a_file_with_no_valid_rows_never_makes_leavers_or_deletes() {
        let p = policy(
            SyncRules {
                absent: AbsentAction::Delete,
                ..Default::default()
            },
            Limits::default(),
        );
        let snap = snapshot(&p, vec![account(&p, "a", "A", AccountState::Active, &[])]);
        let roster = parse_roster(format!("{HEAD}b,B,Smith,broken,,\n").as_bytes(), &p).unwrap(); // ok: test
        let plan = plan(&roster, &snap, &p, 0, PlanOptions { allow_over_limit: true });
        assert!(plan.items.iter().all(|i| !i.will_write()), "{:?}", changes(&plan));
    }

    #[test]
    fn a_rejected_row_keeps_its_account_from_being_absent() {
        let p = policy(
            SyncRules {
                absent: AbsentAction::Leaver,
                ..Default::default()
            },
            Limits::default(),
        );
        let snap = snapshot(
            &p,
            vec![
                account(&p, "a", "A", AccountState::Active, &[]),
                account(&p, "b", "B", AccountState::Active, &[]),
            ],
        );
        let roster = parse_roster(
            format!("{HEAD}a,A,Smith,a@example.org,,\nb,B,Smith,broken,,\n").as_bytes(),
            &p,
        )
        .unwrap(); // ok: test
        let plan = plan(&roster, &snap, &p, 0, PlanOptions { allow_over_limit: true });
        assert_eq!(changes(&plan).len(), 2, "{:?}", changes(&plan));
    }

    #[test]
    fn limits_hold_a_class_and_the_others_proceed() {
        let limits = Limits {
            adds: Limit {
                max: Some(1),
                max_percent: None,
            },
            leavers: Limit {
                max: None,
                max_percent: Some(10.0),
            },
            ..Limits::default()
        };
        let p = policy(SyncRules::default(), limits.clone());
        let snap = snapshot(
            &p,
            vec![
                account(&p, "a", "A", AccountState::Active, &[]),
                account(&p, "b", "B", AccountState::Active, &[]),
            ],
        );
        let text = format!(
            "{HEAD}n1,N,Smith,n1@example.org,,\nn2,N,Smith,n2@example.org,,\na,A2,Smith,a@example.org,,\nb,B,Smith,b@example.org,,leaver\n"
        );
        let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
        let pl = plan(&roster, &snap, &p, 0, PlanOptions::default());
        assert_eq!(
            changes(&pl),
            vec![
                ("n1".into(), "new", true),
                ("n2".into(), "new", true),
                ("a".into(), "update", false),
                ("b".into(), "leaver", true),
            ]
        );
        assert_eq!(pl.breaches.len(), 2);
        let Some(Hold::Limit(why)) = &pl.items[3].hold else {
            panic!()
        };
        assert!(
            why.contains("1 leavers exceed limits.leavers (max_percent = 10 (this is 50.0%)"),
            "{why}"
        );
        assert!(why.contains("held for approval"), "{why}");
        // on_limit = stop holds everything.
        let p = policy(
            SyncRules::default(),
            Limits {
                on_limit: OnLimit::Stop,
                ..limits
            },
        );
        let pl2 = plan(&roster, &snap, &p, 0, PlanOptions::default());
        assert!(pl2.stopped);
        assert!(pl2.items.iter().all(|i| !i.will_write()));
        // An operator override applies everything.
        let pl3 = plan(&roster, &snap, &p, 0, PlanOptions { allow_over_limit: true });
        assert!(pl3.items.iter().all(|i| i.will_write()));
    }

    #[test]
    fn percent_limits_ignore_an_empty_target() {
        let p = policy(
            SyncRules::default(),
            Limits {
                adds: Limit {
                    max: None,
                    max_percent: Some(5.0),
                },
                ..Limits::default()
            },
        );
        let snap = snapshot(&p, vec![]);
        let roster = parse_roster(format!("{HEAD}n1,N,Smith,n1@example.org,,\n").as_bytes(), &p).unwrap(); // ok: test
        let pl = plan(&roster, &snap, &p, 0, PlanOptions::default());
        assert!(pl.items[0].will_write());
    }

    #[test]
    fn leavers_are_deleted_after_the_grace_period_only() {
        let p = policy(
            SyncRules {
                delete_leavers_after_days: Some(30),
                ..Default::default()
            },
            Limits {
                deletes: Limit::default(),
                ..Limits::default()
            },
        );
        let mut old = account(&p, "old", "O", AccountState::Leaver, &[]);
        old.left_at = Some(0);
        let mut recent = account(&p, "recent", "R", AccountState::Leaver, &[]);
        recent.left_at = Some(29 * DAY);
        let snap = snapshot(&p, vec![old, recent, account(&p, "x", "X", AccountState::Active, &[])]);
        let roster = parse_roster(format!("{HEAD}x,X,Smith,x@example.org,,\n").as_bytes(), &p).unwrap(); // ok: test
        let pl = plan(&roster, &snap, &p, 30 * DAY, PlanOptions::default());
        let c = changes(&pl);
        assert!(c.contains(&("old".into(), "absent", false)));
        assert_eq!(
            pl.items
                .iter()
                .find(|i| i.key.as_ref().unwrap().as_str() == "old") // ok: test
                .unwrap() // ok: test
                .change,
            Change::Delete
        );
        assert_eq!(
            pl.items
                .iter()
                .find(|i| i.key.as_ref().unwrap().as_str() == "recent") // ok: test
                .unwrap() // ok: test
                .change,
            Change::Absent
        );
    }

    #[test]
    fn empty_cells_leave_values_unless_clear_when_empty() {
        let mut p = policy(SyncRules::default(), Limits::default());
        let snap = snapshot(&p, vec![account(&p, "a", "A", AccountState::Active, &[])]);
        let mut snap2 = snap.clone();
        snap2.managed = vec![true; p.attributes.len()];
        let title = p.attribute_index("title").unwrap(); // ok: test
        let mut acct = account(&p, "b", "B", AccountState::Active, &[]);
        acct.attrs[title] = Some("Clerk".into());
        snap2.insert(acct).unwrap(); // ok: test
        let text = "username,firstname,surname,email,title\nb,B,Smith,b@example.org,\n";
        let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
        let pl = plan(&roster, &snap2, &p, 0, PlanOptions::default());
        assert_eq!(pl.items[0].change, Change::Unchanged);
        p = {
            let mut fields = BTreeMap::new();
            fields.insert(
                "title".to_string(),
                crate::core::policy::FieldRule {
                    clear_when_empty: true,
                    ..Default::default()
                },
            );
            Policy::with_fields(fields).unwrap() // ok: test
        };
        let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
        let pl = plan(&roster, &snap2, &p, 0, PlanOptions::default());
        let Change::Update(d) = &pl.items[0].change else {
            panic!("{:?}", pl.items[0].change)
        };
        assert_eq!(
            d.attrs,
            vec![AttrChange {
                attr: title,
                old: Some("Clerk".into()),
                new: None
            }]
        );
    }
}
