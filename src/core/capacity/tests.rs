use std::collections::BTreeMap;

use crate::core::plan::{plan, Hold, PlanOptions};
use crate::core::policy::{GroupRules, Limit, Limits, PasswordRules, Policy, RosterRules, SyncRules};
use crate::core::roster::parse_roster;
use crate::core::snapshot::{Account, Snapshot};
use crate::core::types::{AccountState, UserKey, Value};

fn policy(max_accounts: Option<usize>) -> Policy {
    Policy::compile(
        "t",
        RosterRules::default(),
        BTreeMap::new(),
        SyncRules::default(),
        PasswordRules::default(),
        Limits {
            leavers: Limit::default(),
            max_accounts,
            ..Limits::default()
        },
        GroupRules::default(),
    )
    .unwrap() // ok: test
}

/// `n` active accounts a0…, and one leaver `gone`.
fn snapshot(p: &Policy, n: usize) -> Snapshot {
    let mut s = Snapshot::new(vec![false; p.attributes.len()]);
    let acct = |key: &str, state| Account {
        key: UserKey::new(key),
        attrs: vec![Some(Value::from("X")); p.attributes.len()].into(),
        groups: vec![],
        state,
        left_at: None,
        locator: None,
    };
    for i in 0..n {
        s.insert(acct(&format!("a{i}"), AccountState::Active)).unwrap(); // ok: test
    }
    s.insert(acct("gone", AccountState::Leaver)).unwrap(); // ok: test
    s
}

const HEAD: &str = "username,firstname,surname,email,status\n";

fn held(text: &str, max: Option<usize>, opts: PlanOptions) -> Vec<(String, Option<String>)> {
    let p = policy(max);
    let roster = parse_roster(format!("{HEAD}{text}").as_bytes(), &p).unwrap(); // ok: test
    let pl = plan(&roster, &snapshot(&p, 3), &p, 0, opts);
    pl.items
        .iter()
        .filter(|i| i.entry().is_some())
        .map(|i| {
            let why = match i.held() {
                Some(Hold::Limit(w)) => Some(w.clone()),
                _ => None,
            };
            (i.key.as_ref().map(|k| k.to_string()).unwrap_or_default(), why)
        })
        .collect()
}

#[test]
fn adds_over_capacity_are_held_and_leavers_free_licences_first() {
    // 3 active, max 4: one licence, and the leaver a0 frees a second.
    let text = "n1,N,One,n1@example.org,\na0,X,X,a0@example.org,leaver\nn2,N,Two,n2@example.org,\nn3,N,Three,n3@example.org,\n";
    let got = held(text, Some(4), PlanOptions::default());
    assert_eq!(got[0], ("n1".into(), None));
    assert_eq!(got[1], ("a0".into(), None), "the leaver proceeds");
    assert_eq!(got[2], ("n2".into(), None), "the freed licence is taken");
    let (key, why) = &got[3];
    assert_eq!(key, "n3");
    assert_eq!(
        why.as_deref(),
        Some("1 of 3 new accounts exceed limits.max_accounts = 4: 2 licence(s) free (3 active accounts, 1 leaving in this file, 0 rejoining or adopted); held for approval")
    );
}

#[test]
fn rejoiners_take_licences_and_the_operator_can_override() {
    // 3 active, max 4, a rejoiner takes the one free licence.
    let text = "gone,X,X,gone@example.org,\nn1,N,One,n1@example.org,\n";
    let got = held(text, Some(4), PlanOptions::default());
    assert_eq!(got[0].1, None);
    assert!(
        got[1].1.as_deref().is_some_and(|w| w.contains("0 licence(s) free")),
        "{got:?}"
    );
    let got = held(text, Some(4), PlanOptions { allow_over_limit: true });
    assert!(got.iter().all(|g| g.1.is_none()));
    // No maximum: nothing held.
    assert!(held(text, None, PlanOptions::default()).iter().all(|g| g.1.is_none()));
}

#[test]
fn the_breach_names_max_accounts() {
    let p = policy(Some(3));
    let roster = parse_roster(format!("{HEAD}n1,N,One,n1@example.org,\n").as_bytes(), &p).unwrap(); // ok: test
    let pl = plan(&roster, &snapshot(&p, 3), &p, 0, PlanOptions::default());
    assert_eq!(
        pl.breaches[0].to_string(),
        "1 adds exceed limits.max_accounts = 3: 0 licence(s) free; held for approval"
    );
}
