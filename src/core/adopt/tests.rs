use std::collections::BTreeMap;

use crate::core::plan::{plan, Change, Hold, PlanOptions};
use crate::core::policy::{GroupRules, Limit, Limits, PasswordRules, Policy, RosterRules, SyncRules};
use crate::core::roster::parse_roster;
use crate::core::snapshot::{Account, Snapshot};
use crate::core::types::{AccountState, UserKey, Value};

fn policy(limits: Limits) -> Policy {
    Policy::compile(
        "t",
        RosterRules::default(),
        BTreeMap::new(),
        SyncRules {
            adopt: Some("email".into()),
            absent: crate::core::policy::AbsentAction::Leaver,
            ..Default::default()
        },
        PasswordRules::default(),
        limits,
        GroupRules {
            managed: vec!["staff".into()],
            default: vec![],
            create_missing: false,
        },
    )
    .unwrap() // ok: test
}

fn account(p: &Policy, key: &str, mail: &str) -> Account {
    let mut attrs = vec![None; p.attributes.len()];
    attrs[0] = Some(Value::from("Old"));
    attrs[1] = Some(Value::from("Smith"));
    attrs[2] = Some(Value::from(mail));
    Account {
        key: UserKey::new(key),
        attrs: attrs.into(),
        groups: vec![],
        state: AccountState::Active,
        left_at: None,
        locator: None,
    }
}

/// One managed account `kept`, and unmanaged ones (key, email).
fn snapshot(p: &Policy, outside: &[(&str, &str)]) -> Snapshot {
    let mut managed = vec![false; p.attributes.len()];
    managed[..3].iter_mut().for_each(|m| *m = true);
    let mut s = Snapshot::new(managed);
    s.insert(account(p, "kept", "kept@example.org")).unwrap(); // ok: test
    s.add_adoptable(outside.iter().map(|(k, m)| account(p, k, m)).collect());
    s
}

const FILE: &str = "username,firstname,surname,email,groups\n\
    kept,Old,Smith,kept@example.org,\n\
    jsmith,John,Smith,John.Smith@example.org,staff\n\
    nnew,Nia,New,nia@example.org,\n\
    twice,Tom,Twice,tom@example.org,\n";

#[test]
fn zero_one_or_two_candidates() {
    let p = policy(Limits::default());
    let snap = snapshot(
        &p,
        &[
            ("john.smith", "john.smith@example.org"),
            ("tom1", "tom@example.org"),
            ("tom2", "TOM@example.org"),
            ("other", "other@example.org"),
        ],
    );
    let roster = parse_roster(FILE.as_bytes(), &p).unwrap(); // ok: test
    let pl = plan(&roster, &snap, &p, 0, PlanOptions::default());
    let names: Vec<&str> = pl.items.iter().map(|i| i.change.name()).collect();
    // Unmanaged accounts are never absent: only the file's rows are planned.
    assert_eq!(names, ["unchanged", "adopt", "new", "error"]);
    let adopt = &pl.items[1];
    assert_eq!(snap.account(adopt.account().unwrap()).key.as_str(), "john.smith"); // ok: test
    assert_eq!(
        adopt.note(),
        Some("adopts the existing account \"john.smith\" (same email)")
    );
    let Change::Adopt(d) = &adopt.change else {
        panic!("{:?}", adopt.change)
    };
    assert_eq!(
        d.describe(&p),
        "firstname: Old → John; email: john.smith@example.org → John.Smith@example.org; groups +staff"
    );
    let Change::Reject(e) = &pl.items[3].change else {
        panic!()
    };
    assert_eq!(
        e[0].to_string(),
        "column \"email\": \"tom@example.org\" is the email of 2 existing accounts (tom1, tom2), so none is adopted; give the row the username of the right one, or make the email unique in the target"
    );
}

#[test]
fn adopts_have_a_limit_class_of_their_own_and_count_no_managed_account() {
    let p = policy(Limits {
        adopts: Limit {
            max: Some(0),
            max_percent: None,
        },
        ..Limits::default()
    });
    let snap = snapshot(&p, &[("john.smith", "john.smith@example.org")]);
    assert_eq!(snap.managed_len(), 1);
    assert_eq!(snap.active_count(), 1);
    let roster = parse_roster(FILE.as_bytes(), &p).unwrap(); // ok: test
    let pl = plan(&roster, &snap, &p, 0, PlanOptions::default());
    assert!(
        matches!(pl.items[1].held(), Some(Hold::Limit(why)) if why.contains("1 adopts exceed limits.adopts (max = 0"))
    );
    assert!(!pl.items[2].is_held(), "the add proceeds");
    assert_eq!(pl.breaches[0].managed, 1, "percentages count managed accounts only");
}
