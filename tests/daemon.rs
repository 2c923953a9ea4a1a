//! `dirsync serve` as a user runs it: the built binary, a temporary config,
//! an SQLite target checked independently with the `sqlite3` program
//! (scripts/install-test-deps installs it), files dropped into real folders,
//! and real signals — including kill -9 at many points of a large run.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "common/serve.rs"]
mod serve;
use serve::{cheap_example_policy, roster, sqlite, wait_until, Daemon};

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

/// A temporary dirsync installation: config, policy, inbox, state.
struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    inbox: PathBuf,
    db: PathBuf,
    journal: PathBuf,
}

fn policy_text() -> String {
    cheap_example_policy().replace("adds = { max = 10000 }", "adds = { max = 100000 }")
}

fn inbox_toml(settle: u64, marker: bool) -> String {
    format!(
        "[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\nsubmitter = \"hr@example.org\"\n\
         settle_seconds = {settle}\nmarker = {marker}\n"
    )
}

fn config_text(batch: usize, inboxes: &str) -> String {
    format!(
        "[service]\nstate_dir = \"state\"\n\n[targets.staff]\nkind = \"sql\"\nurl = \"sqlite://state/directory.db\"\n\
         create_schema = true\nbatch_size = {batch}\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n{inboxes}"
    )
}

impl Env {
    fn new(batch: usize, settle: u64, marker: bool) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("policies")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("inbox")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("staging")).expect("mkdir"); // ok: test
        fs::write(dir.join("policies/staff.toml"), policy_text()).expect("write policy"); // ok: test
        let config = dir.join("dirsync.toml");
        fs::write(&config, config_text(batch, &inbox_toml(settle, marker))).expect("write config"); // ok: test
        Env {
            inbox: dir.join("inbox"),
            db: dir.join("state/directory.db"),
            journal: dir.join("state/journal.db"),
            config,
            dir,
            _tmp: tmp,
        }
    }

    /// Write `NAME.part` in the inbox, then rename it to NAME.
    fn drop_part_renamed(&self, name: &str, content: &[u8]) {
        let part = self.inbox.join(format!("{name}.part"));
        fs::write(&part, content).expect("write .part file"); // ok: test
        fs::rename(&part, self.inbox.join(name)).expect("rename in the inbox"); // ok: test
    }

    /// Write a file elsewhere and rename it into the inbox (how careful
    /// senders deliver).
    fn drop_renamed(&self, name: &str, content: &[u8]) {
        let staged = self.dir.join("staging").join(name);
        fs::write(&staged, content).expect("write staged file"); // ok: test
        fs::rename(&staged, self.inbox.join(name)).expect("rename into inbox"); // ok: test
    }

    fn start(&self) -> Daemon {
        Daemon::start(self)
    }

    /// `start`, then wait (20 s at most) until it says it is ready.
    fn start_ready(&self) -> Daemon {
        let d = self.start();
        d.wait_log("Ready.", Duration::from_secs(20));
        d
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

    fn results_files(&self) -> Vec<PathBuf> {
        serve::results_files(&self.inbox)
    }

    /// Wait (`secs` at most) until `name` is archived, and return its path;
    /// if it is not, fail with `what` and the daemon's log.
    #[track_caller]
    fn wait_archived(&self, d: &Daemon, name: &str, secs: u64, what: &str) -> PathBuf {
        let archived = wait_until(Duration::from_secs(secs), || self.archived(name).is_some());
        assert!(archived, "{what}:\n{}", d.log());
        self.archived(name).expect("archived") // ok: test
    }

    /// `dirsync --config … ARGS`, run to the end.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run dirsync") // ok: test
    }

    fn users(&self) -> usize {
        if !self.db.exists() {
            return 0;
        }
        sqlite(&self.db, "SELECT COUNT(*) FROM users").parse().unwrap_or(0)
    }
}

impl Daemon {
    fn start(env: &Env) -> Daemon {
        Daemon::start_with(env, &[])
    }

    fn start_with(env: &Env, vars: &[(&str, &str)]) -> Daemon {
        Daemon::start_full(env, vars, &[])
    }

