//! The exact operations each change produces, for OpenLDAP and AD.
//! Unit tests only: `ops.rs` includes this file under #[cfg(test)].

use super::*;
use crate::core::plan::AttrChange;
use crate::core::{Account, AccountState, Origin, Person, UserKey, Value};

/// Active Directory's and 389 DS's own ways (the cases above are OpenLDAP's).
mod flavours;
/// Leavers, joiners and deletes.
mod leavers;

// Policy attributes, in the core's order.
const ATTRS: [&str; 8] = [
    "firstname",
    "surname",
    "email",
    "title",
    "department",
    "site",
    "user_type",
    "phone",
];

/// The test mapping (uid under ou={department}, groupOfNames staff), also
/// for the other builders' tests.
pub(in crate::backend::ldap) fn mapping(flavour: Flavour) -> Mapping {
    let (dn, key, classes) = match flavour {
        Flavour::Openldap | Flavour::Ds389 => (
            "uid={username},ou={department},ou=people,dc=example,dc=org",
            "uid",
            vec!["inetOrgPerson".to_string()],
        ),
        Flavour::Ad => (
            "cn={firstname} {surname},ou={department},dc=corp,dc=example",
            "sAMAccountName",
            vec![
                "top".into(),
                "person".into(),
                "organizationalPerson".into(),
                "user".into(),
            ],
        ),
    };
    let mut templates = vec![(
        "cn".to_string(),
        Template::parse("{firstname} {surname}").unwrap(), // ok: test
        vec![0, 1],
    )];
    if flavour == Flavour::Ad {
        templates.push((
            "userPrincipalName".to_string(),
            Template::parse("{username}@corp.example").unwrap(), // ok: test
            vec![],
        ));
    }
    Mapping {
        flavour,
        object_classes: classes,
        dn: DnTemplate::parse(dn).unwrap(), // ok: test
        key_attr: key.into(),
        fields: vec![(0, "givenName".into()), (1, "sn".into()), (3, "title".into())],
        never: vec![],
        templates,
        attributes: ATTRS.iter().map(|s| s.to_string()).collect(),
        lock: match flavour {
            Flavour::Openldap => Lock::PwdLockedTime,
            Flavour::Ad => Lock::Uac,
            Flavour::Ds389 => Lock::Attribute("nsAccountLock".into(), "TRUE".into()),
        },
        strip_groups: true,
        leavers_container: Some("ou=leavers,dc=example,dc=org".into()),
        group_kind: GroupKind::GroupOfNames,
        group_dns: vec![("staff".into(), "cn=staff,ou=groups,dc=example,dc=org".into())],
        password: PasswordMethod::Passmod,
        create_containers: false,
        create_groups: false,
        adopt_from: vec![],
        activation: false,
    }
}

fn person(key: &str, first: &str, dept: &str, groups: &[&str]) -> Person {
    let mut attrs: Vec<Option<Value>> = vec![None; ATTRS.len()];
    attrs[0] = Some(first.into());
    attrs[1] = Some("Smith".into());
    attrs[3] = Some("Clerk".into());
    attrs[4] = Some(dept.into());
    Person {
        origin: Origin { row: 1, line: 2 },
        key: UserKey::new(key),
        attrs: attrs.into(),
        groups: Some(groups.iter().map(|g| Value::from(*g)).collect()),
        state: AccountState::Active,
        must_change: None,
        password: None,
        dates: Default::default(),
        invite: false,
    }
}

fn account(key: &str, dn: &str, groups: &[&str], state: AccountState) -> Account {
    let mut attrs: Vec<Option<Value>> = vec![None; ATTRS.len()];
    attrs[0] = Some("Jane".into());
    attrs[1] = Some("Smith".into());
    attrs[3] = Some("Clerk".into());
    Account {
        key: UserKey::new(key),
        attrs: attrs.into(),
        groups: groups.iter().map(|g| Value::from(*g)).collect(),
        state,
        left_at: None,
        locator: Some(dn.into()),
    }
}

fn build(map: &Mapping, op: &Op<'_>, uac: Option<u32>) -> Result<OpSteps, String> {
    Builder {
        map,
        op,
        uac,
        salt: [1, 2, 3, 4, 5, 6, 7, 8],
    }
    .build()
}

