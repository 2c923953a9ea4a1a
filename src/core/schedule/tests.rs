//! Scheduled joiners and future leavers at a fixed `now`.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::core::plan::{plan, Change, PlanOptions};
use crate::core::policy::{Column, LifecycleSection, Policy};
use crate::core::roster::{parse_roster, Entry, RowErrorKind};
use crate::core::snapshot::{Account, Snapshot};
use crate::core::types::{AccountState, UserKey, Value};

/// Unix seconds of a UTC time.
fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap() // ok: test
}

fn policy(tz: &str, before: u32) -> Policy {
    Policy::with_fields(BTreeMap::new())
        .and_then(|p| {
            p.with_lifecycle(&LifecycleSection {
                date_formats: vec!["%Y-%m-%d".into(), "%d/%m/%Y".into()],
                time_zone: tz.into(),
                create_days_before_start: before,
            })
        })
        .unwrap() // ok: test
}

fn account(p: &Policy, key: &str, state: AccountState) -> Account {
    let mut attrs = vec![None; p.attributes.len()];
    attrs[0] = Some(Value::from("A"));
    attrs[1] = Some(Value::from("Smith"));
    attrs[2] = Some(Value::from(format!("{key}@example.org")));
    Account {
        key: UserKey::new(key),
        attrs: attrs.into(),
        groups: vec![],
        state,
        left_at: None,
        locator: None,
    }
}

fn snapshot(p: &Policy, accounts: Vec<Account>) -> Snapshot {
    let mut managed = vec![false; p.attributes.len()];
    managed[..3].iter_mut().for_each(|m| *m = true);
    let mut s = Snapshot::new(managed);
    for a in accounts {
        s.insert(a).unwrap(); // ok: test
    }
    s
}

const HEAD: &str = "username,firstname,surname,email,Start Date,Last Day\n";

/// (key, change, note, due) of each item.
fn planned(p: &Policy, snap: &Snapshot, rows: &str, now: i64) -> Vec<(String, &'static str, String, Option<i64>)> {
    let roster = parse_roster(format!("{HEAD}{rows}").as_bytes(), p).unwrap(); // ok: test
    plan(&roster, snap, p, now, PlanOptions::default())
        .items
        .iter()
        .map(|i| {
            let k = i.key.as_ref().map(|k| k.as_str().to_string()).unwrap_or_default();
            (k, i.change.name(), i.note().unwrap_or_default().to_string(), i.due())
        })
        .collect()
}

#[test]
fn the_headers_are_recognised() {
    let p = policy("UTC", 0);
    for h in ["Start Date", "Hire Date", "start_date", "Date joined"] {
        assert_eq!(p.column(h), Column::StartDate, "{h}");
    }
    for h in ["End Date", "Leaving Date", "Last Day", "Termination Date"] {
        assert_eq!(p.column(h), Column::EndDate, "{h}");
    }
}

#[test]
fn a_joiner_is_scheduled_until_the_start_day_begins_in_the_policy_zone() {
    let p = policy("Europe/London", 0);
    let snap = snapshot(&p, vec![]);
    let rows = "new,N,Smith,new@example.org,2027-07-01,\n";
    // 2027-07-01 begins at 23:00 UTC the day before (BST).
    let begins = utc(2027, 6, 30, 23, 0);
    let before = planned(&p, &snap, rows, begins - 1);
    assert_eq!(before[0].1, "scheduled");
    assert_eq!(
        before[0].2,
        "starts on 2027-07-01: the account will be created on 2027-07-01 (Europe/London)"
    );
    assert_eq!(before[0].3, Some(begins));
    let on_the_day = planned(&p, &snap, rows, begins);
    assert_eq!((on_the_day[0].1, on_the_day[0].3), ("new", None));
    // In UTC the same instant is still the day before.
    let utc_policy = policy("UTC", 0);
    assert_eq!(planned(&utc_policy, &snap, rows, begins)[0].1, "scheduled");
}

#[test]
fn create_days_before_start_creates_early_and_other_formats_are_read() {
    let p = policy("UTC", 3);
    let snap = snapshot(&p, vec![]);
    let rows = "new,N,Smith,new@example.org,11/01/2027,\n";
    let early = planned(&p, &snap, rows, utc(2027, 1, 7, 23, 59));
    assert_eq!(early[0].1, "scheduled");
    assert!(early[0]
        .2
        .contains("starts on 2027-01-11: the account will be created on 2027-01-08"));
    assert_eq!(early[0].3, Some(utc(2027, 1, 8, 0, 0)));
    assert_eq!(planned(&p, &snap, rows, utc(2027, 1, 8, 0, 0))[0].1, "new");
}

#[test]
fn a_rehire_is_re_enabled_on_the_start_day_and_an_existing_account_is_left_alone() {
    let p = policy("UTC", 0);
    let snap = snapshot(
        &p,
        vec![
            account(&p, "back", AccountState::Leaver),
            account(&p, "here", AccountState::Active),
        ],
    );
    let rows = "back,A,Smith,back@example.org,2027-03-01,\nhere,A,Smith,here@example.org,2027-03-01,\n";
    let got = planned(&p, &snap, rows, utc(2027, 2, 1, 0, 0));
    assert_eq!(got[0].1, "scheduled");
    assert!(got[0].2.contains("will be re-enabled on 2027-03-01"), "{}", got[0].2);
    assert_eq!((got[1].1, got[1].3), ("unchanged", None));
}

