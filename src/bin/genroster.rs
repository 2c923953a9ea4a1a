//! `dirsync-genroster`: a deterministic generator of large, realistic HR rosters.
//!
//! Used to load-test and soak-test dirsync: it writes an HR-style CSV export (or the
//! equivalent LDIF for seeding a directory with `ldapadd`) of N people, and can also
//! write "the next night's export" of the same population with a controlled amount of
//! churn (new starters, changes, leavers).
//!
//! Design notes:
//! * Standard library only, so it builds as a bin of the main package with no extra deps.
//! * Every base row is a pure function of `(seed, index)`: each row draws from its own
//!   PRNG stream keyed by the row index, so rows never depend on their neighbours, on
//!   `--rows`, or on output format. Two runs with the same arguments are byte-identical.
//! * Output is streamed row by row through a `BufWriter`; memory use is constant.
//! * Phone numbers use Ofcom's ranges reserved for drama/fiction, so they can never ring
//!   anyone real.
//!
//! This file holds the usage text, the plan and the writing loop; `genroster/` holds the
//! rest: args (the command line), data (names, departments, sites, groups), rng (the
//! PRNG), people (rows to people), churn (next night's changes), output (CSV and LDIF).

#[path = "genroster/args.rs"]
mod args;
#[path = "genroster/churn.rs"]
mod churn;
#[path = "genroster/data.rs"]
mod data;
#[path = "genroster/output.rs"]
mod output;
#[path = "genroster/people.rs"]
mod people;
#[path = "genroster/rng.rs"]
mod rng;
#[cfg(test)]
#[path = "genroster/tests.rs"]
mod tests;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use args::{parse_args, Command, Config, Format};
use churn::{Change, ChurnPlan, ChurnSelector};
use output::{push_csv_row, push_ldif_entry};
use people::{Generator, Person};

const USAGE: &str = "\
dirsync-genroster - generate a large, deterministic, realistic HR roster for testing dirsync

USAGE:
    dirsync-genroster --rows N [--seed S] [--out FILE] [--format csv|ldif] [--base DN]
                      [--next-night PCT] [--leaver-percent P]

OPTIONS:
    --rows N              number of people in the base roster (required, 0..=60466176;
                          underscores allowed, e.g. 1_000_000)
    --seed S              PRNG seed, decimal or 0x-prefixed hex (default 0)
    --out FILE            write to FILE instead of stdout ('-' means stdout)
    --format csv|ldif     output format (default csv)
    --base DN             base DN for LDIF entries (default ou=people,dc=example,dc=org)
    --next-night PCT      write the *next* night's export of the same population instead:
                          about PCT% (0..=100) of N churned, split roughly evenly into
                          adds (new rows N, N+1, ...), updates (title, department or phone
                          changed) and leavers (status=leaver); all other rows identical
                          to the base export made with the same --rows, --seed and
                          --leaver-percent. A summary line is printed to stderr.
    --leaver-percent P    mark P% (0..=100) of base rows as status=leaver (default 0)
    -h, --help            print this help

Every row is a pure function of (seed, row index): the same arguments always produce
byte-identical output. CSV is UTF-8 (no BOM), LF line endings, RFC 4180 quoting.
LDIF entries are inetOrgPerson; LDIF has no status attribute, so leavers are written
like everyone else. Exit status: 0 ok, 1 I/O error, 2 bad arguments.
";

const CSV_HEADER: &str = "username,firstname,surname,email,title,department,site,user_type,\
phone,groups,status,change password next time\n";

const DEFAULT_BASE_DN: &str = "ou=people,dc=example,dc=org";

/// Usernames end in a fixed-width 5-character base-36 code for the row index, so at
/// most 36^5 distinct rows (base plus next-night adds) can be generated.
const USERNAME_SPACE: u64 = 36 * 36 * 36 * 36 * 36;
const SUFFIX_LEN: usize = 5;
const MAX_USERNAME_LEN: usize = 20;

