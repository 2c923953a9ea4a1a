//! High availability as an operator deploys it: two `dirsync serve`
//! processes with the same config, one PostgreSQL journal (a real server
//! started on loopback), one drop folder, one SQLite target. The target is
//! checked with the `sqlite3` program — triggers there count every insert
//! and update, so a write made twice shows — and the journal with `psql`.
//! Daemons are killed with SIGKILL, frozen with SIGSTOP and stopped with
//! SIGTERM; the leases last 5 seconds (`[service] lease_seconds`).

#[path = "common/serve.rs"]
mod serve;

#[path = "support/servers.rs"]
mod servers;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serve::{cheap_example_policy, roster, sqlite, wait_until, Daemon};
use servers::Postgres;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");
const LONG: Duration = Duration::from_secs(120);

/// One PostgreSQL server for the tests of this file; each test has its own database.
fn pg() -> &'static Mutex<Postgres> {
    static PG: OnceLock<Mutex<Postgres>> = OnceLock::new();
    PG.get_or_init(|| Mutex::new(Postgres::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"))))
}

fn lock_pg() -> std::sync::MutexGuard<'static, Postgres> {
    pg().lock().unwrap_or_else(|p| p.into_inner())
}

/// Two daemons' installation: config, policy, inbox, state, mail folder.
struct Ha {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    inbox: PathBuf,
    db: PathBuf,
    mail: PathBuf,
    /// The journal's database name on the server.
    database: String,
    port: u16,
}

impl Ha {
    fn new(pg: &Postgres, database: &str) -> Ha {
        pg.psql_as(
            Postgres::SUPERUSER,
            "postgres",
            &format!("CREATE DATABASE {database} OWNER {}", Postgres::USER),
        )
        .unwrap_or_else(|e| panic!("create database {database}: {e}"));
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        for d in ["policies", "inbox", "staging"] {
            fs::create_dir_all(dir.join(d)).expect("mkdir"); // ok: test
        }
        let policy = cheap_example_policy()
            .replace("adds = { max = 10000 }", "adds = { max = 100000 }")
            .replace("updates = { max_percent = 50.0 }", "updates = { max_percent = 100.0 }")
            .replace("leavers = { max_percent = 10.0 }", "leavers = { max_percent = 100.0 }")
            .replace("credentials = true", "credentials = false");
        fs::write(dir.join("policies/staff.toml"), policy).expect("write policy"); // ok: test
        let config = format!(
            "[service]\nstate_dir = \"state\"\njournal = \"postgres://{user}@127.0.0.1:{port}/{database}\"\n\
             lease_seconds = 5\n\n[targets.staff]\nkind = \"sql\"\nurl = \"sqlite://state/directory.db\"\n\
             create_schema = true\nbatch_size = 200\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n\
             [mail]\nfrom = \"dirsync <dirsync@example.org>\"\ntransport = \"file\"\nfolder = \"mail\"\n\n\
             [[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\nsubmitter = \"hr@example.org\"\n\
             settle_seconds = 1\n",
            user = Postgres::USER,
            port = pg.port(),
        );
        fs::write(dir.join("dirsync.toml"), config).expect("write config"); // ok: test
        Ha {
            inbox: dir.join("inbox"),
            db: dir.join("state/directory.db"),
            mail: dir.join("mail"),
            database: database.to_string(),
            port: pg.port(),
            dir,
            _tmp: tmp,
        }
    }

