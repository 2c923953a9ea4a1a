//! What an operation becomes on Active Directory and 389 DS: AD's
//! disabled-then-password-then-enabled add, its `sAMAccountName` and disable
//! bit; 389 DS's lock and password expiration.

use super::*;

#[test]
fn ad_add_creates_disabled_then_sets_password_then_enables() {
    let map = mapping(Flavour::Ad);
    let p = person("jsmith", "Jane", "Finance", &[]);
    let pw = Secret::new("Pässword1");
    let change = Change::Add;
    let s = build(&map, &op(&change, &p.key, Some(&p), None, Some(&pw), true), None).unwrap(); // ok: test
    let dn = "cn=Jane Smith,ou=Finance,dc=corp,dc=example";
    let Step::Add { dn: got, attrs } = &s.steps[0] else {
        panic!()
    };
    assert_eq!(got, dn);
    assert_eq!(
        attr(attrs, "objectClass"),
        ["top", "person", "organizationalPerson", "user"]
    );
    assert_eq!(attr(attrs, "sAMAccountName"), ["jsmith"]);
    assert_eq!(attr(attrs, "userPrincipalName"), ["jsmith@corp.example"]);
    assert_eq!(attr(attrs, "userAccountControl"), ["514"], "created disabled");
    // The password is in the add: a password the policy refuses writes nothing.
    let mut quoted = Vec::new();
    for u in "\"Pässword1\"".encode_utf16() {
        quoted.extend_from_slice(&u.to_le_bytes());
    }
    let pwd: Vec<&Vec<u8>> = attrs
        .iter()
        .filter(|(a, _)| a == "unicodePwd")
        .flat_map(|(_, v)| v.iter())
        .collect();
    assert_eq!(pwd, [&quoted]);
    // Then must-change and enable, in one modify.
    assert_eq!(
        s.steps[1],
        Step::Modify {
            dn: dn.into(),
            mods: vec![
                m(ModKind::Replace, "pwdLastSet", &["0"]),
                m(ModKind::Replace, "userAccountControl", &["512"]),
            ]
        }
    );
    assert_eq!(s.steps.len(), 2);
    assert_eq!(unicode_pwd("ab"), [0x22, 0, b'a', 0, b'b', 0, 0x22, 0]);
}

#[test]
fn ad_add_without_password_is_refused_before_writing() {
    // Windows cannot enable an account without a password; one created
    // disabled would read as a leaver on the next run.
    let map = mapping(Flavour::Ad);
    let p = person("jsmith", "Jane", "Finance", &[]);
    let change = Change::Add;
    let err = build(&map, &op(&change, &p.key, Some(&p), None, None, false), None).unwrap_err();
    assert!(err.contains("without a password"), "{err}");
    assert!(err.contains("generate = \"new\""), "says what to do: {err}");
}

#[test]
fn ds389_lock_is_ns_account_lock_and_must_change_is_the_expiration_time() {
    let map = mapping(Flavour::Ds389);
    let p = person("jsmith", "Jane", "Finance", &[]);
    let pw = Secret::new("s3cret-Pass");
    let change = Change::Add;
    let s = build(&map, &op(&change, &p.key, Some(&p), None, Some(&pw), true), None).unwrap(); // ok: test
    let dn = "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org";
    assert!(matches!(&s.steps[1], Step::SetPassword { dn: d, .. } if d == dn));
    // After the Password Modify, which sets its own expiration time.
    assert_eq!(
        s.steps[2],
        Step::Modify {
            dn: dn.into(),
            mods: vec![m(ModKind::Replace, "passwordExpirationTime", &["19700101000000Z"])]
        }
    );

    let a = account("jsmith", dn, &[], AccountState::Active);
    let leave = Change::Leave;
    let s = build(&map, &op(&leave, &a.key, None, Some(&a), None, false), None).unwrap(); // ok: test
    assert_eq!(
        s.steps[0],
        Step::Modify {
            dn: dn.into(),
            mods: vec![m(ModKind::Replace, "nsAccountLock", &["TRUE"])]
        }
    );
    let left = account(
        "jsmith",
        "uid=jsmith,ou=leavers,dc=example,dc=org",
        &[],
        AccountState::Leaver,
    );
    let rejoin = Change::Rejoin(Box::default());
    let s = build(&map, &op(&rejoin, &p.key, Some(&p), Some(&left), None, false), None).unwrap(); // ok: test
    assert_eq!(
        s.steps[1],
        Step::Modify {
            dn: dn.into(),
            mods: vec![m(ModKind::Replace, "nsAccountLock", &[])]
        }
    );
}

#[test]
fn ad_sam_account_name_is_checked_before_writing() {
    let map = mapping(Flavour::Ad);
    let p = person("a-very-long-username-indeed", "Jane", "Finance", &[]);
    let change = Change::Add;
    let err = build(&map, &op(&change, &p.key, Some(&p), None, None, false), None).unwrap_err();
    assert!(err.contains("at most 20"), "{err}");
    let p = person("bad[name]", "Jane", "Finance", &[]);
    let err = build(&map, &op(&change, &p.key, Some(&p), None, None, false), None).unwrap_err();
    assert!(err.contains("'['"), "{err}");
    assert!(check_sam_account_name("exactly-twenty-chars").is_ok());
}

#[test]
fn ad_leave_and_rejoin_flip_only_the_disable_bit() {
    let map = mapping(Flavour::Ad);
    let dn = "cn=Jane Smith,ou=Finance,dc=corp,dc=example";
    let a = account("jsmith", dn, &[], AccountState::Active);
    // 0x10200: NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD — the other bit is kept.
    let leave = Change::Leave;
    let s = build(&map, &op(&leave, &a.key, None, Some(&a), None, false), Some(0x10200)).unwrap(); // ok: test
    assert_eq!(
        s.steps[0],
        Step::Modify {
            dn: dn.into(),
            mods: vec![m(ModKind::Replace, "userAccountControl", &["66050"])]
        }
    );
    let p = person("jsmith", "Jane", "Finance", &[]);
    let left = account(
        "jsmith",
        "cn=Jane Smith,ou=leavers,dc=example,dc=org",
        &[],
        AccountState::Leaver,
    );
    let rejoin = Change::Rejoin(Box::default());
    let s = build(
        &map,
        &op(&rejoin, &p.key, Some(&p), Some(&left), None, true),
        Some(0x10202),
    )
    .unwrap(); // ok: test
    assert_eq!(
        s.steps[1],
        Step::Modify {
            dn: dn.into(),
            mods: vec![
                m(ModKind::Replace, "userAccountControl", &["66048"]),
                m(ModKind::Replace, "pwdLastSet", &["0"]),
            ]
        }
    );
}
