//! The one journaled run pipeline (`sync::drive`) as a user meets it from
//! both ends: `dirsync apply` on the command line and `dirsync serve`. The
//! built binaries, temporary configs, a real PostgreSQL on loopback, and
//! independent clients (`sqlite3`, `psql`, the `.eml` files) to check.
//!
//! - kill -9 of a CLI `apply` at several points, then `apply` again until it
//!   finishes: each user once, one credentials mail per user whose password
//!   verifies against the stored hash, hashes never changed, one results
//!   file, one run, passwords forgotten;
//! - the target down before the snapshot, CLI and daemon alike: the same
//!   results file, run failed, file kept in processing/; resumed once the
//!   server is back;
//! - the target gone mid-run, CLI and daemon alike: applied rows done, the
//!   rest failed; resumed once the server is back, each row once.

#[path = "support/servers.rs"]
mod servers;

#[path = "common/mime.rs"]
#[allow(dead_code)]
mod mime;

#[path = "common/serve.rs"]
mod serve;
use serve::{cheap_example_policy, roster, sqlite, wait_until, Daemon};

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use argon2::PasswordVerifier;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

/// The example staff policy with cheap argon2 parameters and room for big files.
fn policy_text() -> String {
    cheap_example_policy().replace("adds = { max = 10000 }", "adds = { max = 100000 }")
}

/// A temporary dirsync installation: config, policy, inbox, state, mail folder.
struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    inbox: PathBuf,
    journal: PathBuf,
    mail: PathBuf,
}

impl Env {
    /// `target`: the `url = …` of the target; `extra`: more config (mail).
    fn new(target_url: &str, batch: usize, extra: &str) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        for d in ["policies", "inbox", "staging", "mail", "files"] {
            fs::create_dir_all(dir.join(d)).expect("mkdir"); // ok: test
        }
        fs::write(dir.join("policies/staff.toml"), policy_text()).expect("write policy"); // ok: test
        let config = dir.join("dirsync.toml");
        fs::write(
            &config,
            format!(
                "[service]\nstate_dir = \"state\"\n\n[targets.staff]\nkind = \"sql\"\nurl = \"{target_url}\"\n\
                 create_schema = true\nbatch_size = {batch}\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n\
                 [[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\nsettle_seconds = 1\n\n{extra}"
            ),
        )
        .expect("write config"); // ok: test
        Env {
            inbox: dir.join("inbox"),
            journal: dir.join("state/journal.db"),
            mail: dir.join("mail"),
            config,
            dir,
            _tmp: tmp,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("DIRSYNC_LOG", "warn");
        c
    }

    /// `dirsync --config … ARGS`, run to the end (bounded: 120 s).
    fn run(&self, args: &[&str]) -> Out {
        let mut c = self.command(args);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = c.spawn().expect("run dirsync"); // ok: test
        finish(child, Duration::from_secs(120), &format!("dirsync {args:?}"))
    }

    /// `dirsync apply FILE` in the background (for kill -9).
    fn spawn_apply(&self, file: &Path, extra: &[&str]) -> Child {
        let f = file.to_string_lossy().into_owned();
        let mut args = vec!["apply", f.as_str()];
        args.extend_from_slice(extra);
        let mut c = self.command(&args);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("spawn dirsync apply") // ok: test
    }

    /// A file outside the inbox, for the command line.
    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.dir.join("files").join(name);
        fs::write(&p, content).expect("write file"); // ok: test
        p
    }

    /// Write a file elsewhere and rename it into the inbox.
    fn drop_renamed(&self, name: &str, content: &[u8]) {
        let staged = self.dir.join("staging").join(name);
        fs::write(&staged, content).expect("write staged file"); // ok: test
        fs::rename(&staged, self.inbox.join(name)).expect("rename into inbox"); // ok: test
    }

    fn archived(&self, name: &str) -> Option<PathBuf> {
        let archive = self.inbox.join("archive");
        for day in fs::read_dir(&archive).ok()?.flatten() {
            let p = day.path().join(name);
            if p.exists() {
                return Some(p);
            }
        }
        None
    }

    /// One query on the journal with the `sqlite3` program.
    /// Wait until the daemon filed run `id` of `NAME.csv` into the archive
    /// and the journal says it is done and filed.
    fn wait_filed_done(&self, d: &Daemon, name: &str, id: i64, secs: u64) {
        let results = format!("{name}.results.csv");
        let archived = wait_until(Duration::from_secs(secs), || self.archived(&results).is_some());
        assert!(archived, "not archived after the restart:\n{}", d.log());
        assert!(self.archived(&format!("{name}.csv")).is_some());
        assert!(!self.inbox.join(format!("processing/{name}.csv")).exists());
        // The journal says "filed" just after the files moved.
        let q = format!("SELECT state || ' ' || filed FROM runs WHERE id = {id}");
        let filed = wait_until(Duration::from_secs(10), || self.jq(&q) == "done 1");
        assert!(filed, "{}", self.jq(&q));
    }

    fn jq(&self, query: &str) -> String {
        if !self.journal.exists() {
            return String::new();
        }
        sqlite(&self.journal, query)
    }

    fn start_daemon(&self) -> Daemon {
        serve::start_serve(&self.dir, "Ready.")
    }
}

