use super::fixtures::*;
use super::*;

#[test]
fn simple_file_parses_with_trimming_and_defaults() {
    let r = parse(&format!("{HEAD} jsmith , Jane ,Smith,jane@example.org\n")).unwrap(); // ok: test
    assert_eq!(r.persons.len(), 1);
    let p = &r.persons[0];
    assert_eq!(p.key.as_str(), "jsmith");
    assert_eq!(p.attrs.get(0), Some("Jane"));
    let ut = policy().attribute_index("user_type").unwrap(); // ok: test
    assert_eq!(p.attrs.get(ut), Some("Standard"));
    assert_eq!(p.origin, Origin { row: 1, line: 2 });
}

#[test]
fn whole_file_rejections() {
    let cases: Vec<(&[u8], FileErrorKind)> = vec![
        (b"", FileErrorKind::Empty),
        (&[0xEF, 0xBB, 0xBF], FileErrorKind::Empty),
        (b"\n\n", FileErrorKind::Empty),
        (HEAD.as_bytes(), FileErrorKind::HeaderOnly),
        (
            b"username,firstname,surname,email\na,A,B,a@example.org\nb,B",
            FileErrorKind::Truncated,
        ),
        (
            b"username,firstname,surname,email\na,A,\"B,a@example.org\n",
            FileErrorKind::Truncated,
        ),
        (b"username,firstname,email\na,A,a@example.org\n", FileErrorKind::Header),
        (b"username,login,firstname,surname,email\n", FileErrorKind::Header),
    ];
    for (bytes, kind) in cases {
        let e = parse_roster(bytes, &policy()).unwrap_err();
        assert_eq!(e.kind, kind, "{:?}: {e}", String::from_utf8_lossy(bytes));
    }
    let e = parse("username,firstname,email\na,A,a@example.org\n").unwrap_err();
    assert!(e.message.contains("surname"), "{e}");
    assert_eq!(e.line, Some(1));
    let e = parse("sep=,\nUsername,Login,firstname,surname,email\n").unwrap_err();
    assert!(e.message.contains("\"Username\" and \"Login\""), "{e}");
    assert_eq!((e.line, e.column.as_deref()), (Some(2), Some("Login")));
    let e = parse("username,firstname,surname,email\na,A,B,a@example.org\nb,B").unwrap_err();
    assert_eq!((e.kind, e.line), (FileErrorKind::Truncated, Some(3)));
}

#[test]
fn max_rows_rejects_the_file() {
    let mut p = policy();
    p.roster.max_rows = Some(1);
    let e = parse_roster(b"username,firstname,surname,email\na,A,B,a@x.org\nb,B,C,b@x.org\n", &p).unwrap_err();
    assert_eq!(e.kind, FileErrorKind::TooManyRows);
}

#[test]
fn unknown_columns_warn_and_ignored_columns_are_silent() {
    let r = parse("username,firstname,surname,email,Shoe size,Creation date\na,A,B,a@example.org,9,2020\n").unwrap(); // ok: test
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains("Shoe size"));
    assert_eq!(r.persons.len(), 1);
}
