//! Issue 14 (HR lifecycle), black-box against the SQL targets: the built
//! `dirsync` binary with a policy that generates usernames and email
//! addresses, and one that adopts existing accounts, on SQLite (read back
//! with `sqlite3`), PostgreSQL (`psql`) and MariaDB (the `mariadb` client).

#[path = "common/results.rs"]
mod results;
#[path = "support/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;

use results::rows;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");
const PW_VAR: &str = "DIRSYNC_TEST_DB_PASSWORD";
const MARIADB_PW: &str = "lifecycle-pw";

const POLICY: &str = r#"
target = "app"
[fields.username]
generate = "{firstname:1}{surname}"
max_len = 12
[fields.email]
generate = "{firstname}.{surname}@example.org"
update = "create-only"
[passwords]
generate = "never"
[limits]
updates = { max_percent = 100.0 }
[sql]
table = "people"
key = "login"
status_column = "state"
[sql.columns]
firstname = "given_name"
surname = "family_name"
email = "email"
"#;

const TABLE: &str = "CREATE TABLE people (login VARCHAR(64) PRIMARY KEY, given_name VARCHAR(100), \
     family_name VARCHAR(100), email VARCHAR(254), state VARCHAR(16) NOT NULL DEFAULT 'active')";

const ADOPT_POLICY: &str = r#"
target = "app"
[sync]
adopt = "email"
[passwords]
generate = "never"
[limits]
adds = { max = 10 }
adopts = { max = 5000 }
[groups]
managed = ["staff"]
[sql]
table = "accounts"
key = "login"
status_column = "state"
[sql.scope]
column = "source"
value = "hr"
[sql.columns]
firstname = "given_name"
surname = "family_name"
email = "email"
[sql.groups]
table = "memberships"
user_column = "login"
group_column = "grp"
"#;

const ADOPT_TABLES: [&str; 2] = [
    "CREATE TABLE accounts (login VARCHAR(64) PRIMARY KEY, given_name VARCHAR(100), \
     family_name VARCHAR(100), email VARCHAR(254), source VARCHAR(16), state VARCHAR(16))",
    "CREATE TABLE memberships (login VARCHAR(64) NOT NULL, grp VARCHAR(64) NOT NULL, PRIMARY KEY (login, grp))",
];

/// A target under test: its URL and an independent client.
trait Db {
    fn url(&self) -> String;
    /// Rows of a query, columns joined with `|`, one row per line.
    fn q(&self, sql: &str) -> String;
    fn password(&self) -> Option<&'static str>;
}

struct Lite(PathBuf);
struct Pg(servers::Postgres);
struct Maria(servers::MariaDb);

impl Db for Lite {
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
    fn q(&self, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(&self.0)
            .arg(sql)
            .output()
            .expect("the sqlite3 program (apt-get install sqlite3)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
    fn password(&self) -> Option<&'static str> {
        None
    }
}

impl Db for Pg {
    fn url(&self) -> String {
        self.0.url()
    }
    fn q(&self, sql: &str) -> String {
        self.0
            .psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
            .trim_end()
            .to_string()
    }
    fn password(&self) -> Option<&'static str> {
        Some(servers::Postgres::PASSWORD)
    }
}

impl Db for Maria {
    fn url(&self) -> String {
        format!("mariadb://dirsync@127.0.0.1:{}/{}", self.0.port(), self.0.database())
    }
    fn q(&self, sql: &str) -> String {
        self.0
            .query(sql)
            .unwrap_or_else(|e| panic!("mariadb {sql}: {e}"))
            .trim_end()
            .replace('\t', "|")
    }
    fn password(&self) -> Option<&'static str> {
        Some(MARIADB_PW)
    }
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(db: &dyn Db, policy: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = match db.password() {
            Some(_) => format!("password_env = \"{PW_VAR}\"\n"),
            None => String::new(),
        };
        let config = format!(
            "[targets.app]\nkind = \"sql\"\nurl = \"{}\"\n{pw}\n[policies]\nstaff = \"staff.toml\"\n",
            db.url()
        );
        std::fs::write(dir.path().join("dirsync.toml"), config).expect("write config");
        std::fs::write(dir.path().join("staff.toml"), policy).expect("write policy");
        Setup { dir }
    }

    /// `dirsync CMD DAY.csv` with `csv` in it: (exit code, results file, output).
    fn run(&self, db: &dyn Db, cmd: &str, day: &str, csv: &str) -> (i32, String, String) {
        let file = self.dir.path().join(format!("{day}.csv"));
        std::fs::write(&file, csv).expect("write csv");
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.dir.path().join("dirsync.toml"))
            .arg(cmd)
            .arg(&file);
        if let Some(pw) = db.password() {
            c.env(PW_VAR, pw);
        }
        let out = c.output().expect("run dirsync");
        let results = std::fs::read_to_string(results_of(&file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), results, text)
    }
}

