//! Issue 14 (HR lifecycle) on the LDAP matrix: generated usernames and
//! email addresses land in the directory (read back with ldapsearch); a
//! create-only address edited in the directory survives.

use super::env::{dns, values, Env, Kind};
use super::kind;
use super::results::rows;

const GENERATE: &str = r#"
[fields.username]
generate = "{firstname:1}{surname}"
max_len = 20
[fields.email]
generate = "{firstname}.{surname}@example.org"
update = "create-only"
"#;

matrix!(generated_usernames_and_emails_land_in_the_directory);
fn generated_usernames_and_emails_land_in_the_directory(kind: Kind) {
    let env = Env::start(kind, "ignore", GENERATE);
    let jane = "jsmith,Jane,Smith,john.smith@example.org,Clerk,Finance,,staff,";
    assert_eq!(env.apply(&[jane]).code, 0);
    let rows_in = [
        jane,
        ",John,Smith,,Clerk,Finance,,staff,",
        ",Zoë,Núñez,,Engineer,Sales,,staff,",
    ];
    let f = env.csv(&rows_in);
    let check = env.dirsync("check", &f, &[]);
    assert_eq!(check.code, 0, "{}", check.results);
    let preview = rows(&check.results);
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    let applied = rows(&run.results);
    assert_eq!(applied[0].0, "unchanged", "{}", run.results);
    for (i, note) in [
        (1, "generated: username jsmith2, email john.smith2@example.org"),
        (2, "generated: username znunez, email zoe.nunez@example.org"),
    ] {
        assert_eq!(applied[i].0, "new", "{}", run.results);
        assert!(applied[i].2.contains(note), "{}", run.results);
        assert!(preview[i].2.contains(note), "the preview shows it: {}", check.results);
    }
    let john = env.user("jsmith2", &["mail", "sn"]);
    assert_eq!(dns(&john), [env.user_dn("jsmith2", "Finance")]);
    assert_eq!(values(&john, "mail"), ["john.smith2@example.org"]);
    let zoe = env.user("znunez", &["mail", "givenName"]);
    assert_eq!(dns(&zoe), [env.user_dn("znunez", "Sales")]);
    assert_eq!(values(&zoe, "mail"), ["zoe.nunez@example.org"]);
    assert_eq!(values(&zoe, "givenName"), ["Zoë"], "the name itself is stored as given");
    if env.ad() {
        // Templates of the mapping see the generated key.
        let upn = values(&env.user("jsmith2", &["userPrincipalName"]), "userPrincipalName");
        assert_eq!(upn, ["jsmith2@example.org"]);
    }
    assert!(env.members("staff").contains(&env.user_dn("znunez", "Sales")));

    // The results carried back (usernames filled in): nothing to do.
    let before = env.writes();
    let back = env.apply(&[
        jane,
        "jsmith2,John,Smith,,Clerk,Finance,,staff,",
        "znunez,Zoë,Núñez,,Engineer,Sales,,staff,",
    ]);
    assert_eq!(back.code, 0, "{}", back.results);
    assert!(
        rows(&back.results).iter().all(|r| r.0 == "unchanged"),
        "{}",
        back.results
    );
    assert_eq!(env.writes(), before);

    // The address is the user's once created (update = "create-only"): an
    // admin's change in the directory survives the next file.
    let dn = env.user_dn("znunez", "Sales");
    env.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: mail\nmail: zoe@mail.example.org\n"
    ));
    let before = env.writes();
    let again = env.apply(&[jane, "znunez,Zoë,Núñez,zoe.nunez@example.org,Engineer,Sales,,staff,"]);
    assert_eq!(again.code, 0, "{}", again.results);
    assert_eq!(again.row("znunez").0, "unchanged", "{}", again.results);
    assert_eq!(env.writes(), before);
    assert_eq!(values(&env.user("znunez", &["mail"]), "mail"), ["zoe@mail.example.org"]);
}
