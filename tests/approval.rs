//! Held changes and their approval, as an operator meets them: `dirsync
//! serve` holds leavers over a safety limit, the run waits in state
//! `awaiting-approval`, and `dirsync runs approve | reject` decides. The
//! SQLite target is checked with the `sqlite3` program; mails are `.eml`
//! files written by the daemon's and the command's outbox.

#[path = "common/serve.rs"]
mod serve;

#[path = "support/servers.rs"]
mod servers;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serve::{cheap_example_policy, sqlite, wait_until, Daemon};

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    db: PathBuf,
    journal: PathBuf,
    inbox: PathBuf,
    mail: PathBuf,
}

fn policy_text() -> String {
    cheap_example_policy()
        .replace("absent = \"ignore\"", "absent = \"leaver\"")
        .replace("leavers = { max_percent = 10.0 }", "leavers = { max = 2 }")
}

const HEADER: &str = "Username,First Name,Last Name,E-mail Address,Job Title\n";

/// `n` people u00.., each with `title`.
fn roster(keys: impl Iterator<Item = usize>, title: &str) -> String {
    let mut s = HEADER.to_string();
    for i in keys {
        s.push_str(&format!("u{i:02},First{i},Last{i},u{i:02}@example.org,{title}\n"));
    }
    s
}

impl Env {
    fn new() -> Env {
        Env::with_journal(None)
    }