/// A finished command: exit code and output.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Wait for a child (killed -9 after `timeout`) and collect its output.
fn finish(mut child: Child, timeout: Duration, what: &str) -> Out {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let o = child.wait_with_output().expect("output"); // ok: test
                panic!(
                    "{what} did not finish within {timeout:?}:\n{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
    let o: Output = child.wait_with_output().expect("output"); // ok: test
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn usernames(csv_bytes: &[u8]) -> Vec<String> {
    let mut r = csv::Reader::from_reader(csv_bytes);
    r.records()
        .map(|rec| rec.expect("roster record").get(0).unwrap_or("").to_lowercase()) // ok: test
        .collect()
}

/// One data row of a results file: key, change, result, message.
#[derive(Debug, Clone)]
struct Row {
    key: String,
    change: String,
    result: String,
    message: String,
}

fn results_rows(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("results file {}: {e}", path.display()));
    let headers = r.headers().expect("header").clone(); // ok: test
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (c, res, m) = (col("change"), col("result"), col("message"));
    r.records()
        .map(|rec| {
            let rec = rec.expect("results record"); // ok: test
            let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
            Row {
                key: rec.get(0).unwrap_or("").to_lowercase(),
                change: get(c),
                result: get(res),
                message: get(m),
            }
        })
        .collect()
}

fn files_named(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, suffix, out);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, suffix, &mut out);
    out.sort();
    out
}

/// `dirsync runs`, as (id, inbox, state) per line.
fn runs_listing(env: &Env) -> Vec<(String, String, String)> {
    let out = env.run(&["runs"]);
    assert_eq!(out.code, Some(0), "dirsync runs: {}", out.all());
    out.stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 7, "a `dirsync runs` line: {l:?}");
            (f[0].to_string(), f[2].to_string(), f[5].to_string())
        })
        .collect()
}

/// A PostgreSQL target that can be stopped and started again.
struct Pg(servers::Postgres);

impl Pg {
    fn start() -> Pg {
        Pg(servers::Postgres::start().unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}")))
    }
    fn q(&self, sql: &str) -> String {
        self.0
            .psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
            .trim()
            .to_string()
    }
    /// Users in the target (0 while the table does not exist; None when
    /// the server does not answer).
    fn users(&self) -> Option<usize> {
        self.0
            .psql("SELECT COUNT(*) FROM users")
            .ok()
            .map(|s| s.trim().parse().unwrap_or(0))
    }
    fn usernames(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .q("SELECT lower(username) FROM users")
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }
}

// ---------------------------------------------------------------------------
// 1. kill -9 of a CLI apply, then apply again
// ---------------------------------------------------------------------------

