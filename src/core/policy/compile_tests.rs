//! Unit tests of `Policy::compile` and the policy's own checks.

use super::*;

#[test]
fn policy_aliases_and_extra_fields() {
    let mut fields = BTreeMap::new();
    fields.insert(
        "employee_id".to_string(),
        FieldRule {
            aliases: vec!["Staff No".into()],
            required: Some(true),
            ..Default::default()
        },
    );
    fields.insert(
        "department".to_string(),
        FieldRule {
            aliases: vec!["Organisation ODSCode".into()],
            ..Default::default()
        },
    );
    let p = Policy::with_fields(fields).unwrap(); // ok: test
    let i = p.attribute_index("employee_id").unwrap(); // ok: test
    assert_eq!(p.column("staff_no"), Column::Attribute(i));
    assert!(p.required("employee_id"));
    assert_eq!(p.column("Organisation ODSCode"), Column::Attribute(4));
}

#[test]
fn bad_policy_is_refused_with_reasons() {
    let mut fields = BTreeMap::new();
    fields.insert(
        "site".to_string(),
        FieldRule {
            allowed: Some(vec!["HQ".into()]),
            default: Some("Mars".into()),
            ..Default::default()
        },
    );
    fields.insert("Bad Name".to_string(), FieldRule::default());
    let err = Policy::compile(
        "t",
        RosterRules::default(),
        fields,
        SyncRules::default(),
        PasswordRules {
            length: 4,
            ..Default::default()
        },
        Limits::default(),
        GroupRules {
            managed: vec![],
            default: vec!["staff".into()],
            create_missing: false,
        },
    )
    .unwrap_err();
    let all = err.join("\n");
    assert!(all.contains("fields.site: default \"Mars\""), "{all}");
    assert!(all.contains("fields.Bad Name"), "{all}");
    assert!(all.contains("passwords.length"), "{all}");
    assert!(all.contains("groups.default"), "{all}");
}

#[test]
fn layouts_and_hygiene_settings_are_checked() {
    let mut fields = BTreeMap::new();
    fields.insert(
        "username".to_string(),
        FieldRule {
            strip_invisible: true,
            ..Default::default()
        },
    );
    let err = Policy::compile(
        "t",
        RosterRules {
            date_format: "[day]/[mnth]".into(),
            ..Default::default()
        },
        fields,
        SyncRules::default(),
        PasswordRules::default(),
        Limits::default(),
        GroupRules::default(),
    )
    .unwrap_err()
    .join("\n");
    assert!(err.contains("fields.username: strip_invisible is not allowed"), "{err}");
    assert!(err.contains("roster.date_format"), "{err}");

    let layout = |name: &str, pairs: &[(&str, &[&str])]| LayoutSection {
        name: name.into(),
        aliases: pairs
            .iter()
            .map(|(f, n)| (f.to_string(), n.iter().map(|s| s.to_string()).collect()))
            .collect(),
    };
    let err = Policy::defaults("t")
        .with_layouts(&[
            layout("A", &[("usrname", &["Login"])]),
            layout("A", &[("username", &["Login", "Mail"]), ("email", &["Mail"])]),
            layout("", &[]),
        ])
        .unwrap_err()
        .join("\n");
    assert!(err.contains("layouts[\"A\"].aliases.usrname: not a field"), "{err}");
    assert!(err.contains("layouts[\"A\"]: two layouts have this name"), "{err}");
    assert!(err.contains("\"Mail\" already means another field"), "{err}");
    assert!(err.contains("every layout needs a name"), "{err}");

    let p = Policy::defaults("t")
        .with_layouts(&[
            layout("new", &[("username", &["User Name"])]),
            layout("old", &[("username", &["Login ID"]), ("firstname", &["Forename"])]),
        ])
        .unwrap(); // ok: test

    // A field a layout names is read only through its own aliases there.
    assert_eq!(p.column_in(Some(1), "Login ID"), Column::Key);
    assert_eq!(p.column_in(Some(1), "username"), Column::Unknown);
    assert_eq!(p.column_in(Some(1), "First Name"), Column::Unknown);
    assert_eq!(p.column_in(Some(0), "First Name"), Column::Attribute(0));
    assert_eq!(p.template().0[..2], ["User Name".to_string(), "firstname".to_string()]);
}
