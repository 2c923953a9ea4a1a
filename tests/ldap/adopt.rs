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