#[test]
fn issue_12_cli_apply_killed_anywhere_then_applied_again_creates_each_user_once_with_one_mail() {
    const ROWS: usize = 1200;
    let env = Env::new(
        "sqlite://state/directory.db",
        100,
        "[mail]\nfrom = \"dirsync <dirsync@example.org>\"\ntransport = \"file\"\nfolder = \"mail\"\n",
    );
    let db = env.dir.join("state/directory.db");
    let content = roster(ROWS, 1212);
    let mut expected = usernames(&content);
    assert_eq!(expected.len(), ROWS);
    let file = env.file("users.csv", &content);
    let users = || -> usize {
        if !db.exists() {
            return 0;
        }
        sqlite(&db, "SELECT COUNT(*) FROM users").parse().unwrap_or(0)
    };
    let mut hashes: HashMap<String, String> = HashMap::new();
    let check_hashes = |hashes: &mut HashMap<String, String>| {
        if !db.exists() {
            return;
        }
        let rows = sqlite(&db, "SELECT username || '|' || COALESCE(password_hash, '') FROM users");
        for line in rows.lines() {
            let (user, hash) = line.split_once('|').unwrap_or((line, ""));
            assert!(!hash.is_empty(), "{user} has no password hash");
            match hashes.get(user) {
                Some(h) => assert_eq!(h, hash, "the password of {user} changed between kills"),
                None => {
                    hashes.insert(user.to_string(), hash.to_string());
                }
            }
        }
    };

    // Each life: wait for a point, then kill -9. `None`: the process had
    // already exited (with its output).
    let mut kill_points: Vec<String> = Vec::new();
    let mut mid_run_kills = 0;
    let mut final_out: Option<Out> = None;
    enum Point {
        /// As soon as the plan is journaled (before the first batch).
        Planned,
        /// As soon as this life journaled its first intent (a batch on its
        /// way to the target, its outcome not yet journaled).
        FirstIntent,
        Rows(usize),
    }
    // Right after the plan is journaled, after the first batch, at half,
    // between the first intent of a resumed life and its outcome, near the end.
    let points = [
        Point::Planned,
        Point::Rows(100),
        Point::Rows(ROWS / 2),
        Point::FirstIntent,
        Point::Rows(ROWS * 5 / 6),
    ];
    for (life, point) in points.iter().enumerate() {
        let before = users();
        let mut child = env.spawn_apply(&file, &["--mail-to", "hr@example.org"]);
        let desc = match point {
            Point::Planned => {
                let ok = wait_until(Duration::from_secs(60), || {
                    env.jq("SELECT COUNT(*) FROM run_items").parse::<usize>().unwrap_or(0) > 0
                        || matches!(child.try_wait(), Ok(Some(_)))
                });
                assert!(ok, "life {life}: the plan was never journaled");
                format!("life {life}: right after the plan was journaled")
            }
            Point::FirstIntent => {
                let intents = || {
                    env.jq("SELECT COUNT(*) FROM run_items WHERE intent = 1")
                        .parse::<usize>()
                        .unwrap_or(0)
                };
                let had = intents();
                let ok = wait_until(Duration::from_secs(60), || {
                    intents() > had || matches!(child.try_wait(), Ok(Some(_)))
                });
                assert!(ok, "life {life}: no intent journaled");
                format!("life {life}: right after its first intent")
            }
            Point::Rows(n) => {
                // At least one batch of this life, and at least n rows.
                let want = (*n).max(before + 1);
                let ok = wait_until(Duration::from_secs(60), || {
                    users() >= want || matches!(child.try_wait(), Ok(Some(_)))
                });
                assert!(ok, "life {life}: no progress towards {want} rows");
                format!("life {life}: at ≥ {want} rows")
            }
        };
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited {
            let out = finish(child, Duration::from_secs(5), "apply");
            assert_eq!(
                out.code,
                Some(0),
                "{desc}: apply ended on its own, not with 0: {}",
                out.all()
            );
            kill_points.push(format!("{desc}: finished before the kill"));
            final_out = Some(out);
            check_hashes(&mut hashes);
            break;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = users();
        if now > 0 && now < ROWS {
            mid_run_kills += 1;
        }
        kill_points.push(format!("{desc}: killed with {now} users in the target"));
        check_hashes(&mut hashes);
    }
    assert!(
        mid_run_kills >= 2,
        "the kills did not hit the run while it wrote: {kill_points:#?}"
    );
    // Apply again until it finishes (at most twice more).
    let out = match final_out {
        Some(o) => o,
        None => {
            let out = finish(
                env.spawn_apply(&file, &["--mail-to", "hr@example.org"]),
                Duration::from_secs(120),
                "the last apply",
            );
            assert_eq!(
                out.code,
                Some(0),
                "the last apply: {}\nkills: {kill_points:#?}",
                out.all()
            );
            assert!(
                out.stdout.contains("resuming run 1"),
                "the last apply resumes the killed run: {}",
                out.all()
            );
            out
        }
    };
    eprintln!("kill points: {kill_points:#?}");
    assert!(out.stdout.contains("run: 1 (done)"), "{}", out.all());
    check_hashes(&mut hashes);

    // Exactly the roster's users, each once.
    let mut in_db: Vec<String> = sqlite(&db, "SELECT lower(username) FROM users")
        .lines()
        .map(str::to_string)
        .collect();
    in_db.sort();
    expected.sort();
    assert_eq!(in_db.len(), ROWS);
    assert_eq!(in_db, expected, "exactly the file's users, none twice");
    assert_eq!(hashes.len(), ROWS);

    // One credentials mail per user, with a password that verifies against
    // the stored hash; one results mail to the submitter.
    let emls = files_named(&env.mail, ".eml");
    let mut creds: HashMap<String, String> = HashMap::new();
    let mut results_mails = 0;
    for p in &emls {
        let raw = fs::read(p).expect("read .eml"); // ok: test
        let m = mime::parse(&raw);
        let to = mime::to_of(&m);
        let body = m.body_text(0).map(|b| b.into_owned()).unwrap_or_default();
        if to == "hr@example.org" {
            results_mails += 1;
            continue;
        }
        let field = |label: &str| {
            body.lines()
                .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no {label:?} in the mail to {to}:\n{body}"))
        };
        let user = field("User name:").to_lowercase();
        let pw = field("Password:");
        assert_eq!(
            to,
            format!("{user}@example.org"),
            "the credentials mail goes to the user"
        );
        assert!(
            creds.insert(user.clone(), pw).is_none(),
            "two credentials mails for {user}"
        );
    }
    assert_eq!(results_mails, 1, "one results mail to the submitter");
    assert_eq!(
        creds.len(),
        ROWS,
        "one credentials mail per user ({} .eml files)",
        emls.len()
    );
    assert_eq!(emls.len(), ROWS + 1);
    for (user, pw) in &creds {
        let hash = hashes
            .get(user)
            .unwrap_or_else(|| panic!("a mail for {user}, who is not in the target"));
        let parsed = argon2::PasswordHash::new(hash).expect("a PHC string"); // ok: test
        assert!(
            argon2::Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok(),
            "the mailed password of {user} does not verify against the stored hash"
        );
    }

    // One results file, every row new and done.
    let results = files_named(&env.dir, ".results.csv");
    assert_eq!(results, vec![env.dir.join("files/users.results.csv")]);
    let rows = results_rows(&results[0]);
    assert_eq!(rows.len(), ROWS);
    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, usernames(&content), "one results row per file row, in file order");
    for r in &rows {
        assert_eq!((r.change.as_str(), r.result.as_str()), ("new", "done"), "row {r:?}");
    }

    // One run, done; no password left in the journal.
    let listing = runs_listing(&env);
    assert_eq!(
        listing,
        vec![("1".to_string(), "(cli)".to_string(), "done".to_string())],
        "dirsync runs"
    );
    assert_eq!(env.jq("SELECT COUNT(*) FROM run_secrets"), "0", "passwords forgotten");
    assert_eq!(
        env.jq("SELECT COUNT(*) || ' ' || COUNT(verdict) FROM run_items WHERE run_id = 1"),
        format!("{ROWS} {ROWS}")
    );
}