    /// `journal`: a `[service] journal` URL (default: SQLite in the state folder).
    fn with_journal(journal: Option<&str>) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("policies")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("inbox")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("staging")).expect("mkdir"); // ok: test
        fs::write(dir.join("policies/staff.toml"), policy_text()).expect("write policy"); // ok: test
        let journal_line = journal.map(|u| format!("journal = \"{u}\"\n")).unwrap_or_default();
        let config = "[service]\nstate_dir = \"state\"\nJOURNAL\n[targets.staff]\nkind = \"sql\"\n\
                      url = \"sqlite://state/directory.db\"\ncreate_schema = true\n\n[policies]\n\
                      staff = \"policies/staff.toml\"\n\n[mail]\nfrom = \"dirsync <dirsync@example.org>\"\n\
                      transport = \"file\"\nfolder = \"mail\"\n\n[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\n\
                      policy = \"staff\"\nsubmitter = \"hr@example.org\"\nsettle_seconds = 1\n"
            .replace("JOURNAL\n", &journal_line);
        fs::write(dir.join("dirsync.toml"), config).expect("write config"); // ok: test
        Env {
            db: dir.join("state/directory.db"),
            journal: dir.join("state/journal.db"),
            inbox: dir.join("inbox"),
            mail: dir.join("mail"),
            dir,
            _tmp: tmp,
        }
    }

    fn serve(&self) -> Daemon {
        serve::start_serve(&self.dir, "Ready.")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .current_dir(&self.dir)
            .args(["--config", "dirsync.toml"])
            .args(args)
            .output()
            .expect("run dirsync") // ok: test
    }

    /// Rename a file into the inbox and wait until its results are archived.
    fn drop_and_wait(&self, d: &Daemon, name: &str, content: &str) -> PathBuf {
        let staged = self.dir.join("staging").join(name);
        fs::write(&staged, content).expect("write"); // ok: test
        fs::rename(&staged, self.inbox.join(name)).expect("rename"); // ok: test
        let results = name.replace(".csv", ".results.csv");
        let found = || {
            fs::read_dir(self.inbox.join("archive"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|day| day.path().join(&results))
                .find(|p| p.exists())
        };
        assert!(
            wait_until(Duration::from_secs(30), || found().is_some()),
            "{name} not archived:\n{}",
            d.log()
        );
        // The journal says where the file is just after it moved.
        let filed = || {
            self.run_of(name)
                .is_some_and(|id| stdout(&self.run(&["runs", "show", &id.to_string()])).contains("/archive/"))
        };
        assert!(
            wait_until(Duration::from_secs(10), filed),
            "{name} not filed:\n{}",
            d.log()
        );
        found().expect("archived") // ok: test
    }

    fn status(&self, user: &str) -> String {
        sqlite(&self.db, &format!("SELECT status FROM users WHERE username = '{user}'"))
    }

    /// A run's state, as `dirsync runs show` says (any journal).
    fn run_state(&self, id: i64) -> String {
        let shown = stdout(&self.run(&["runs", "show", &id.to_string()]));
        shown
            .lines()
            .find_map(|l| l.strip_prefix("state"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// The id of the newest run of the file `name`, from `dirsync runs`.
    fn run_of(&self, name: &str) -> Option<i64> {
        stdout(&self.run(&["runs"]))
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols.get(1) == Some(&name)).then(|| cols[0].parse().ok()).flatten()
            })
            .max()
    }

    /// Results mails to the submitter, oldest first (file names sort by time).
    fn results_mails(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, String)> = fs::read_dir(&self.mail)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let text = fs::read_to_string(e.path()).ok()?;
                let t = e.metadata().ok()?.modified().ok()?;
                text.contains("To: hr@example.org").then_some((t, text))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, t)| t).collect()
    }

    /// Ten people applied (run 1), then a file without u00-u04: five
    /// leavers against a limit of two, held (run 2), and one update applied.
    fn held_leavers(&self, d: &Daemon) -> PathBuf {
        self.drop_and_wait(d, "day1.csv", &roster(0..10, "Clerk"));
        let mut day2 = roster(5..9, "Clerk");
        day2.push_str("u09,First9,Last9,u09@example.org,Manager\n");
        let results = self.drop_and_wait(d, "day2.csv", &day2);
        assert_eq!(self.run_state(2), "awaiting-approval", "{}", d.log());
        assert_eq!(self.status("u00"), "active");
        assert_eq!(
            sqlite(&self.db, "SELECT title FROM users WHERE username = 'u09'"),
            "Manager"
        );
        let text = fs::read_to_string(&results).expect("results"); // ok: test
        assert!(
            text.contains("held") && text.contains("dirsync runs approve 2 --class leavers"),
            "{text}"
        );
        results
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn issue_12_held_leavers_are_shown_then_approved_and_applied() {
    let env = Env::new();
    let d = env.serve();
    let results = env.held_leavers(&d);
    assert!(
        wait_until(Duration::from_secs(20), || env.results_mails().len() == 2),
        "two results mails expected:\n{}",
        d.log()
    );
    assert!(
        env.results_mails()[1].contains("runs approve 2"),
        "{}",
        env.results_mails()[1]
    );

    // What is held, with the key, the change and the command to approve it.
    let show = env.run(&["runs", "show", "2"]);
    let text = stdout(&show);
    assert!(text.contains("state     awaiting-approval"), "{text}");
    assert!(text.contains("held changes (5)"), "{text}");
    for u in ["u00", "u01", "u02", "u03", "u04"] {
        assert!(
            text.contains(&format!("-\t{u}\tleaver")),
            "{u} not listed as held:\n{text}"
        );
    }

    let out = env.run(&["runs", "approve", "2", "--by", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for u in ["u00", "u01", "u02", "u03", "u04"] {
        assert_eq!(env.status(u), "leaver", "{u}");
    }
    assert_eq!(env.status("u05"), "active");
    assert_eq!(env.run_state(2), "done");
    assert_eq!(
        sqlite(
            &env.journal,
            "SELECT decision || ' ' || classes || ' ' || by_name FROM run_approvals"
        ),
        "approve leavers alice"
    );
    // The archived results file now says what the approval did.
    let text = fs::read_to_string(&results).expect("results"); // ok: test
    assert_eq!(text.matches(",absent,done,made a leaver").count(), 5, "{text}");
    assert!(!text.contains(",held,"), "{text}");
    // A second results mail for the run says what the approval did.
    let mails = env.results_mails();
    assert_eq!(mails.len(), 3, "{mails:#?}");
    assert!(mails[2].contains("5 leaver"), "{}", mails[2]);
    assert!(
        mails[2].contains("held leavers approved by alice") && mails[2].contains("5 applied"),
        "{}",
        mails[2]
    );
    // Approving twice is refused: nothing waits any more.
    let again = env.run(&["runs", "approve", "2"]);
    assert_eq!(again.status.code(), Some(2), "{}", stdout(&again));
    // `dirsync runs` lists the daemon's runs.
    let list = stdout(&env.run(&["runs"]));
    assert!(list.contains("day2.csv\thr") && list.contains("done"), "{list}");
}

#[test]
fn issue_12_an_approval_refuses_a_plan_that_changed_and_skips_what_was_fixed() {
    let env = Env::new();
    let d = env.serve();
    env.held_leavers(&d);
    // Behind dirsync's back: someone disables u00 by hand, and someone adds
    // an account the file does not name (one more leaver nobody was shown).
    sqlite(&env.db, "UPDATE users SET status = 'leaver' WHERE username = 'u00'");
    sqlite(
        &env.db,
        "INSERT INTO users (username, first_name, last_name, email, status) \
         VALUES ('u99', 'Extra', 'Person', 'u99@example.org', 'active')",
    );
    let out = env.run(&["runs", "approve", "2", "--by", "bob"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("refused") && text.contains("u99"), "{text}");
    for u in ["u01", "u02", "u03", "u04", "u99"] {
        assert_eq!(env.status(u), "active", "{u} was written by a refused approval");
    }
    assert_eq!(env.run_state(2), "awaiting-approval");
    assert!(sqlite(
        &env.journal,
        "SELECT note FROM run_approvals WHERE decision = 'refused'"
    )
    .contains("u99"));

    // The extra account goes away again: the plan is the one shown, except
    // u00, which someone already fixed.
    sqlite(&env.db, "DELETE FROM users WHERE username = 'u99'");
    let out = env.run(&["runs", "approve", "2", "--class", "leavers", "--by", "bob"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for u in ["u00", "u01", "u02", "u03", "u04"] {
        assert_eq!(env.status(u), "leaver", "{u}");
    }
    let show = stdout(&env.run(&["runs", "show", "2"]));
    assert!(
        show.contains("refused") && show.contains("approve leavers by bob"),
        "{show}"
    );
    let results = fs::read_to_string(
        env.dir
            .join(sqlite(&env.journal, "SELECT results FROM runs WHERE id = 2")),
    )
    .expect("results"); // ok: test
    let u00 = results.lines().find(|l| l.contains("u00")).unwrap_or_default();
    assert!(u00.contains("no longer needed"), "{results}");
}

#[test]
fn issue_12_reject_writes_nothing_and_a_newer_file_supersedes_a_waiting_run() {
    let env = Env::new();
    let d = env.serve();
    env.held_leavers(&d);
    let out = env.run(&["runs", "reject", "2", "--by", "carol"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(env.run_state(2), "done");
    for u in ["u00", "u01", "u02", "u03", "u04"] {
        assert_eq!(env.status(u), "active", "{u} was written by a rejected run");
    }
    let again = env.run(&["runs", "approve", "2"]);
    assert_eq!(again.status.code(), Some(2), "{}", stdout(&again));

    // Day 3 holds the same leavers again (run 3); day 4 arrives before anyone
    // decided: run 3 is superseded and can no longer be approved.
    let mut day3 = roster(5..9, "Clerk");
    day3.push_str("u09,First9,Last9,u09@example.org,Director\n");
    env.drop_and_wait(&d, "day3.csv", &day3);
    assert_eq!(env.run_state(3), "awaiting-approval", "{}", d.log());
    let mut day4 = roster(5..9, "Clerk");
    day4.push_str("u09,First9,Last9,u09@example.org,Chair\n");
    env.drop_and_wait(&d, "day4.csv", &day4);
    assert_eq!(env.run_state(3), "superseded", "{}", d.log());
    assert_eq!(env.run_state(4), "awaiting-approval");
    let out = env.run(&["runs", "approve", "3"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("run 4"), "{text}");
    assert_eq!(env.status("u00"), "active");
}

#[test]
fn issue_12_approval_with_the_journal_in_postgresql() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    let env = Env::with_journal(Some(&pg.url()));
    let d = env.serve();
    env.held_leavers(&d);
    let out = env.run(&["runs", "approve", "2", "--by", "dana"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for u in ["u00", "u01", "u02", "u03", "u04"] {
        assert_eq!(env.status(u), "leaver", "{u}");
    }
    assert_eq!(env.run_state(2), "done");
    let show = stdout(&env.run(&["runs", "show", "2"]));
    assert!(show.contains("approve leavers by dana"), "{show}");
}
