use super::*;
use crate::core::policy::{GroupRules, Limits, PasswordRules, RosterRules, SyncRules};
use crate::core::roster::parse_roster;
use crate::core::types::UserKey;
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
        attrs: attrs.into(),
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
            (k, name, i.is_held())
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
    let Some(Hold::Limit(why)) = pl.items[3].held() else {
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
    acct.attrs.set(title, Some("Clerk"));
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
