//! One behavioural suite for the SQL target, run against SQLite, PostgreSQL
//! and MariaDB. Each database gets an "application" schema of its own types
//! (PG: enum state, boolean, timestamptz; MariaDB: tinyint(1), datetime;
//! SQLite: integers and a CHECK), the built `dirsync` binary is driven with
//! temp configs, and the results are read back independently (psql, the
//! mariadb client, a separate SQLite connection). Triggers count every row
//! written, so "nothing written" is checked exactly.

#[path = "support/servers.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;

use argon2::PasswordVerifier;

const PW_VAR: &str = "DIRSYNC_TEST_DB_PASSWORD";
/// The MariaDB service account's password (quotes, spaces, `%`, `;`).
const MARIADB_PW: &str = "S3cret pw;%'x";

/// A database under test: its URL and an independent way to query it.
trait Db {
    fn name(&self) -> &'static str;
    fn url(&self) -> String;
    /// The database's own error for a value longer than `varchar(10)`.
    fn too_long(&self) -> &'static str;
    /// Rows of a query, columns joined with `|`, rows with `\n`.
    fn q(&self, sql: &str) -> String;
    /// Run DDL/DML as the administrator.
    fn exec(&self, sql: &str);
    fn password(&self) -> Option<&'static str>;
}

struct Pg(servers::Postgres);
struct Maria(servers::MariaDb);
struct Lite {
    path: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Db for Pg {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn url(&self) -> String {
        self.0.url()
    }
    fn too_long(&self) -> &'static str {
        "value too long for type character varying(10)"
    }
    fn q(&self, sql: &str) -> String {
        self.0
            .psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
            .trim_end()
            .to_string()
    }
    fn exec(&self, sql: &str) {
        self.0.psql(sql).unwrap_or_else(|e| panic!("psql: {e}"));
    }
    fn password(&self) -> Option<&'static str> {
        Some(servers::Postgres::PASSWORD)
    }
}

impl Db for Maria {
    fn name(&self) -> &'static str {
        "mariadb"
    }
    fn url(&self) -> String {
        format!("mariadb://dirsync@127.0.0.1:{}/{}", self.0.port(), self.0.database())
    }
    fn too_long(&self) -> &'static str {
        "Data too long for column 'job_title'"
    }
    fn q(&self, sql: &str) -> String {
        self.0
            .query(sql)
            .unwrap_or_else(|e| panic!("mariadb {sql}: {e}"))
            .trim_end()
            .replace('\t', "|")
    }
    fn exec(&self, sql: &str) {
        self.0.query(sql).unwrap_or_else(|e| panic!("mariadb: {e}"));
    }
    fn password(&self) -> Option<&'static str> {
        Some(MARIADB_PW)
    }
}

impl Lite {
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::Row;
        self.rt.block_on(async {
            let opts: sqlx::sqlite::SqliteConnectOptions =
                format!("sqlite://{}", self.path.display()).parse().expect("sqlite url");
            let mut c: sqlx::SqliteConnection = sqlx::ConnectOptions::connect(&opts.create_if_missing(true))
                .await
                .expect("sqlite connect");
            let mut out = Vec::new();
            for stmt in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
                let rows = sqlx::query(stmt)
                    .fetch_all(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{stmt}: {e}"));
                for r in rows {
                    let cells = (0..r.columns().len())
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i)
                                .map(|v| v.unwrap_or_default())
                                .or_else(|_| {
                                    r.try_get::<Option<i64>, _>(i)
                                        .map(|v| v.map(|n| n.to_string()).unwrap_or_default())
                                })
                                .unwrap_or_else(|e| panic!("{stmt}: column {i}: {e}"))
                        })
                        .collect();
                    out.push(cells);
                }
            }
            out
        })
    }
}

impl Db for Lite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
    fn too_long(&self) -> &'static str {
        "CHECK constraint failed"
    }
    fn q(&self, sql: &str) -> String {
        self.rows(sql)
            .iter()
            .map(|r| r.join("|"))
            .collect::<Vec<_>>()
            .join("\n")
    }
    fn exec(&self, sql: &str) {
        self.rows(sql);
    }
    fn password(&self) -> Option<&'static str> {
        None
    }
}

