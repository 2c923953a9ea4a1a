//! The LDAP target against a real OpenLDAP slapd (started per test by
//! tests/support/servers.rs), driving the built `dirsync` binary and
//! checking the directory with ldap-utils, an independent client.

#[path = "support/servers.rs"]
mod servers;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use servers::Slapd;

const PEOPLE: &str = "ou=people,dc=example,dc=org";
const LEAVERS: &str = "ou=leavers,dc=example,dc=org";
const HEADER: &str = "username,firstname,surname,email,title,department,phone,groups,status";

/// The policy most tests use; `{absent}` and `{extra}` are filled in.
const POLICY: &str = r#"
target = "dir"
[sync]
absent = "{absent}"
[passwords]
generate = "never"
[fields.phone]
clear_when_empty = true
[groups]
managed = ["staff", "vpn"]
[limits]
leavers = { max_percent = 100.0 }
deletes = { max = 100 }
[ldap]
object_classes = ["top", "person", "organizationalPerson", "inetOrgPerson"]
dn = "uid={username},ou={department},ou=people,dc=example,dc=org"
[ldap.fields]
firstname = "givenName"
surname = "sn"
email = "mail"
title = "title"
phone = "telephoneNumber"
[ldap.templates]
cn = "{firstname} {surname}"
[ldap.groups]
type = "groupOfNames"
dn = "cn={group},ou=groups,dc=example,dc=org"
{extra}
"#;

/// OUs, managed groups (with a placeholder member: a groupOfNames needs
/// one) and an unmanaged group.
const SEED: &str = "dn: ou=Finance,ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: Finance

dn: ou=Sales,ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: Sales

dn: cn=staff,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: staff
member: cn=placeholder

dn: cn=vpn,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: vpn
member: cn=placeholder

dn: cn=wiki,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: wiki
member: cn=placeholder
";

struct Env {
    slapd: Slapd,
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    results: String,
}

impl Run {
    /// The results row of a username: (change, result, message).
    fn row(&self, user: &str) -> (String, String, String) {
        let mut r = csv::ReaderBuilder::new().from_reader(self.results.as_bytes());
        let headers = r.headers().cloned().unwrap_or_default();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (u, c, res, m) = (col("username"), col("change"), col("result"), col("message"));
        for rec in r.records().flatten() {
            let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
            if get(u) == user {
                return (get(c), get(res), get(m));
            }
        }
        panic!("no results row for {user:?}:\n{}", self.results)
    }
}

impl Env {
    fn start(absent: &str, extra: &str) -> Env {
        let slapd = match Slapd::start() {
            Ok(s) => s,
            Err(e) => panic!("cannot start slapd for the LDAP tests: {e}"),
        };
        slapd.ldapadd_ldif(SEED).expect("seed the tree");
        let dir = tempfile::tempdir().expect("temp dir");
        let env = Env { slapd, dir };
        std::fs::write(
            env.dir.path().join("bind.secret"),
            format!("{}\n", Slapd::SERVICE_PASSWORD),
        )
        .unwrap();
        env.write_config("");
        env.write_policy(absent, extra);
        env
    }

    fn write_config(&self, target_extra: &str) {
        let cfg = format!(
            r#"[targets.dir]
kind = "ldap"
url = "{url}"
bind_dn = "{svc}"
bind_password_file = "bind.secret"
base = "{PEOPLE}"
leavers = "{LEAVERS}"
retries = 8
{target_extra}
[policies]
p = "policy.toml"
"#,
            url = self.slapd.url(),
            svc = Slapd::SERVICE_DN,
        );
        std::fs::write(self.dir.path().join("dirsync.toml"), cfg).unwrap();
    }

    fn write_policy(&self, absent: &str, extra: &str) {
        let p = POLICY.replace("{absent}", absent).replace("{extra}", extra);
        std::fs::write(self.dir.path().join("policy.toml"), p).unwrap();
    }

    fn csv(&self, rows: &[&str]) -> PathBuf {
        self.csv_with(HEADER, rows)
    }

