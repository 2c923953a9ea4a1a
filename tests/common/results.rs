//! A results file as the tests read it: per row, in file order, its
//! `change`, `result` and `message` (rows without a username — a generated
//! one — are found by position). Shared by tests/lifecycle.rs and
//! tests/ldap/lifecycle.rs:
//!
//! ```ignore
//! #[path = "common/results.rs"]
//! mod results;
//! ```

/// Per results row, in file order: (change, result, message).
pub fn rows(results: &str) -> Vec<(String, String, String)> {
    let mut r = csv::Reader::from_reader(results.trim_start_matches('\u{feff}').as_bytes());
    let h = r.headers().expect("header").clone();
    let at = |name: &str| h.iter().position(|c| c == name).expect(name);
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            (
                rec[at("change")].to_string(),
                rec[at("result")].to_string(),
                rec[at("message")].to_string(),
            )
        })
        .collect()
}