    fn start_full(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Daemon {
        let n = fs::read_dir(&env.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
                    .count()
            })
            .unwrap_or(0);
        let log = env.dir.join(format!("serve-{n}.log"));
        // A relative config path, as a newcomer types it: inbox paths are
        // then relative too.
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&env.dir)
            .args(["--config", "dirsync.toml"])
            .args(args)
            .arg("serve")
            .env("DIRSYNC_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .envs(vars.iter().copied());
        Daemon::spawn(cmd, log)
    }
}

fn sample() -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example/sample.csv")).expect("sample.csv")
    // ok: test
}

/// (change, result) per data row of a results file, and the key column.
fn results_rows(path: &Path) -> Vec<(String, String, String, String)> {
    let mut r = csv::Reader::from_path(path).expect("results file"); // ok: test
    let headers = r.headers().expect("header").clone(); // ok: test
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (c, res, m) = (col("change"), col("result"), col("message"));
    r.records()
        .map(|rec| {
            let rec = rec.expect("results record"); // ok: test
            let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("").to_string();
            (rec.get(0).unwrap_or("").to_string(), get(c), get(res), get(m))
        })
        .collect()
}

fn usernames(csv_bytes: &[u8]) -> Vec<String> {
    let mut r = csv::Reader::from_reader(csv_bytes);
    r.records()
        .map(|rec| rec.expect("roster record").get(0).unwrap_or("").to_lowercase()) // ok: test
        .collect()
}