const PG_SCHEMA: &str = "
CREATE TYPE account_state AS ENUM ('active', 'leaver');
CREATE TABLE app_users (
  id serial,
  login varchar(64) PRIMARY KEY,
  given_name varchar(100),
  family_name varchar(100),
  email varchar(254) NOT NULL,
  job_title varchar(10),
  department text,
  state account_state NOT NULL DEFAULT 'active',
  left_at timestamptz,
  must_change boolean NOT NULL DEFAULT false,
  pw_hash varchar(255),
  deleted_at bigint,
  nickname varchar(20),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE app_groups (login varchar(64) NOT NULL, grp varchar(64) NOT NULL, PRIMARY KEY (login, grp));
CREATE TABLE users (id int);
INSERT INTO users VALUES (42);
CREATE TABLE writes (n bigint NOT NULL);
INSERT INTO writes VALUES (0);
CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE writes SET n = n + 1; RETURN NULL; END $$;
CREATE TRIGGER w_users AFTER INSERT OR UPDATE OR DELETE ON app_users FOR EACH ROW EXECUTE FUNCTION count_write();
CREATE TRIGGER w_groups AFTER INSERT OR UPDATE OR DELETE ON app_groups FOR EACH ROW EXECUTE FUNCTION count_write();
";

fn maria_schema() -> String {
    let mut s = String::from(
        "
CREATE TABLE app_users (
  login varchar(64) PRIMARY KEY,
  given_name varchar(100),
  family_name varchar(100),
  email varchar(254) NOT NULL,
  job_title varchar(10),
  department text,
  state varchar(16) NOT NULL DEFAULT 'active',
  left_at datetime NULL,
  must_change tinyint(1) NOT NULL DEFAULT 0,
  pw_hash varchar(255),
  deleted_at bigint NULL,
  nickname varchar(20)
) ENGINE=InnoDB;
CREATE TABLE app_groups (login varchar(64) NOT NULL, grp varchar(64) NOT NULL, PRIMARY KEY (login, grp)) ENGINE=InnoDB;
CREATE TABLE users (id int);
INSERT INTO users VALUES (42);
CREATE TABLE writes (n bigint NOT NULL);
INSERT INTO writes VALUES (0);
",
    );
    s.push_str(&write_triggers("FOR EACH ROW UPDATE writes SET n = n + 1;"));
    s + &maria_user()
}

/// A trigger on every write to app_users and app_groups, each doing `action`
/// (counting the write in `writes`).
fn write_triggers(action: &str) -> String {
    let mut s = String::new();
    for t in ["app_users", "app_groups"] {
        for ev in ["INSERT", "UPDATE", "DELETE"] {
            s.push_str(&format!("CREATE TRIGGER w_{t}_{ev} AFTER {ev} ON {t} {action}\n"));
        }
    }
    s
}

/// The service account dirsync logs in as, with a password.
fn maria_user() -> String {
    let pw = MARIADB_PW.replace('\'', "''");
    ["%", "localhost", "127.0.0.1"]
        .iter()
        .map(|host| {
            format!("CREATE USER 'dirsync'@'{host}' IDENTIFIED BY '{pw}';\nGRANT ALL ON dirsync_test.* TO 'dirsync'@'{host}';\n")
        })
        .collect()
}

fn sqlite_schema() -> String {
    let mut s = String::from(
        "CREATE TABLE app_users (
  login VARCHAR(64) PRIMARY KEY,
  given_name VARCHAR(100),
  family_name VARCHAR(100),
  email VARCHAR(254) NOT NULL,
  job_title VARCHAR(10) CHECK (length(job_title) <= 10),
  department TEXT,
  state VARCHAR(16) NOT NULL DEFAULT 'active',
  left_at INTEGER,
  must_change INTEGER NOT NULL DEFAULT 0,
  pw_hash TEXT,
  deleted_at INTEGER,
  nickname VARCHAR(20)
);
CREATE TABLE app_groups (login VARCHAR(64) NOT NULL, grp VARCHAR(64) NOT NULL, PRIMARY KEY (login, grp));
CREATE TABLE users (id INTEGER);
INSERT INTO users VALUES (42);
CREATE TABLE writes (n INTEGER NOT NULL);
INSERT INTO writes VALUES (0);
",
    );
    s.push_str(&write_triggers("BEGIN UPDATE writes SET n = n + 1; END;"));
    s
}

