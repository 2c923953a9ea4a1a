//! The roster fuzz target (same as fuzz/fuzz_targets/roster.rs) for AFL++:
//! any bytes, CSV text or an XLSX workbook, through parse → plan → results.
#![allow(dead_code, unused_imports)]

#[path = "../../../src/core/mod.rs"]
mod core;

use crate::core::{parse_roster, plan, report, snapshot::Snapshot, Outcome, PlanOptions, Policy, Verdict};

fn one(data: &[u8]) {
    let policy = Policy::defaults("fuzz");
    if let Ok(roster) = parse_roster(data, &policy) {
        let snap = Snapshot::new(vec![true; policy.attributes.len()]);
        let p = plan(&roster, &snap, &policy, 0, PlanOptions::default());
        let outcomes: Vec<Outcome> = p
            .items
            .iter()
            .map(|i| Outcome::from_plan(i, true).unwrap_or(Outcome::new(Verdict::Preview, None)))
            .collect();
        let _ = report::write_results(std::io::sink(), &roster, &p, &outcomes, &policy);
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| one(data));
}
