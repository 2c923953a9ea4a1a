//! Golden fixtures: roster + snapshot + policy → the expected results file of
//! a preview (the plan, as a user reads it). Each folder under tests/golden/
//! holds `policy.toml` (a policy file), `snapshot.csv` (username, state,
//! left_at, groups, then one column per field), `roster.csv` and
//! `expected.csv`. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the
//! expected files — read the diff before committing it.

use std::path::Path;

use dirsync::config::{compile_policy, PolicyFile};
use dirsync::core::report::write_results;
use dirsync::core::{
    parse_roster, plan, Account, AccountState, Outcome, PlanOptions, Snapshot, UserKey, Value, Verdict,
};

const NOW: i64 = 1_800_000_000;

fn snapshot(path: &Path, policy: &dirsync::core::Policy) -> Snapshot {
    let mut r = csv::Reader::from_path(path).expect("snapshot.csv");
    let headers = r.headers().expect("headers").clone();
    let mut managed = vec![false; policy.attributes.len()];
    for h in headers.iter().skip(4) {
        managed[policy.attribute_index(h).unwrap_or_else(|| panic!("unknown field {h}"))] = true;
    }
    let mut s = Snapshot::new(managed);
    for rec in r.records() {
        let rec = rec.expect("record");
        let mut attrs = vec![None; policy.attributes.len()];
        for (h, v) in headers.iter().zip(rec.iter()).skip(4) {
            if !v.is_empty() {
                attrs[policy.attribute_index(h).expect("field")] = Some(Value::from(v));
            }
        }
        s.insert(Account {
            key: UserKey::new(&rec[0]),
            attrs: attrs.into(),
            groups: rec[3].split(';').filter(|g| !g.is_empty()).map(Value::from).collect(),
            state: if &rec[1] == "leaver" {
                AccountState::Leaver
            } else {
                AccountState::Active
            },
            left_at: rec[2].parse().ok(),
            locator: None,
        })
        .expect("unique keys");
    }
    s
}

fn run_case(dir: &Path) {
    let file: PolicyFile =
        toml::from_str(&std::fs::read_to_string(dir.join("policy.toml")).expect("policy")).expect("toml");
    let policy = compile_policy("golden", &file).expect("valid policy");
    let snap = snapshot(&dir.join("snapshot.csv"), &policy);
    let bytes = std::fs::read(dir.join("roster.csv")).expect("roster");
    let roster = parse_roster(&bytes, &policy).expect("roster parses");
    let pl = plan(&roster, &snap, &policy, NOW, PlanOptions::default());
    let outcomes: Vec<Outcome> = pl
        .items
        .iter()
        .map(|i| Outcome::from_plan(i, true).unwrap_or_else(|| Outcome::new(Verdict::Preview, None)))
        .collect();
    let mut out = Vec::new();
    write_results(&mut out, &roster, &pl, &outcomes, &policy).expect("write");
    let got = String::from_utf8(out).expect("utf-8");
    let expected_path = dir.join("expected.csv");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &got).expect("write expected");
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(got, expected, "golden case {}", dir.display());
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).expect("tests/golden") {
        let dir = entry.expect("entry").path();
        if dir.is_dir() {
            run_case(&dir);
            n += 1;
        }
    }
    assert!(n >= 2, "expected golden cases under {}", root.display());
}
