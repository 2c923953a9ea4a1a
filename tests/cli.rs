//! Black-box tests of the spine: the built `dirsync` binary on files against
//! a fresh SQLite database, checked through a separate connection.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::Row;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

struct Env {
    dir: tempfile::TempDir,
}

const POLICY: &str = r#"
target = "db"
[fields.user_type]
allowed = ["Standard", "Privileged"]
default = "Standard"
[sync]
absent = "ABSENT"
protected = ["admin"]
[limits]
leavers = { max_percent = 50.0 }
adds = { max = 100 }
[groups]
managed = ["staff", "vpn"]
[sql]
table = "users"
key = "username"
status_column = "status"
left_at_column = "left_at"
must_change_column = "must_change"
password_column = "password_hash"
argon2_memory_kib = 8
argon2_iterations = 1
[sql.columns]
firstname = "first_name"
surname = "last_name"
email = "email"
title = "title"
user_type = "user_type"
[sql.groups]
table = "user_groups"
user_column = "username"
group_column = "group_name"
"#;

impl Env {
    fn new(absent: &str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
        std::fs::write(
            dir.path().join("dirsync.toml"),
            "[targets.db]\nkind = \"sql\"\nurl = \"sqlite://state/dir.db\"\ncreate_schema = true\n[policies]\nstaff = \"policies/staff.toml\"\n",
        )
        .expect("write config");
        std::fs::write(dir.path().join("policies/staff.toml"), POLICY.replace("ABSENT", absent)).expect("write policy");
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write csv");
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(self.path("dirsync.toml"))
            .args(args)
            .output()
            .expect("run dirsync")
    }

    fn sync(&self, cmd: &str, file: &Path, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec![cmd, file.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let results = std::fs::read_to_string(file.with_file_name(format!(
            "{}.results.csv",
            file.file_stem().and_then(|s| s.to_str()).unwrap_or("")
        )))
        .unwrap_or_default();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), results, stdout)
    }

    /// Replace `from` with `to` in the file `name` (config or policy).
    fn edit(&self, name: &str, from: &str, to: &str) {
        let path = self.path(name);
        let text = std::fs::read_to_string(&path).expect("read").replace(from, to);
        std::fs::write(&path, text).expect("write");
    }

    /// A connection to the target database, opened in `mode` (ro, rwc).
    fn pool(&self, rt: &tokio::runtime::Runtime, mode: &str) -> SqlitePool {
        let url = format!("sqlite://{}?mode={mode}", self.path("state/dir.db").display());
        rt.block_on(SqlitePoolOptions::new().max_connections(1).connect(&url))
            .expect("connect")
    }

    /// Make the application's own tables in the target database.
    fn create_tables(&self, stmts: &[&str]) {
        std::fs::create_dir_all(self.path("state")).expect("mkdir");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let pool = self.pool(&rt, "rwc");
        for stmt in stmts {
            rt.block_on(sqlx::query(stmt).execute(&pool)).expect("create");
        }
    }

    /// Rows of `users` as "username|first|last|email|title|type|status|must_change|groups", read independently.
    fn users(&self) -> Vec<String> {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let pool = self.pool(&rt, "ro");
        rt.block_on(async {
            let rows = sqlx::query(
                "SELECT u.username, u.first_name, u.last_name, u.email, u.title, u.user_type, u.status, u.must_change, \
                 (SELECT group_concat(group_name, ';') FROM (SELECT group_name FROM user_groups g WHERE g.username = u.username ORDER BY group_name)) \
                 FROM users u ORDER BY u.username",
            )
            .fetch_all(&pool)
            .await
            .expect("select");
            rows.iter()
                .map(|r| {
                    (0..9)
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i)
                                .ok()
                                .flatten()
                                .or_else(|| r.try_get::<Option<i64>, _>(i).ok().flatten().map(|n| n.to_string()))
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect()
        })
    }

    fn password_hash(&self, user: &str) -> Option<String> {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let pool = self.pool(&rt, "ro");
        rt.block_on(
            sqlx::query_scalar::<_, Option<String>>("SELECT password_hash FROM users WHERE username = ?")
                .bind(user)
                .fetch_one(&pool),
        )
        .ok()
        .flatten()
    }
}

fn column(results: &str, row: usize, name: &str) -> String {
    let mut r = csv::ReaderBuilder::new().from_reader(results.as_bytes());
    let headers = r.headers().expect("headers").clone();
    let i = headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {headers:?}"));
    let rec = r
        .records()
        .nth(row)
        .unwrap_or_else(|| panic!("no row {row}"))
        .expect("record");
    rec.get(i).unwrap_or("").to_string()
}