    fn csv_with(&self, header: &str, rows: &[&str]) -> PathBuf {
        let path = self.dir.path().join("roster.csv");
        let mut text = format!("{header}\n");
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn dirsync(&self, verb: &str, file: &PathBuf, extra: &[&str]) -> Run {
        let results = self.dir.path().join("results.csv");
        let _ = std::fs::remove_file(&results);
        let out = Command::new(env!("CARGO_BIN_EXE_dirsync"))
            .arg("--config")
            .arg(self.dir.path().join("dirsync.toml"))
            .arg(verb)
            .arg(file)
            .arg("--results")
            .arg(&results)
            .args(extra)
            .output()
            .expect("run dirsync");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            results: std::fs::read_to_string(&results).unwrap_or_default(),
        };
        eprintln!(
            "dirsync {verb}: exit {}\n{}{}",
            run.code,
            run.stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        run
    }

    fn apply(&self, rows: &[&str]) -> Run {
        let f = self.csv(rows);
        self.dirsync("apply", &f, &[])
    }

    fn search(&self, filter: &str, attrs: &[&str]) -> String {
        self.slapd
            .ldapsearch(Slapd::BASE, filter, attrs)
            .unwrap_or_else(|e| panic!("ldapsearch {filter}: {e}"))
    }

    fn writes(&self) -> u64 {
        self.slapd.op_counts().expect("monitor counters").writes()
    }
}

/// The attribute values of the (only) entry in an LDIF answer.
fn values(ldif: &str, attr: &str) -> Vec<String> {
    let prefix = format!("{attr}: ");
    ldif.lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn dns(ldif: &str) -> Vec<String> {
    values(ldif, "dn")
}

/// Entries in an LDIF answer (a DN may be base64: `dn:: `).
fn entries(ldif: &str) -> usize {
    ldif.lines().filter(|l| l.starts_with("dn:")).count()
}

const JANE: &str = "jsmith,Jane,Smith,jane@example.org,Clerk,Finance,+44 20 7946 0101,staff;vpn,";
const BOB: &str = "bjones,Bob,Jones,bob@example.org,Engineer,Sales,+44 20 7946 0102,staff,";
const ANN: &str = "alee,Ann,Lee,ann@example.org,Director,Finance,,,";

#[test]
fn add_update_and_unchanged_rerun_with_zero_writes() {
    let env = Env::start("ignore", "");
    // Dry run first: it previews, it writes nothing, and it finds no problem.
    let before = env.writes();
    let f = env.csv(&[JANE, BOB, ANN]);
    let check = env.dirsync("check", &f, &[]);
    assert_eq!(check.code, 0, "{}", check.results);
    assert_eq!(check.row("jsmith").1, "preview");
    assert_eq!(env.writes(), before, "a dry run must not write");

    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("jsmith").0, "new");
    let jane = env.search(
        "(uid=jsmith)",
        &["cn", "givenName", "sn", "mail", "title", "telephoneNumber"],
    );
    assert_eq!(dns(&jane), ["uid=jsmith,ou=Finance,ou=people,dc=example,dc=org"]);
    assert_eq!(values(&jane, "cn"), ["Jane Smith"]);
    assert_eq!(values(&jane, "mail"), ["jane@example.org"]);
    assert_eq!(values(&jane, "telephoneNumber"), ["+44 20 7946 0101"]);
    let staff = env.search("(cn=staff)", &["member"]);
    let members = values(&staff, "member");
    assert!(members.contains(&"uid=jsmith,ou=Finance,ou=people,dc=example,dc=org".to_string()));
    assert!(members.contains(&"uid=bjones,ou=Sales,ou=people,dc=example,dc=org".to_string()));
    assert!(members.contains(&"cn=placeholder".to_string()), "other members stay");
    assert_eq!(values(&env.search("(cn=vpn)", &["member"]), "member").len(), 2);

    // Update: title changes, phone emptied (clear_when_empty), vpn dropped, surname → cn.
    let before = env.writes();
    let run = env.apply(&[
        "jsmith,Jane,Smyth,jane@example.org,Accountant,Finance,,staff,",
        BOB,
        ANN,
    ]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("jsmith").0, "update");
    assert_eq!(run.row("bjones").0, "unchanged");
    let jane = env.search("(uid=jsmith)", &["cn", "sn", "title", "telephoneNumber"]);
    assert_eq!(values(&jane, "title"), ["Accountant"]);
    assert_eq!(values(&jane, "sn"), ["Smyth"]);
    assert_eq!(values(&jane, "cn"), ["Jane Smyth"]);
    assert!(values(&jane, "telephoneNumber").is_empty(), "{jane}");
    assert_eq!(
        values(&env.search("(cn=vpn)", &["member"]), "member"),
        ["cn=placeholder"]
    );
    // One modify of the entry and one of the vpn group.
    assert_eq!(env.writes() - before, 2);

    // The same file again: nothing to do, and nothing written.
    let before = env.writes();
    let run = env.apply(&[
        "jsmith,Jane,Smyth,jane@example.org,Accountant,Finance,,staff,",
        BOB,
        ANN,
    ]);
    assert_eq!(run.code, 0);
    for u in ["jsmith", "bjones", "alee"] {
        assert_eq!(run.row(u).0, "unchanged", "{}", run.results);
    }
    assert_eq!(env.writes(), before, "an unchanged re-run must not write");
}

#[test]
fn department_change_is_a_move_not_delete_and_add() {
    let env = Env::start("ignore", "");
    assert_eq!(env.apply(&[JANE, BOB]).code, 0);
    let uuid = values(&env.search("(uid=jsmith)", &["entryUUID"]), "entryUUID");
    let before = env.slapd.op_counts().unwrap();
    let run = env.apply(&[
        "jsmith,Jane,Smith,jane@example.org,Clerk,Sales,+44 20 7946 0101,staff;vpn,",
        BOB,
    ]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("jsmith").0, "update");
    let after = env.slapd.op_counts().unwrap();
    assert_eq!(after.modrdn - before.modrdn, 1);
    assert_eq!(after.add, before.add, "no add");
    assert_eq!(after.delete, before.delete, "no delete");
    let jane = env.search("(uid=jsmith)", &["entryUUID"]);
    assert_eq!(dns(&jane), ["uid=jsmith,ou=Sales,ou=people,dc=example,dc=org"]);
    assert_eq!(values(&jane, "entryUUID"), uuid, "the same entry, moved");
    // Group memberships follow the entry to its new DN.
    for g in ["staff", "vpn"] {
        let m = values(&env.search(&format!("(cn={g})"), &["member"]), "member");
        assert!(
            m.contains(&"uid=jsmith,ou=Sales,ou=people,dc=example,dc=org".to_string()),
            "{g}: {m:?}"
        );
        assert!(!m.iter().any(|x| x.contains("ou=Finance")), "{g}: {m:?}");
    }
    // And a re-run finds it where the row says: unchanged.
    let before = env.writes();
    let run = env.apply(&[
        "jsmith,Jane,Smith,jane@example.org,Clerk,Sales,+44 20 7946 0101,staff;vpn,",
        BOB,
    ]);
    assert_eq!(run.row("jsmith").0, "unchanged", "{}", run.results);
    assert_eq!(env.writes(), before);
}

#[test]
fn leaver_is_locked_moved_and_stripped_then_joiner_is_restored() {
    let env = Env::start("ignore", "");
    let header = format!("{HEADER},password");
    let f = env.csv_with(
        &header,
        &[&format!("{JANE},Initial-Pass-1"), &format!("{BOB},Initial-Pass-2")],
    );
    assert_eq!(env.dirsync("apply", &f, &[]).code, 0);
    let jane_dn = "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org";
    env.slapd.bind_check(jane_dn, "Initial-Pass-1").expect("jane can bind");
    // Jane is also in a group dirsync does not manage.
    env.slapd
        .ldapmodify_ldif(&format!(
            "dn: cn=wiki,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: {jane_dn}\n"
        ))
        .unwrap();

    let f = env.csv_with(
        &header,
        &[
            "jsmith,Jane,Smith,jane@example.org,Clerk,Finance,+44 20 7946 0101,staff;vpn,leaver,",
            &format!("{BOB},"),
        ],
    );
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("jsmith").0, "leaver");
    let jane = env.search("(uid=jsmith)", &["pwdAccountLockedTime"]);
    let left_dn = format!("uid=jsmith,{LEAVERS}");
    assert_eq!(dns(&jane), std::slice::from_ref(&left_dn));
    assert_eq!(values(&jane, "pwdAccountLockedTime").len(), 1, "{jane}");
    let err = env.slapd.bind_check(&left_dn, "Initial-Pass-1").unwrap_err();
    assert!(err.contains("49"), "a leaver cannot bind: {err}");
    for g in ["staff", "vpn"] {
        let m = values(&env.search(&format!("(cn={g})"), &["member"]), "member");
        assert!(!m.iter().any(|x| x.contains("jsmith")), "{g}: {m:?}");
    }
    let wiki = values(&env.search("(cn=wiki)", &["member"]), "member");
    assert!(
        wiki.contains(&jane_dn.to_string()),
        "unmanaged group untouched: {wiki:?}"
    );
    env.slapd
        .bind_check("uid=bjones,ou=Sales,ou=people,dc=example,dc=org", "Initial-Pass-2")
        .expect("bob unaffected");