fn op<'a>(
    change: &'a Change,
    key: &'a UserKey,
    person: Option<&'a Person>,
    account: Option<&'a Account>,
    password: Option<&'a Secret>,
    must_change: bool,
) -> Op<'a> {
    Op {
        change,
        key,
        person,
        account,
        password,
        must_change,
        now: 1_763_700_000,
    }
}

fn attr<'a>(attrs: &'a [(String, Vec<Vec<u8>>)], name: &str) -> Vec<&'a str> {
    attrs
        .iter()
        .filter(|(a, _)| a.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().map(|x| std::str::from_utf8(x).unwrap())) // ok: test
        .collect()
}

#[test]
fn openldap_add_with_password_must_change_and_group() {
    let map = mapping(Flavour::Openldap);
    let p = person("jsmith", "Jane", "Finance", &["staff"]);
    let pw = Secret::new("s3cret-Pass");
    let change = Change::Add;
    let o = op(&change, &p.key, Some(&p), None, Some(&pw), true);
    let s = build(&map, &o, None).unwrap(); // ok: test
    let dn = "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org";
    let Step::Add { dn: got, attrs } = &s.steps[0] else {
        panic!("{:?}", s.steps)
    };
    assert_eq!(got, dn);
    assert_eq!(attr(attrs, "objectClass"), ["inetOrgPerson"]);
    assert_eq!(attr(attrs, "uid"), ["jsmith"]);
    assert_eq!(attr(attrs, "cn"), ["Jane Smith"]);
    assert_eq!(attr(attrs, "givenName"), ["Jane"]);
    assert!(attr(attrs, "userPassword").is_empty(), "passmod: the server hashes");
    assert!(attr(attrs, "pwdReset").is_empty());
    assert_eq!(
        s.steps[1],
        Step::SetPassword {
            dn: dn.into(),
            password: pw.clone()
        }
    );
    assert_eq!(
        s.steps[2],
        Step::Modify {
            dn: dn.into(),
            mods: vec![m(ModKind::Replace, "pwdReset", &["TRUE"])]
        }
    );
    assert_eq!(s.steps.len(), 3);
    assert_eq!(
        s.group_add,
        [Membership {
            group_dn: "cn=staff,ou=groups,dc=example,dc=org".into(),
            attr: "member",
            value: dn.into()
        }]
    );
    // Debug output never shows the password.
    assert!(!format!("{s:?}").contains("s3cret"));
}