const FIRST: &str = "\
Username,First Name,Last Name,E-mail Address,Job Title,User Type,Belong to,Change password next time,Notes
jsmith,Jane,Smith,jane@example.org,Accountant,,staff;vpn,1,first day Monday
bnguyen,Bảo,Nguyễn,bao@example.org,Engineer,Privileged,staff,,
broken,Tom,Broken,not-an-email,Clerk,,staff,,
";

#[test]
fn apply_creates_accounts_and_a_second_apply_changes_nothing() {
    let env = Env::new("ignore");
    let csv = env.file("hr.csv", FIRST);
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 1, "one row is rejected: {out}");
    assert!(out.contains("2 new, 1 error"), "{out}");
    assert_eq!(
        env.users(),
        vec![
            "bnguyen|Bảo|Nguyễn|bao@example.org|Engineer|Privileged|active|1|staff",
            "jsmith|Jane|Smith|jane@example.org|Accountant|Standard|active|1|staff;vpn",
        ]
    );
    assert!(env.password_hash("jsmith").is_some_and(|h| h.starts_with("$argon2id$")));
    // Results: input columns in order plus the verdict, one line per row.
    let mut lines = results.lines();
    assert_eq!(
        lines.next(),
        Some("Username,First Name,Last Name,E-mail Address,Job Title,User Type,Belong to,Change password next time,Notes,change,result,message")
    );
    assert_eq!(column(&results, 0, "change"), "new");
    assert_eq!(column(&results, 0, "result"), "done");
    assert_eq!(column(&results, 0, "Notes"), "first day Monday");
    assert_eq!(column(&results, 2, "change"), "error");
    assert_eq!(column(&results, 2, "result"), "skipped");
    let msg = column(&results, 2, "message");
    assert!(
        msg.contains("row 3 (line 4)") && msg.contains("E-mail Address") && msg.contains("not an email"),
        "{msg}"
    );
    assert!(
        out.contains("\"Notes\" is not known"),
        "unknown column is reported: {out}"
    );

    let before = env.users();
    let hash = env.password_hash("jsmith");
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 unchanged, 1 error"), "{out}");
    assert_eq!(column(&results, 0, "change"), "unchanged");
    assert_eq!(column(&results, 1, "change"), "unchanged");
    assert_eq!(env.users(), before);
    assert_eq!(env.password_hash("jsmith"), hash, "a re-run never resets a password");
}

#[test]
fn check_previews_and_writes_nothing() {
    let env = Env::new("ignore");
    let csv = env.file("hr.csv", FIRST);
    let (code, results, out) = env.sync("check", &csv, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("preview, nothing written"), "{out}");
    assert_eq!(column(&results, 0, "result"), "preview");
    assert!(env.users().is_empty());
}