    // The same leaver row again: already a leaver, nothing written.
    let before = env.writes();
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.row("jsmith").0, "unchanged", "{}", run.results);
    assert_eq!(env.writes(), before);

    // Joiner: back to the OU the row names, unlocked, groups restored.
    let f = env.csv_with(
        &header,
        &[
            "jsmith,Jane,Smith,jane@example.org,Clerk,Sales,+44 20 7946 0101,staff;vpn,,",
            &format!("{BOB},"),
        ],
    );
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("jsmith").0, "joiner");
    let back_dn = "uid=jsmith,ou=Sales,ou=people,dc=example,dc=org";
    let jane = env.search("(uid=jsmith)", &["pwdAccountLockedTime"]);
    assert_eq!(dns(&jane), [back_dn]);
    assert!(values(&jane, "pwdAccountLockedTime").is_empty(), "{jane}");
    env.slapd
        .bind_check(back_dn, "Initial-Pass-1")
        .expect("a joiner can bind again");
    for g in ["staff", "vpn"] {
        let m = values(&env.search(&format!("(cn={g})"), &["member"]), "member");
        assert!(m.contains(&back_dn.to_string()), "{g}: {m:?}");
    }
}

#[test]
fn absent_accounts_follow_each_policy() {
    let env = Env::start("ignore", "");
    assert_eq!(env.apply(&[JANE, BOB, ANN]).code, 0);

    let before = env.writes();
    let run = env.apply(&[JANE, BOB]);
    assert_eq!(run.row("alee").0, "absent", "{}", run.results);
    assert_eq!(env.writes(), before, "ignore writes nothing");

    env.write_policy("leaver", "");
    let run = env.apply(&[JANE, BOB]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("alee").1, "done");
    assert!(run.row("alee").2.contains("made a leaver"), "{}", run.results);
    let ann = env.search("(uid=alee)", &["pwdAccountLockedTime"]);
    assert_eq!(dns(&ann), [format!("uid=alee,{LEAVERS}")]);
    assert_eq!(values(&ann, "pwdAccountLockedTime").len(), 1);

    env.write_policy("delete", "");
    let run = env.apply(&[JANE]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert!(run.row("alee").2.contains("deleted"), "{}", run.results);
    assert!(run.row("bjones").2.contains("deleted"), "{}", run.results);
    assert!(env.search("(uid=alee)", &["uid"]).trim().is_empty());
    assert!(env.search("(uid=bjones)", &["uid"]).trim().is_empty());
    assert!(!env.search("(uid=jsmith)", &["uid"]).trim().is_empty());
    let staff = values(&env.search("(cn=staff)", &["member"]), "member");
    assert!(
        !staff.iter().any(|m| m.contains("bjones")),
        "deleted users leave their groups: {staff:?}"
    );
}

#[test]
fn passwords_from_the_file_and_must_change_set_pwd_reset() {
    let env = Env::start("ignore", "");
    let header = format!("{HEADER},password,change password next time");
    let f = env.csv_with(
        &header,
        &[&format!("{JANE},Jane-Pass-123,1"), &format!("{BOB},Bob-Pass-456,0")],
    );
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert!(!run.results.contains("Jane-Pass-123"), "passwords never in the results");
    let jane_dn = "uid=jsmith,ou=Finance,ou=people,dc=example,dc=org";
    env.slapd
        .bind_check(jane_dn, "Jane-Pass-123")
        .expect("jane's password works");
    env.slapd
        .bind_check("uid=bjones,ou=Sales,ou=people,dc=example,dc=org", "Bob-Pass-456")
        .unwrap();
    assert_eq!(values(&env.search("(uid=jsmith)", &["pwdReset"]), "pwdReset"), ["TRUE"]);
    assert!(values(&env.search("(uid=bjones)", &["pwdReset"]), "pwdReset").is_empty());
    // Hashed by the server (Password Modify), never stored in clear.
    let pw = env.search("(uid=jsmith)", &["userPassword"]);
    assert!(pw.contains("userPassword::"), "{pw}");
    assert!(!pw.contains("Jane-Pass-123"));
}

#[test]
fn hashed_password_method_writes_a_salted_hash_that_binds() {
    let env = Env::start("ignore", "password_method = \"ssha512\"");
    // `password_method` belongs in [ldap]: move it there.
    let p = std::fs::read_to_string(env.dir.path().join("policy.toml")).unwrap();
    let p = p
        .replace("password_method = \"ssha512\"\n", "")
        .replace("[ldap.fields]", "password_method = \"ssha512\"\n[ldap.fields]");
    std::fs::write(env.dir.path().join("policy.toml"), p).unwrap();
    let f = env.csv_with(&format!("{HEADER},password"), &[&format!("{JANE},Hash-Me-789")]);
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0, "{}", run.results);
    let extended = env.slapd.op_counts().unwrap().extended;
    env.slapd
        .bind_check("uid=jsmith,ou=Finance,ou=people,dc=example,dc=org", "Hash-Me-789")
        .expect("the {SSHA512} hash verifies");
    // (op_counts is read before any ldapwhoami, itself an extended operation.)
    assert_eq!(extended, 0, "no Password Modify with ssha512");
}

