use super::*;
use crate::core::roster::fixtures::*;

#[test]
fn per_row_rejections_name_row_line_column_and_reason() {
    let text = "username,firstname,surname,email,user_type,title,groups,status,change password next time\n\
        ok,A,B,ok@example.org,,,staff,,1\n\
        ,A,B,nokey@example.org,,,,,\n\
        bademail,A,B,bad@,,,,,\n\
        nofirst,,B,nf@example.org,,,,,\n\
        wrongtype,A,B,wt@example.org,Admin,,,,\n\
        longtitle,A,B,lt@example.org,,Chief Executive,,,\n\
        badgroup,A,B,bg@example.org,,,staff;wheel,,\n\
        badstatus,A,B,bs@example.org,,,,retired,\n\
        badflag,A,B,bf@example.org,,,,,maybe\n\
        fields,A,B\n\
        admin,A,B,adm@example.org,,,,,\n";
    let r = parse(text).unwrap(); // ok: test
    assert_eq!(r.persons.len(), 1);
    let rej = rejected_errors(&r);
    let find = |row: usize| -> Vec<RowError> {
        rej.iter()
            .find(|(r, _, _)| *r == row)
            .map(|x| x.2.clone())
            .unwrap_or_default()
    };
    let cell = |column: &str, kind: RowErrorKind| vec![RowError::in_column(column, kind)];
    let s = |v: &str| v.to_string();
    assert_eq!(
        find(2),
        cell("username", RowErrorKind::Missing { field: s("username") })
    );
    assert_eq!(
        find(3),
        cell(
            "email",
            RowErrorKind::MalformedEmail {
                value: s("bad@"),
                reason: Some(s("there is nothing after the @"))
            }
        )
    );
    assert_eq!(
        find(4),
        cell("firstname", RowErrorKind::Missing { field: s("firstname") })
    );
    assert_eq!(
        find(5),
        cell(
            "user_type",
            RowErrorKind::NotAllowed {
                value: s("Admin"),
                allowed: vec![s("Standard"), s("Privileged")]
            }
        )
    );
    assert_eq!(find(6), cell("title", RowErrorKind::TooLong { length: 15, max: 10 }));
    assert!(
        matches!(&find(7)[..], [RowError { kind: RowErrorKind::UnmanagedGroup { group, .. }, column: Some(c), .. }]
            if group == "wheel" && c == "groups"),
        "{:?}",
        find(7)
    );
    assert!(
        matches!(&find(8)[..], [RowError { kind: RowErrorKind::BadStatus { value, .. }, .. }] if value == "retired"),
        "{:?}",
        find(8)
    );
    assert_eq!(
        find(9),
        cell("change password next time", RowErrorKind::BadFlag { value: s("maybe") })
    );
    assert_eq!(
        find(10),
        vec![RowError::in_row(RowErrorKind::FieldCount {
            found: 3,
            expected: 9,
            delimiter: ','
        })]
    );
    assert_eq!(
        find(11),
        vec![RowError::in_row(RowErrorKind::Protected { key: s("admin") })]
    );
    let lines: Vec<u64> = rej.iter().map(|x| x.1).collect();
    assert_eq!(lines, (3..=12).collect::<Vec<u64>>());
}

#[test]
fn status_groups_must_change_and_password() {
    let r = parse(
        "username,firstname,surname,email,status,belong to,change password next time,password\n\
         a,A,B,a@example.org,Leaver,VPN; staff,yes,s3cret pass\n",
    )
    .unwrap(); // ok: test
    let p = &r.persons[0];
    assert_eq!(p.state, AccountState::Leaver);
    assert_eq!(
        p.groups.as_deref(),
        Some(&[Value::from("vpn"), Value::from("staff")][..])
    );
    assert_eq!(p.must_change, Some(true));
    assert_eq!(p.password.as_ref().map(|s| s.expose()), Some("s3cret pass"));
}