fn top_level_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn dropped_file_is_processed_once_and_archived_with_results_and_duplicates_are_refused() {
    // A long settle time: the file is taken at once because it was renamed in.
    let env = Env::new(500, 60, false);
    let mut d = env.start_ready();
    env.drop_renamed("sample.csv", &sample());
    let results = env.wait_archived(&d, "sample.results.csv", 20, "sample.csv not archived with its results");
    let archived = env
        .archived("sample.csv")
        .expect("sample.csv archived beside its results"); // ok: test
    assert_eq!(fs::read(&archived).expect("read"), sample()); // ok: test
    let rows = results_rows(&results);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().filter(|r| r.1 == "new" && r.2 == "done").count(), 4);
    assert_eq!(rows.iter().filter(|r| r.1 == "error" && r.2 == "skipped").count(), 1);
    assert_eq!(env.users(), 4);
    assert!(top_level_files(&env.inbox).is_empty());
    assert!(top_level_files(&env.inbox.join("processing")).is_empty());
    // No password or row content at INFO.
    assert!(!d.log().contains("jane.smith"), "row content in the log");

    // The same bytes again (written as .part, renamed in place): not
    // applied, filed in rejected/ with a results file that says when the
    // first one was processed.
    env.drop_part_renamed("sample.csv", &sample());
    let dup = env.inbox.join("rejected/sample.results.csv");
    assert!(
        wait_until(Duration::from_secs(20), || dup.exists()),
        "duplicate not rejected:\n{}",
        d.log()
    );
    let text = fs::read_to_string(&dup).expect("duplicate results"); // ok: test
    assert!(text.contains("identical to") && text.contains("run 1"), "{text}");
    assert!(env.inbox.join("rejected/sample.csv").exists());

    // With a .force marker dropped first, it is applied again (all unchanged).
    fs::write(env.inbox.join("sample.csv.force"), b"").expect("force marker"); // ok: test
    env.drop_renamed("sample.csv", &sample());
    let results = env.wait_archived(&d, "sample-run3.results.csv", 20, "forced file not archived");
    let rows = results_rows(&results);
    assert_eq!(rows.iter().filter(|r| r.1 == "unchanged").count(), 4);
    assert!(
        env.archived("sample-run3.csv.force").is_some(),
        "the marker is kept beside the file"
    );
    assert_eq!(env.users(), 4);
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));

    let out = env.run(&["runs"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(listing.lines().count(), 4, "{listing}");
    assert!(
        listing.contains("duplicate") && listing.contains("applied"),
        "{listing}"
    );
    let out = env.run(&["runs", "show", "1"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("tbroken") && shown.contains("not an email address"),
        "{shown}"
    );
}

#[test]
fn a_bad_file_is_rejected_with_its_results_and_the_daemon_goes_on() {
    let env = Env::new(500, 1, false);
    let mut d = env.start_ready();
    env.drop_renamed("broken.csv", b"username,firstname,surname,email\n");
    env.drop_renamed("sample.csv", &sample());
    let rejected = env.inbox.join("rejected/broken.results.csv");
    assert!(
        wait_until(Duration::from_secs(20), || rejected.exists()
            && env.archived("sample.results.csv").is_some()),
        "not rejected and archived:\n{}",
        d.log()
    );
    assert!(env.inbox.join("rejected/broken.csv").exists());
    let text = fs::read_to_string(&rejected).expect("results"); // ok: test
    assert!(text.contains("no data rows"), "{text}");
    assert_eq!(env.users(), 4);
    assert!(d.running());
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
}

#[test]
fn slowly_written_file_is_not_taken_before_it_settles() {
    let env = Env::new(500, 2, false);
    let mut d = env.start_ready();
    let content = sample();
    let text = String::from_utf8_lossy(&content).into_owned();
    let path = env.inbox.join("slow.csv");
    let mut f = fs::File::create(&path).expect("create"); // ok: test
    for line in text.split_inclusive('\n') {
        f.write_all(line.as_bytes()).expect("write"); // ok: test
        f.flush().expect("flush"); // ok: test
        std::thread::sleep(Duration::from_millis(700));
        assert!(path.exists(), "taken while still being written:\n{}", d.log());
    }
    drop(f);
    let results = env.wait_archived(&d, "slow.results.csv", 20, "not archived after settling");
    let rows = results_rows(&results);
    assert_eq!(rows.len(), 5, "the whole file was read");
    assert_eq!(env.users(), 4);
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
}

#[test]
fn marker_inbox_waits_for_the_marker() {
    let env = Env::new(500, 1, true);
    let mut d = Daemon::start_full(&env, &[], &["--log-format", "json"]);
    d.wait_log("Ready.", Duration::from_secs(20));
    env.drop_renamed("staff.csv", &sample());
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        env.inbox.join("staff.csv").exists(),
        "taken without its marker:\n{}",
        d.log()
    );
    assert_eq!(env.users(), 0);
    fs::write(env.inbox.join("staff.csv.done"), b"").expect("marker"); // ok: test
    env.wait_archived(&d, "staff.results.csv", 20, "not archived after the marker");
    assert!(
        env.archived("staff.csv.done").is_some(),
        "the marker is kept beside the file"
    );
    assert_eq!(env.users(), 4);
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
    // JSON logs: one span per run with its id, inbox and file; no row contents.
    let log = d.log();
    let done = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "Run done.")
        .unwrap_or_else(|| panic!("no JSON \"Run done.\" line:\n{log}"));
    assert_eq!(done["span"]["run_id"], 1);
    // Values from outside are logged escaped (Debug), so a file name with
    // a newline cannot forge a log line.
    assert_eq!(done["span"]["inbox"], "\"hr\"");
    assert_eq!(done["span"]["file"], "\"staff.csv\"");
    assert!(
        !log.contains("jane.smith") && !log.contains("Smith"),
        "row contents in the log"
    );
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let env = Env::new(500, 1, false);
    let mut d = env.start_ready();
    fs::write(&env.config, "this is = = not toml [").expect("break config"); // ok: test
    d.signal(libc::SIGHUP);
    d.wait_log("Configuration reload refused", Duration::from_secs(20));
    assert!(d.running(), "the daemon died on a broken config:\n{}", d.log());
    // Still serving with the old config.
    env.drop_renamed("sample.csv", &sample());
    env.wait_archived(&d, "sample.results.csv", 20, "not processed after a refused reload");
    assert_eq!(env.users(), 4);
    // A good config is taken.
    fs::write(&env.config, config_text(500, &inbox_toml(1, true))).expect("fix config"); // ok: test
    d.signal(libc::SIGHUP);
    d.wait_log("Configuration reloaded.", Duration::from_secs(20));
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
}