// ---------------------------------------------------------------------------
// 2. The target down before the snapshot
// ---------------------------------------------------------------------------

#[test]
fn issue_12_target_down_before_the_snapshot_cli_and_daemon_alike() {
    const ROWS: usize = 40;
    let mut pg = Pg::start();
    let env = Env::new(&pg.0.url(), 100, "");
    let content = roster(ROWS, 2222);
    let mut expected = usernames(&content);
    expected.sort();
    pg.0.stop().expect("stop PostgreSQL"); // ok: test

    // The command line: not run, exit 2, every row "not processed".
    let file = env.file("f.csv", &content);
    let out = env.run(&["apply", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(
        out.stdout.contains("not run, the target is unavailable"),
        "{}",
        out.all()
    );
    let cli_results = env.dir.join("files/f.results.csv");
    let rows = results_rows(&cli_results);
    assert_eq!(rows.len(), ROWS);
    for r in &rows {
        assert_eq!(r.result, "skipped", "{r:?}");
        assert!(r.message.starts_with("not processed: "), "{r:?}");
    }
    assert_eq!(
        env.jq("SELECT id || ' ' || inbox || ' ' || state FROM runs"),
        "1 (cli) failed"
    );
    eprintln!("CLI, target down: {}", rows[0].message);

    // The daemon: the same results beside the file in processing/, the run
    // failed, the file kept for a retry.
    let mut d = env.start_daemon();
    env.drop_renamed("f.csv", &content);
    let failed = wait_until(Duration::from_secs(30), || {
        env.jq("SELECT state FROM runs WHERE inbox = 'hr'") == "failed"
    });
    assert!(failed, "the daemon's run did not fail:\n{}", d.log());
    let daemon_results = env.inbox.join("processing/f.results.csv");
    assert_eq!(
        fs::read_to_string(&daemon_results).expect("processing/f.results.csv"), // ok: test
        fs::read_to_string(&cli_results).expect("the CLI's results"),           // ok: test
        "the daemon and the command line write the same results"
    );
    assert!(
        env.inbox.join("processing/f.csv").exists(),
        "the file stays in processing/"
    );
    assert!(env.archived("f.csv").is_none());
    assert_eq!(env.jq("SELECT filed FROM runs WHERE id = 2"), "0");
    assert!(d.running(), "the daemon died:\n{}", d.log());

    // `dirsync runs`: both runs, newest first.
    assert_eq!(
        runs_listing(&env),
        vec![
            ("2".to_string(), "hr".to_string(), "failed".to_string()),
            ("1".to_string(), "(cli)".to_string(), "failed".to_string()),
        ]
    );

    // The server is back: `apply` again resumes run 1 and applies the file.
    pg.0.restart().expect("restart PostgreSQL"); // ok: test
    let out = env.run(&["apply", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("resuming run 1"), "{}", out.all());
    assert!(out.stdout.contains("run: 1 (done)"), "{}", out.all());
    assert_eq!(pg.usernames(), expected, "each user once");
    let rows = results_rows(&cli_results);
    assert_eq!(rows.len(), ROWS);
    assert!(rows.iter().all(|r| r.change == "new" && r.result == "done"), "{rows:?}");

    // The daemon's run resumes at its next start, and is filed away.
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
    let mut d = env.start_daemon();
    env.wait_filed_done(&d, "f", 2, 30);
    let rows = results_rows(&env.archived("f.results.csv").expect("archived results")); // ok: test
    assert_eq!(rows.len(), ROWS);
    // The command line applied the file meanwhile: nothing left to do.
    assert!(rows.iter().all(|r| r.change == "unchanged"), "{rows:?}");
    assert_eq!(pg.usernames(), expected, "each user once");
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
    assert_eq!(
        runs_listing(&env),
        vec![
            ("2".to_string(), "hr".to_string(), "done".to_string()),
            ("1".to_string(), "(cli)".to_string(), "done".to_string()),
        ]
    );
}

// ---------------------------------------------------------------------------
// 3. The target gone mid-run
// ---------------------------------------------------------------------------

/// The results of a run the target failed mid-way: some rows done, the
/// rest failed (the batch in flight with the target's error, the later
/// ones "not applied"). Returns the number done.
#[track_caller]
fn check_failed_midway(rows: &[Row], total: usize, absent: usize) -> usize {
    // One line per row of the file, then one per account of the target
    // not in the file (reported only: absent = "ignore").
    assert_eq!(rows.len(), total + absent);
    let (rows, others) = rows.split_at(total);
    assert!(
        others.iter().all(|r| r.change == "absent" && r.result == "skipped"),
        "{:?}",
        others.iter().find(|r| r.change != "absent")
    );
    let done = rows.iter().filter(|r| r.result == "done").count();
    let failed: Vec<&Row> = rows.iter().filter(|r| r.result == "failed").collect();
    assert!(done > 0, "no row done before the target failed");
    assert_eq!(done + failed.len(), total, "every row done or failed");
    assert!(rows.iter().all(|r| r.change == "new"), "every row new");
    let not_applied = failed
        .iter()
        .filter(|r| r.message.starts_with("not applied: the target failed earlier"))
        .count();
    assert!(not_applied > 0, "no row \"not applied\": {:?}", failed.first());
    for r in &failed {
        assert!(
            r.message.starts_with("not applied: the target failed earlier") || r.message.starts_with("target error: "),
            "{r:?}"
        );
    }
    done
}

#[test]
fn issue_12_target_gone_mid_run_cli_and_daemon_alike() {
    const ROWS: usize = 3000;
    let mut pg = Pg::start();
    let env = Env::new(&pg.0.url(), 100, "");
    // Tables created by dirsync (create_schema), then slowed down by a
    // trigger (1 ms per row written) so that stopping the server lands
    // mid-run rather than after it.
    let out = env.run(&["config", "check"]);
    assert_eq!(out.code, Some(0), "config check: {}", out.all());
    pg.q("CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$;\n\
         CREATE TRIGGER slow_down BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION slow_down();");

    // The command line.
    let a = roster(ROWS, 3131);
    let file = env.file("a.csv", &a);
    let child = env.spawn_apply(&file, &[]);
    let landed = wait_until(Duration::from_secs(60), || pg.users().unwrap_or(0) >= 300);
    assert!(landed, "the rows did not start landing");
    pg.0.stop().expect("stop PostgreSQL"); // ok: test
    let out = finish(child, Duration::from_secs(60), "apply with the target gone");
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stdout.contains("stopped by a target failure"), "{}", out.all());
    assert_eq!(env.jq("SELECT state FROM runs WHERE id = 1"), "failed");
    let results = env.dir.join("files/a.results.csv");
    let done = check_failed_midway(&results_rows(&results), ROWS, 0);
    assert!(done < ROWS, "the run finished before the server stopped");
    pg.0.restart().expect("restart PostgreSQL"); // ok: test
    let landed_cli = pg.users().expect("PostgreSQL answers");
    assert!(
        landed_cli >= done && landed_cli < ROWS,
        "{landed_cli} rows in the target, {done} done"
    );
    eprintln!("CLI: {done} rows done before the target went, {landed_cli} in the target");

    let out = env.run(&["apply", file.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("resuming run 1"), "{}", out.all());
    let mut want_a = usernames(&a);
    want_a.sort();
    assert_eq!(pg.usernames(), want_a, "each row of the file once");
    let rows = results_rows(&results);
    assert_eq!(rows.len(), ROWS);
    assert!(
        rows.iter().all(|r| r.change == "new" && r.result == "done"),
        "{:?}",
        rows.iter().find(|r| r.result != "done")
    );
    assert_eq!(env.jq("SELECT state FROM runs WHERE id = 1"), "done");

    // The daemon.
    let b = roster(ROWS, 3232);
    let mut d = env.start_daemon();
    env.drop_renamed("b.csv", &b);
    let landed = wait_until(Duration::from_secs(60), || pg.users().unwrap_or(0) >= ROWS + 300);
    assert!(landed, "the daemon's rows did not start landing:\n{}", d.log());
    pg.0.stop().expect("stop PostgreSQL"); // ok: test
    let failed = wait_until(Duration::from_secs(60), || {
        env.jq("SELECT state FROM runs WHERE inbox = 'hr'") == "failed"
    });
    assert!(failed, "the daemon's run did not fail:\n{}", d.log());
    assert!(
        env.inbox.join("processing/b.csv").exists(),
        "the file stays in processing/"
    );
    let beside = env.inbox.join("processing/b.results.csv");
    assert!(wait_until(Duration::from_secs(5), || beside.exists()));
    let done = check_failed_midway(&results_rows(&beside), ROWS, ROWS);
    assert!(done < ROWS);
    eprintln!("daemon: {done} rows done before the target went");
    assert_eq!(env.jq("SELECT filed FROM runs WHERE id = 2"), "0");
    assert!(d.running(), "the daemon died:\n{}", d.log());
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));

    pg.0.restart().expect("restart PostgreSQL"); // ok: test
    let mut d = env.start_daemon();
    env.wait_filed_done(&d, "b", 2, 60);
    let rows = results_rows(&env.archived("b.results.csv").expect("archived")); // ok: test
    assert_eq!(
        rows.len(),
        2 * ROWS,
        "the file's rows, then the accounts of a.csv as absent"
    );
    let (rows, absent) = rows.split_at(ROWS);
    assert!(
        rows.iter().all(|r| r.change == "new" && r.result == "done"),
        "{:?}",
        rows.iter().find(|r| r.result != "done")
    );
    assert!(absent.iter().all(|r| r.change == "absent" && r.result == "skipped"));
    let mut want: Vec<String> = usernames(&a).into_iter().chain(usernames(&b)).collect();
    want.sort();
    let distinct: HashSet<&String> = want.iter().collect();
    assert_eq!(distinct.len(), 2 * ROWS, "two files of distinct users");
    assert_eq!(pg.usernames(), want, "each user once");
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
    assert_eq!(
        runs_listing(&env),
        vec![
            ("2".to_string(), "hr".to_string(), "done".to_string()),
            ("1".to_string(), "(cli)".to_string(), "done".to_string()),
        ]
    );
}