    /// `dirsync serve` number `n` (its log is `serve-N.log`).
    fn start(&self, n: usize) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir)
            .args(["--config", "dirsync.toml", "serve"])
            .env("DIRSYNC_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        let d = Daemon::spawn(cmd, self.dir.join(format!("serve-{n}.log")));
        d.wait_log("Ready.", Duration::from_secs(30));
        d
    }

    /// The target's tables (a preview creates them), and triggers that
    /// count every insert and update of an account, and every password set.
    fn prepare_target(&self) {
        let tiny = self.dir.join("staging/tiny.csv");
        fs::write(&tiny, roster(1, 99)).expect("write"); // ok: test
        let out = Command::new(BIN)
            .current_dir(&self.dir)
            .args(["--config", "dirsync.toml", "check"])
            .arg(&tiny)
            .output()
            .expect("run dirsync check"); // ok: test
        assert!(out.status.success(), "check: {}", String::from_utf8_lossy(&out.stderr));
        sqlite(
            &self.db,
            "CREATE TABLE writes (what TEXT NOT NULL, username TEXT NOT NULL); \
             CREATE TRIGGER w_ins AFTER INSERT ON users BEGIN INSERT INTO writes VALUES ('insert', NEW.username); END; \
             CREATE TRIGGER w_upd AFTER UPDATE ON users BEGIN INSERT INTO writes VALUES ('update', NEW.username); END; \
             CREATE TRIGGER w_pw AFTER UPDATE OF password_hash ON users \
               WHEN OLD.password_hash IS NOT NEW.password_hash BEGIN INSERT INTO writes VALUES ('password', NEW.username); END;",
        );
    }

    /// Write a file elsewhere and rename it into the inbox.
    fn drop_file(&self, name: &str, content: &[u8]) {
        let staged = self.dir.join("staging").join(name);
        fs::write(&staged, content).expect("write staged file"); // ok: test
        fs::rename(&staged, self.inbox.join(name)).expect("rename into inbox"); // ok: test
    }

    /// A query on the journal, with `psql`.
    fn journal(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg(format!(
                "postgres://{}@127.0.0.1:{}/{}",
                Postgres::USER,
                self.port,
                self.database
            ))
            .args(["-c", sql])
            .output()
            .expect("run psql"); // ok: test
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn journal_n(&self, sql: &str) -> i64 {
        self.journal(sql).parse().unwrap_or(-1)
    }

    /// The pid of the daemon holding the run of inbox file `file`
    /// (lease owners are `host:pid#nonce`).
    fn holder_pid(&self, file: &str) -> Option<i32> {
        let owner = self.journal(&format!(
            "SELECT owner FROM leases WHERE name = 'run:' || (SELECT id FROM runs WHERE inbox = 'hr' AND file_name = '{file}')"
        ));
        owner.split('#').next()?.rsplit_once(':')?.1.parse().ok()
    }

    /// `dirsync ARGS` with this config: its standard output.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .current_dir(&self.dir)
            .args(["--config", "dirsync.toml"])
            .args(args)
            .output()
            .expect("run dirsync"); // ok: test
        assert!(
            out.status.success(),
            "dirsync {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The state of the run of inbox file `file`.
    fn state_of(&self, file: &str) -> String {
        self.journal(&format!(
            "SELECT state FROM runs WHERE inbox = 'hr' AND file_name = '{file}'"
        ))
    }

    /// How many rows of the run of inbox file `file` are written.
    fn done_of(&self, file: &str) -> i64 {
        self.journal_n(&format!(
            "SELECT COUNT(*) FROM run_items WHERE verdict = 'done' AND run_id = \
             (SELECT id FROM runs WHERE inbox = 'hr' AND file_name = '{file}')"
        ))
    }

    fn target_n(&self, sql: &str) -> i64 {
        sqlite(&self.db, sql).parse().unwrap_or(-1)
    }

    /// The `.eml` files of results mails, by the run named in the subject or body.
    fn results_mails(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(&self.mail)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter(|t| {
                t.lines()
                    .any(|l| l.starts_with("Message-ID:") && l.contains(".results@"))
            })
            .collect();
        out.sort();
        out
    }

    fn results_files(&self) -> Vec<PathBuf> {
        serve::results_files(&self.inbox)
    }

    fn logs(&self, ds: &[&Daemon]) -> String {
        ds.iter()
            .enumerate()
            .map(|(i, d)| format!("--- daemon {i} ---\n{}", d.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The roster with every job title changed: an update for each account.
fn retitled(csv: &[u8], suffix: &str) -> Vec<u8> {
    let mut r = csv::Reader::from_reader(csv);
    let headers = r.headers().expect("header").clone(); // ok: test
    let title = headers.iter().position(|h| h == "title").expect("title column"); // ok: test
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).expect("write"); // ok: test
    for rec in r.records() {
        let rec = rec.expect("record"); // ok: test
        let row: Vec<String> = rec
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == title {
                    format!("{v} {suffix}")
                } else {
                    v.to_string()
                }
            })
            .collect();
        w.write_record(&row).expect("write"); // ok: test
    }
    w.into_inner().expect("csv bytes") // ok: test
}

#[test]
fn two_daemons_run_each_of_twenty_files_dropped_at_once_exactly_once() {
    let ha = {
        let pg = lock_pg();
        Ha::new(&pg, "ha_twenty")
    };
    let a = ha.start(0);
    let b = ha.start(1);
    let daemons = ha.cli(&["runs", "daemons"]);
    for d in [&a, &b] {
        assert!(
            daemons.contains(&format!(":{}#", d.pid())),
            "`runs daemons` lists both: {daemons}"
        );
    }
    // Twenty different files at once; each names a different set of people.
    for i in 0..20u64 {
        ha.drop_file(&format!("staff-{i:02}.csv"), &roster(20, 1000 + i));
    }
    let all_filed = wait_until(LONG, || {
        ha.journal_n("SELECT COUNT(*) FROM runs WHERE filed = 1") >= 20 && ha.results_mails().len() >= 20
    });
    assert!(
        all_filed,
        "not all 20 files were run and mailed:\n{}",
        ha.logs(&[&a, &b])
    );
    assert_eq!(ha.journal_n("SELECT COUNT(*) FROM runs"), 20, "one run per file");
    assert_eq!(
        ha.journal_n("SELECT COUNT(DISTINCT file_name) FROM runs"),
        20,
        "each file has its own run"
    );
    assert_eq!(
        ha.journal_n("SELECT COUNT(*) FROM runs WHERE state <> 'done'"),
        0,
        "runs not done: {}",
        ha.journal("SELECT id, file_name, state, note FROM runs WHERE state <> 'done'")
    );
    assert_eq!(ha.results_files().len(), 20, "one results file per file");
    let mails = ha.results_mails();
    assert_eq!(mails.len(), 20, "one results mail per run");
    for i in 0..20 {
        let name = format!("staff-{i:02}.csv");
        assert_eq!(
            mails.iter().filter(|m| m.contains(&name)).count(),
            1,
            "results mails naming {name}"
        );
    }
    // The daemons send in turn (the sender's lease; on a loaded machine it
    // may change hands), and each mail goes once.
    let senders: Vec<usize> = [&a, &b].iter().map(|d| d.log().matches("Mail sent.").count()).collect();
    assert_eq!(senders.iter().sum::<usize>(), 20, "each mail sent once: {senders:?}");
    let turn = ha.journal("SELECT COUNT(*) FROM leases WHERE name = 'mail-sender'");
    assert_eq!(turn, "1", "one daemon holds the sender's turn");
    let workers = ha.journal("SELECT DISTINCT worker FROM runs ORDER BY worker");
    eprintln!("runs were worked on by: {workers:?}");
    // Every account was written once per file that added it: no run twice.
    assert!(ha
        .journal("SELECT COUNT(*) FROM leases WHERE name LIKE 'run:%'")
        .starts_with('0'));
}

#[test]
fn a_killed_holder_s_run_is_finished_by_the_other_daemon_once() {
    let ha = {
        let pg = lock_pg();
        Ha::new(&pg, "ha_kill")
    };
    ha.prepare_target();
    let mut a = ha.start(0);
    let mut b = ha.start(1);
    let file = roster(10_000, 7);
    ha.drop_file("staff.csv", &file);
    // Whichever daemon holds the run is killed when part of it is written.
    let started = wait_until(LONG, || ha.done_of("staff.csv") >= 1000);
    assert!(started, "the run did not get going:\n{}", ha.logs(&[&a, &b]));
    if ha.holder_pid("staff.csv") == Some(b.pid()) {
        std::mem::swap(&mut a, &mut b);
    }
    assert_eq!(ha.holder_pid("staff.csv"), Some(a.pid()), "a daemon holds the run");
    let id = ha.journal("SELECT id FROM runs WHERE file_name = 'staff.csv'");
    let shown = ha.cli(&["runs", "show", &id]);
    let pid = format!(":{}#", a.pid());
    assert!(
        shown.lines().any(|l| l.starts_with("held by") && l.contains(&pid)),
        "`runs show` names the daemon holding the run: {shown}"
    );
    a.kill9();
    let done = wait_until(LONG, || {
        ha.state_of("staff.csv") == "done" && ha.results_mails().len() == 1
    });
    assert!(done, "the other daemon did not finish the run:\n{}", ha.logs(&[&a, &b]));
    assert!(
        b.log().contains("Taking over an unfinished run") || b.log().contains("Resuming an unfinished run"),
        "{}",
        b.log()
    );

    // No duplicate account and no second password; every row's outcome once.
    let users = ha.target_n("SELECT COUNT(*) FROM users WHERE status = 'active'");
    let inserts = ha.target_n("SELECT COUNT(*) FROM writes WHERE what = 'insert'");
    let twice = ha.target_n("SELECT COUNT(*) FROM (SELECT username FROM writes WHERE what = 'insert' GROUP BY username HAVING COUNT(*) > 1)");
    let passwords = ha.target_n("SELECT COUNT(*) FROM writes WHERE what = 'password'");
    assert_eq!(
        (users, inserts, twice, passwords),
        (10_000, 10_000, 0, 0),
        "accounts, inserts, inserted twice, passwords set again"
    );
    assert_eq!(ha.journal_n("SELECT COUNT(*) FROM run_items WHERE verdict IS NULL AND run_id = (SELECT id FROM runs WHERE file_name = 'staff.csv')"), 0);
    let results = ha.results_files();
    assert_eq!(results.len(), 1, "{results:?}");
    let rows = csv::Reader::from_path(&results[0]).expect("results").records().count(); // ok: test
    assert_eq!(rows, 10_000, "one results row per input row");
    assert_eq!(ha.results_mails().len(), 1, "one results mail");

    // Again at another point: killed right after the plan is journaled.
    let mut c = ha.start(2);
    ha.drop_file("staff-retitled.csv", &retitled(&file, "II"));
    let planned = wait_until(LONG, || {
        ha.journal_n("SELECT COUNT(*) FROM run_items WHERE run_id = (SELECT id FROM runs WHERE file_name = 'staff-retitled.csv')") >= 10_000
    });
    assert!(planned, "the second run was not planned:\n{}", ha.logs(&[&b, &c]));
    let holder = ha.holder_pid("staff-retitled.csv");
    let (killed, survivor) = if holder == Some(b.pid()) {
        (&mut b, &mut c)
    } else {
        (&mut c, &mut b)
    };
    killed.kill9();
    let done = wait_until(LONG, || {
        ha.state_of("staff-retitled.csv") == "done" && ha.results_mails().len() == 2
    });
    assert!(done, "the second run was not finished:\n{}", survivor.log());
    let updates = ha.target_n("SELECT COUNT(*) FROM writes WHERE what = 'update'");
    let twice = ha.target_n("SELECT COUNT(*) FROM (SELECT username FROM writes WHERE what = 'update' GROUP BY username HAVING COUNT(*) > 1)");
    assert_eq!((updates, twice), (10_000, 0), "each account updated once");
    assert_eq!(
        ha.target_n("SELECT COUNT(*) FROM users WHERE title LIKE '% II'"),
        10_000
    );
    assert_eq!(ha.results_files().len(), 2);
}

#[test]
fn a_frozen_holder_writes_nothing_after_it_wakes_and_a_clean_stop_hands_over() {
    let ha = {
        let pg = lock_pg();
        Ha::new(&pg, "ha_freeze")
    };
    ha.prepare_target();
    let mut a = ha.start(0);
    let file = roster(10_000, 11);
    ha.drop_file("staff.csv", &file);
    let ok = wait_until(LONG, || ha.state_of("staff.csv") == "done");
    assert!(ok, "first run:\n{}", a.log());
    let mut b = ha.start(1);

    // Freeze the holder of an update of every account, mid-run, past its lease.
    ha.drop_file("staff-retitled.csv", &retitled(&file, "II"));
    let going = wait_until(LONG, || ha.done_of("staff-retitled.csv") >= 400);
    assert!(going, "the second run did not get going:\n{}", ha.logs(&[&a, &b]));
    let holder = ha.holder_pid("staff-retitled.csv");
    let (frozen, other) = if holder == Some(a.pid()) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    frozen.signal(libc::SIGSTOP);
    let taken = wait_until(LONG, || other.log().contains("Taking over an unfinished run"));
    assert!(taken, "the other daemon did not take over:\n{}", other.log());
    frozen.signal(libc::SIGCONT);
    let lost = wait_until(LONG, || frozen.log().contains("lost its hold on the run"));
    assert!(
        lost,
        "the frozen daemon did not notice it lost the run:\n{}",
        frozen.log()
    );
    for l in frozen
        .log()
        .lines()
        .filter(|l| l.contains("lost") || l.contains("lease"))
    {
        eprintln!("frozen daemon: {l}");
    }
    let done = wait_until(LONG, || ha.state_of("staff-retitled.csv") == "done");
    assert!(done, "the run was not finished:\n{}", ha.logs(&[frozen, other]));
    let updates = ha.target_n("SELECT COUNT(*) FROM writes WHERE what = 'update'");
    let twice = ha.target_n("SELECT COUNT(*) FROM (SELECT username FROM writes WHERE what = 'update' GROUP BY username HAVING COUNT(*) > 1)");
    assert_eq!(
        (updates, twice),
        (10_000, 0),
        "each account updated once: the woken daemon wrote nothing more"
    );
    let mailed = wait_until(LONG, || ha.results_mails().len() >= 2);
    assert!(
        mailed && ha.results_mails().len() == 2,
        "one results mail per run: {}",
        ha.results_mails().len()
    );

    // A rolling restart: SIGTERM on the holder of a run hands it over at once.
    ha.drop_file("staff-retitled-3.csv", &retitled(&file, "III"));
    let going = wait_until(LONG, || ha.done_of("staff-retitled-3.csv") >= 400);
    assert!(going, "the third run did not get going:\n{}", ha.logs(&[frozen, other]));
    let holder = ha.holder_pid("staff-retitled-3.csv");
    let (stopping, staying) = if holder == Some(frozen.pid()) {
        (frozen, other)
    } else {
        (other, frozen)
    };
    assert_eq!(stopping.stop(Duration::from_secs(60)), Some(0));
    let handed = wait_until(LONG, || ha.state_of("staff-retitled-3.csv") == "done");
    assert!(handed, "the run was not finished after SIGTERM:\n{}", staying.log());
    assert!(
        staying.log().contains("Resuming an unfinished run"),
        "{}",
        staying.log()
    );
    assert_eq!(
        ha.target_n("SELECT COUNT(*) FROM users WHERE title LIKE '% III'"),
        10_000
    );
}

#[test]
fn both_daemons_recover_when_the_journal_database_restarts() {
    let mut pg = Postgres::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    let ha = Ha::new(&pg, "ha_restart");
    let a = ha.start(0);
    let b = ha.start(1);
    for i in 0..4u64 {
        ha.drop_file(&format!("before-{i}.csv"), &roster(300, 2000 + i));
    }
    let some = wait_until(LONG, || ha.journal_n("SELECT COUNT(*) FROM runs") >= 1);
    assert!(some, "{}", ha.logs(&[&a, &b]));
    pg.restart().unwrap_or_else(|e| panic!("restart PostgreSQL: {e}"));
    for i in 0..4u64 {
        ha.drop_file(&format!("after-{i}.csv"), &roster(300, 3000 + i));
    }
    let all = wait_until(LONG, || {
        ha.journal_n("SELECT COUNT(*) FROM runs WHERE filed = 1 AND state = 'done'") == 8
            && ha.results_mails().len() == 8
    });
    assert!(
        all,
        "not every file was run after the restart: {}\n{}",
        ha.journal("SELECT id, file_name, state, filed, note FROM runs ORDER BY id"),
        ha.logs(&[&a, &b])
    );
    assert_eq!(ha.journal_n("SELECT COUNT(*) FROM runs"), 8, "one run per file");
    assert_eq!(ha.results_files().len(), 8);
}

#[test]
fn a_daemon_with_another_journal_key_is_refused_before_it_writes() {
    let ha = {
        let pg = lock_pg();
        Ha::new(&pg, "ha_keys")
    };
    // The first process to use the journal fixes its keys.
    let a = ha.start(0);
    // A second host's config: the same journal, its own state folder and keys.
    let config = fs::read_to_string(ha.dir.join("dirsync.toml")).expect("config"); // ok: test
    let other = ha.dir.join("other.toml");
    fs::write(
        &other,
        config.replace("state_dir = \"state\"", "state_dir = \"other-state\""),
    )
    .expect("write"); // ok: test
    let out = Command::new(BIN)
        .current_dir(&ha.dir)
        .args(["--config", "other.toml", "serve"])
        .env("DIRSYNC_LOG", "info")
        .output()
        .expect("run dirsync serve"); // ok: test
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {err}");
    assert!(
        err.contains("other-state/journal.key") && err.contains("same key file"),
        "the message names the key and what to do: {err}"
    );
    // With the first host's keys copied over, it starts.
    for key in ["journal.key", "outbox.key"] {
        fs::copy(ha.dir.join("state").join(key), ha.dir.join("other-state").join(key)).expect("copy key");
        // ok: test
    }
    let out = Command::new(BIN)
        .current_dir(&ha.dir)
        .args(["--config", "other.toml", "runs", "daemons"])
        .output()
        .expect("run dirsync"); // ok: test
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&format!(":{}#", a.pid())), "{listed}");
}