#[test]
fn hashed_password_goes_in_the_add_and_never_prints() {
    let mut map = mapping(Flavour::Openldap);
    map.password = PasswordMethod::Ssha512;
    let p = person("jsmith", "Jane", "Finance", &[]);
    let pw = Secret::new("s3cret-Pass");
    let change = Change::Add;
    let s = build(&map, &op(&change, &p.key, Some(&p), None, Some(&pw), true), None).unwrap(); // ok: test
    assert_eq!(s.steps.len(), 1);
    let Step::Add { attrs, .. } = &s.steps[0] else { panic!() };
    let hash = attr(attrs, "userPassword");
    assert_eq!(hash.len(), 1);
    assert!(hash[0].starts_with("{SSHA512}"));
    assert_eq!(hash[0], ssha512("s3cret-Pass", &[1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(attr(attrs, "pwdReset"), ["TRUE"]);
    assert!(!format!("{s:?}").contains("SSHA512"), "hash hidden from Debug");
}

fn department_finance_to_sales() -> AttrChange {
    AttrChange {
        attr: 4,
        old: Some("Finance".into()),
        new: Some("Sales".into()),
    }
}

#[test]
fn update_replaces_only_what_differs_and_moves_with_modrdn() {
    let map = mapping(Flavour::Openldap);
    let p = person("jsmith", "Janet", "Sales", &["staff"]);
    let a = account(
        "jsmith",
        "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org",
        &["staff"],
        AccountState::Active,
    );
    let change = Change::Update(Box::new(Diff {
        attrs: vec![
            AttrChange {
                attr: 0,
                old: Some("Jane".into()),
                new: Some("Janet".into()),
            },
            department_finance_to_sales(),
        ],
        groups_add: vec![],
        groups_remove: vec![],
    }));
    let s = build(&map, &op(&change, &p.key, Some(&p), Some(&a), None, false), None).unwrap(); // ok: test
    let new_dn = "uid=jsmith,ou=Sales,ou=people,dc=example,dc=org";
    assert_eq!(
        s.steps,
        vec![
            Step::Rename {
                dn: "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org".into(),
                new_rdn: "uid=jsmith".into(),
                new_superior: Some("ou=Sales,ou=people,dc=example,dc=org".into()),
                new_dn: new_dn.into(),
            },
            Step::Modify {
                dn: new_dn.into(),
                mods: vec![
                    m(ModKind::Replace, "givenName", &["Janet"]),
                    m(ModKind::Replace, "cn", &["Janet Smith"]),
                ],
            },
        ]
    );
    // The staff membership follows the entry: old DN out, new DN in, after the move.
    assert!(s.group_remove.is_empty());
    assert_eq!(s.group_remove_after[0].value, a.locator.as_deref().unwrap()); // ok: test
    assert_eq!(s.group_add[0].value, new_dn);
}

#[test]
fn ad_move_leaves_memberships_to_the_server() {
    // AD's member is a linked attribute: a rename carries it along, and
    // removing the old DN would fail ("Unable to find GUID").
    let map = mapping(Flavour::Ad);
    let p = person("jsmith", "Jane", "Sales", &["staff"]);
    let a = account(
        "jsmith",
        "cn=Jane Smith,ou=Finance,dc=corp,dc=example",
        &["staff"],
        AccountState::Active,
    );
    let change = Change::Update(Box::new(Diff {
        attrs: vec![department_finance_to_sales()],
        groups_add: vec![],
        groups_remove: vec![],
    }));
    let s = build(&map, &op(&change, &p.key, Some(&p), Some(&a), None, false), None).unwrap(); // ok: test
    assert!(matches!(s.steps[0], Step::Rename { .. }), "{s:?}");
    assert!(s.group_remove_after.is_empty() && s.group_add.is_empty(), "{s:?}");
}

#[test]
fn clearing_a_value_replaces_it_with_nothing() {
    let map = mapping(Flavour::Openldap);
    let mut p = person("jsmith", "Jane", "Finance", &[]);
    p.attrs.set(3, None);
    let a = account(
        "jsmith",
        "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org",
        &[],
        AccountState::Active,
    );
    let change = Change::Update(Box::new(Diff {
        attrs: vec![AttrChange {
            attr: 3,
            old: Some("Clerk".into()),
            new: None,
        }],
        ..Default::default()
    }));
    let s = build(&map, &op(&change, &p.key, Some(&p), Some(&a), None, false), None).unwrap(); // ok: test
    assert_eq!(
        s.steps,
        [Step::Modify {
            dn: "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org".into(),
            mods: vec![m(ModKind::Replace, "title", &[])]
        }]
    );
}

#[test]
fn posix_groups_use_the_username() {
    let mut map = mapping(Flavour::Openldap);
    map.group_kind = GroupKind::PosixGroup;
    let p = person("jsmith", "Jane", "Finance", &["staff"]);
    let change = Change::Add;
    let s = build(&map, &op(&change, &p.key, Some(&p), None, None, false), None).unwrap(); // ok: test
    assert_eq!(s.group_add[0].attr, "memberUid");
    assert_eq!(s.group_add[0].value, "jsmith");
}

#[test]
fn an_empty_dn_component_fails_the_row_with_the_field_name() {
    let map = mapping(Flavour::Openldap);
    let mut p = person("jsmith", "Jane", "Finance", &[]);
    p.attrs.set(4, None);
    let change = Change::Add;
    let err = build(&map, &op(&change, &p.key, Some(&p), None, None, false), None).unwrap_err();
    assert!(err.contains("department"), "{err}");
}

#[test]
fn a_never_field_is_left_out_of_a_new_entry() {
    let mut map = mapping(Flavour::Openldap);
    map.never = vec![3];
    let p = person("jsmith", "Jane", "Finance", &[]);
    let change = Change::Add;
    let o = op(&change, &p.key, Some(&p), None, None, false);
    let s = build(&map, &o, None).unwrap(); // ok: test
    let Step::Add { attrs, .. } = &s.steps[0] else {
        panic!("{:?}", s.steps)
    };
    assert!(attr(attrs, "title").is_empty(), "update = \"never\": not written");
    assert_eq!(attr(attrs, "givenName"), ["Jane"]);
}
