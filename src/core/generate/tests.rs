use std::collections::BTreeMap;

use super::*;
use crate::core::plan::{plan, PlanOptions};
use crate::core::policy::FieldRule;
use crate::core::roster::parse_roster;
use crate::core::snapshot::Account;
use crate::core::types::AccountState;

/// A policy with these `[fields]` and every other default.
fn compile(fields: BTreeMap<String, FieldRule>) -> Result<Policy, String> {
    Policy::with_fields(fields).map_err(|e| e.join("\n"))
}

fn policy(extra: &[(&str, FieldRule)]) -> Policy {
    let mut fields = BTreeMap::new();
    fields.insert(
        "username".to_string(),
        FieldRule {
            generate: Some("{firstname:1}{surname}".into()),
            max_len: Some(8),
            ..Default::default()
        },
    );
    fields.insert(
        "email".to_string(),
        FieldRule {
            generate: Some("{firstname}.{surname}@example.org".into()),
            ..Default::default()
        },
    );
    for (f, r) in extra {
        fields.insert(f.to_string(), r.clone());
    }
    compile(fields).unwrap() // ok: test
}

/// Accounts (key, firstname, email), all surnamed Smith.
fn snapshot(p: &Policy, accounts: &[(&str, &str, &str)]) -> Snapshot {
    let mut managed = vec![false; p.attributes.len()];
    managed[..3].iter_mut().for_each(|m| *m = true);
    let mut s = Snapshot::new(managed);
    for (key, first, mail) in accounts {
        let mut attrs = vec![None; p.attributes.len()];
        attrs[0] = Some(Value::from(*first));
        attrs[1] = Some(Value::from("Smith"));
        attrs[2] = Some(Value::from(*mail));
        s.insert(Account {
            key: UserKey::new(key),
            attrs: attrs.into(),
            groups: vec![],
            state: AccountState::Active,
            left_at: None,
            locator: None,
        })
        .unwrap(); // ok: test
    }
    s
}

/// Plan and generate; (key, change, note) per item.
fn run(p: &Policy, snap: &Snapshot, text: &str, taken: Taken, journaled: &Journaled) -> Vec<(String, String, String)> {
    let mut roster = parse_roster(text.as_bytes(), p).unwrap(); // ok: test
    restore(&mut roster, journaled, p);
    let mut pl = plan(&roster, snap, p, 0, PlanOptions::default());
    assign(&mut roster, &mut pl, snap, p, taken, journaled);
    pl.items
        .iter()
        .map(|i| {
            let note = match &i.change {
                Change::Reject(e) => e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
                _ => i.note().unwrap_or_default().to_string(),
            };
            (
                i.key.as_ref().map(|k| k.to_string()).unwrap_or_default(),
                i.change.name().to_string(),
                note,
            )
        })
        .collect()
}

const HEAD: &str = "username,firstname,surname,email\n";

#[test]
fn collisions_in_the_file_the_target_and_the_journal_get_counters() {
    let p = policy(&[]);
    // Jane's address is John's pattern: both collide.
    let snap = snapshot(&p, &[("jsmith", "Jane", "john.smith@example.org")]);
    let mut taken = Taken::default();
    taken.insert("username", "JSMITH2"); // a leaver's name, handed out long ago
    let text = format!("{HEAD},John,Smith,\n,Jim,Smith,\n,José,Núñez-García,\nadam,Adam,Smith,\n");
    let got = run(&p, &snap, &text, taken, &Journaled::new());
    assert_eq!(
        got,
        vec![
            (
                "jsmith3".into(),
                "new".into(),
                "generated: username jsmith3, email john.smith2@example.org".into()
            ),
            (
                "jsmith4".into(),
                "new".into(),
                "generated: username jsmith4, email jim.smith@example.org".into()
            ),
            (
                "jnunez-g".into(),
                "new".into(),
                "generated: username jnunez-g, email jose.nunez-garcia@example.org".into()
            ),
            (
                "adam".into(),
                "new".into(),
                "generated: email adam.smith@example.org".into()
            ),
            (
                "jsmith".into(),
                "absent".into(),
                "not in the file; left alone (sync.absent = ignore)".into()
            ),
        ]
    );
}