fn results_of(file: &Path) -> PathBuf {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    file.with_file_name(format!("{stem}.results.csv"))
}

fn people(db: &dyn Db) -> String {
    db.q("SELECT login, email FROM people ORDER BY login")
}

/// Generated usernames and email addresses: previewed, applied as
/// previewed, unique against the target, the file and the journal; the
/// address is create-only.
fn generated_and_create_only(db: &dyn Db) {
    db.q("INSERT INTO people (login, given_name, family_name, email) VALUES ('jsmith', 'Jane', 'Smith', 'john.smith@example.org')");
    let s = Setup::new(db, POLICY);
    let day1 = "username,firstname,surname,email\n,John,Smith,\n,Jöhn,Smíth,\n,José,Núñez-García,\nadam,Adam,Smith,\njsmith,Jane,Smith,\n";

    let (code, results, out) = s.run(db, "check", "day1", day1);
    assert_eq!(code, 0, "{out}\n{results}");
    let preview = rows(&results);
    assert_eq!(people(db), "jsmith|john.smith@example.org", "a preview writes nothing");

    let (code, results, out) = s.run(db, "apply", "day1", day1);
    assert_eq!(code, 0, "{out}\n{results}");
    let applied = rows(&results);
    let expect = [
        ("new", "generated: username jsmith2, email john.smith2@example.org"),
        ("new", "generated: username jsmith3, email john.smith3@example.org"),
        (
            "new",
            "generated: username jnunez-garci, email jose.nunez-garcia@example.org",
        ),
        ("new", "generated: email adam.smith@example.org"),
        ("unchanged", ""),
    ];
    for (i, (change, message)) in expect.iter().enumerate() {
        assert_eq!(applied[i].0, *change, "{results}");
        assert!(applied[i].2.contains(message), "row {i}: {results}");
        assert!(
            preview[i].2.contains(message),
            "the preview shows what apply uses: row {i}: {results}"
        );
    }
    assert_eq!(
        people(db),
        "adam|adam.smith@example.org\njnunez-garci|jose.nunez-garcia@example.org\njsmith|john.smith@example.org\n\
         jsmith2|john.smith2@example.org\njsmith3|john.smith3@example.org"
    );

    // An admin removes jsmith2 by hand; a new John Smith still never gets
    // the name (nor the address) the journal handed out.
    db.q("DELETE FROM people WHERE login = 'jsmith2'");
    let (code, results, out) = s.run(db, "apply", "day2", "username,firstname,surname,email\n,John,Smith,\n");
    assert_eq!(code, 0, "{out}\n{results}");
    assert!(
        rows(&results)[0]
            .2
            .contains("generated: username jsmith4, email john.smith4@example.org"),
        "{results}"
    );
    assert!(people(db).contains("jsmith4|john.smith4@example.org"));
    assert!(!people(db).contains("jsmith2"));

    // A file that leaves out the username of someone the target knows (by
    // email, or by name when the row has no email) is refused for that row,
    // with what to do: it never adds the person twice.
    let (code, results, _) = s.run(
        db,
        "apply",
        "day3",
        "username,firstname,surname,email\n,Adam,Smith,adam.smith@example.org\n,Jöhn,Smíth,\n",
    );
    assert_eq!(code, 1);
    let r = rows(&results);
    assert_eq!(r[0].0, "error");
    assert_eq!(
        r[0].2,
        "row 1 (line 2): column \"username\": cannot generate username: the target's account \"adam\" has this row's email address, so the person is not new; put adam in the username column"
    );
    assert_eq!(r[1].0, "error");
    assert!(r[1].2.starts_with("row 2 (line 3): column \"username\": cannot generate username: the target's account \"jsmith3\" has this row's name"), "{}", r[1].2);
    assert_eq!(people(db).lines().count(), 5, "nobody added twice");

    // The address belongs to the user once created (update = "create-only"):
    // edited in the target, it survives a file that says otherwise; other
    // fields still follow the file.
    db.q("UPDATE people SET email = 'js4@mail.example.org' WHERE login = 'jsmith4'");
    let (code, results, out) = s.run(
        db,
        "apply",
        "day4",
        "username,firstname,surname,email\njsmith4,John,Smith,john.smith4@example.org\n",
    );
    assert_eq!(code, 0, "{out}\n{results}");
    assert_eq!(rows(&results)[0].0, "unchanged", "{results}");
    let (_, results, _) = s.run(
        db,
        "apply",
        "day5",
        "username,firstname,surname,email\njsmith4,John,Smyth,john.smith4@example.org\n",
    );
    assert_eq!(rows(&results)[0].2, "surname: Smith → Smyth", "{results}");
    assert_eq!(
        db.q("SELECT family_name, email FROM people WHERE login = 'jsmith4'"),
        "Smyth|js4@mail.example.org"
    );
}

