//! Issue 14: future-dated joiners and leavers carried out by `dirsync serve`
//! on their day, without a new file. The built binary, the embedded SQLite
//! target read back with the `sqlite3` program, mail written as .eml files.
//! Time is moved with `DIRSYNC_CLOCK_OFFSET` (the daemon restarted "on the
//! due day"), never by sleeping.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate};

#[path = "common/serve.rs"]
mod serve;
#[path = "support/servers.rs"]
mod servers;
#[path = "common/web.rs"]
mod web;
use serve::{cheap_example_policy, free_port, sqlite, wait_until, Daemon};

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// The console's port (`[http]`).
    port: u16,
}

impl Env {
    fn new() -> Env {
        Env::with_service("")
    }

    /// With more `[service]` keys (another journal).
    fn with_service(service: &str) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("policies")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("inbox")).expect("mkdir"); // ok: test
        let policy = cheap_example_policy().replace("leavers = { max_percent = 10.0 }", "leavers = { max = 10 }");
        assert!(
            policy.contains("time_zone = \"Europe/London\""),
            "the example policy's [lifecycle]"
        );
        fs::write(dir.join("policies/staff.toml"), policy).expect("write policy"); // ok: test
        let port = free_port();
        fs::write(
            dir.join("dirsync.toml"),
            format!(
                "[service]\nstate_dir = \"state\"\n{service}\n[targets.staff]\nkind = \"sql\"\n\
             url = \"sqlite://state/directory.db\"\ncreate_schema = true\n\n\
             [policies]\nstaff = \"policies/staff.toml\"\n\n\
             [[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\nsubmitter = \"hr@example.org\"\n\
             settle_seconds = 1\n\n\
             [mail]\nfrom = \"dirsync <dirsync@localhost>\"\ntransport = \"file\"\nfolder = \"mail\"\n\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\nusers_file = \"http-users.toml\"\n"
            ),
        )
        .expect("write config"); // ok: test
        Env { _tmp: tmp, dir, port }
    }

    /// `dirsync serve`, its clock `offset` ahead, once ready.
    fn serve(&self, offset: &str) -> Daemon {
        let n = fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0);
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir)
            .args(["--config", "dirsync.toml", "serve"])
            .env("DIRSYNC_LOG", "info")
            .env("DIRSYNC_CLOCK_OFFSET", offset)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        let d = Daemon::spawn(cmd, self.dir.join(format!("serve-{n}.log")));
        d.wait_log("Ready.", Duration::from_secs(30));
        d
    }

    /// Write the file beside the inbox and rename it in (a complete file).
    fn drop_file(&self, name: &str, text: &str) {
        let staged = self.dir.join(name);
        fs::write(&staged, text).expect("write"); // ok: test
        let into = self.dir.join("inbox").join(name);
        fs::rename(&staged, into).expect("rename in"); // ok: test
    }

    fn db(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/directory.db"), q)
    }

    fn journal(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/journal.db"), q)
    }

    /// Wait until run `id` is filed away; its state.
    fn filed(&self, id: i64, d: &Daemon) -> String {
        let q = format!("SELECT state FROM runs WHERE id = {id} AND filed = 1");
        let ok = wait_until(Duration::from_secs(60), || !self.journal(&q).is_empty());
        assert!(ok, "run {id} not filed:\n{}", d.log());
        self.journal(&q)
    }

    fn results(&self, id: i64) -> String {
        let p = self.journal(&format!("SELECT results FROM runs WHERE id = {id}"));
        // Relative to the daemon's folder, as the config's paths are.
        fs::read_to_string(self.dir.join(Path::new(&p))).expect("results file") // ok: test
    }

    /// The text of each mail to the inbox's submitter.
    fn mails_to_submitter(&self) -> Vec<String> {
        fs::read_dir(self.dir.join("mail"))
            .map(|d| d.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|raw| {
                let m = mail_parser::MessageParser::default().parse(&raw[..])?;
                let to = m.to()?.first()?.address()?.to_string();
                (to == "hr@example.org").then(|| m.body_text(0).map(|b| b.into_owned()).unwrap_or_default())
            })
            .collect()
    }
}

fn today() -> NaiveDate {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970") // ok: test
        .as_secs() as i64;
    DateTime::from_timestamp(secs, 0).expect("now").date_naive() // ok: test
}

fn day(offset: u64) -> String {
    today()
        .checked_add_days(Days::new(offset))
        .expect("a date") // ok: test
        .format("%d/%m/%Y")
        .to_string()
}