#[test]
fn only_new_accounts_get_values_and_given_values_are_kept() {
    let p = policy(&[]);
    let snap = snapshot(&p, &[("jsmith", "John", "js@example.org")]);
    let text = format!("{HEAD}jsmith,John,Smith,\nnew1,Nia,Smith,nia@example.org\n");
    let got = run(&p, &snap, &text, Taken::default(), &Journaled::new());
    assert_eq!(got[0], ("jsmith".into(), "unchanged".into(), String::new()));
    assert_eq!(got[1], ("new1".into(), "new".into(), String::new()));
}

#[test]
fn a_known_person_without_a_username_is_not_added_twice() {
    let p = policy(&[]);
    let snap = snapshot(&p, &[("jsmith", "John", "john.smith@example.org")]);
    let text = format!("{HEAD},John,Smith,John.Smith@example.org\n,JOHN,smith,\n,John,Smith,j.smith@example.org\n");
    let got = run(&p, &snap, &text, Taken::default(), &Journaled::new());
    assert_eq!(got[0].1, "error");
    assert_eq!(
        got[0].2,
        "column \"username\": cannot generate username: the target's account \"jsmith\" has this row's email address, so the person is not new; put jsmith in the username column"
    );
    // Without an email address, the same name is the same person until the
    // file says otherwise.
    assert_eq!(got[1].1, "error");
    assert!(
        got[1]
            .2
            .contains("has this row's name and the row has no email address"),
        "{}",
        got[1].2
    );
    assert!(
        got[1].2.contains("if it is a namesake, give their email address"),
        "{}",
        got[1].2
    );
    // A namesake with an address of their own is new.
    assert_eq!(got[2].0, "jsmith2");
    assert_eq!(got[2].1, "new");
}

#[test]
fn a_resumed_run_uses_its_journaled_values() {
    let p = policy(&[]);
    let mut journaled = Journaled::new();
    journaled.insert(
        0,
        vec![
            ("username".into(), "jsmith7".into()),
            ("email".into(), "john.smith7@example.org".into()),
        ],
    );
    let text = format!("{HEAD},John,Smith,\n");
    // Before the add landed: the same values are added, none generated anew.
    let got = run(&p, &snapshot(&p, &[]), &text, Taken::default(), &journaled);
    assert_eq!(got[0].0, "jsmith7");
    assert_eq!(got[0].1, "new");
    assert_eq!(got[0].2, "generated: username jsmith7, email john.smith7@example.org");
    // After: the account is found, nothing to do.
    let snap = snapshot(&p, &[("jsmith7", "John", "john.smith7@example.org")]);
    let got = run(&p, &snap, &text, Taken::default(), &journaled);
    assert_eq!(got[0].1, "unchanged");
}

#[test]
fn impossible_values_reject_the_row_with_what_to_do() {
    let p = policy(&[(
        "title",
        FieldRule {
            generate: Some("{firstname}.{surname}".into()),
            max_len: Some(3),
            ..Default::default()
        },
    )]);
    let got = run(
        &p,
        &snapshot(&p, &[]),
        "username,firstname,surname,email,title\nab,A,B,a@example.org,\nxy,'',!,x@example.org,\n",
        Taken::default(),
        &Journaled::new(),
    );
    assert_eq!(got[0].2, "generated: title a.b");
    assert_eq!(
        got[1].2,
        "column \"title\": cannot generate title: \"{firstname}.{surname}\" leaves nothing of the name within max_len = 3 (the fields it uses are empty or have no letters or digits); give title in the file"
    );
}

#[test]
fn the_same_inputs_give_the_same_values() {
    // What `check` previews is what `apply` uses: the same file, target and
    // journal give the same values.
    let p = policy(&[]);
    let snap = snapshot(&p, &[("jsmith", "Jane", "john.smith@example.org")]);
    let text = format!("{HEAD},John,Smith,\n,Jim,Smith,\n");
    let a = run(&p, &snap, &text, Taken::default(), &Journaled::new());
    let b = run(&p, &snap, &text, Taken::default(), &Journaled::new());
    assert_eq!(a, b);
}