#[test]
fn row_errors_read_as_before() {
    let s = |v: &str| v.to_string();
    let cases = [
        (
            RowError::in_column("username", RowErrorKind::Missing { field: s("username") }),
            "column \"username\": is empty; every row needs a username",
        ),
        (
            RowError::in_column("First", RowErrorKind::Missing { field: s("firstname") }),
            "column \"First\": is empty; firstname is required",
        ),
        (
            RowError::in_column(
                "email",
                RowErrorKind::MalformedEmail {
                    value: s("bad"),
                    reason: None,
                },
            ),
            "column \"email\": \"bad\" is not an email address (name@domain.tld); correct it",
        ),
        (
            RowError::in_column(
                "email",
                RowErrorKind::MalformedEmail {
                    value: s("a..b@x.org"),
                    reason: Some(s("the part before the @ has two dots in a row")),
                },
            ),
            "column \"email\": \"a..b@x.org\" is not an email address: the part before the @ has two dots in a row; correct it",
        ),
        (
            RowError::in_column("t", RowErrorKind::TooLong { length: 15, max: 10 }),
            "column \"t\": is 15 characters long; at most 10 are allowed",
        ),
        (
            RowError::in_column(
                "t",
                RowErrorKind::ControlCharacter {
                    code: Some(7),
                    position: Some(3),
                },
            ),
            "column \"t\": contains a control character (U+0007) at position 3; remove it",
        ),
        (
            RowError::in_column(
                "Email",
                RowErrorKind::InvisibleCharacter {
                    code: 0x200B,
                    position: 15,
                    strippable: true,
                },
            ),
            "column \"Email\": contains an invisible character (U+200B zero-width space) at position 15; remove it (or set strip_invisible = true for this field in the policy)",
        ),
        (
            RowError {
                kind: RowErrorKind::Missing { field: s("surname") },
                column: Some(s("Last name")),
                letter: Some(s("C")),
            },
            "column C, \"Last name\": is empty; surname is required",
        ),
        (
            RowError::in_column(
                "password",
                RowErrorKind::ControlCharacter {
                    code: None,
                    position: None,
                },
            ),
            "column \"password\": contains a control character; remove it",
        ),
        (
            RowError::in_column(
                "groups",
                RowErrorKind::UnmanagedGroup {
                    group: s("wheel"),
                    policy: s("t"),
                    managed: vec![s("staff"), s("vpn")],
                },
            ),
            "column \"groups\": group \"wheel\" is not managed by policy \"t\" (managed: staff, vpn); fix the name or add it to groups.managed",
        ),
        (
            RowError::in_column(
                "status",
                RowErrorKind::BadStatus {
                    value: s("retired"),
                    active: vec![s("active"), s("joiner")],
                    leaver: vec![s("leaver"), s("left")],
                },
            ),
            "column \"status\": \"retired\" is not a status; use empty or one of active/joiner for active, leaver/left for a leaver",
        ),
        (
            RowError::in_row(RowErrorKind::FieldCount {
                found: 3,
                expected: 9,
                delimiter: ';',
            }),
            "has 3 fields but the header has 9; check for an unquoted delimiter (';') in a value",
        ),
        (
            RowError::in_row(RowErrorKind::Protected { key: s("Admin") }),
            "Admin is a protected account (sync.protected); dirsync never changes it",
        ),
        (
            RowError::in_column(
                "username",
                RowErrorKind::DuplicateKey {
                    lines: vec![2, 3],
                    keep_first: false,
                },
            ),
            "column \"username\": duplicate username (case-insensitive) on lines 2, 3; none of them is applied; keep one row per person",
        ),
        (
            RowError::in_row(RowErrorKind::DuplicateEmail {
                lines: vec![4, 9],
                keep_first: true,
            }),
            "duplicate email (case-insensitive) on lines 4, 9; the first row is kept; remove the others",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want, "{}", e.kind.as_str());
    }
}

#[test]
fn row_error_kinds_serialise_with_their_details() {
    let e = RowError::in_column("title", RowErrorKind::TooLong { length: 15, max: 10 });
    let json = serde_json::to_string(&e).unwrap(); // ok: test
    assert_eq!(
        json,
        r#"{"kind":{"kind":"too-long","length":15,"max":10},"column":"title"}"#
    );
    assert_eq!(serde_json::from_str::<RowError>(&json).unwrap(), e); // ok: test
}

#[test]
fn cell_hygiene_invisible_characters_nfc_and_no_break_spaces() {
    let text = "username,firstname,surname,email,title\n\
        \u{a0}a\u{a0},A,B,a@example.org,x\ty\n\
        b,Zoe\u{308},B,b@example.org,\n\
        c\u{200d},C,B,c@example.org,\n\
        d,D\u{202e},B,d@example.org,\n\
        e,E,B,e@example.org\u{200b},\n\
        f,F,B,f..x@example.org,\n";
    let r = parse(text).unwrap(); // ok: test
    assert_eq!(r.persons[0].key.as_str(), "a", "no-break spaces are trimmed");
    assert_eq!(r.persons[0].attrs.get(3), Some("x\ty"), "a TAB inside text is kept");
    assert_eq!(r.persons[1].attrs.get(0), Some("Zo\u{eb}"), "stored in NFC");
    let rej = rejected_errors(&r);
    let kinds: Vec<&RowErrorKind> = rej.iter().map(|x| &x.2[0].kind).collect();
    assert_eq!(
        kinds,
        [
            &RowErrorKind::InvisibleCharacter {
                code: 0x200D,
                position: 2,
                strippable: false
            },
            &RowErrorKind::InvisibleCharacter {
                code: 0x202E,
                position: 2,
                strippable: true
            },
            &RowErrorKind::InvisibleCharacter {
                code: 0x200B,
                position: 14,
                strippable: true
            },
            &RowErrorKind::MalformedEmail {
                value: "f..x@example.org".into(),
                reason: Some("the part before the @ has two dots in a row".into())
            },
        ]
    );
    assert_eq!(rej[0].2[0].column.as_deref(), Some("username"));
}

#[test]
fn strip_invisible_removes_them_with_a_note() {
    use crate::core::policy::FieldRule;
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        "firstname".to_string(),
        FieldRule {
            strip_invisible: true,
            ..Default::default()
        },
    );
    let p = Policy::with_fields(fields).unwrap(); // ok: test
    let r = crate::core::roster::parse_roster(
        "username,firstname,surname,email\na, \u{feff}Ann\u{200b},B\u{200b},a@example.org\n".as_bytes(),
        &p,
    )
    .unwrap(); // ok: test
    assert!(r.persons.is_empty(), "surname does not strip");
    let r = crate::core::roster::parse_roster(
        "username,firstname,surname,email\na, \u{feff}Ann\u{200b},B,a@example.org\n".as_bytes(),
        &p,
    )
    .unwrap(); // ok: test
    assert_eq!(r.persons[0].attrs.get(0), Some("Ann"));
    assert_eq!(
        r.notes.get(&0).map(Vec::as_slice),
        Some(
            &["column \"firstname\": removed invisible character(s) U+FEFF at position 2, U+200B at position 6 (strip_invisible)".to_string()][..]
        )
    );
}
