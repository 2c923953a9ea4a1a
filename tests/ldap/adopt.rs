//! Issue 14: `sync.adopt` on LDAP. A first deployment meets entries an
//! admin made by hand (no username yet): a row whose email matches exactly
//! one of them adopts it — the entry gets the username, moves to the
//! template's DN and keeps its memberships — instead of a duplicate; two
//! matches reject the row naming both. Read back with ldapsearch.

use super::env::{dns, values, Env, Kind, PEOPLE};
use super::kind;
use super::results::rows;

/// An inetOrgPerson without the key attribute (uid), in Finance.
fn hand_made(env: &Env, cn: &str, mail: &str) -> String {
    let dn = format!("cn={cn},ou=Finance,{PEOPLE}");
    let sn = cn.rsplit(' ').next().unwrap_or(cn);
    env.ldapadd(&format!(
        "dn: {dn}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n\
         objectClass: inetOrgPerson\ncn: {cn}\nsn: {sn}\nmail: {mail}\n"
    ));
    dn
}

matrix!(hand_made_entries_are_adopted_not_duplicated: openldap, ds389);
fn hand_made_entries_are_adopted_not_duplicated(kind: Kind) {
    let env = Env::start(kind, "ignore", "");
    env.edit_policy(|p| p.replace("[sync]\n", "[sync]\nadopt = \"email\"\n"));
    let john = hand_made(&env, "John Smith", "john@example.org");
    env.ldapmodify(&format!(
        "dn: cn=staff,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: {john}\n"
    ));
    let a = hand_made(&env, "Dee Dup", "dup@example.org");
    let b = hand_made(&env, "Dora Dup", "DUP@example.org");
    let file = [
        "jsmith,John,Smith,john@example.org,Clerk,Finance,,staff,",
        "ddup,Dee,Dup,dup@example.org,Clerk,Finance,,staff,",
        "nnew,Nia,New,nia@example.org,Clerk,Sales,,staff,",
    ];
    let f = env.csv(&file);
    let check = env.dirsync("check", &f, &[]);
    let preview = rows(&check.results);
    assert_eq!(preview[0].0, "adopt", "{}", check.results);
    assert!(
        preview[0].2.contains("adopts the existing account"),
        "{}",
        check.results
    );
    assert!(
        dns(&env.user("jsmith", &["1.1"])).is_empty(),
        "a preview writes nothing"
    );

    let run = env.dirsync("apply", &f, &[]);
    let r = rows(&run.results);
    assert_eq!((r[0].0.as_str(), r[0].1.as_str()), ("adopt", "done"), "{}", run.results);
    assert_eq!(r[1].0, "error", "{}", run.results);
    let (da, db) = (a.to_lowercase(), b.to_lowercase());
    assert!(
        r[1].2.to_lowercase().contains(&da) && r[1].2.to_lowercase().contains(&db),
        "{}",
        run.results
    );
    assert_eq!((r[2].0.as_str(), r[2].1.as_str()), ("new", "done"), "{}", run.results);
    // One entry for John, now with his username at the template's DN,
    // keeping what the admin gave it and its membership.
    let jsmith = env.user("jsmith", &["mail", "cn", "title"]);
    assert_eq!(dns(&jsmith), [env.user_dn("jsmith", "Finance")]);
    assert_eq!(values(&jsmith, "title"), ["Clerk"]);
    assert_eq!(values(&jsmith, "cn"), ["John Smith"]);
    let johns = env.search("(mail=john@example.org)", &["1.1"]);
    assert_eq!(dns(&johns).len(), 1, "{johns}");
    assert!(env.members("staff").contains(&env.user_dn("jsmith", "Finance")));

    // Adopted accounts are managed like any other: the same file again is no change.
    let again = env.dirsync("apply", &f, &[]);
    let r = rows(&again.results);
    assert_eq!(
        (r[0].0.as_str(), r[2].0.as_str()),
        ("unchanged", "unchanged"),
        "{}",
        again.results
    );
}