#[test]
fn sigterm_mid_run_exits_cleanly_and_the_run_resumes_on_restart() {
    let env = Env::new(50, 1, false);
    let file = roster(3000, 11);
    let mut d = env.start_ready();
    env.drop_renamed("big.csv", &file);
    assert!(
        wait_until(Duration::from_secs(60), || env.users() >= 100),
        "the run did not start:\n{}",
        d.log()
    );
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0), "SIGTERM must exit 0");
    let applied = env.users();
    assert!(applied < 3000, "the run finished before SIGTERM; make the file bigger");
    assert!(env.inbox.join("processing/big.csv").exists());
    assert_eq!(
        sqlite(&env.journal, "SELECT state FROM runs WHERE id = 1"),
        "running",
        "the run is journaled as unfinished"
    );
    let mut d = env.start();
    let results = env.wait_archived(&d, "big.results.csv", 120, "the run did not resume");
    assert!(d.log().contains("Resuming"), "{}", d.log());
    assert_eq!(env.users(), 3000);
    let rows = results_rows(&results);
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.iter().all(|r| r.1 == "new" && r.2 == "done"),
        "every row new and done"
    );
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
}

#[test]
fn two_files_for_one_target_are_applied_one_after_the_other() {
    let env = Env::new(100, 1, false);
    let a = roster(1500, 21);
    let b = roster(1500, 22);
    let mut d = env.start_ready();
    let sa = env.dir.join("staging/a.csv");
    let sb = env.dir.join("staging/b.csv");
    fs::write(&sa, &a).expect("write"); // ok: test
    fs::write(&sb, &b).expect("write"); // ok: test
    fs::rename(&sa, env.inbox.join("a.csv")).expect("rename"); // ok: test
    fs::rename(&sb, env.inbox.join("b.csv")).expect("rename"); // ok: test
    assert!(
        wait_until(Duration::from_secs(120), || env.archived("a.results.csv").is_some()
            && env.archived("b.results.csv").is_some()),
        "not both archived:\n{}",
        d.log()
    );
    let spans = sqlite(
        &env.journal,
        "SELECT started || ' ' || finished FROM runs ORDER BY started",
    );
    let spans: Vec<(i64, i64)> = spans
        .lines()
        .map(|l| {
            let mut it = l.split(' ').map(|n| n.parse::<i64>().expect("ms")); // ok: test
            (it.next().expect("start"), it.next().expect("end")) // ok: test
        })
        .collect();
    assert_eq!(spans.len(), 2);
    assert!(
        spans[0].1 <= spans[1].0,
        "runs against one target overlapped: {spans:?}"
    );
    let distinct: std::collections::HashSet<String> = usernames(&a).into_iter().chain(usernames(&b)).collect();
    assert_eq!(env.users(), distinct.len());
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
}