#[test]
fn names_that_need_dn_escaping_get_their_own_entries() {
    let env = Env::start("ignore", "");
    env.slapd
        .ldapadd_ldif(
            "dn: ou=R&D\\2C Labs,ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: R&D, Labs\n\n\
             dn: ou=\\#1 Team\\+Co,ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: #1 Team+Co\n",
        )
        .unwrap();
    let names = [
        ("o'brien, j", "o'brien, j"),
        ("a+b", "a+b"),
        ("\"quoted\"", "\"quoted\""),
        ("back\\5cslash", "back\\slash"),
        ("#hash", "#hash"),
        ("<a>;b=c", "<a>;b=c"),
        ("zoë.ångström", "zoë.ångström"),
    ];
    let mut rows = Vec::new();
    for (i, (_, raw)) in names.iter().enumerate() {
        let dept = if i % 2 == 0 { "R&D, Labs" } else { "#1 Team+Co" };
        let csv_name = format!("\"{}\"", raw.replace('"', "\"\""));
        rows.push(format!(
            "{csv_name},First{i},Last{i},u{i}@example.org,T,\"{dept}\",,staff,"
        ));
    }
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let run = env.apply(&rows);
    assert_eq!(run.code, 0, "{}", run.results);
    for (i, (filter_value, raw)) in names.iter().enumerate() {
        assert_eq!(run.row(raw).0, "new");
        let filter = format!("(uid={})", filter_value.replace('(', "\\28").replace(')', "\\29"));
        let ldif = env.search(&filter, &["uid", "ou"]);
        assert_eq!(entries(&ldif), 1, "exactly one entry for {raw:?}: {ldif}");
        let want_dept = if i % 2 == 0 { "R&D\\2C Labs" } else { "\\231 Team\\2BCo" };
        let parent = env
            .slapd
            .ldapsearch(&format!("ou={want_dept},{PEOPLE}"), &filter, &["uid"]);
        assert!(
            parent.is_ok_and(|l| !l.trim().is_empty()),
            "{raw:?} is under its department"
        );
    }
    // Read back and compared exactly: a re-run changes nothing.
    let before = env.writes();
    let run = env.apply(&rows);
    for (_, raw) in &names {
        assert_eq!(run.row(raw).0, "unchanged", "{}", run.results);
    }
    assert_eq!(env.writes(), before);
    // Group members are the escaped DNs of those entries.
    let staff = env.search("(cn=staff)", &["member"]);
    assert_eq!(staff.matches("member").count(), names.len() + 1, "{staff}");
}