/// The config and policies in a temp dir.
struct Setup {
    dir: tempfile::TempDir,
}

fn policy(
    absent: &str,
    scheme: &str,
    deleted: bool,
    extra_column: Option<(&str, &str)>,
    must_change_col: &str,
) -> String {
    let deleted = if deleted {
        "deleted_at_column = \"deleted_at\"\n"
    } else {
        ""
    };
    let extra = extra_column
        .map(|(f, c)| format!("{f} = \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        r#"target = "app"
[sync]
absent = "{absent}"
[passwords]
generate = "new"
must_change_new = false
[limits]
leavers = {{ max_percent = 100.0 }}
deletes = {{ max = 100 }}
rejoins = {{ max = 100 }}
updates = {{ max_percent = 100.0 }}
[groups]
managed = ["staff", "vpn", "finance"]
[sql]
table = "app_users"
key = "login"
status_column = "state"
active_value = "active"
leaver_value = "leaver"
left_at_column = "left_at"
must_change_column = "{must_change_col}"
password_column = "pw_hash"
password_scheme = "{scheme}"
bcrypt_cost = 4
argon2_memory_kib = 8
argon2_iterations = 1
{deleted}
[sql.columns]
firstname = "given_name"
surname = "family_name"
email = "email"
title = "job_title"
department = "department"
{extra}
[sql.groups]
table = "app_groups"
user_column = "login"
group_column = "grp"
"#
    )
}

impl Setup {
    fn new(db: &dyn Db) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = if db.password().is_some() {
            format!("password_env = \"{PW_VAR}\"\n")
        } else {
            String::new()
        };
        let config = format!(
            "[targets.app]\nkind = \"sql\"\nurl = \"{}\"\n{pw}batch_size = 3\n\n[policies]\n\
             main = \"main.toml\"\nleaver = \"leaver.toml\"\nsoftdelete = \"softdelete.toml\"\n\
             harddelete = \"harddelete.toml\"\nbcrypt = \"bcrypt.toml\"\n",
            db.url()
        );
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        w("dirsync.toml", &config);
        w("main.toml", &policy("ignore", "argon2id", true, None, "must_change"));
        w("leaver.toml", &policy("leaver", "argon2id", true, None, "must_change"));
        w(
            "softdelete.toml",
            &policy("delete", "argon2id", true, None, "must_change"),
        );
        w(
            "harddelete.toml",
            &policy("delete", "argon2id", false, None, "must_change"),
        );
        w("bcrypt.toml", &policy("ignore", "bcrypt", true, None, "must_change"));
        // Broken variants, each in its own config so the others still load.
        for (name, p) in [
            (
                "missing",
                policy("ignore", "argon2id", true, Some(("phone", "phone_no")), "must_change"),
            ),
            ("badtype", policy("ignore", "argon2id", true, None, "nickname")),
        ] {
            w(&format!("{name}.toml"), &p);
            w(
                &format!("{name}-dirsync.toml"),
                &format!(
                    "[targets.app]\nkind = \"sql\"\nurl = \"{}\"\n{pw}\n[policies]\n{name} = \"{name}.toml\"\n",
                    db.url()
                ),
            );
        }
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    results: String,
}

fn dirsync(db: &dyn Db, config: &Path, args: &[&str], csv: Option<(&str, &str)>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    cmd.arg("--config").arg(config).args(args);
    let dir = config.parent().expect("config dir");
    let mut results = None;
    if let Some((name, text)) = csv {
        let file = dir.join(format!("{name}.csv"));
        std::fs::write(&file, text).expect("write csv");
        let r = dir.join(format!("{name}.results.csv"));
        cmd.arg(&file).arg("--results").arg(&r);
        results = Some(r);
    }
    if let Some(pw) = db.password() {
        cmd.env(PW_VAR, pw);
    }
    let out = cmd.output().expect("run dirsync");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        results: results
            .and_then(|r| std::fs::read_to_string(r).ok())
            .unwrap_or_default(),
    };
    for secret in [MARIADB_PW, "Pa55word!"] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret) && !run.results.contains(secret));
    }
    run
}

