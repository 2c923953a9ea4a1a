//! Unit tests: the helpers they share, determinism, usernames, name folding, arguments;
//! tests/ holds those of the output formats and of the churn.

use super::data::{DEPARTMENTS, FIRST_NAMES, SURNAMES};
use super::people::{ascii_fold, fold_char};
use super::*;
use std::collections::HashSet;
use std::ffi::OsString;

#[path = "tests/churn.rs"]
mod churn;
#[path = "tests/output.rs"]
mod output;

fn generate(cfg: &Config) -> Vec<u8> {
    let plan = Plan::new(cfg).expect("plan"); // ok: test
    let mut out = Vec::new();
    write_roster(cfg, &plan, &mut out).expect("write to Vec"); // ok: test
    out
}

fn config(rows: u64, seed: u64) -> Config {
    Config {
        seed,
        ..Config::new(rows)
    }
}

/// A minimal, strict RFC 4180 reader for checking our own output.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    assert!(
                        matches!(chars.peek(), None | Some(',' | '\n')),
                        "junk after closing quote"
                    );
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            '"' => panic!("bare quote inside unquoted field: {field}"),
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(field.is_empty() && record.is_empty(), "missing final newline");
    records
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).expect("base64") // ok: test
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let a = generate(&config(20_000, 42));
    let b = generate(&config(20_000, 42));
    assert_eq!(a, b);
    assert_ne!(a, generate(&config(20_000, 43)));

    let ldif = Config {
        format: Format::Ldif,
        ..config(5_000, 42)
    };
    assert_eq!(generate(&ldif), generate(&ldif));

    let night = Config {
        next_night: Some(2.0),
        leaver_percent: 1.0,
        ..config(20_000, 42)
    };
    assert_eq!(generate(&night), generate(&night));
}

#[test]
fn rows_do_not_depend_on_row_count() {
    let small = generate(&config(1_000, 9));
    let large = generate(&config(2_000, 9));
    assert!(large.starts_with(&small));
}

#[test]
fn usernames_unique_and_well_formed() {
    let gen = Generator::new(7, 0.0);
    let mut seen = HashSet::new();
    for i in 0..200_000 {
        let u = gen.person(i).username;
        assert!(u.len() <= MAX_USERNAME_LEN && u.len() > SUFFIX_LEN, "{u}");
        assert!(u.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{u}");
        assert!(seen.insert(u), "duplicate username at index {i}");
    }
    // The suffix permutation must be a bijection on 0..36^5 for any seed.
    for seed in 0..100 {
        let g = Generator::new(seed, 0.0);
        assert_eq!(g.perm_mul % 2, 1);
        assert_ne!(g.perm_mul % 3, 0);
    }
    // The very last usable index is still well-formed.
    let u = gen.username(USERNAME_SPACE - 1, 0, SURNAMES.len() - 1);
    assert!(u.len() <= MAX_USERNAME_LEN, "{u}");
}

#[test]
fn every_name_folds_to_ascii_stem() {
    for name in FIRST_NAMES.iter().chain(SURNAMES) {
        for c in name.chars().flat_map(char::to_lowercase) {
            assert!(
                c.is_ascii_lowercase() || " '-\"".contains(c) || fold_char(c).is_some(),
                "no ASCII folding for {c:?} in {name}"
            );
        }
        assert!(!ascii_fold(name).is_empty(), "{name}");
    }
    assert_eq!(ascii_fold("Nguyễn"), "nguyen");
    assert_eq!(ascii_fold("Łukasz"), "lukasz");
    assert_eq!(ascii_fold("O'Brien"), "obrien");
    assert_eq!(ascii_fold("Weiß"), "weiss");
    assert_eq!(ascii_fold("Ó Súilleabháin"), "osuilleabhain");
    assert!(FIRST_NAMES.len() >= 200, "{}", FIRST_NAMES.len());
    assert!(SURNAMES.len() >= 300, "{}", SURNAMES.len());
    let titles: HashSet<_> = DEPARTMENTS.iter().flat_map(|d| d.titles).collect();
    assert!(titles.len() >= 30, "{}", titles.len());
    assert!(DEPARTMENTS.iter().all(|d| d.titles.len() >= 2));
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let parse = |args: &[&str]| parse_args(args.iter().map(OsString::from));
    assert_eq!(parse(&["--help"]), Ok(Command::Help));
    assert_eq!(parse(&["--rows", "10", "-h"]), Ok(Command::Help));
    for bad in [
        &[][..],
        &["--rows"],
        &["--rows", "ten"],
        &["--rows", "-5"],
        &["--rows", ""],
        &["--rows", "99999999999"],
        &["--rows", "1", "--rows", "2"],
        &["--rows", "1", "--seed", "0x"],
        &["--rows", "1", "--seed", "18446744073709551616"],
        &["--rows", "1", "--format", "xml"],
        &["--rows", "1", "--next-night", "101"],
        &["--rows", "1", "--next-night", "NaN"],
        &["--rows", "1", "--leaver-percent", "-1"],
        &["--rows", "1", "--base", "people"],
        &["--rows", "1", "--out", ""],
        &["--rows", "1", "--frobnicate"],
        &["--rows", "1", "stray"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should be rejected");
    }
    let ok = parse(&[
        "--rows=1_000",
        "--seed",
        "0xff",
        "--format",
        "LDIF",
        "--next-night",
        "1.5%",
        "--leaver-percent=2",
        "--base",
        "ou=x,dc=y",
        "--out",
        "-",
    ]);
    assert_eq!(
        ok,
        Ok(Command::Run(Config {
            rows: 1_000,
            seed: 255,
            out: None,
            format: Format::Ldif,
            base_dn: "ou=x,dc=y".to_string(),
            next_night: Some(1.5),
            leaver_percent: 2.0,
        }))
    );
    // Too many rows once next-night adds are included: rejected before any output.
    let cfg = Config {
        next_night: Some(100.0),
        ..config(USERNAME_SPACE, 0)
    };
    assert!(Plan::new(&cfg).is_err());
}

#[test]
fn empty_roster_is_just_the_header() {
    assert_eq!(generate(&config(0, 0)), CSV_HEADER.as_bytes());
    let ldif = Config {
        format: Format::Ldif,
        ..config(0, 0)
    };
    assert_eq!(generate(&ldif), b"version: 1\n");
}