#[test]
fn filter_metacharacters_in_values_touch_only_their_own_entry() {
    let env = Env::start("ignore", "");
    assert_eq!(env.apply(&[JANE, BOB, ANN]).code, 0);
    let evil = [
        "*,Star,Star,star@example.org,T,Finance,,staff,",
        "\"x)(uid=*\",Paren,Paren,paren@example.org,T,Finance,,staff,",
        "\"a\\2a\",Back,Slash,bs@example.org,T,Finance,,staff,",
    ];
    let mut rows = vec![JANE, BOB, ANN];
    rows.extend(evil);
    let run = env.apply(&rows);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("*").0, "new");
    assert_eq!(run.row("x)(uid=*").0, "new");
    // Exactly six people, each once.
    let all = env.search("(objectClass=inetOrgPerson)", &["uid"]);
    assert_eq!(entries(&all), 6, "{all}");

    // "*" becomes a leaver: only its own entry is locked.
    let mut rows = vec![JANE, BOB, ANN];
    rows.push("*,Star,Star,star@example.org,T,Finance,,staff,leaver");
    rows.extend(&evil[1..]);
    let run = env.apply(&rows);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(run.row("*").0, "leaver");
    let locked = env.search("(pwdAccountLockedTime=*)", &["uid"]);
    assert_eq!(values(&locked, "uid"), ["*"], "{locked}");
    for u in ["jsmith", "bjones", "alee", "x)(uid=*", "a\\2a"] {
        assert_eq!(run.row(u).0, "unchanged", "{u}: {}", run.results);
    }

    // A NUL (or any control character) never reaches the server: the row is rejected.
    let before = env.writes();
    let f = env.dir.path().join("nul.csv");
    std::fs::write(&f, format!("{HEADER}\nnul\u{0}x,N,U,n@example.org,T,Finance,,staff,\n")).unwrap();
    let run = env.dirsync("apply", &f, &[]);
    assert_ne!(run.code, 0);
    assert_eq!(env.writes(), before);
}