#[test]
fn bad_generate_settings_fail_the_policy() {
    let bad = |f: &str, rule: FieldRule| {
        let mut fields = BTreeMap::new();
        fields.insert(f.to_string(), rule);
        compile(fields).unwrap_err() // ok: test
    };
    let g = |s: &str| FieldRule {
        generate: Some(s.into()),
        ..Default::default()
    };
    assert!(bad("email", g("{frstname}@x.org")).contains("fields.email.generate: \"{frstname}@x.org\": {frstname}"));
    assert!(bad("email", g("{email}@x.org")).contains("the field it generates"));
    assert!(bad("groups", g("{surname}")).contains("only username and attribute fields"));
    let mut r = g("{surname}");
    r.required = Some(true);
    assert!(bad("title", r).contains("cannot be required"));
    let mut r = g("{surname}");
    r.clear_when_empty = true;
    assert!(bad("title", r).contains("clear_when_empty contradicts generate"));
    // A template may use a field generated before it, not after.
    let mut fields = BTreeMap::new();
    fields.insert("username".to_string(), g("{email}"));
    fields.insert("email".to_string(), g("{surname}@x.org"));
    let err = compile(fields).unwrap_err(); // ok: test
    assert!(err.contains("which is generated after username"), "{err}");
}

#[test]
fn a_create_only_field_is_written_on_create_and_never_updated() {
    let create_only = FieldRule {
        generate: Some("{firstname}.{surname}@example.org".into()),
        update: crate::core::policy::UpdateRule::CreateOnly,
        ..Default::default()
    };
    let p = policy(&[("email", create_only)]);
    // The user was given john.smith@ and the directory changed it since.
    let snap = snapshot(&p, &[("jsmith", "John", "jsmith@mail.example.org")]);
    let text = format!("{HEAD}jsmith,John,Smith,john.smith@example.org\nnew1,Nia,Smith,\n");
    let got = run(&p, &snap, &text, Taken::default(), &Journaled::new());
    assert_eq!(got[0].1, "unchanged", "a create-only difference is not an update");
    assert_eq!(got[1].1, "new");
    assert_eq!(got[1].2, "generated: email nia.smith@example.org");
    // Other fields still update.
    let got = run(
        &p,
        &snap,
        &format!("{HEAD}jsmith,Johnny,Smith,x@example.org\n"),
        Taken::default(),
        &Journaled::new(),
    );
    assert_eq!(got[0].1, "update");
    assert_eq!(
        compile(
            [(
                "groups".to_string(),
                FieldRule {
                    update: crate::core::policy::UpdateRule::CreateOnly,
                    ..Default::default()
                }
            )]
            .into()
        )
        .unwrap_err(), // ok: test
        "fields.groups.update: only attribute fields have an update rule"
    );
}

#[test]
fn a_never_field_is_not_an_update_and_cannot_be_generated_or_cleared() {
    let never = || FieldRule {
        update: crate::core::policy::UpdateRule::Never,
        ..Default::default()
    };
    let p = policy(&[("email", never())]);
    let snap = snapshot(&p, &[("jsmith", "John", "jsmith@mail.example.org")]);
    let text = format!("{HEAD}jsmith,John,Smith,john.smith@example.org\n");
    let got = run(&p, &snap, &text, Taken::default(), &Journaled::new());
    assert_eq!(got[0].1, "unchanged", "a never-written difference is not an update");
    let mut r = never();
    r.generate = Some("{surname}".into());
    let err = compile([("title".to_string(), r)].into()).unwrap_err(); // ok: test
    assert!(err.contains("fields.title: update = \"never\""), "{err}");
    let mut r = never();
    r.clear_when_empty = true;
    assert!(compile([("title".to_string(), r)].into()).is_err());
}
