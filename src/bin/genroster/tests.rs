use super::*;
use std::collections::{HashMap, HashSet};

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
fn csv_quoting_round_trips() {
    let tricky = [
        "Elizabeth \"Liz\"",
        "Director, Finance",
        "O'Brien",
        "\"",
        ",",
        "a\r\nb",
        "plain",
        "",
        "Zoë",
    ];
    let mut line = Vec::new();
    for (i, value) in tricky.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_csv_field(&mut line, value);
    }
    line.push(b'\n');
    let text = String::from_utf8(line).expect("utf-8"); // ok: test
    assert!(text.starts_with("\"Elizabeth \"\"Liz\"\"\",\"Director, Finance\",O'Brien,"));
    let parsed = parse_csv(&text);
    assert_eq!(parsed, vec![tricky.iter().map(|s| s.to_string()).collect::<Vec<_>>()]);
}

#[test]
fn csv_output_parses_and_matches_people() {
    let cfg = Config {
        leaver_percent: 10.0,
        ..config(30_000, 3)
    };
    let text = String::from_utf8(generate(&cfg)).expect("utf-8"); // ok: test
    let records = parse_csv(&text);
    assert_eq!(records[0].join(","), CSV_HEADER.trim_end());
    assert_eq!(records.len(), 30_001);
    let gen = Generator::new(3, 10.0);
    let (mut quoted, mut non_ascii, mut leavers, mut change_pw, mut privileged) = (0, 0, 0, 0, 0);
    for (i, rec) in records[1..].iter().enumerate() {
        let p = gen.person(i as u64);
        assert_eq!(rec.len(), 12);
        assert_eq!(rec[0], p.username);
        assert_eq!(rec[1], p.first);
        assert_eq!(rec[2], p.surname);
        assert_eq!(rec[3], format!("{}@example.org", p.username));
        assert_eq!(rec[4], p.title);
        assert_eq!(rec[8], p.phone_string());
        assert!(rec[8].starts_with("+44 ") && rec[8].len() >= 15, "{}", rec[8]);
        let groups: Vec<&str> = rec[9].split(';').filter(|g| !g.is_empty()).collect();
        assert!(groups.len() <= 3 && groups.iter().all(|g| GROUPS.contains(g)));
        assert!(rec[10].is_empty() || rec[10] == "leaver");
        assert!(rec[11].is_empty() || rec[11] == "1");
        quoted += usize::from(rec[1].contains('"') || rec[4].contains(','));
        non_ascii += usize::from(!rec[1].is_ascii() || !rec[2].is_ascii());
        leavers += usize::from(rec[10] == "leaver");
        change_pw += usize::from(rec[11] == "1");
        privileged += usize::from(rec[7] == "Privileged");
    }
    assert!(
        quoted > 100 && non_ascii > 1_000,
        "quoted {quoted}, non-ascii {non_ascii}"
    );
    assert!((2_700..3_300).contains(&leavers), "{leavers}");
    assert!((9_500..10_500).contains(&change_pw), "{change_pw}");
    assert!((1_200..1_800).contains(&privileged), "{privileged}");
}

#[test]
fn next_night_churn_counts_and_untouched_rows() {
    const N: usize = 30_000;
    let base_cfg = Config {
        leaver_percent: 5.0,
        ..config(N as u64, 11)
    };
    let night_cfg = Config {
        next_night: Some(3.0),
        ..base_cfg.clone()
    };
    let base = String::from_utf8(generate(&base_cfg)).expect("utf-8"); // ok: test
    let night = String::from_utf8(generate(&night_cfg)).expect("utf-8"); // ok: test
    let base_lines: Vec<&str> = base.lines().collect();
    let night_lines: Vec<&str> = night.lines().collect();
    assert_eq!(base_lines[0], night_lines[0]);

    let (mut untouched, mut updates, mut leavers) = (0, 0, 0);
    for i in 1..=N {
        if base_lines[i] == night_lines[i] {
            untouched += 1;
            continue;
        }
        let b = &parse_csv(&format!("{}\n", base_lines[i]))[0];
        let n = &parse_csv(&format!("{}\n", night_lines[i]))[0];
        assert_eq!(b[0], n[0], "row order must be preserved");
        assert_eq!(b[10], "", "base leavers must not churn");
        let changed: Vec<usize> = (0..12).filter(|&c| b[c] != n[c]).collect();
        match changed.as_slice() {
            [10] if n[10] == "leaver" => leavers += 1,
            [4] | [5] | [8] => updates += 1,
            other => panic!("unexpected change in columns {other:?}: {b:?} -> {n:?}"),
        }
    }
    let base_users: HashSet<&str> = base_lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    let adds = &night_lines[N + 1..];
    for line in adds {
        let rec = &parse_csv(&format!("{line}\n"))[0];
        assert!(!base_users.contains(rec[0].as_str()), "add reuses a username");
        assert_eq!(rec[10], "", "new starters are not leavers");
    }

    // 3% of 30k = 900 changes, a third of each; selection sampling makes them exact.
    let plan = ChurnPlan::new(&Generator::new(11, 5.0), N as u64, 3.0);
    assert_eq!((plan.adds, plan.updates, plan.leavers), (300, 300, 300));
    for (what, got) in [("adds", adds.len()), ("updates", updates), ("leavers", leavers)] {
        assert!((270..=330).contains(&got), "{what}: {got}");
    }
    assert_eq!(untouched + updates + leavers, N);
    assert_eq!(updates, 300);
    assert_eq!(leavers, 300);
    assert_eq!(adds.len(), 300);

    // Churn is spread over the file, not bunched at the start.
    let first_half_changes = (1..=N / 2).filter(|&i| base_lines[i] != night_lines[i]).count();
    assert!((240..=360).contains(&first_half_changes), "{first_half_changes}");

    // Adds are exactly the rows a bigger base roster would have had (minus leaver flags).
    let bigger = String::from_utf8(generate(&config(N as u64 + 300, 11))).expect("utf-8"); // ok: test
    let bigger_lines: Vec<&str> = bigger.lines().collect();
    assert_eq!(&bigger_lines[N + 1..], adds);
}

