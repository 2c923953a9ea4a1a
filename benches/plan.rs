//! Core-time benchmark: parse a next-night roster and plan it against a
//! snapshot built from the base roster — no I/O but reading the two files.
//!
//!   BASE=base.csv NEXT=next.csv cargo bench --bench plan
//!
//! `benches/check.sh` makes the files with dirsync-genroster and runs this.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use dirsync::core::plan::{plan, PlanOptions};
use dirsync::core::policy::{GroupRules, Limits, PasswordRules, Policy, RosterRules, SyncRules};
use dirsync::core::roster::parse_shared;
use dirsync::core::snapshot::{Account, Snapshot};
use dirsync::core::Change;

/// The allocator the `dirsync` binary runs with, counting the bytes it
/// holds (requested sizes: what the data takes, before the allocator's own
/// rounding and retained pages).
#[global_allocator]
static ALLOC: Counting = Counting;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to mimalloc unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Relaxed);
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(p, l, new) }
    }
}

/// Bytes the program holds now (MiB).
fn live_mib() -> f64 {
    LIVE.load(Relaxed) as f64 / (1024.0 * 1024.0)
}

/// The floor: one pass of the csv crate's `ByteRecord` reader over the same
/// bytes (no decoding, no checks, nothing kept), and the records it saw.
fn csv_pass(bytes: &[u8]) -> (f64, usize) {
    let t = Instant::now();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut n = 0;
    while reader.read_byte_record(&mut record).unwrap_or(false) {
        n += 1;
    }
    (t.elapsed().as_secs_f64(), n)
}

/// A memory figure of this process from `/proc/self/status` (MiB).
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The peak resident memory so far.
fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident memory now: what each stage holds on to.
fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn main() {
    let (Ok(base), Ok(next)) = (std::env::var("BASE"), std::env::var("NEXT")) else {
        eprintln!("set BASE and NEXT to roster files (see benches/check.sh); skipping");
        return;
    };
    let policy = match Policy::compile(
        "bench",
        RosterRules {
            max_field_len: 256,
            ..Default::default()
        },
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
    let read = |p: &str| match std::fs::read(p) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{p}: {e}");
            std::process::exit(2);
        }
    };
    // The snapshot: the base roster as the target would hold it.
    let base_bytes = std::sync::Arc::new(read(&base));
    let mut base_roster = match parse_shared(&base_bytes, &policy) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{base}: {e}");
            std::process::exit(2);
        }
    };
    drop(base_bytes);
    let rss_base = (rss_mib(), live_mib());
    // Only the accounts survive: the base roster's text and entries go now
    // (a partial move would keep them until the end of `main`).
    let persons = std::mem::take(&mut base_roster.persons);
    drop(base_roster);
    let mut snapshot = Snapshot::with_capacity(vec![true; policy.attributes.len()], persons.len());
    for p in persons {
        let _ = snapshot.insert(Account {
            key: p.key,
            attrs: p.attrs,
            groups: p.groups.map(Vec::from).unwrap_or_default(),
            state: p.state,
            left_at: None,
            locator: None,
        });
    }
    let accounts = snapshot.len();
    let rss_snapshot = peak_rss_mib();
    let rss_snapshot_now = (rss_mib(), live_mib());

    // Kept by the roster as its text (a run reads the file once, too).
    let next_bytes = std::sync::Arc::new(read(&next));
    let (csv_s, csv_rows) = csv_pass(&next_bytes);
    let t = Instant::now();
    let roster = match parse_shared(&next_bytes, &policy) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{next}: {e}");
            std::process::exit(2);
        }
    };
    let parse_s = t.elapsed().as_secs_f64();
    let rss_parsed = (rss_mib(), live_mib());
    // The roster holds the text (these bytes, shared).
    drop(next_bytes);
    let t = Instant::now();
    let pl = plan(&roster, &snapshot, &policy, 0, PlanOptions { allow_over_limit: true });
    let plan_s = t.elapsed().as_secs_f64();
    let rss_planned = (rss_mib(), live_mib());
    let count = |f: fn(&Change) -> bool| pl.items.iter().filter(|i| f(&i.change)).count();
    println!(
        "rows={} accounts={} parse_s={parse_s:.3} plan_s={plan_s:.3} core_s={:.3} peak_rss_mib={:.0} (after snapshot {rss_snapshot:.0})",
        roster.entries.len(),
        accounts,
        parse_s + plan_s,
        peak_rss_mib()
    );
    println!(
        "P4 core (parse + plan) {:.3} s | csv ByteRecord pass {csv_s:.3} s ({csv_rows} records) | ratio {:.2}x (target <= 2.5) | peak RSS {:.0} MiB = {:.0} MB (target < 800 MB)",
        parse_s + plan_s,
        (parse_s + plan_s) / csv_s,
        peak_rss_mib(),
        peak_rss_mib() * 1.048576
    );
    println!(
        "MiB resident / held: base roster parsed {:.0} / {:.0} | snapshot built {:.0} / {:.0} | next roster parsed {:.0} / {:.0} | planned {:.0} / {:.0}",
        rss_base.0, rss_base.1, rss_snapshot_now.0, rss_snapshot_now.1, rss_parsed.0, rss_parsed.1, rss_planned.0, rss_planned.1
    );
    println!(
        "bytes each: Person {} | Account {} | PlanItem {} | Entry {}",
        std::mem::size_of::<dirsync::core::Person>(),
        std::mem::size_of::<Account>(),
        std::mem::size_of::<dirsync::core::plan::PlanItem>(),
        std::mem::size_of::<dirsync::core::roster::Entry>(),
    );
    println!(
        "plan: new={} update={} leaver={} unchanged={} absent={} error={}",
        count(|c| matches!(c, Change::Add)),
        count(|c| matches!(c, Change::Update(_))),
        count(|c| matches!(c, Change::Leave)),
        count(|c| matches!(c, Change::Unchanged)),
        count(|c| matches!(c, Change::Absent)),
        count(|c| matches!(c, Change::Reject(_))),
    );
}