matrix!(a_first_deployment_adopts_every_hand_made_entry_and_creates_none: openldap, ds389);
/// 500 people made by hand before dirsync, then the first HR file: every
/// one is adopted, none added, and nothing is left without a username.
fn a_first_deployment_adopts_every_hand_made_entry_and_creates_none(kind: Kind) {
    const N: usize = 500;
    let env = Env::start(kind, "ignore", "");
    env.edit_policy(|p| p.replace("[sync]\n", "[sync]\nadopt = \"email\"\n"));
    let mut ldif = String::new();
    let mut lines = Vec::new();
    for i in 0..N {
        ldif.push_str(&format!(
            "dn: cn=Person {i:04},ou=Finance,{PEOPLE}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: inetOrgPerson\ncn: Person {i:04}\nsn: {i:04}\n\
             mail: p{i:04}@example.org\n\n"
        ));
        lines.push(format!(
            "user{i:04},Pat,{i:04},P{i:04}@Example.org,Clerk,Finance,,staff,"
        ));
    }
    env.ldapadd(&ldif);
    assert_eq!(env.people(), N);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let run = env.dirsync("apply", &env.csv(&lines), &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    let r = rows(&run.results);
    assert!(r.iter().all(|x| x.0 == "adopt" && x.1 == "done"), "{}", run.results);
    assert_eq!(env.people(), N, "none added");
    let unkeyed = env.search("(&(objectClass=inetOrgPerson)(!(uid=*)))", &["1.1"]);
    assert!(dns(&unkeyed).is_empty(), "{unkeyed}");
    assert_eq!(
        dns(&env.user("user0499", &["1.1"])),
        [env.user_dn("user0499", "Finance")]
    );
}

matrix!(an_account_outside_the_base_is_adopted_from_adopt_from: samba_ad, openldap);
/// Every AD account has a username: the ones to adopt live outside the
/// managed base (`CN=Users`), named in `[ldap] adopt_from`; adopting one
/// moves it into the base under the row's username.
fn an_account_outside_the_base_is_adopted_from_adopt_from(kind: Kind) {
    let env = Env::start(kind, "ignore", "");
    let (users, dn) = if env.ad() {
        ("CN=Users,DC=example,DC=org", "CN=John Smith,CN=Users,DC=example,DC=org")
    } else {
        env.ldapadd("dn: ou=legacy,dc=example,dc=org\nobjectClass: organizationalUnit\nou: legacy\n");
        ("ou=legacy,dc=example,dc=org", "uid=john,ou=legacy,dc=example,dc=org")
    };
    env.edit_policy(|p| {
        let p = p.replace("[sync]\n", "[sync]\nadopt = \"email\"\n");
        // Inside [ldap], after its DN template.
        let at = p
            .find("\ndn = ")
            .and_then(|i| p[i + 1..].find('\n').map(|j| i + 1 + j + 1));
        match at {
            Some(i) => format!("{}adopt_from = [\"{users}\"]\n{}", &p[..i], &p[i..]),
            None => p,
        }
    });
    let ldif = if env.ad() {
        format!(
            "dn: {dn}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n\
             sAMAccountName: jsmith.old\nsn: Smith\nmail: john@example.org\n"
        )
    } else {
        format!(
            "dn: {dn}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n\
             objectClass: inetOrgPerson\nuid: john\ncn: John Smith\nsn: Smith\nmail: john@example.org\n"
        )
    };
    env.ldapadd(&ldif);
    let f = env.csv(&["jsmith,John,Smith,john@example.org,Clerk,Finance,,staff,"]);
    let run = env.dirsync("apply", &f, &[]);
    let r = rows(&run.results);
    assert_eq!((r[0].0.as_str(), r[0].1.as_str()), ("adopt", "done"), "{}", run.results);
    let john = env.user("jsmith", &["mail", "title"]);
    assert_eq!(dns(&john), [env.user_dn("jsmith", "Finance")]);
    assert_eq!(values(&john, "title"), ["Clerk"]);
    let all = env.search("(mail=john@example.org)", &["1.1"]);
    assert_eq!(dns(&all).len(), 1, "moved, not copied: {all}");
    if env.ad() {
        let upn = values(&env.user("jsmith", &["userPrincipalName"]), "userPrincipalName");
        assert_eq!(upn, ["jsmith@example.org"], "templates follow the new username");
    }
    assert!(env.members("staff").contains(&env.user_dn("jsmith", "Finance")));
}
