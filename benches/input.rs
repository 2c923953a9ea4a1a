//! Parse throughput, CSV beside XLSX: the same roster as a CSV file and as a
//! workbook (converted here with rust_xlsxwriter, every cell a string, as HR
//! exports write them), each parsed by `parse_roster` three times; the best
//! time counts.
//!
//!   ROSTER=base.csv cargo bench --bench input
//!
//! `benches/input.sh` makes the file with dirsync-genroster and runs this.

use std::time::Instant;

use dirsync::core::policy::{GroupRules, Limits, PasswordRules, Policy, RosterRules, SyncRules};
use dirsync::core::roster::parse_roster;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn to_xlsx(csv_bytes: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_bytes);
    for (i, rec) in r.records().enumerate() {
        for (c, v) in rec?.iter().enumerate() {
            if !v.is_empty() {
                sheet.write_string(i as u32, c as u16, v)?;
            }
        }
    }
    Ok(book.save_to_buffer()?)
}

fn main() {
    let Ok(path) = std::env::var("ROSTER") else {
        eprintln!("set ROSTER to a roster CSV (see benches/input.sh); skipping");
        return;
    };
    let policy = match Policy::compile(
        "bench",
        RosterRules::default(),
        Default::default(),
        SyncRules::default(),
        PasswordRules::default(),
        Limits::default(),
        GroupRules {
            managed: ["staff", "vpn", "finance-share", "eng-wiki", "sales-crm", "hr-portal"]
                .map(String::from)
                .to_vec(),
            default: vec![],
            create_missing: false,
        },
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("policy: {e:?}");
            std::process::exit(2);
        }
    };
    let csv_bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    let xlsx = match to_xlsx(&csv_bytes) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("converting to XLSX: {e}");
            std::process::exit(2);
        }
    };
    eprintln!("converted to XLSX in {:.2} s", t.elapsed().as_secs_f64());
    for (name, bytes) in [("csv", &csv_bytes), ("xlsx", &xlsx)] {
        let mut best = f64::INFINITY;
        let mut rows = 0;
        for _ in 0..3 {
            let t = Instant::now();
            match parse_roster(bytes, &policy) {
                Ok(r) => rows = r.entries.len(),
                Err(e) => {
                    eprintln!("{name}: {e}");
                    std::process::exit(2);
                }
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "format={name} rows={rows} file_mib={:.1} parse_s={best:.3} rows_per_s={:.0} mib_per_s={:.1} peak_rss_mib={:.0}",
            bytes.len() as f64 / 1048576.0,
            rows as f64 / best,
            bytes.len() as f64 / 1048576.0 / best,
            peak_rss_mib()
        );
    }
}