#[test]
fn an_end_date_past_makes_a_leaver_and_a_future_one_says_when() {
    let p = policy("Europe/London", 0);
    let snap = snapshot(
        &p,
        vec![
            account(&p, "gone", AccountState::Active),
            account(&p, "going", AccountState::Active),
        ],
    );
    let rows = "gone,A,Smith,gone@example.org,,2026-12-04\ngoing,A,Smith,going@example.org,,2026-12-31\n";
    // 5 December 2026, 09:00 in London (GMT).
    let got = planned(&p, &snap, rows, utc(2026, 12, 5, 9, 0));
    assert_eq!((got[0].1, got[0].2.as_str()), ("leaver", "last day 2026-12-04 is over"));
    assert_eq!(got[1].1, "unchanged");
    assert_eq!(
        got[1].2,
        "last day 2026-12-31: the account will be disabled on 2027-01-01 (Europe/London)"
    );
    assert_eq!(got[1].3, Some(utc(2027, 1, 1, 0, 0)));
    // The last day itself is still a working day.
    let on_the_day = planned(&p, &snap, rows, utc(2026, 12, 31, 23, 59));
    assert_eq!(on_the_day[1].1, "unchanged");
    let after = planned(&p, &snap, rows, utc(2027, 1, 1, 0, 0));
    assert_eq!((after[1].1, after[1].3), ("leaver", None));
}

#[test]
fn a_future_joiner_with_a_last_day_is_due_at_the_first_of_them() {
    let p = policy("UTC", 0);
    let snap = snapshot(&p, vec![]);
    let rows = "temp,T,Smith,temp@example.org,2027-01-04,2027-01-29\n";
    let got = planned(&p, &snap, rows, utc(2027, 1, 1, 0, 0));
    assert_eq!((got[0].1, got[0].3), ("scheduled", Some(utc(2027, 1, 4, 0, 0))));
    let started = planned(&p, &snap, rows, utc(2027, 1, 4, 0, 0));
    assert_eq!((started[0].1, started[0].3), ("new", Some(utc(2027, 1, 30, 0, 0))));
    // Gone before ever being created: nothing to do.
    let over = planned(&p, &snap, rows, utc(2027, 2, 1, 0, 0));
    assert_eq!((over[0].1, over[0].3), ("unchanged", None));
}

#[test]
fn a_date_that_does_not_parse_rejects_the_row_naming_column_value_and_formats() {
    let p = policy("UTC", 0);
    let text = format!("{HEAD}a,A,Smith,a@example.org,2027-13-01,\nb,B,Smith,b@example.org,2027-02-01,2027-01-01\n");
    let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
    let errors: Vec<(RowErrorKind, String)> = roster
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Rejected(r) => Some((r.errors[0].kind.clone(), r.errors[0].to_string())),
            Entry::Valid(_) => None,
        })
        .collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors[0].1,
        "column \"Start Date\": \"2027-13-01\" is not a date in the expected format (%Y-%m-%d or %d/%m/%Y: lifecycle.date_formats); correct it"
    );
    assert!(
        matches!(errors[1].0, RowErrorKind::EndBeforeStart { .. }),
        "{}",
        errors[1].1
    );
}

#[test]
fn scheduled_rows_are_neither_adds_nor_counted_by_limits() {
    let p = policy("UTC", 0);
    let snap = snapshot(&p, vec![]);
    let roster = parse_roster(format!("{HEAD}n,N,Smith,n@example.org,2030-01-01,\n").as_bytes(), &p).unwrap(); // ok: test
    let pl = plan(&roster, &snap, &p, utc(2027, 1, 1, 0, 0), PlanOptions::default());
    assert_eq!(pl.items[0].change, Change::Scheduled);
    assert!(!pl.items[0].will_write());
    assert_eq!(pl.next_due(), Some(utc(2030, 1, 1, 0, 0)));
}

#[test]
fn a_start_date_declared_as_a_field_is_stored_and_scheduled() {
    let mut fields = BTreeMap::new();
    fields.insert("start_date".to_string(), crate::core::policy::FieldRule::default());
    let p = Policy::with_fields(fields).unwrap(); // ok: test
    let i = p.attribute_index("start_date").unwrap(); // ok: test
    assert_eq!(p.column("Hire Date"), Column::Attribute(i));
    let roster = parse_roster(format!("{HEAD}n,N,Smith,n@example.org,2030-01-01,\n").as_bytes(), &p).unwrap(); // ok: test
    assert_eq!(roster.persons[0].attrs.get(i), Some("2030-01-01"));
    let pl = plan(
        &roster,
        &snapshot(&p, vec![]),
        &p,
        utc(2027, 1, 1, 0, 0),
        PlanOptions::default(),
    );
    assert_eq!(pl.items[0].change, Change::Scheduled);
}

#[test]
fn a_day_whose_midnight_is_skipped_begins_at_its_first_hour() {
    // São Paulo went from 00:00 to 01:00 (UTC-2) on 4 November 2018.
    let day = NaiveDate::from_ymd_opt(2018, 11, 4).unwrap(); // ok: test
    let begins = crate::core::schedule::start_of_day(day, chrono_tz::America::Sao_Paulo);
    assert_eq!(begins, utc(2018, 11, 4, 3, 0));
    // An ordinary day begins at midnight there (UTC-3 the day before).
    let day = NaiveDate::from_ymd_opt(2018, 11, 3).unwrap(); // ok: test
    assert_eq!(
        crate::core::schedule::start_of_day(day, chrono_tz::America::Sao_Paulo),
        utc(2018, 11, 3, 3, 0)
    );
}