/// The change column of the row whose first cell is `key`.
fn change_of(results: &str, key: &str) -> String {
    let mut r = csv::Reader::from_reader(results.as_bytes());
    let head = r.headers().expect("header").clone(); // ok: test
    let col = head.iter().position(|h| h == "change").expect("change column"); // ok: test
    r.records()
        .flatten()
        .find(|rec| rec.get(0) == Some(key))
        .and_then(|rec| rec.get(col).map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn a_future_joiner_is_created_and_a_future_leaver_disabled_by_the_daemon_on_the_due_day() {
    let env = Env::new();
    let file = format!(
        "Username,First Name,Last Name,E-mail Address,Start Date,Last Day\n\
         now1,Nia,Now,nia.now@example.org,{},\n\
         later,Lee,Later,lee.later@example.org,{},\n\
         going,Gus,Going,gus.going@example.org,,{}\n",
        day(0),
        day(3),
        day(1)
    );
    let mut d = env.serve("0");
    env.drop_file("hr.csv", &file);
    assert_eq!(env.filed(1, &d), "done");
    assert_eq!(
        env.db("SELECT username || ' ' || status FROM users ORDER BY username"),
        "going active\nnow1 active"
    );
    let results = env.results(1);
    assert_eq!(change_of(&results, "later"), "scheduled", "{results}");
    assert!(results.contains("the account will be created on"), "{results}");
    assert!(results.contains("the account will be disabled on"), "{results}");
    assert!(!env.journal("SELECT due FROM run_schedule WHERE run_id = 1").is_empty());
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));
    let mails_before = env.mails_to_submitter().len();

    // Five days on: the daemon runs the inbox's latest file again by itself.
    let mut d = env.serve("5d");
    d.wait_log("Scheduled changes are due", Duration::from_secs(30));
    assert_eq!(env.filed(2, &d), "done");
    assert_eq!(
        env.db("SELECT username || ' ' || status FROM users ORDER BY username"),
        "going leaver\nlater active\nnow1 active"
    );
    assert_eq!(
        env.journal("SELECT rerun_of || ' ' || forced || ' ' || submitter FROM run_schedule JOIN runs ON runs.id = run_id WHERE run_id = 2"),
        "1 1 hr@example.org"
    );
    let results = env.results(2);
    assert_eq!(change_of(&results, "later"), "new", "{results}");
    assert_eq!(change_of(&results, "going"), "leaver", "{results}");
    assert_eq!(change_of(&results, "now1"), "unchanged", "{results}");
    // The results mail goes to the inbox's submitter.
    let mailed = wait_until(Duration::from_secs(30), || {
        env.mails_to_submitter().len() > mails_before
    });
    assert!(mailed, "no results mail for the scheduled run:\n{}", d.log());
    let mails = env.mails_to_submitter();
    assert!(
        mails
            .iter()
            .any(|m| m.contains("a scheduled run: changes that run 1 scheduled")),
        "{mails:?}"
    );
    // Nothing else is due: the re-run is not run again.
    assert_eq!(env.journal("SELECT COUNT(*) FROM runs"), "2");
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));

    // The console's API marks it too.
    let token = Command::new(BIN)
        .current_dir(&env.dir)
        .args([
            "--config",
            "dirsync.toml",
            "http",
            "add-token",
            "script",
            "--role",
            "viewer",
        ])
        .output()
        .expect("dirsync http add-token"); // ok: test
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let d = env.serve("5d");
    let mut api = web::Client::new(env.port);
    api.extra.push(("Authorization".into(), format!("Bearer {token}")));
    let list = api.get("/api/v1/runs").json();
    assert_eq!(list["runs"][0]["rerun_of"], 1, "{list}");
    assert_eq!(list["runs"][1]["rerun_of"], serde_json::Value::Null, "{list}");
    drop(d);

    // `dirsync runs` shows the scheduled run as such.
    let out = Command::new(BIN)
        .current_dir(&env.dir)
        .args(["--config", "dirsync.toml", "runs"])
        .output()
        .expect("dirsync runs"); // ok: test
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("done (scheduled: re-run of 1)"), "{text}");
}

#[test]
fn a_later_file_replaces_the_schedule_of_an_earlier_one() {
    let env = Env::new();
    let head = "Username,First Name,Last Name,E-mail Address,Start Date\n";
    let mut d = env.serve("0");
    env.drop_file(
        "one.csv",
        &format!("{head}later,Lee,Later,lee@example.org,{}\n", day(3)),
    );
    assert_eq!(env.filed(1, &d), "done");
    // HR withdraws the offer: the next file no longer has the joiner.
    env.drop_file(
        "two.csv",
        &format!("{head}other,Ola,Other,ola@example.org,{}\n", day(0)),
    );
    assert_eq!(env.filed(2, &d), "done");
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));

    let mut d = env.serve("5d");
    d.wait_log("Looked for scheduled changes at start", Duration::from_secs(30));
    assert!(d.log().contains("started=0"), "{}", d.log());
    assert_eq!(env.db("SELECT username FROM users ORDER BY username"), "other");
    assert_eq!(env.journal("SELECT COUNT(*) FROM runs"), "2");
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));
}

#[test]
fn scheduled_runs_with_the_journal_in_postgresql() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("PostgreSQL did not start: {e}"));
    let env = Env::with_service(&format!("journal = \"{}\"\n", pg.url()));
    let runs = |q: &str| {
        pg.psql(q)
            .unwrap_or_else(|e| panic!("psql {q}: {e}"))
            .trim()
            .to_string()
    };
    let filed = |id: i64, d: &Daemon| {
        let q = format!("SELECT state FROM runs WHERE id = {id} AND filed = 1");
        let ok = wait_until(Duration::from_secs(60), || runs(&q) == "done");
        assert!(ok, "run {id} not done and filed:\n{}", d.log());
    };
    let head = "Username,First Name,Last Name,E-mail Address,Start Date\n";
    let mut d = env.serve("0");
    env.drop_file("hr.csv", &format!("{head}later,Lee,Later,lee@example.org,{}\n", day(3)));
    filed(1, &d);
    assert!(!runs("SELECT due FROM run_schedule WHERE run_id = 1").is_empty());
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));

    let mut d = env.serve("5d");
    d.wait_log("Scheduled changes are due", Duration::from_secs(30));
    filed(2, &d);
    assert_eq!(runs("SELECT rerun_of FROM run_schedule WHERE run_id = 2"), "1");
    assert_eq!(env.db("SELECT username FROM users"), "later");
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));
}
