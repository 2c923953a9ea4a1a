//! Issue 14: containers and groups that do not exist yet. A new department
//! gets its OU (`[ldap] create_containers`, only below the base) and a new
//! managed group is made with its first members in the same add (`[groups]
//! create_missing`); both are in the preview, and `limits.containers`
//! holds them back. Read back with ldapsearch.

use super::env::{dns, entries, Env, Kind, PEOPLE};
use super::kind;
use super::results::rows;

const GROUPS: &str = "ou=groups,dc=example,dc=org";

matrix!(missing_containers_and_groups_are_created_in_scope);
fn missing_containers_and_groups_are_created_in_scope(kind: Kind) {
    let env = Env::start(kind, "ignore", "");
    env.edit_policy(|p| {
        // After the [ldap] section's DN template, whatever the server's.
        let at = p
            .find("\ndn = ")
            .and_then(|i| p[i + 1..].find('\n').map(|j| i + 1 + j + 1));
        let p = match at {
            Some(i) => format!("{}create_containers = true\n{}", &p[..i], &p[i..]),
            None => p,
        };
        p.replace(
            "managed = [\"staff\", \"vpn\"]",
            "managed = [\"staff\", \"vpn\", \"projects\"]\ncreate_missing = true",
        )
    });
    let rows_in = [
        "nnew,Nia,New,nia@example.org,Engineer,Research,,staff;projects,",
        "ooak,Olive,Oak,olive@example.org,Clerk,Research,,projects,",
    ];
    let research = format!("ou=Research,{PEOPLE}");
    let projects = format!("cn=projects,{GROUPS}");
    // DNs in messages are spelt as the mapping spells them (AD: upper case).
    let has = |text: &str, what: &str| text.to_lowercase().contains(&what.to_lowercase());

    // The preview says what will be created and creates nothing.
    let f = env.csv(&rows_in);
    let check = env.dirsync("check", &f, &[]);
    assert_eq!(check.code, 0, "{}", check.results);
    let preview = rows(&check.results);
    let says = format!("creates the container {research} (ldap.create_containers)");
    assert!(has(&preview[0].2, &says), "{}", check.results);
    assert!(has(&preview[1].2, &says), "{}", check.results);
    let says = format!("creates the group {projects} (groups.create_missing)");
    assert!(has(&preview[0].2, &says), "{}", check.results);
    // An entry that does not exist: an error, or (389 DS) no entries.
    let absent = |dn: &str| {
        env.ldapsearch(dn, "(objectClass=*)", &["1.1"])
            .map(|o| entries(&o))
            .unwrap_or(0)
            == 0
    };
    assert!(absent(&research), "a preview writes nothing");

    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert!(
        rows(&run.results).iter().all(|r| r.0 == "new" && r.1 == "done"),
        "{}",
        run.results
    );
    let ou = env
        .ldapsearch(&research, "(objectClass=organizationalUnit)", &["ou"])
        .unwrap_or_else(|e| panic!("{research}: {e}"));
    assert_eq!(entries(&ou), 1, "{ou}");
    assert_eq!(dns(&env.user("nnew", &["1.1"])), [env.user_dn("nnew", "Research")]);
    let mut members = env.members("projects");
    members.sort();
    assert_eq!(
        members,
        [env.user_dn("nnew", "Research"), env.user_dn("ooak", "Research")]
    );
    assert!(env.members("staff").contains(&env.user_dn("nnew", "Research")));

    // Over limits.containers: the rows needing a new container are skipped
    // and nothing is created; the others go on.
    env.edit_policy(|p| p.replace("[limits]\n", "[limits]\ncontainers = { max = 0 }\n"));
    let f = env.csv(&[
        rows_in[0],
        rows_in[1],
        "llaw,Lee,Law,lee@example.org,Counsel,Legal,,staff,",
        "ffin,Fay,Fin,fay@example.org,Clerk,Finance,,staff,",
    ]);
    let run = env.dirsync("apply", &f, &[]);
    let r = rows(&run.results);
    assert_eq!(
        (r[2].0.as_str(), r[2].1.as_str()),
        ("new", "skipped"),
        "{}",
        run.results
    );
    assert!(r[2].2.contains("over limits.containers (max = 0)"), "{}", run.results);
    assert_eq!((r[3].0.as_str(), r[3].1.as_str()), ("new", "done"), "{}", run.results);
    assert!(absent(&format!("ou=Legal,{PEOPLE}")));
}
