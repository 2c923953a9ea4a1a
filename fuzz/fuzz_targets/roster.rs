//! The roster parser on any bytes (CSV text or an XLSX workbook): it never
//! panics, and the results file can always be written from what it returns.
#![no_main]

use dirsync::core::{parse_roster, plan, report, snapshot::Snapshot, Outcome, PlanOptions, Policy, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