#[test]
fn server_restart_mid_run_loses_and_duplicates_nothing() {
    let mut env = Env::start("ignore", "");
    env.write_config("max_in_flight = 8\nbatch_size = 200\n");
    let rows: Vec<String> = (0..3000)
        .map(|i| format!("user{i:05},First{i},Last{i},u{i}@example.org,T,Finance,,staff,"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let f = env.csv(&rows);
    let results = env.dir.path().join("restart-results.csv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--config")
        .arg(env.dir.path().join("dirsync.toml"))
        .arg("apply")
        .arg(&f)
        .arg("--results")
        .arg(&results)
        .spawn()
        .expect("spawn dirsync");
    // Wait until writes are under way, then restart the server under it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = env.slapd.op_counts().map(|c| c.add).unwrap_or(0);
        if n >= 300 {
            break;
        }
        assert!(Instant::now() < deadline, "dirsync made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    env.slapd.restart().expect("restart slapd");
    let status = child.wait().expect("dirsync finished");
    let text = std::fs::read_to_string(&results).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(0),
        "every row done despite the restart:\n{}",
        &text[..text.len().min(3000)]
    );
    let count = env.search("(objectClass=inetOrgPerson)", &["1.1"]);
    assert_eq!(dns(&count).len(), 3000);
    // Nothing missing or doubled: a re-run has nothing to do.
    let before = env.writes();
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
    assert!(!run.results.contains(",new,"), "nothing left to add");
    assert_eq!(env.writes(), before);
    let staff = env.search("(cn=staff)", &["member"]);
    assert_eq!(values(&staff, "member").len(), 3001, "every member once");
}

#[test]
fn safety_limit_holds_the_leavers_and_writes_nothing() {
    let env = Env::start("leaver", "");
    // Default limit for leavers: 10 % of the managed accounts.
    let p = std::fs::read_to_string(env.dir.path().join("policy.toml")).unwrap();
    std::fs::write(
        env.dir.path().join("policy.toml"),
        p.replace("leavers = { max_percent = 100.0 }", "leavers = { max_percent = 10.0 }"),
    )
    .unwrap();
    assert_eq!(env.apply(&[JANE, BOB, ANN]).code, 0);
    let before = env.writes();
    // A truncated export: two of three people missing.
    let run = env.apply(&[JANE]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("held"), "{}", run.stdout);
    assert_eq!(run.row("bjones").1, "held");
    assert_eq!(env.writes(), before, "nothing written");
    assert!(env.search("(pwdAccountLockedTime=*)", &["uid"]).trim().is_empty());
    // The operator looks and overrides.
    let f = env.csv(&[JANE]);
    let run = env.dirsync("apply", &f, &["--allow-over-limit"]);
    assert_eq!(run.code, 0, "{}", run.results);
    assert_eq!(
        values(&env.search("(pwdAccountLockedTime=*)", &["uid"]), "uid").len(),
        2
    );
}

#[test]
fn dry_run_reports_schema_violations_that_the_real_run_would_hit() {
    let env = Env::start("ignore", "");
    // officeLocation is no attribute of this server; surname (sn, a MUST of person) is not mapped.
    let p = std::fs::read_to_string(env.dir.path().join("policy.toml")).unwrap();
    let p = p
        .replace("surname = \"sn\"\n", "")
        .replace("title = \"title\"", "title = \"officeLocation\"");
    std::fs::write(env.dir.path().join("policy.toml"), p).unwrap();
    let f = env.csv(&[JANE, "pnew,Pat,New,pat@example.org,T,Marketing,,staff,"]);
    let before = env.writes();
    let check = env.dirsync("check", &f, &[]);
    assert_eq!(check.code, 1, "{}", check.results);
    let (_, result, message) = check.row("jsmith");
    assert_eq!(result, "failed");
    assert!(
        message.contains("officeLocation is not in the server schema"),
        "{message}"
    );
    assert!(message.contains("required attribute sn is missing"), "{message}");
    let (_, _, message) = check.row("pnew");
    assert!(
        message.contains("ou=Marketing,ou=people,dc=example,dc=org does not exist"),
        "{message}"
    );
    assert_eq!(env.writes(), before, "a dry run never writes");
    // The real run fails the same rows, with the server's own words.
    let run = env.dirsync("apply", &f, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(run.row("jsmith").1, "failed");
    assert!(env.search("(uid=jsmith)", &["uid"]).trim().is_empty());
}

#[test]
fn posix_groups_and_leaver_by_attribute() {
    let env = Env::start("leaver", "");
    env.slapd
        .ldapadd_ldif("dn: cn=devs,ou=groups,dc=example,dc=org\nobjectClass: posixGroup\ncn: devs\ngidNumber: 5000\n")
        .unwrap();
    let p = std::fs::read_to_string(env.dir.path().join("policy.toml")).unwrap();
    let p = p
        .replace("managed = [\"staff\", \"vpn\"]", "managed = [\"devs\"]")
        .replace("type = \"groupOfNames\"", "type = \"posixGroup\"")
        .replace(
            "[ldap.groups]",
            "[ldap.leaver]\nmethod = \"attribute\"\nattribute = \"employeeType\"\nvalue = \"leaver\"\n[ldap.groups]",
        );
    std::fs::write(env.dir.path().join("policy.toml"), p).unwrap();
    let run = env.apply(&[
        "jsmith,Jane,Smith,jane@example.org,Clerk,Finance,,devs,",
        "bjones,Bob,Jones,bob@example.org,Clerk,Finance,,devs,",
    ]);
    assert_eq!(run.code, 0, "{}", run.results);
    let mut devs = values(&env.search("(cn=devs)", &["memberUid"]), "memberUid");
    devs.sort();
    assert_eq!(devs, ["bjones", "jsmith"]);
    // Bob is absent from the next file: a leaver by attribute, out of the group.
    let run = env.apply(&["jsmith,Jane,Smith,jane@example.org,Clerk,Finance,,devs,"]);
    assert_eq!(run.code, 0, "{}", run.results);
    let bob = env.search("(uid=bjones)", &["employeeType", "pwdAccountLockedTime"]);
    assert_eq!(dns(&bob), [format!("uid=bjones,{LEAVERS}")]);
    assert_eq!(values(&bob, "employeeType"), ["leaver"]);
    assert!(values(&bob, "pwdAccountLockedTime").is_empty());
    assert_eq!(
        values(&env.search("(cn=devs)", &["memberUid"]), "memberUid"),
        ["jsmith"]
    );
    // Bob comes back: attribute removed (not mapped), group restored.
    let run = env.apply(&[
        "jsmith,Jane,Smith,jane@example.org,Clerk,Finance,,devs,",
        "bjones,Bob,Jones,bob@example.org,Clerk,Finance,,devs,",
    ]);
    assert_eq!(run.row("bjones").0, "joiner", "{}", run.results);
    let bob = env.search("(uid=bjones)", &["employeeType"]);
    assert_eq!(dns(&bob), ["uid=bjones,ou=Finance,ou=people,dc=example,dc=org"]);
    assert!(values(&bob, "employeeType").is_empty());
    assert_eq!(values(&env.search("(cn=devs)", &["memberUid"]), "memberUid").len(), 2);
}

#[test]
fn config_check_rejects_a_bad_ldap_mapping_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dirsync.toml"),
        "[targets.dir]\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:1\"\nbind_dn = \"cn=x,dc=example,dc=org\"\n\
         bind_password = \"inline\"\nbase = \"ou=people,dc=example,dc=org\"\n[policies]\np = \"p.toml\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("p.toml"), "target = \"dir\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--config")
        .arg(dir.path().join("dirsync.toml"))
        .args(["config", "check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("bind_password"), "inline passwords are refused: {err}");

    std::fs::write(
        dir.path().join("dirsync.toml"),
        "[targets.dir]\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:1\"\nbind_dn = \"cn=x,dc=example,dc=org\"\n\
         bind_password_env = \"X\"\nbase = \"ou=people,dc=example,dc=org\"\n[policies]\np = \"p.toml\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "target = \"dir\"\n[groups]\nmanaged = [\"staff\"]\n[ldap]\nobject_classes = [\"inetOrgPerson\"]\n\
         dn = \"uid={username},ou=other,dc=example,dc=org\"\n[ldap.templates]\ncn = \"{nickname}\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--config")
        .arg(dir.path().join("dirsync.toml"))
        .args(["config", "check"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("{nickname} is not a field"), "{err}");
    assert!(err.contains("outside the managed base"), "{err}");
    assert!(err.contains("add [ldap.groups]"), "{err}");
}

#[test]
fn transactions_add_in_groups_and_a_refused_group_falls_back_row_by_row() {
    let env = Env::start("ignore", "");
    env.write_config("transaction_size = 50\n");
    // One of the new people already exists outside dirsync's view (another
    // object class), so the transaction holding it is refused as a whole.
    env.slapd
        .ldapadd_ldif(
            "dn: uid=user00077,ou=Finance,ou=people,dc=example,dc=org\nobjectClass: account\nuid: user00077\n",
        )
        .unwrap();
    let rows: Vec<String> = (0..200)
        .map(|i| format!("user{i:05},First{i},Last{i},u{i}@example.org,T,Finance,,staff,"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let before = env.slapd.op_counts().unwrap();
    let run = env.apply(&rows);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let (_, result, message) = run.row("user00077");
    assert_eq!(result, "failed");
    assert!(message.contains("68"), "the server's own words: {message}");
    for u in ["user00000", "user00076", "user00078", "user00199"] {
        assert_eq!(run.row(u).1, "done", "{u}");
    }
    let people = env.search("(objectClass=inetOrgPerson)", &["1.1"]);
    assert_eq!(entries(&people), 199);
    let after = env.slapd.op_counts().unwrap();
    assert!(
        after.extended - before.extended >= 8,
        "transactions were used: {after:?}"
    );
    assert_eq!(
        values(&env.search("(cn=staff)", &["member"]), "member").len(),
        200,
        "199 people and the placeholder"
    );
}