/// kill -9 at many points of a 10k-row run; restart each time.
#[test]
fn crash_anywhere_leaves_no_duplicate_no_lost_row_and_one_results_file() {
    const ROWS: usize = 10_000;
    let env = Env::new(100, 1, false);
    let file = roster(ROWS, 4242);
    let expected: Vec<String> = usernames(&file);
    assert_eq!(expected.len(), ROWS);
    let finished = || env.archived("big.results.csv").is_some();
    let mut hashes: HashMap<String, String> = HashMap::new();
    let check_hashes = |hashes: &mut HashMap<String, String>| {
        let rows = sqlite(
            &env.db,
            "SELECT username || '|' || COALESCE(password_hash, '') FROM users",
        );
        for line in rows.lines() {
            let (user, hash) = line.split_once('|').unwrap_or((line, ""));
            assert!(!hash.is_empty(), "{user} has no password hash");
            match hashes.get(user) {
                Some(h) => assert_eq!(h, hash, "the password of {user} changed between restarts"),
                None => {
                    hashes.insert(user.to_string(), hash.to_string());
                }
            }
        }
    };
    let mut mid_run_kills = 0;
    let mut kill_points = Vec::new();

    // Life 1: kill right after the drop (before or during the claim).
    let mut d = env.start_ready();
    env.drop_renamed("big.csv", &file);
    std::thread::sleep(Duration::from_millis(30));
    let mut kill = |d: &mut Daemon, what: String, hashes: &mut HashMap<String, String>| {
        assert!(d.running(), "dirsync serve died on its own:\n{}", d.log());
        let mid = !finished();
        d.kill9();
        if mid {
            mid_run_kills += 1;
        }
        kill_points.push(format!("{what} (users {})", env.users()));
        check_hashes(hashes);
    };
    kill(&mut d, "30 ms after the drop".into(), &mut hashes);

    // Lives 2-3: early in a life (journal open, resume, parse, plan).
    for ms in [250u64, 700] {
        let mut d = env.start();
        std::thread::sleep(Duration::from_millis(ms));
        kill(&mut d, format!("{ms} ms after start"), &mut hashes);
    }
    // Lives 4-24: at rows applied spread over the run, each after at least
    // one batch of this life.
    for j in 1..=21usize {
        let threshold = j * ROWS / 22;
        let mut d = env.start();
        let at_start = env.users();
        let target = threshold.max(at_start + 1);
        let ok = wait_until(Duration::from_secs(120), || env.users() >= target || finished());
        assert!(ok, "no progress towards {target} rows:\n{}", d.log());
        kill(&mut d, format!("at ≥ {target} rows"), &mut hashes);
    }
    // Lives 25-26: around the end (last outcomes, results, filing away).
    {
        let mut d = env.start();
        wait_until(Duration::from_secs(120), || env.users() >= ROWS || finished());
        kill(&mut d, "as the last rows land".into(), &mut hashes);
        let mut d = env.start();
        std::thread::sleep(Duration::from_millis(400));
        kill(&mut d, "400 ms after the last restart".into(), &mut hashes);
    }
    // The last life finishes the run (the one before may already have: then
    // it is stopped once ready, not before its SIGTERM handler is in place).
    let mut d = env.start_ready();
    assert!(
        wait_until(Duration::from_secs(180), finished),
        "the run never finished:\n{}\nkills: {kill_points:#?}",
        d.log()
    );
    assert_eq!(d.stop(Duration::from_secs(30)), Some(0));
    check_hashes(&mut hashes);
    assert!(
        mid_run_kills >= 20,
        "only {mid_run_kills} kills hit the run: {kill_points:#?}"
    );

    // The target holds exactly the expected accounts.
    let mut in_db: Vec<String> = sqlite(&env.db, "SELECT lower(username) FROM users")
        .lines()
        .map(str::to_string)
        .collect();
    in_db.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(in_db.len(), ROWS);
    assert_eq!(in_db, want);
    assert_eq!(hashes.len(), ROWS);

    // Exactly one results file, one line per row, each with one outcome:
    // every account was created exactly once (none failed as a duplicate).
    let results = env.results_files();
    assert_eq!(results.len(), 1, "{results:?}");
    let rows = results_rows(&results[0]);
    assert_eq!(rows.len(), ROWS);
    let keys: Vec<String> = rows.iter().map(|r| r.0.to_lowercase()).collect();
    assert_eq!(keys, expected, "results rows in file order");
    for r in &rows {
        assert_eq!((r.1.as_str(), r.2.as_str()), ("new", "done"), "row {r:?}");
    }
    // The journal agrees: one run, every item with exactly one outcome.
    assert_eq!(sqlite(&env.journal, "SELECT COUNT(*) FROM runs"), "1");
    assert_eq!(sqlite(&env.journal, "SELECT state || ' ' || filed FROM runs"), "done 1");
    assert_eq!(
        sqlite(
            &env.journal,
            "SELECT COUNT(*) || ' ' || COUNT(verdict) FROM run_items WHERE run_id = 1"
        ),
        format!("{ROWS} {ROWS}")
    );
    assert_eq!(
        sqlite(&env.journal, "SELECT COUNT(*) FROM run_secrets"),
        "0",
        "passwords are forgotten once the run is done"
    );
    assert!(top_level_files(&env.inbox.join("processing")).is_empty());
    let confirmed = rows
        .iter()
        .filter(|r| r.3.contains("confirmed by reading the target"))
        .count();
    eprintln!("kill points: {kill_points:#?}\nrows confirmed after a kill between commit and journal: {confirmed}");
}