#[test]
fn next_night_zero_percent_is_identical() {
    let base = config(2_000, 5);
    let night = Config {
        next_night: Some(0.0),
        ..base.clone()
    };
    assert_eq!(generate(&base), generate(&night));
}

#[test]
fn churn_never_exceeds_eligible_rows() {
    let gen = Generator::new(1, 100.0);
    let plan = ChurnPlan::new(&gen, 100, 100.0);
    assert_eq!(plan.eligible, 0);
    assert_eq!((plan.updates, plan.leavers), (0, 0));
    let cfg = Config {
        leaver_percent: 100.0,
        next_night: Some(100.0),
        ..config(100, 1)
    };
    let text = String::from_utf8(generate(&cfg)).expect("utf-8"); // ok: test
    assert_eq!(text.lines().count(), 1 + 100 + plan.adds as usize);
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        ("Zoë", "Wm/Dqw=="),
        ("Müller", "TcO8bGxlcg=="),
    ] {
        let mut out = Vec::new();
        push_base64(&mut out, input.as_bytes());
        assert_eq!(String::from_utf8(out).expect("ascii"), expected, "{input}"); // ok: test
        assert_eq!(base64_decode(expected), input.as_bytes());
    }
}

#[test]
fn ldif_attributes_are_safe_strings_or_base64() {
    let line = |name: &str, value: &str| {
        let mut out = Vec::new();
        push_ldif_attr(&mut out, name, value);
        String::from_utf8(out).expect("ascii") // ok: test
    };
    assert_eq!(line("sn", "Smith"), "sn: Smith\n");
    assert_eq!(line("sn", "Müller"), "sn:: TcO8bGxlcg==\n");
    assert_eq!(line("givenName", "Zoë"), "givenName:: Wm/Dqw==\n");
    assert_eq!(
        line("cn", "Elizabeth \"Liz\" O'Brien"),
        "cn: Elizabeth \"Liz\" O'Brien\n"
    );
    for awkward in [" leading", ":colon", "<angle", "trailing ", "a\nb"] {
        let l = line("x", awkward);
        let encoded = l.strip_prefix("x:: ").expect("base64 form").trim_end(); // ok: test
        assert_eq!(base64_decode(encoded), awkward.as_bytes());
    }
    // Long values fold at 76 columns and unfold to the original.
    let long = "é".repeat(100);
    let l = line("description", &long);
    assert!(l.lines().all(|x| x.len() <= LDIF_LINE_WIDTH), "{l}");
    let unfolded = l.trim_end().replace("\n ", "");
    let encoded = unfolded.strip_prefix("description:: ").expect("base64 form"); // ok: test
    assert_eq!(base64_decode(encoded), long.as_bytes());
}

#[test]
fn ldif_entries_describe_the_same_people() {
    let cfg = Config {
        format: Format::Ldif,
        base_dn: "ou=staff,dc=corp,dc=test".to_string(),
        ..config(3_000, 8)
    };
    let text = String::from_utf8(generate(&cfg)).expect("ldif is ASCII"); // ok: test
    assert!(text.is_ascii());
    let body = text.strip_prefix("version: 1\n\n").expect("version header"); // ok: test
    let entries: Vec<&str> = body.split("\n\n").collect();
    assert_eq!(entries.len(), 3_000);
    let gen = Generator::new(8, 0.0);
    let mut base64_seen = 0;
    for (i, entry) in entries.iter().enumerate() {
        let p = gen.person(i as u64);
        let mut attrs: HashMap<String, Vec<String>> = HashMap::new();
        for l in entry.replace("\n ", "").lines() {
            let (name, value) = if let Some((n, v)) = l.split_once(":: ") {
                base64_seen += 1;
                (n, String::from_utf8(base64_decode(v)).expect("utf-8")) // ok: test
            } else {
                let (n, v) = l.split_once(": ").expect("attr: value"); // ok: test
                (n, v.to_string())
            };
            attrs.entry(name.to_string()).or_default().push(value);
        }
        let one = |k: &str| attrs.get(k).map(|v| v.join("|")).unwrap_or_default();
        assert_eq!(one("dn"), format!("uid={},ou=staff,dc=corp,dc=test", p.username));
        assert_eq!(one("objectClass"), "top|person|organizationalPerson|inetOrgPerson");
        assert_eq!(one("uid"), p.username);
        assert_eq!(one("cn"), format!("{} {}", p.first, p.surname));
        assert_eq!(one("givenName"), p.first);
        assert_eq!(one("sn"), p.surname);
        assert_eq!(one("mail"), format!("{}@example.org", p.username));
        assert_eq!(one("title"), p.title);
        assert_eq!(one("departmentNumber"), p.department());
        assert_eq!(one("l"), p.site_name());
        assert_eq!(one("employeeType"), p.user_type());
        assert_eq!(one("telephoneNumber"), p.phone_string());
    }
    assert!(base64_seen > 100, "{base64_seen}");
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