#[test]
fn updates_leavers_joiners_and_absent_accounts() {
    let env = Env::new("leaver");
    let head = "username,firstname,surname,email,title,groups,status\n";
    let first = env.file(
        "night1.csv",
        &format!(
            "{head}a,Ann,Able,a@example.org,Clerk,staff,\nb,Ben,Bold,b@example.org,Clerk,staff;vpn,\nc,Cat,Cole,c@example.org,Clerk,staff,\nd,Dan,Dorn,d@example.org,Clerk,staff,\n"
        ),
    );
    assert_eq!(env.sync("apply", &first, &[]).0, 0);
    // Night 2: a is promoted, b leaves, c is missing (absent → leaver), d unchanged.
    let second = env.file(
        "night2.csv",
        &format!("{head}a,Ann,Able,a@example.org,Manager,staff;vpn,\nb,Ben,Bold,b@example.org,Clerk,staff;vpn,leaver\nd,Dan,Dorn,d@example.org,Clerk,staff,\n"),
    );
    let (code, results, out) = env.sync("apply", &second, &[]);
    assert_eq!(code, 0, "{out}\n{results}");
    assert_eq!(column(&results, 0, "change"), "update");
    assert_eq!(column(&results, 0, "message"), "title: Clerk → Manager; groups +vpn");
    assert_eq!(column(&results, 1, "change"), "leaver");
    assert_eq!(column(&results, 3, "change"), "absent");
    assert_eq!(column(&results, 3, "username"), "c");
    assert!(column(&results, 3, "message").contains("made a leaver"));
    assert_eq!(
        env.users(),
        vec![
            "a|Ann|Able|a@example.org|Manager|Standard|active|1|staff;vpn",
            "b|Ben|Bold|b@example.org|Clerk|Standard|leaver|1|",
            "c|Cat|Cole|c@example.org|Clerk|Standard|leaver|1|",
            "d|Dan|Dorn|d@example.org|Clerk|Standard|active|1|staff",
        ]
    );
    // Night 3: b rejoins (status empty) with its groups.
    let third = env.file(
        "night3.csv",
        &format!("{head}a,Ann,Able,a@example.org,Manager,staff;vpn,\nb,Ben,Bold,b@example.org,Clerk,staff,\nd,Dan,Dorn,d@example.org,Clerk,staff,\n"),
    );
    let (code, results, out) = env.sync("apply", &third, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(column(&results, 1, "change"), "joiner");
    assert!(env
        .users()
        .contains(&"b|Ben|Bold|b@example.org|Clerk|Standard|active|1|staff".to_string()));
}

#[test]
fn safety_limit_holds_leavers_until_an_operator_allows_it() {
    let env = Env::new("leaver");
    let head = "username,firstname,surname,email\n";
    let all: String = (0..10).map(|i| format!("u{i},U,S,u{i}@example.org\n")).collect();
    assert_eq!(
        env.sync("apply", &env.file("all.csv", &format!("{head}{all}")), &[]).0,
        0
    );
    // Only 4 of 10 remain: 6 absent → leavers = 60% > 50%.
    let few: String = (0..4).map(|i| format!("u{i},U,S,u{i}@example.org\n")).collect();
    let few = env.file("few.csv", &format!("{head}{few}"));
    let (code, results, out) = env.sync("apply", &few, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("held: 6 leavers exceed limits.leavers"), "{out}");
    assert_eq!(column(&results, 4, "result"), "held");
    assert!(env.users().iter().all(|u| u.contains("|active|")));
    let (code, _, out) = env.sync("apply", &few, &["--allow-over-limit"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(env.users().iter().filter(|u| u.contains("|leaver|")).count(), 6);
}

#[test]
fn rejected_files_write_nothing_and_explain() {
    let env = Env::new("leaver");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty file"),
        ("bom", vec![0xEF, 0xBB, 0xBF], "empty file"),
        ("header", b"username,firstname,surname,email\n".to_vec(), "no data rows"),
        (
            "cut",
            b"username,firstname,surname,email\na,A,B,a@example.org\nb,B,".to_vec(),
            "truncated",
        ),
        (
            "quote",
            b"username,firstname,surname,email\na,\"A,B,a@example.org\n".to_vec(),
            "truncated",
        ),
        (
            "latin1",
            b"username,firstname,surname,email\na,Zo\xEB,B,a@example.org\n".to_vec(),
            "not valid UTF-8",
        ),
        (
            "missing",
            b"username,firstname,email\na,A,a@example.org\n".to_vec(),
            "required column(s) missing: surname",
        ),
    ];
    for (name, bytes, why) in cases {
        let p = env.path(&format!("{name}.csv"));
        std::fs::write(&p, &bytes).expect("write");
        let (code, results, out) = env.sync("apply", &p, &[]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(out.contains(why), "{name}: {out}");
        assert!(
            results.contains("file rejected, nothing was written"),
            "{name}: {results}"
        );
    }
    // A rejected file never reaches the target: its database was not even created.
    assert!(
        !env.path("state/dir.db").exists(),
        "the target was opened for a rejected file"
    );
}

#[test]
fn passwords_from_the_file_are_hashed_and_never_echoed() {
    let env = Env::new("ignore");
    let csv = env.file(
        "pw.csv",
        "username,firstname,surname,email,password\npat,Pat,Lee,pat@example.org,Correct-Horse-9\n",
    );
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!results.contains("Correct-Horse-9") && !out.contains("Correct-Horse-9"));
    assert_eq!(column(&results, 0, "password"), "(hidden)");
    let hash = env.password_hash("pat").expect("hash stored");
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(&hash).expect("PHC string");
    assert!(argon2::Argon2::default()
        .verify_password(b"Correct-Horse-9", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default().verify_password(b"wrong", &parsed).is_err());
}

#[test]
fn hostile_values_are_stored_verbatim_and_neutralised_in_results() {
    let env = Env::new("ignore");
    let csv = env.file(
        "evil.csv",
        "username,firstname,surname,email,title\nrobert,\"Robert'); DROP TABLE users;--\",=HYPERLINK(\"x\"),bobby@example.org,%_NULL\n",
    );
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        env.users(),
        vec!["robert|Robert'); DROP TABLE users;--|=HYPERLINK(\"x\")|bobby@example.org|%_NULL|Standard|active|1|"]
    );
    assert_eq!(column(&results, 0, "surname"), "'=HYPERLINK(\"x\")");
}

#[test]
fn template_help_and_config_check() {
    let env = Env::new("ignore");
    let out = env.run(&["template"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("username,firstname,surname,email,title,department,site,user_type,phone,groups,status,change password next time\n"), "{text}");
    // The template itself is a valid file for its policy.
    let tpl = env.file("tpl.csv", &text);
    assert_eq!(env.sync("check", &tpl, &[]).0, 0);

    let out = env.run(&["config", "check"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("policy staff"));

    // A typo in a policy fails config check with the file and the key.
    env.edit("policies/staff.toml", "[sync]", "[sync]\nabsnet = \"delete\"");
    let out = env.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("staff.toml") && err.contains("absnet"), "{err}");

    let help = Command::new(BIN).arg("--help").output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    for cmd in ["check", "apply", "template", "config"] {
        assert!(help.contains(cmd), "{help}");
    }
}

#[test]
fn a_failing_row_is_reported_and_the_others_are_applied() {
    let env = Env::new("ignore");
    // An application schema with a constraint dirsync does not know about.
    env.create_tables(&[
        "CREATE TABLE users (username TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, title TEXT CHECK (length(title) <= 10), user_type TEXT, status TEXT, left_at INTEGER, must_change INTEGER, password_hash TEXT)",
        "CREATE TABLE user_groups (username TEXT, group_name TEXT)",
    ]);
    let csv = env.file(
        "rows.csv",
        "username,firstname,surname,email,title\na,A,A,a@example.org,Clerk\nb,B,B,b@example.org,Chief Executive Officer\nc,C,C,c@example.org,Clerk\n",
    );
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(column(&results, 1, "result"), "failed");
    assert!(
        column(&results, 1, "message").contains("CHECK constraint failed"),
        "{results}"
    );
    assert_eq!(column(&results, 0, "result"), "done");
    assert_eq!(column(&results, 2, "result"), "done");
    assert_eq!(env.users().len(), 2);
}

#[test]
fn a_schema_missing_a_mapped_column_is_reported_before_any_write() {
    let env = Env::new("ignore");
    env.edit("dirsync.toml", "create_schema = true", "create_schema = false");
    // No `title` column, no membership table.
    env.create_tables(&["CREATE TABLE users (username TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, user_type TEXT, status TEXT, left_at INTEGER, must_change INTEGER, password_hash TEXT)"]);
    let csv = env.file("hr.csv", FIRST);
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("users.title") && out.contains("user_groups.username"),
        "{out}"
    );
    assert!(results.contains("not processed: target unavailable"), "{results}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let n: i64 = rt
        .block_on(sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&env.pool(&rt, "ro")))
        .expect("count");
    assert_eq!(n, 0, "nothing written");
}

#[test]
fn a_target_url_opened_read_only_is_never_written() {
    let env = Env::new("ignore");
    let first = env.file("hr.csv", FIRST);
    let (code, _, out) = env.sync("apply", &first, &[]);
    assert_eq!(code, 1, "the broken row fails, the others are written: {out}");
    let before = env.users();
    assert_eq!(before.len(), 2, "{before:?}");
    // The same database, opened read-only by the URL: batches must not go
    // through the embedded writer (which opens the file itself) but be
    // refused row by row by the database.
    env.edit("dirsync.toml", "sqlite://state/dir.db", "sqlite://state/dir.db?mode=ro");
    env.edit("dirsync.toml", "create_schema = true", "create_schema = false");
    let csv = env.file(
        "joiner.csv",
        &format!("{FIRST}newbie,New,Joiner,new@example.org,Clerk,,staff,,\n"),
    );
    let (code, results, out) = env.sync("apply", &csv, &[]);
    assert_eq!(code, 1, "{out}\n{results}");
    assert_eq!(column(&results, 3, "result"), "failed", "{results}");
    assert!(column(&results, 3, "message").contains("readonly"), "{results}");
    assert_eq!(env.users(), before, "nothing written");
}

/// Run dirsync with `args`, its stdout closed before it writes (as
/// `dirsync … | head -0` would): exit code and stderr.
fn with_stdout_closed(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(env.path("dirsync.toml"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dirsync");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_does_not_crash_a_run() {
    let env = Env::new("ignore");
    let csv = env.file("hr.csv", FIRST);
    let (code, stderr) = with_stdout_closed(&env, &["apply", csv.to_str().expect("utf-8 path")]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(1), "the broken row fails, the others are written: {stderr}");
    assert_eq!(env.users().len(), 2);
    // The other commands alike.
    let (code, stderr) = with_stdout_closed(&env, &["runs"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
}