/// A file name is data from outside: one with a newline in it must not
/// forge a line of the text log (values are logged escaped).
#[test]
fn issue_12_a_file_name_with_a_newline_cannot_forge_a_log_line() {
    let env = Env::new(100, 1, false);
    let d = env.start_ready();
    let name = "evil\nSubject: forged.csv";
    env.drop_renamed(name, &sample());
    env.wait_archived(&d, "evil\nSubject: forged.results.csv", 20, "the file was not run");
    let log = d.log();
    assert!(
        log.contains("evil\\nSubject: forged.csv"),
        "the name is logged escaped:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("Subject:")),
        "a file name forged a log line:\n{log}"
    );
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/dirsync.service");
    let unit = fs::read_to_string(&unit_path).expect("systemd/dirsync.service"); // ok: test
    for directive in [
        "Type=notify",
        "User=dirsync",
        "StateDirectory=dirsync",
        "ConfigurationDirectory=dirsync",
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "ProtectHome=true",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive}");
    }
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED systemd-analyze verify: systemd-analyze is not installed (Debian package systemd; scripts/install-test-deps installs it)");
        return;
    }
    // Verify the unit as shipped, pointing at the binary just built (verify
    // checks that ExecStart exists).
    let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
    let copy = tmp.path().join("dirsync.service");
    fs::write(&copy, unit.replace("/usr/bin/dirsync", BIN)).expect("write unit"); // ok: test

    // The unit's man:dirsync(1) exists once the package is installed;
    // tests/package.rs verifies the installed unit with its man pages.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(&copy)
        .output()
        .expect("systemd-analyze verify"); // ok: test
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    assert!(
        !stderr.contains("dirsync.service"),
        "systemd-analyze verify warns about the unit:\n{stderr}"
    );
}

#[test]
fn systemd_hears_ready_status_and_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new(500, 1, false);
    let sock_path = env.dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket"); // ok: test
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout"); // ok: test
    let sock_str = sock_path.to_string_lossy().into_owned();
    let mut d = Daemon::start_with(
        &env,
        &[("NOTIFY_SOCKET", sock_str.as_str()), ("WATCHDOG_USEC", "2000000")],
    );
    let mut heard = String::new();
    let mut buf = [0u8; 4096];
    let mut listen = |heard: &mut String, want: &str, timeout: Duration| {
        let start = Instant::now();
        while start.elapsed() < timeout && !heard.contains(want) {
            if let Ok(n) = sock.recv(&mut buf) {
                heard.push_str(&String::from_utf8_lossy(&buf[..n]));
                heard.push('\n');
            }
        }
        heard.contains(want)
    };
    assert!(
        listen(&mut heard, "READY=1", Duration::from_secs(20)),
        "no READY=1: {heard}\n{}",
        d.log()
    );
    env.drop_renamed("sample.csv", &sample());
    assert!(
        listen(&mut heard, "STATUS=run 1: sample.csv (hr)", Duration::from_secs(20)),
        "no STATUS with the run: {heard}"
    );
    assert!(
        listen(&mut heard, "WATCHDOG=1", Duration::from_secs(10)),
        "no WATCHDOG=1: {heard}"
    );
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
    assert!(
        listen(&mut heard, "STOPPING=1", Duration::from_secs(5)),
        "no STOPPING=1: {heard}"
    );
}