const HEADER: &str =
    "username,firstname,surname,email,title,department,groups,status,change password next time,password\n";

fn writes(db: &dyn Db) -> String {
    db.q("SELECT n FROM writes")
}

fn user(db: &dyn Db, login: &str) -> String {
    db.q(&format!(
        "SELECT given_name, family_name, email, COALESCE(job_title, '<null>'), COALESCE(department, '<null>'), \
         state, CASE WHEN left_at IS NULL THEN 'in' ELSE 'left' END, CASE WHEN must_change THEN 1 ELSE 0 END, \
         CASE WHEN deleted_at IS NULL THEN '-' ELSE 'deleted' END FROM app_users WHERE login = '{login}'"
    ))
}

fn groups(db: &dyn Db, login: &str) -> String {
    db.q(&format!(
        "SELECT grp FROM app_groups WHERE login = '{login}' ORDER BY grp"
    ))
    .replace('\n', ",")
}

fn hash(db: &dyn Db, login: &str) -> String {
    db.q(&format!(
        "SELECT COALESCE(pw_hash, '') FROM app_users WHERE login = '{login}'"
    ))
}

/// `csv` without the lines that start with `prefix`.
fn without(csv: &str, prefix: &str) -> String {
    csv.lines()
        .filter(|l| !l.starts_with(prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn suite(db: &dyn Db) {
    let n = db.name();
    let s = Setup::new(db);
    let main = s.path("dirsync.toml");
    // `dirsync CMD --policy POLICY DAY.csv`, the file holding `csv`.
    let run = |cmd: &str, policy: &str, day: &str, csv: &str| {
        dirsync(db, &main, &[cmd, "--policy", policy], Some((day, csv)))
    };

    // A mapping naming a missing column, or a column of the wrong type, is
    // reported before anything is read or written: exit 2.
    let csv1 = format!(
        "{HEADER}\
jsmith,Jane,Smith,jane@example.org,Clerk,Finance,staff;vpn,,1,Pa55word!
bob,Bob,\"Robert'); DROP TABLE users;--\",bob@example.org,%,_,staff,,,
nul,NULL,Null,nul@example.org,_,NULL,,,,
akhan,Aisha,Khan,aisha@example.org,Lead,Sales,staff;finance,,,
toolong,Tom,Long,tom@example.org,Senior Principal Engineer,IT,staff,,,
"
    );
    for (cfg, want) in [
        ("missing-dirsync.toml", "column app_users.phone_no does not exist"),
        (
            "badtype-dirsync.toml",
            "sql.must_change_column: column app_users.nickname is",
        ),
    ] {
        for cmd in [&["check"][..], &["apply"][..], &["config", "check"][..]] {
            let csv = (cmd[0] != "config").then_some(("day1", csv1.as_str()));
            let r = dirsync(db, &s.path(cfg), cmd, csv);
            assert_eq!(r.code, 2, "{n} {cfg} {cmd:?}: {}{}", r.stdout, r.stderr);
            assert!(r.stderr.contains(want), "{n} {cfg} {cmd:?}: {}", r.stderr);
        }
    }
    assert_eq!(writes(db), "0", "{n}: nothing written by a broken mapping");
    assert_eq!(db.q("SELECT COUNT(*) FROM app_users"), "0");

    // `config check` connects and checks the good mapping too.
    let r = dirsync(db, &main, &["config", "check"], None);
    assert_eq!(r.code, 0, "{n}: {}{}", r.stdout, r.stderr);

    // A dry run already names the value too long for its column (where the
    // catalogue knows a length) and writes nothing.
    let r = run("check", "main", "day1", &csv1);
    if n != "sqlite" {
        assert_eq!(r.code, 1, "{n}: {}{}", r.stdout, r.stderr);
        assert!(
            r.results
                .contains("would fail: 25 characters for column app_users.job_title, which holds at most 10"),
            "{n}: {}",
            r.results
        );
    }
    assert_eq!(writes(db), "0", "{n}: check writes nothing");

    // Day 1: adds, injection-looking values, passwords, must-change, groups,
    // and one row too long for varchar(10) that fails alone.
    db.exec("INSERT INTO app_groups (login, grp) VALUES ('jsmith', 'app-admins')");
    let w0 = writes(db);
    let r = run("apply", "main", "day1", &csv1);
    assert_eq!(r.code, 1, "{n}: {}{}", r.stdout, r.stderr);
    assert!(r.results.contains(db.too_long()), "{n}: {}", r.results);
    assert!(r.stdout.contains("4 done, 1 failed"), "{n}: {}", r.stdout);
    assert_eq!(db.q("SELECT COUNT(*) FROM app_users WHERE login = 'toolong'"), "0");
    assert_eq!(
        user(db, "jsmith"),
        "Jane|Smith|jane@example.org|Clerk|Finance|active|in|1|-",
        "{n}"
    );
    assert_eq!(
        user(db, "bob"),
        "Bob|Robert'); DROP TABLE users;--|bob@example.org|%|_|active|in|0|-",
        "{n}"
    );
    assert_eq!(user(db, "nul"), "NULL|Null|nul@example.org|_|NULL|active|in|0|-", "{n}");
    assert_eq!(db.q("SELECT id FROM users"), "42", "{n}: the other table is untouched");
    assert_eq!(groups(db, "jsmith"), "app-admins,staff,vpn", "{n}");
    assert_eq!(groups(db, "akhan"), "finance,staff", "{n}");
    assert_eq!(groups(db, "nul"), "", "{n}");
    let h = hash(db, "jsmith");
    assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{n}: {h}");
    let parsed = argon2::PasswordHash::new(&h).expect("PHC string");
    assert!(
        argon2::Argon2::default().verify_password(b"Pa55word!", &parsed).is_ok(),
        "{n}: hash verifies"
    );
    assert!(
        hash(db, "akhan").starts_with("$argon2id$"),
        "{n}: generated password stored hashed"
    );
    assert_ne!(writes(db), w0);

    // Unchanged re-run (without the bad row): nothing written at all.
    let csv1b = without(&csv1, "toolong");
    let w1 = writes(db);
    let r = run("apply", "main", "day1b", &csv1b);
    assert_eq!(r.code, 0, "{n}: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("4 unchanged"), "{n}: {}", r.stdout);
    assert_eq!(writes(db), w1, "{n}: an unchanged run writes nothing");

    // Day 2: update, group change, a leaver; akhan absent (ignored).
    let csv2 = format!(
        "{HEADER}\
jsmith,Jane,Smith-Jones,jane@example.org,Manager,Finance,staff;finance,,,
bob,Bob,\"Robert'); DROP TABLE users;--\",bob@example.org,%,_,staff,leaver,,
nul,NULL,Null,nul@example.org,_,NULL,,,,
"
    );
    let r = run("apply", "main", "day2", &csv2);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    assert_eq!(
        user(db, "jsmith"),
        "Jane|Smith-Jones|jane@example.org|Manager|Finance|active|in|1|-",
        "{n}"
    );
    assert_eq!(
        groups(db, "jsmith"),
        "app-admins,finance,staff",
        "{n}: unmanaged group kept"
    );
    assert_eq!(
        user(db, "bob"),
        "Bob|Robert'); DROP TABLE users;--|bob@example.org|%|_|leaver|left|0|-",
        "{n}"
    );
    assert_eq!(groups(db, "bob"), "", "{n}: leaver's managed groups stripped");
    assert_eq!(
        user(db, "akhan"),
        "Aisha|Khan|aisha@example.org|Lead|Sales|active|in|0|-",
        "{n}"
    );

    // Day 3: the leaver rejoins with must-change; groups come back.
    let csv3 = format!(
        "{HEADER}\
jsmith,Jane,Smith-Jones,jane@example.org,Manager,Finance,staff;finance,,,
bob,Bob,\"Robert'); DROP TABLE users;--\",bob@example.org,%,_,staff;vpn,,1,
nul,NULL,Null,nul@example.org,_,NULL,,,,
"
    );
    let r = run("apply", "main", "day3", &csv3);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    assert!(r.stdout.contains("1 joiner"), "{n}: {}", r.stdout);
    assert_eq!(
        user(db, "bob"),
        "Bob|Robert'); DROP TABLE users;--|bob@example.org|%|_|active|in|1|-",
        "{n}"
    );
    assert_eq!(groups(db, "bob"), "staff,vpn", "{n}");

    // Absent = leaver: akhan (not in the file) becomes a leaver.
    let r = run("apply", "leaver", "day4", &csv3);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    assert_eq!(
        user(db, "akhan"),
        "Aisha|Khan|aisha@example.org|Lead|Sales|leaver|left|0|-",
        "{n}"
    );
    assert_eq!(groups(db, "akhan"), "", "{n}");

    // Absent = delete with deleted_at: soft delete, then out of scope.
    let csv5 = without(&csv3, "nul,");
    let r = run("apply", "softdelete", "day5", &csv5);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    assert!(user(db, "nul").ends_with("|deleted"), "{n}: {}", user(db, "nul"));
    assert!(user(db, "akhan").ends_with("|deleted"), "{n}: {}", user(db, "akhan"));
    let w5 = writes(db);
    let r = run("check", "softdelete", "day5b", &csv5);
    assert!(
        r.stdout.contains("2 unchanged") && !r.stdout.contains("delete"),
        "{n}: {}",
        r.stdout
    );
    assert_eq!(writes(db), w5);

    // A soft-deleted account named again is revived, not duplicated.
    let r = run("apply", "main", "day6", &csv3);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    assert_eq!(user(db, "nul"), "NULL|Null|nul@example.org|_|NULL|active|in|0|-", "{n}");

    // Absent = delete without deleted_at: the row goes, with its managed groups.
    let r = run("apply", "harddelete", "day7", &csv5);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    assert_eq!(
        db.q("SELECT COUNT(*) FROM app_users WHERE login IN ('nul', 'akhan')"),
        "0",
        "{n}"
    );
    assert_eq!(groups(db, "jsmith"), "app-admins,finance,staff", "{n}");

    // bcrypt for applications that expect it.
    let csv8 = format!("{HEADER}bc,Bea,Crypt,bea@example.org,,,,,,Pa55word!\n");
    let r = run("apply", "bcrypt", "day8", &csv8);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    let h = hash(db, "bc");
    assert!(h.starts_with("$2b$04$"), "{n}: {h}");
    assert!(
        bcrypt::verify("Pa55word!", &h).unwrap_or(false),
        "{n}: bcrypt hash verifies"
    );
    assert_eq!(db.q("SELECT id FROM users"), "42", "{n}");

    // A backslash is data, not an escape (PostgreSQL streams new rows with
    // COPY, whose text format gives it a meaning, when a batch has two
    // rows or more): the characters stored are the file's.
    let csv9 =
        format!("{HEADER}bs,Back,Slash,bs@example.org,,Sales\\East,staff,,,\nbs2,B,S,bs2@example.org,,R\\D,,,,\n");
    let r = run("apply", "main", "day9", &csv9);
    assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
    let chars = |login: &str| {
        db.q(&format!(
            "SELECT LENGTH(department) FROM app_users WHERE login = '{login}'"
        ))
    };
    assert_eq!((chars("bs"), chars("bs2")), ("10".into(), "3".into()), "{n}");
    assert_eq!(groups(db, "bs"), "staff", "{n}");

    // PostgreSQL refuses COPY into a table with row-level security: the
    // batch goes in as INSERTs, and so do the run's later ones.
    if n == "postgres" {
        db.exec(
            "ALTER TABLE app_users ENABLE ROW LEVEL SECURITY; ALTER TABLE app_users FORCE ROW LEVEL SECURITY;
             CREATE POLICY every_row ON app_users USING (true) WITH CHECK (true);",
        );
        let rows: String = (1..=7)
            .map(|i| format!("rls{i},R,L,rls{i}@example.org,,Dept{i},staff,,,\n"))
            .collect();
        let r = run("apply", "main", "day10", &format!("{HEADER}{rows}"));
        assert_eq!(r.code, 0, "{n}: {}{}{}", r.stdout, r.stderr, r.results);
        assert!(r.stdout.contains("7 done"), "{n}: {}", r.stdout);
        assert!(r.stderr.contains("refused COPY"), "{n}: {}", r.stderr);
        assert_eq!(
            r.stderr.matches("refused COPY").count(),
            1,
            "{n}: said once: {}",
            r.stderr
        );
        assert_eq!(
            db.q("SELECT COUNT(*) FROM app_users WHERE login LIKE 'rls%' AND department LIKE 'Dept_'"),
            "7"
        );
        assert_eq!(groups(db, "rls7"), "staff", "{n}");
    }
}

#[test]
fn sql_suite_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Lite {
        path: dir.path().join("app.db"),
        rt: tokio::runtime::Runtime::new().expect("runtime"),
    };
    db.exec(&sqlite_schema());
    suite(&db);
}

#[test]
fn sql_suite_postgres() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}"));
    pg.psql(PG_SCHEMA).unwrap_or_else(|e| panic!("schema: {e}"));
    suite(&Pg(pg));
}

#[test]
fn sql_suite_mariadb() {
    let m = servers::MariaDb::start().unwrap_or_else(|e| panic!("MariaDB did not start: {e}"));
    m.query(&maria_schema()).unwrap_or_else(|e| panic!("schema: {e}"));
    suite(&Maria(m));
}

/// The example config for `kind` (postgres / mariadb), pointed at `url`
/// with the password in a file, in a temp dir.
fn example_config(kind: &str, url: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example").join(kind);
    let config = std::fs::read_to_string(src.join("dirsync.toml")).expect("example dirsync.toml");
    let secret = dir.path().join("db.secret");
    std::fs::write(&secret, format!("{password}\n")).expect("secret");
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("url = ") {
                format!("url = \"{url}\"")
            } else if l.starts_with("password_file = ") {
                format!("password_file = \"{}\"", secret.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("dirsync.toml"), config).expect("write config");
    std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
    std::fs::copy(src.join("policies/app.toml"), dir.path().join("policies/app.toml")).expect("copy policy");
    dir
}

/// The example config and schema fit together: `config check` passes and
/// the sample file applies.
fn example_suite(db: &dyn Db, kind: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example");
    let schema = std::fs::read_to_string(src.join(kind).join("schema.sql")).expect("schema.sql");
    db.exec(&schema);
    let dir = example_config(kind, &db.url(), db.password().unwrap_or(""));
    let config = dir.path().join("dirsync.toml");
    let r = dirsync(db, &config, &["config", "check"], None);
    assert_eq!(r.code, 0, "{kind}: {}{}", r.stdout, r.stderr);
    let sample = std::fs::read_to_string(src.join("sample.csv")).expect("sample.csv");
    let r = dirsync(db, &config, &["apply"], Some(("sample", &sample)));
    assert_eq!(r.code, 1, "{kind}: {}{}{}", r.stdout, r.stderr, r.results);
    assert!(r.stdout.contains("4 new"), "{kind}: {}", r.stdout);
    assert_eq!(
        db.q("SELECT login, state, source, CASE WHEN must_change THEN 1 ELSE 0 END FROM app_users WHERE login = 'mobrien'"),
        "mobrien|active|hr|1"
    );
    assert!(db
        .q("SELECT pw_hash FROM app_users WHERE login = 'akhan'")
        .starts_with("$argon2id$"));
    assert_eq!(
        db.q("SELECT grp FROM app_user_groups WHERE login = 'bnguyen' ORDER BY grp")
            .replace('\n', ","),
        "eng-wiki,staff,vpn"
    );
}

#[test]
fn example_config_postgres() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}"));
    example_suite(&Pg(pg), "postgres");
}

#[test]
fn example_config_mariadb() {
    let m = servers::MariaDb::start().unwrap_or_else(|e| panic!("MariaDB did not start: {e}"));
    m.query(&maria_user()).unwrap_or_else(|e| panic!("user: {e}"));
    example_suite(&Maria(m), "mariadb");
}
