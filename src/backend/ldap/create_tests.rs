//! What `create_containers` and `create_missing` may make: never outside
//! the managed base, never a group the policy does not manage.

use super::{below, container_entry, group_entry};
use crate::backend::ldap::ops::tests::mapping;
use crate::backend::ldap::ops::Step;
use crate::backend::ldap::{Flavour, GroupKind};

const BASE: &str = "ou=people,dc=example,dc=org";

fn attrs(step: &Step) -> Vec<(String, Vec<String>)> {
    let Step::Add { attrs, .. } = step else {
        panic!("{step:?}")
    };
    attrs
        .iter()
        .map(|(a, v)| {
            (
                a.clone(),
                v.iter().map(|x| String::from_utf8_lossy(x).into_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn only_organisational_units_strictly_below_the_base_are_created() {
    let bases = vec![BASE.to_string()];
    assert!(below(&bases, "ou=Research,OU=People,dc=example,dc=org"));
    assert!(!below(&bases, BASE), "the base itself is not below it");
    assert!(!below(&bases, "ou=Research,dc=example,dc=org"));
    assert!(!below(&bases, "ou=people,dc=example,dc=org,dc=evil"));
    let step = container_entry(&bases, "ou=R\\2cD,ou=people,dc=example,dc=org").unwrap(); // ok: test
    assert_eq!(
        attrs(&step),
        [
            (
                "objectClass".to_string(),
                vec!["top".to_string(), "organizationalUnit".to_string()]
            ),
            ("ou".to_string(), vec!["R,D".to_string()]),
        ]
    );
    let outside = container_entry(&bases, "ou=Research,dc=example,dc=org").unwrap_err(); // ok: test
    assert!(outside.contains("not below the managed base"), "{outside}");
    let not_ou = container_entry(&bases, "cn=Research,ou=people,dc=example,dc=org").unwrap_err(); // ok: test
    assert!(not_ou.contains("only ou= containers"), "{not_ou}");
}

#[test]
fn only_managed_groups_are_created_with_their_first_members() {
    let mut map = mapping(Flavour::Openldap);
    let dn = "cn=staff,ou=groups,dc=example,dc=org";
    let member = "uid=a,ou=Finance,ou=people,dc=example,dc=org".to_string();
    let step = group_entry(&map, dn, std::slice::from_ref(&member)).unwrap(); // ok: test
    let a = attrs(&step);
    assert!(
        a.contains(&("objectClass".into(), vec!["top".into(), "groupOfNames".into()])),
        "{a:?}"
    );
    assert!(a.contains(&("member".into(), vec![member.clone()])), "{a:?}");
    assert!(a.contains(&("cn".into(), vec!["staff".into()])), "{a:?}");
    let other = group_entry(
        &map,
        "cn=admins,ou=groups,dc=example,dc=org",
        std::slice::from_ref(&member),
    )
    .unwrap_err(); // ok: test
    assert!(other.contains("not a managed group"), "{other}");
    map.group_kind = GroupKind::PosixGroup;
    assert!(group_entry(&map, dn, std::slice::from_ref(&member))
        .unwrap_err() // ok: test
        .contains("gidNumber"));
    map.group_kind = GroupKind::AdGroup;
    let a = attrs(&group_entry(&map, dn, &[member]).unwrap()); // ok: test
    assert!(a.contains(&("sAMAccountName".into(), vec!["staff".into()])), "{a:?}");
}