#[test]
fn inbox_config_mistakes_fail_config_check() {
    let env = Env::new(500, 1, false);
    for (inbox, says) in [
        (
            "[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\nsetle_seconds = 3\n",
            "setle_seconds",
        ),
        (
            "[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"stuff\"\n",
            "stuff",
        ),
        ("[[inbox]]\nname = \"hr\"\npolicy = \"staff\"\n", "folder"),
        (
            "[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\n\
             [[inbox]]\nname = \"hr\"\nfolder = \"other\"\npolicy = \"staff\"\n",
            "another inbox has this name",
        ),
        (
            "[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\n\
             [[sftp_inbox]]\nname = \"hr\"\nsftp = \"sftp://hr@127.0.0.1:2222/out\"\npolicy = \"staff\"\n\
             password_file = \"pw\"\nhost_key_fingerprint = \"SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s\"\n",
            "an [[sftp_inbox]] has this name too",
        ),
    ] {
        fs::write(&env.config, config_text(500, inbox)).expect("config"); // ok: test
        let out = env.run(&["config", "check"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{inbox}: {stderr}");
        assert!(stderr.contains(says), "{inbox}: expected {says:?} in {stderr}");
    }
}

#[test]
fn a_file_claimed_just_before_a_crash_is_run_at_the_next_start() {
    // The claim (rename into processing/) happened; the process died before
    // the run reached the journal.
    let env = Env::new(500, 1, false);
    fs::create_dir_all(env.inbox.join("processing")).expect("mkdir"); // ok: test
    fs::write(env.inbox.join("processing/sample.csv"), sample()).expect("write"); // ok: test
    let mut d = env.start();
    env.wait_archived(&d, "sample.results.csv", 60, "the orphaned claim was not run");
    assert_eq!(env.users(), 4);
    assert_eq!(env.results_files().len(), 1);
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
}

/// A throwaway PostgreSQL cluster on a free port (Debian's postgresql
/// package); stopped when dropped.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_root: bool,
}

impl Postgres {
    fn start(dir: &Path) -> Result<Postgres, String> {
        let bin = fs::read_dir("/usr/lib/postgresql")
            .map_err(|_| "PostgreSQL is not installed (Debian package postgresql)".to_string())?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .ok_or("no /usr/lib/postgresql/*/bin/initdb")?;
        // SAFETY: geteuid has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        let root = dir.join("pg");
        fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        if as_root {
            use std::os::unix::fs::PermissionsExt;
            // PostgreSQL refuses to run as root: its folder belongs to `postgres`.
            let uid = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .map_err(|e| e.to_string())?;
            let uid: u32 = String::from_utf8_lossy(&uid.stdout)
                .trim()
                .parse()
                .map_err(|_| "no postgres user")?;
            std::os::unix::fs::chown(&root, Some(uid), None).map_err(|e| e.to_string())?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let pg = Postgres {
            bin,
            data: root.join("data"),
            port,
            as_root,
        };
        let data = pg.data.to_string_lossy().into_owned();
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "dirsync"])?;
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", root.display());
        let log = root.join("log").to_string_lossy().into_owned();
        pg.run("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"])?;
        Ok(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let out = if self.as_root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{tool}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().into_owned();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}

#[test]
fn the_journal_can_live_in_postgresql() {
    let env = Env::new(500, 1, false);
    let pg = match Postgres::start(&env.dir) {
        Ok(pg) => pg,
        Err(why) => {
            eprintln!("SKIPPED the PostgreSQL journal test: {why}");
            return;
        }
    };
    let config = fs::read_to_string(&env.config).expect("config"); // ok: test
    let config = config.replace(
        "state_dir = \"state\"\n",
        &format!(
            "state_dir = \"state\"\njournal = \"postgres://dirsync@127.0.0.1:{}/postgres\"\n",
            pg.port
        ),
    );
    fs::write(&env.config, config).expect("config"); // ok: test
    let mut d = env.start();
    d.wait_log("Ready.", Duration::from_secs(30));
    env.drop_renamed("sample.csv", &sample());
    env.wait_archived(&d, "sample.results.csv", 20, "not archived with a PostgreSQL journal");
    env.drop_part_renamed("sample.csv", &sample());
    assert!(
        wait_until(Duration::from_secs(20), || env
            .inbox
            .join("rejected/sample.results.csv")
            .exists()),
        "the duplicate was not recognised through the PostgreSQL journal:\n{}",
        d.log()
    );
    assert_eq!(d.stop(Duration::from_secs(20)), Some(0));
    assert!(!env.journal.exists(), "no SQLite journal when PostgreSQL is configured");
    let out = env.run(&["runs", "show", "1"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("state     done") && shown.contains("tbroken"), "{shown}");
}