/// A first deployment: 1,000 accounts already in the table (outside the
/// scope) are adopted by email, none created; two candidates reject the row.
fn adopt(db: &dyn Db) {
    let values: Vec<String> = (0..1000)
        .map(|i| format!("('old{i}', 'Old', 'Name{i}', 'p{i}@example.org', NULL)"))
        .collect();
    const COLS: &str = "INSERT INTO accounts (login, given_name, family_name, email, source) VALUES";
    db.q(&format!("{COLS} {}", values.join(", ")));
    db.q(&format!(
        "{COLS} ('dupa', 'D', 'A', 'dup@example.org', 'crm'), ('dupb', 'D', 'B', 'dup@example.org', NULL)"
    ));
    db.q("INSERT INTO memberships VALUES ('old0', 'staff'), ('old0', 'wiki')");
    let s = Setup::new(db, ADOPT_POLICY);
    let mut csv = String::from("username,firstname,surname,email,groups\n");
    for i in 0..1000 {
        let groups = if i < 2 { "staff" } else { "" };
        csv.push_str(&format!("u{i},First{i},Name{i},P{i}@example.org,{groups}\n"));
    }
    csv.push_str("dup,Dee,Dup,dup@example.org,\nfresh,Fay,Fresh,fay@example.org,\n");

    let (code, results, out) = s.run(db, "check", "first", &csv);
    assert_eq!(code, 1, "{out}\n{results}");
    let preview = rows(&results);
    assert_eq!(
        preview.iter().filter(|r| r.0 == "adopt" && r.1 == "preview").count(),
        1000,
        "{out}"
    );
    assert_eq!(
        db.q("SELECT COUNT(*) FROM accounts WHERE source = 'hr'"),
        "0",
        "a preview writes nothing"
    );

    let (code, results, out) = s.run(db, "apply", "first", &csv);
    assert_eq!(code, 1, "{out}\n{results}");
    let r = rows(&results);
    assert_eq!(
        r.iter().filter(|r| r.0 == "adopt" && r.1 == "done").count(),
        1000,
        "{out}"
    );
    assert_eq!(
        r[0].2,
        "firstname: Old → First0; email: p0@example.org → P0@example.org; adopts the existing account \"old0\" (same email)"
    );
    assert_eq!(r[1000].0, "error");
    assert_eq!(
        r[1000].2,
        "row 1001 (line 1002): column \"email\": \"dup@example.org\" is the email of 2 existing accounts (dupa, dupb), so none is adopted; give the row the username of the right one, or make the email unique in the target"
    );
    assert_eq!(r[1001].0, "new");
    // Read back: every old account now carries the HR key and the scope
    // value; one new account; nothing duplicated.
    assert_eq!(db.q("SELECT COUNT(*) FROM accounts"), "1003");
    assert_eq!(db.q("SELECT COUNT(*) FROM accounts WHERE source = 'hr'"), "1001");
    assert_eq!(db.q("SELECT COUNT(*) FROM accounts WHERE login LIKE 'old%'"), "0");
    assert_eq!(
        db.q("SELECT given_name, email, source FROM accounts WHERE login = 'u7'"),
        "First7|P7@example.org|hr"
    );
    // Memberships moved with the key; other groups untouched.
    assert_eq!(
        db.q("SELECT login, grp FROM memberships ORDER BY login, grp"),
        "u0|staff\nu0|wiki\nu1|staff"
    );
    // Adopted accounts are managed like any other: the same file again
    // changes nothing.
    let (_, results, out) = s.run(db, "apply", "second", &csv);
    let r = rows(&results);
    assert_eq!(r.iter().filter(|r| r.0 == "unchanged").count(), 1001, "{out}");
}

