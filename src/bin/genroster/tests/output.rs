//! Tests of the output formats: CSV quoting and rows, base64, LDIF attributes and entries.

use super::*;
use crate::data::GROUPS;
use crate::output::{push_base64, push_csv_field, push_ldif_attr, LDIF_LINE_WIDTH};
use std::collections::HashMap;

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
