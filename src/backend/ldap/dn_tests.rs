use super::*;

#[test]
fn dn_values_are_escaped_per_rfc4514() {
    assert_eq!(escape_dn_value("Smith, John"), "Smith\\2c John");
    assert_eq!(escape_dn_value("a+b"), "a\\2bb");
    assert_eq!(escape_dn_value("\"q\""), "\\22q\\22");
    assert_eq!(escape_dn_value("back\\slash"), "back\\5cslash");
    assert_eq!(escape_dn_value("#hash"), "\\23hash");
    assert_eq!(escape_dn_value(" lead"), "\\20lead");
    assert_eq!(escape_dn_value("trail "), "trail\\20");
    assert_eq!(escape_dn_value("<a>;b"), "\\3ca\\3e\\3bb");
    assert_eq!(escape_dn_value("Zoë Ångström"), "Zoë Ångström");
    assert_eq!(escape_dn_value("mid#dle"), "mid#dle");
}

#[test]
fn filter_values_are_escaped_per_rfc4515() {
    assert_eq!(escape_filter_value("*"), "\\2a");
    assert_eq!(escape_filter_value("x)(uid=*"), "x\\29\\28uid=\\2a");
    assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
    assert_eq!(escape_filter_value("Zoë*"), "Zoë\\2a");
}

#[test]
fn dn_round_trips_through_parse() {
    for v in [
        "Smith, John",
        "a+b",
        "\"q\"",
        "back\\slash",
        "#hash",
        " lead",
        "trail ",
        "<a>;b",
        "Zoë",
        "x)(uid=*",
    ] {
        let dn = Dn(vec![
            vec![Ava {
                attr: "uid".into(),
                value: v.into(),
            }],
            vec![Ava {
                attr: "dc".into(),
                value: "org".into(),
            }],
        ]);
        let s = dn.to_string_escaped();
        assert_eq!(Dn::parse(&s).unwrap(), dn, "{s}"); // ok: test
    }
    // OpenLDAP's own style of escaping parses to the same value.
    let d = Dn::parse("cn=Smith\\, John+uid=x,ou=people, dc=example").unwrap(); // ok: test
    assert_eq!(d.0[0][0].value, "Smith, John");
    assert_eq!(d.0[0][1].value, "x");
    assert_eq!(d.0.len(), 3);
    assert_eq!(normalise("UID=A,OU=People"), normalise("uid=a, ou=people"));
}

#[test]
fn dn_templates_render_escape_and_extract() {
    let t = DnTemplate::parse("uid={username},ou={department},ou=people,dc=example,dc=org").unwrap(); // ok: test
    let dn = t
        .render(&|f| match f {
            "username" => Some("o'neil, j".into()),
            "department" => Some("R+D".into()),
            _ => None,
        })
        .unwrap(); // ok: test
    assert_eq!(
        dn.to_string_escaped(),
        "uid=o'neil\\2c j,ou=R\\2bD,ou=people,dc=example,dc=org"
    );
    let back = Dn::parse(&dn.to_string_escaped()).unwrap(); // ok: test
    let got = t.extract(&back);
    assert_eq!(
        got,
        vec![
            ("username".to_string(), "o'neil, j".to_string()),
            ("department".to_string(), "R+D".to_string())
        ]
    );
    let err = t.render(&|f| (f == "username").then(|| "x".to_string())).unwrap_err();
    assert!(err.contains("department"), "{err}");
    // A DN in another container does not match the shape.
    assert!(t
        .extract(&Dn::parse("uid=x,ou=leavers,dc=example,dc=org").unwrap()) // ok: test
        .is_empty());
}

#[test]
fn templates_trim_and_report_fields() {
    let t = Template::parse("{firstname} {surname}").unwrap(); // ok: test
    assert_eq!(t.fields().collect::<Vec<_>>(), ["firstname", "surname"]);
    assert_eq!(t.render(&|f| (f == "surname").then(|| "Smith".into())), "Smith");
    assert!(Template::parse("{open").is_err());
    assert_eq!(Template::parse("{{x}}").unwrap().render(&|_| None), "{x}"); // ok: test
}
