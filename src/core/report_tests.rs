use super::*;
use crate::core::plan::{plan, PlanOptions};
use crate::core::roster::parse_roster;
use crate::core::snapshot::Snapshot;

#[test]
fn formula_cells_are_neutralised() {
    for (i, o) in [
        ("=1+1", "'=1+1"),
        ("+44", "'+44"),
        ("-x", "'-x"),
        ("@SUM", "'@SUM"),
        ("\tx", "'\tx"),
        ("ok", "ok"),
    ] {
        assert_eq!(neutralise(i), o);
    }
}

#[test]
fn results_keep_input_columns_and_prefix_clashing_verdict_columns() {
    let p = Policy::defaults("t");
    let text =
        "username;firstname;surname;email;Result;password\r\njs;=cmd|' /C calc'!A0;S;js@example.org;x;hunter2\r\n";
    let roster = parse_roster(text.as_bytes(), &p).unwrap(); // ok: test
    let snap = Snapshot::new(vec![true; p.attributes.len()]);
    let pl = plan(&roster, &snap, &p, 0, PlanOptions::default());
    let outcomes: Vec<Outcome> = pl
        .items
        .iter()
        .map(|i| Outcome::from_plan(i, true).unwrap_or(Outcome::new(Verdict::Preview, None)))
        .collect();
    let mut out = Vec::new();
    write_results(&mut out, &roster, &pl, &outcomes, &p).unwrap(); // ok: test
    let s = String::from_utf8(out).unwrap(); // ok: test
    assert_eq!(
        s,
        "username;firstname;surname;email;Result;password;dirsync_change;dirsync_result;dirsync_message\n\
         js;'=cmd|' /C calc'!A0;S;js@example.org;x;(hidden);new;preview;\n"
    );
    assert!(!s.contains("hunter2"));
}

#[test]
fn rejection_results_explain_on_every_readable_row() {
    let e = FileError::new(
        crate::core::roster::FileErrorKind::Header,
        "required column(s) missing: email",
    );
    let mut out = Vec::new();
    write_rejection(
        &mut out,
        Some(("username,firstname\na,A\n", &Policy::defaults("t"))),
        &e,
    )
    .unwrap(); // ok: test
    let s = String::from_utf8(out).unwrap(); // ok: test
    assert!(
        s.starts_with("username,firstname,change,result,message\na,A,error,skipped,\"file rejected"),
        "{s}"
    );
    let mut out = Vec::new();
    write_rejection(&mut out, None, &e).unwrap(); // ok: test
    assert!(String::from_utf8(out)
        .unwrap() // ok: test
        .contains("required column(s) missing: email"));
}

#[test]
fn rejection_hides_the_columns_the_policy_maps_to_password_and_no_other() {
    use crate::core::policy::FieldRule;
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        "password".to_string(),
        FieldRule {
            aliases: vec!["Initial secret".into()],
            ..Default::default()
        },
    );
    let p = Policy::with_fields(fields).unwrap(); // ok: test
    let e = FileError::new(
        crate::core::roster::FileErrorKind::Header,
        "required column(s) missing: email",
    );
    let text =
        "username,Initial secret,Password hint,change password next time\na,hunter2,the usual,1\nb,,pet's name,0\n";
    let mut out = Vec::new();
    write_rejection(&mut out, Some((text, &p)), &e).unwrap(); // ok: test
    let s = String::from_utf8(out).unwrap(); // ok: test
    assert!(!s.contains("hunter2"), "{s}");
    let rows: Vec<&str> = s.lines().collect();
    assert_eq!(
        rows[0],
        "username,Initial secret,Password hint,change password next time,change,result,message"
    );
    assert!(rows[1].starts_with("a,(hidden),the usual,1,error,skipped,"), "{s}");
    // An empty password cell stays empty: there is nothing to hide.
    assert!(rows[2].starts_with("b,,pet's name,0,error,skipped,"), "{s}");
}