/// Everything decided before the first byte is written, so argument-dependent failures
/// (exit 2) happen before the output file is created.
struct Plan {
    gen: Generator,
    churn: Option<ChurnPlan>,
}

impl Plan {
    fn new(cfg: &Config) -> Result<Plan, String> {
        let gen = Generator::new(cfg.seed, cfg.leaver_percent);
        let churn = cfg.next_night.map(|pct| ChurnPlan::new(&gen, cfg.rows, pct));
        let total = cfg.rows + churn.map_or(0, |c| c.adds);
        if total > USERNAME_SPACE {
            return Err(format!(
                "{total} rows requested in total, but at most {USERNAME_SPACE} can be generated \
                 (usernames carry a 5-character base-36 row code)"
            ));
        }
        Ok(Plan { gen, churn })
    }
}

/// Writes the roster; returns the churn plan actually applied (if `--next-night`).
fn write_roster<W: Write>(cfg: &Config, plan: &Plan, out: &mut W) -> io::Result<Option<ChurnPlan>> {
    let mut buf = Vec::with_capacity(1024);
    let emit = |buf: &mut Vec<u8>, p: &Person| match cfg.format {
        Format::Csv => push_csv_row(buf, p),
        Format::Ldif => {
            buf.push(b'\n');
            push_ldif_entry(buf, p, &cfg.base_dn);
        }
    };
    match cfg.format {
        Format::Csv => out.write_all(CSV_HEADER.as_bytes())?,
        Format::Ldif => out.write_all(b"version: 1\n")?,
    }
    let mut selector = plan.churn.as_ref().map(|c| ChurnSelector::new(cfg.seed, c));
    for index in 0..cfg.rows {
        let mut person = plan.gen.person(index);
        if let Some(sel) = selector.as_mut() {
            match sel.next(!person.leaver) {
                Change::None => {}
                Change::Update => plan.gen.apply_update(&mut person, index),
                Change::Leaver => person.leaver = true,
            }
        }
        buf.clear();
        emit(&mut buf, &person);
        out.write_all(&buf)?;
    }
    if let Some(churn) = plan.churn {
        // New starters: the people the base roster would have had at these indices.
        for index in cfg.rows..cfg.rows + churn.adds {
            let mut person = plan.gen.person(index);
            person.leaver = false;
            buf.clear();
            emit(&mut buf, &person);
            out.write_all(&buf)?;
        }
    }
    out.flush()?;
    Ok(plan.churn)
}

fn run(cfg: &Config) -> ExitCode {
    let plan = match Plan::new(cfg) {
        Ok(plan) => plan,
        Err(msg) => {
            eprintln!("dirsync-genroster: {msg}");
            return ExitCode::from(2);
        }
    };
    let result = match &cfg.out {
        Some(path) => match File::create(path) {
            Ok(file) => write_roster(cfg, &plan, &mut BufWriter::with_capacity(1 << 16, file)),
            Err(e) => {
                eprintln!("dirsync-genroster: cannot create {path}: {e}");
                return ExitCode::from(1);
            }
        },
        None => write_roster(cfg, &plan, &mut BufWriter::with_capacity(1 << 16, io::stdout().lock())),
    };
    match result {
        Ok(Some(churn)) => {
            eprintln!(
                "dirsync-genroster: next night for {} base rows (seed {}): {} adds, {} updates, {} leavers; {} rows written",
                cfg.rows,
                cfg.seed,
                churn.adds,
                churn.updates,
                churn.leavers,
                cfg.rows + churn.adds
            );
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        // The reader went away (e.g. `| head`): not worth a complaint.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dirsync-genroster: write failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Run(cfg)) => run(&cfg),
        Err(msg) => {
            eprintln!("dirsync-genroster: {msg}\nRun 'dirsync-genroster --help' for usage.");
            ExitCode::from(2)
        }
    }
}
