//! What leaving, rejoining and deleting become: groups stripped, the
//! account locked and moved (or flagged by an attribute), restored on return.

use super::*;

#[test]
fn openldap_leaver_strips_groups_locks_then_moves() {
    let map = mapping(Flavour::Openldap);
    let dn = "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org";
    let a = account("jsmith", dn, &["staff"], AccountState::Active);
    let change = Change::Leave;
    let s = build(&map, &op(&change, &a.key, None, Some(&a), None, false), None).unwrap(); // ok: test
    assert_eq!(s.group_remove[0].value, dn);
    assert_eq!(
        s.steps,
        vec![
            Step::Modify {
                dn: dn.into(),
                mods: vec![m(ModKind::Replace, "pwdAccountLockedTime", &["20251121044000Z"])]
            },
            Step::Rename {
                dn: dn.into(),
                new_rdn: "uid=jsmith".into(),
                new_superior: Some("ou=leavers,dc=example,dc=org".into()),
                new_dn: "uid=jsmith,ou=leavers,dc=example,dc=org".into(),
            }
        ]
    );
    assert_eq!(parse_generalized_time("20251121044000Z"), Some(1_763_700_000));
}

#[test]
fn leaver_by_attribute_and_rejoin_restores_it() {
    let mut map = mapping(Flavour::Openldap);
    map.lock = Lock::Attribute("employeeType".into(), "leaver".into());
    map.fields.push((6, "employeeType".into()));
    let dn = "uid=jsmith,ou=leavers,dc=example,dc=org";
    let a = account("jsmith", dn, &[], AccountState::Leaver);
    let leave = Change::Leave;
    let s = build(&map, &op(&leave, &a.key, None, Some(&a), None, false), None).unwrap(); // ok: test
    assert_eq!(
        s.steps[0],
        Step::Modify {
            dn: dn.into(),
            mods: vec![m(ModKind::Replace, "employeeType", &["leaver"])]
        }
    );
    assert_eq!(s.steps.len(), 1, "already in the leavers container: no move");

    let mut p = person("jsmith", "Jane", "Finance", &["staff"]);
    p.attrs.set(6, Some("Standard"));
    let rejoin = Change::Rejoin(Box::new(Diff {
        groups_add: vec!["staff".into()],
        ..Default::default()
    }));
    let s = build(&map, &op(&rejoin, &p.key, Some(&p), Some(&a), None, true), None).unwrap(); // ok: test
    let back = "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org";
    assert_eq!(
        s.steps,
        vec![
            Step::Rename {
                dn: dn.into(),
                new_rdn: "uid=jsmith".into(),
                new_superior: Some("ou=Finance,ou=people,dc=example,dc=org".into()),
                new_dn: back.into(),
            },
            Step::Modify {
                dn: back.into(),
                mods: vec![
                    m(ModKind::Replace, "employeeType", &["Standard"]),
                    m(ModKind::Replace, "pwdReset", &["TRUE"]),
                ]
            }
        ]
    );
    assert_eq!(s.group_add[0].value, back);
}

#[test]
fn delete_leaves_groups_then_deletes() {
    let map = mapping(Flavour::Openldap);
    let dn = "uid=jsmith,ou=leavers,dc=example,dc=org";
    let a = account("jsmith", dn, &["staff"], AccountState::Leaver);
    let change = Change::Delete;
    let s = build(&map, &op(&change, &a.key, None, Some(&a), None, false), None).unwrap(); // ok: test
    assert_eq!(s.group_remove[0].value, dn);
    assert_eq!(s.steps, [Step::Delete { dn: dn.into() }]);
}