/// `[limits] max_accounts`: after the generated-values run the table holds
/// five active people; with six licences and a leaver in the file, two of
/// three new people fit and the third is held, saying how many are free.
fn capacity(db: &dyn Db) {
    let policy = POLICY.replace(
        "[limits]\n",
        "[limits]\nmax_accounts = 6\nleavers = { max_percent = 100.0 }\n",
    );
    let s = Setup::new(db, &policy);
    let file = "username,firstname,surname,email,status\nn1,Ann,One,ann@example.org,\nadam,Adam,Smith,,leaver\n\
                n2,Bo,Two,bo@example.org,\nn3,Cy,Three,cy@example.org,\n";
    let (code, results, out) = s.run(db, "apply", "cap", file);
    assert_eq!(code, 1, "{out}\n{results}");
    let r = rows(&results);
    assert_eq!((r[0].0.as_str(), r[0].1.as_str()), ("new", "done"), "{results}");
    assert_eq!((r[1].0.as_str(), r[1].1.as_str()), ("leaver", "done"), "{results}");
    assert_eq!((r[2].0.as_str(), r[2].1.as_str()), ("new", "done"), "{results}");
    assert_eq!((r[3].0.as_str(), r[3].1.as_str()), ("new", "held"), "{results}");
    assert!(
        r[3].2
            .starts_with("1 of 3 new accounts exceed limits.max_accounts = 6: 2 licence(s) free"),
        "{results}"
    );
    assert_eq!(db.q("SELECT COUNT(*) FROM people WHERE state = 'active'"), "6");
    assert_eq!(db.q("SELECT COUNT(*) FROM people WHERE login = 'n3'"), "0");
}

/// `update = "never"`: a field read and compared, never written — not on
/// create, and a difference is not an update.
fn never_written(db: &dyn Db) {
    db.q(
        "CREATE TABLE staff_ro (login VARCHAR(64) PRIMARY KEY, given_name VARCHAR(100), \
          family_name VARCHAR(100), email VARCHAR(254), title VARCHAR(100), state VARCHAR(16))",
    );
    db.q("INSERT INTO staff_ro VALUES ('kept', 'Kim', 'Kept', 'kim@example.org', 'Director', 'active')");
    let policy = "target = \"app\"\n[fields.title]\nupdate = \"never\"\n[passwords]\ngenerate = \"never\"\n\
                  [sql]\ntable = \"staff_ro\"\nkey = \"login\"\nstatus_column = \"state\"\n\
                  [sql.columns]\nfirstname = \"given_name\"\nsurname = \"family_name\"\nemail = \"email\"\ntitle = \"title\"\n";
    let s = Setup::new(db, policy);
    let file = "username,firstname,surname,email,title\nkept,Kim,Kept,kim@example.org,Clerk\n\
                new1,Nia,New,nia@example.org,Engineer\nnew2,Ola,New,ola@example.org,Nurse\n";
    let (code, results, out) = s.run(db, "apply", "never", file);
    assert_eq!(code, 0, "{out}\n{results}");
    let r = rows(&results);
    assert_eq!(r[0].0, "unchanged", "{results}");
    assert_eq!((r[1].0.as_str(), r[2].0.as_str()), ("new", "new"), "{results}");
    assert_eq!(
        db.q("SELECT login, COALESCE(title, '-') FROM staff_ro ORDER BY login"),
        "kept|Director\nnew1|-\nnew2|-"
    );
}

#[test]
fn lifecycle_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Lite(dir.path().join("app.db"));
    db.q(TABLE);
    generated_and_create_only(&db);
    capacity(&db);
    never_written(&db);
    for t in ADOPT_TABLES {
        db.q(t);
    }
    adopt(&db);
}

#[test]
fn lifecycle_postgres() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}"));
    let db = Pg(pg);
    db.q(TABLE);
    generated_and_create_only(&db);
    never_written(&db);
    for t in ADOPT_TABLES {
        db.q(t);
    }
    adopt(&db);
}

#[test]
fn lifecycle_mariadb() {
    let m = servers::MariaDb::start().unwrap_or_else(|e| panic!("MariaDB did not start: {e}"));
    let db = Maria(m);
    db.q(&format!("{TABLE} ENGINE=InnoDB"));
    for host in ["%", "localhost", "127.0.0.1"] {
        db.q(&format!(
            "CREATE USER 'dirsync'@'{host}' IDENTIFIED BY '{MARIADB_PW}'; GRANT ALL ON {}.* TO 'dirsync'@'{host}'",
            db.0.database()
        ));
    }
    generated_and_create_only(&db);
    never_written(&db);
    for t in ADOPT_TABLES {
        db.q(&format!("{t} ENGINE=InnoDB"));
    }
    adopt(&db);
}
