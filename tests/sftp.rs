//! SFTP inbox against a real OpenSSH sshd (tests/support/servers.rs), driving
//! the built `dirsync` binary: `inbox test`, `inbox poll`, and `serve`.

#[path = "common/mime.rs"]
mod mime;
#[path = "support/servers.rs"]
mod servers;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mime::{parse, smtp_section, to_of};
use servers::{Smtp, Sshd};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

/// An sshd, an inbox folder on it, and a dirsync config with a SQLite target.
struct Env {
    sshd: Sshd,
    dir: TempDir,
}

impl Env {
    fn start() -> Env {
        let sshd = Sshd::start().unwrap_or_else(|e| panic!("cannot start sshd: {e}"));
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
        fs::create_dir_all(dir.path().join("state")).expect("mkdir");
        let policy = fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/example/policies/staff.toml"
        ))
        .expect("example policy")
        .replace("argon2_memory_kib = 19456", "argon2_memory_kib = 8")
        .replace("argon2_iterations = 2", "argon2_iterations = 1");
        fs::write(dir.path().join("policies/staff.toml"), policy).expect("write policy");
        fs::create_dir_all(sshd.root_dir().join("inbox")).expect("mkdir inbox");
        let env = Env { sshd, dir };
        let pin = format!("host_key_fingerprint = \"{}\"", env.sshd.host_key_fingerprint_sha256());
        env.write_config(&pin);
        env
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("dirsync.toml")
    }

    /// (Re)write dirsync.toml with `pin` as the host key lines.
    fn write_config(&self, pin: &str) {
        let auth = format!("key_file = \"{}\"", self.sshd.user_key_path().display());
        self.write_config_with(pin, &auth);
    }

    /// (Re)write dirsync.toml with these host key and authentication lines.
    fn write_config_with(&self, pin: &str, auth: &str) {
        let text = format!(
            r#"[service]
state_dir = "state"

[targets.staff]
kind = "sql"
url = "sqlite://state/directory.db"
create_schema = true

[policies]
staff = "policies/staff.toml"

[[sftp_inbox]]
name = "hr"
sftp = "sftp://{user}@127.0.0.1:{port}{inbox}"
{auth}
{pin}
poll_interval_secs = 1
timeout_secs = 5
max_backoff_secs = 2
policy = "staff"
submitter = "hr@example.org"
"#,
            user = self.sshd.user(),
            port = self.sshd.port(),
            inbox = self.inbox().display(),
        );
        fs::write(self.config(), text).expect("write config");
    }

    /// The inbox folder, seen directly on the server's disk.
    fn inbox(&self) -> PathBuf {
        self.sshd.root_dir().join("inbox")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.config())
            .args(args)
            .env("DIRSYNC_LOG", "info");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run dirsync");
        eprintln!(
            "dirsync {args:?}: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `dirsync inbox poll hr` in the background, logging to a file.
    fn spawn_poll(&self, envs: &[(&str, &str)]) -> Poll {
        let log = self.dir.path().join(format!("poll-{}.log", now_nanos()));
        let file = fs::File::create(&log).expect("log file");
        let mut c = self.cmd(&["inbox", "poll", "hr"]);
        c.stdout(Stdio::null()).stderr(file);
        for (k, v) in envs {
            c.env(k, v);
        }
        Poll {
            child: c.spawn().expect("spawn dirsync inbox poll"),
            log,
        }
    }

    /// `dirsync serve` in the background, logging to a file.
    fn spawn_serve(&self) -> Poll {
        let log = self.dir.path().join(format!("serve-{}.log", now_nanos()));
        let file = fs::File::create(&log).expect("log file");
        let mut c = self.cmd(&["serve"]);
        c.stdout(Stdio::null())
            .stderr(file)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC");
        Poll {
            child: c.spawn().expect("spawn dirsync serve"),
            log,
        }
    }

    /// Add lines to dirsync.toml (`section` is put before the first
    /// `[[sftp_inbox]]`; `inbox` at the end, inside it).
    fn extend_config(&self, section: &str, inbox: &str) {
        let text = fs::read_to_string(self.config()).expect("config");
        let text = text.replacen("[[sftp_inbox]]", &format!("{section}\n[[sftp_inbox]]"), 1);
        fs::write(self.config(), format!("{text}{inbox}\n")).expect("config");
    }

    /// `dirsync inbox poll hr --once`, expected to succeed: its stdout.
    #[track_caller]
    fn poll_once_ok(&self) -> String {
        let out = self.run(&["inbox", "poll", "hr", "--once"]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replace `from` with `to` in dirsync.toml.
    fn replace_in_config(&self, from: &str, to: &str) {
        let text = fs::read_to_string(self.config()).expect("config");
        fs::write(self.config(), text.replace(from, to)).expect("config");
    }

    /// `dirsync` with `args`, expected to fail with exit code 2: its stderr.
    #[track_caller]
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        stderr
    }

    /// Wait (20 s at most) until `poll` has claimed `file`: it is in processing/.
    fn wait_claimed(&self, poll: &Poll, file: &str) {
        let claimed = self.inbox().join("processing").join(file);
        wait_for(
            "the file to be claimed",
            Duration::from_secs(20),
            || claimed.exists(),
            || poll.log(),
        );
    }

    /// Wait (`secs` at most) until `poll` has archived `file`, and nothing else.
    fn wait_archived(&self, poll: &Poll, file: &str, secs: u64, what: &str) {
        wait_for(
            what,
            Duration::from_secs(secs),
            || self.finished_in("archive") == [file],
            || poll.log(),
        );
    }

    /// The results file `name` has `rows` rows, every one new and done:
    /// each applied exactly once.
    #[track_caller]
    fn assert_all_new_and_done(&self, name: &str, rows: usize, what: &str) {
        let results = self.results(name);
        let v = verdicts(&results);
        assert_eq!(v.len(), rows, "{results}");
        assert!(v.iter().all(|(c, r)| c == "new" && r == "done"), "{what}: {results}");
    }

    /// A plain file where the results folder should be: every upload fails.
    /// (Tests run as root, and so does sshd: permissions would not stop it.)
    fn block_results(&self) {
        fs::write(self.inbox().join("results"), b"not a folder").expect("block results");
    }

    /// The results folder back in place of `block_results`' file.
    fn unblock_results(&self, poll: &Poll) {
        let results_dir = self.inbox().join("results");
        fs::remove_file(&results_dir).unwrap_or_else(|e| panic!("unblock: {e}\n{}", poll.log()));
        fs::create_dir(&results_dir).expect("mkdir results");
    }

    /// The results file `name` in the inbox's results/ folder.
    fn results(&self, name: &str) -> String {
        fs::read_to_string(self.inbox().join("results").join(name)).expect("results")
    }

    /// `dirsync runs`: the data lines, as tab-separated fields.
    fn runs(&self) -> Vec<Vec<String>> {
        let out = self.run(&["runs"]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Like `users`, but 0 while the table does not exist or is busy.
    fn users_now(&self) -> usize {
        if !self.dir.path().join("state/directory.db").exists() {
            return 0;
        }
        self.count_users().unwrap_or(0)
    }

    /// Rows in the target's users table, read independently of dirsync.
    fn users(&self) -> usize {
        self.count_users().unwrap_or_else(|e| panic!("{e}"))
    }

    fn count_users(&self) -> Result<usize, String> {
        let db = self.dir.path().join("state/directory.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let url = format!("sqlite://{}", db.display());
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
                .await
                .map_err(|e| format!("open the target database: {e}"))?;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("count users: {e}"))?;
            usize::try_from(n).map_err(|e| format!("count: {e}"))
        })
    }

    /// Non-hidden files directly in `dir` under the inbox.
    fn files_in(&self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.inbox().join(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Files under archive/ or rejected/ (in their dated folders).
    fn finished_in(&self, dir: &str) -> Vec<String> {
        let mut v = Vec::new();
        if let Ok(days) = fs::read_dir(self.inbox().join(dir)) {
            for day in days.filter_map(|e| e.ok()) {
                if let Ok(files) = fs::read_dir(day.path()) {
                    v.extend(
                        files
                            .filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned()),
                    );
                }
            }
        }
        v.sort();
        v
    }
}

struct Poll {
    child: Child,
    log: PathBuf,
}

impl Poll {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Wait (`secs` at most) until the log says `needle`.
    fn wait_log(&self, needle: &str, secs: u64, what: &str) {
        wait_for(
            what,
            Duration::from_secs(secs),
            || self.log().contains(needle),
            || self.log(),
        );
    }
    /// kill -9, and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    /// SIGTERM, and expect a clean exit.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let log = self.log();
                    assert!(status.success(), "inbox poll exited with {status}\n{log}");
                    return log;
                }
                _ if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!("inbox poll did not stop on SIGTERM\n{}", self.log());
                }
                _ => thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", log());
        thread::sleep(Duration::from_millis(100));
    }
}

const HEADER: &str = "Username,First Name,Last Name,E-mail Address\n";

fn roster(n: usize) -> String {
    let mut s = HEADER.to_string();
    for i in 0..n {
        s.push_str(&format!("user{i:05},First{i},Last{i},user{i:05}@example.org\n"));
    }
    s
}

/// (change, result) of each data row of a results file.
fn verdicts(results: &str) -> Vec<(String, String)> {
    csv::Reader::from_reader(results.as_bytes())
        .records()
        .map(|r| {
            let r = r.expect("results CSV");
            let n = r.len();
            (r[n - 3].to_string(), r[n - 2].to_string())
        })
        .collect()
}

#[test]
fn complete_file_is_processed_and_results_appear_on_the_server() {
    let env = Env::start();
    let sample = fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example/sample.csv")).expect("sample");
    fs::write(env.inbox().join("staff.csv"), &sample).expect("drop file");
    fs::write(env.inbox().join("garbage.csv"), b"\xff\xfe\x00not,a\nroster").expect("drop file");

    let out = env.run(&["inbox", "test", "hr"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains(env.sshd.host_key_fingerprint_sha256()), "{stdout}");
    assert!(stdout.contains("staff.csv"), "{stdout}");
    // `inbox test` takes nothing.
    assert!(env.inbox().join("staff.csv").exists());

    let stdout = env.poll_once_ok();
    assert!(stdout.contains("staff.csv: archived"), "{stdout}");
    assert!(stdout.contains("garbage.csv: rejected"), "{stdout}");

    assert_eq!(env.files_in("."), Vec::<String>::new(), "inbox is empty");
    assert_eq!(env.files_in("processing"), Vec::<String>::new());
    assert_eq!(env.finished_in("archive"), vec!["staff.csv"]);
    assert_eq!(env.finished_in("rejected"), vec!["garbage.csv"]);
    assert_eq!(
        env.files_in("results"),
        vec!["garbage.results.csv", "staff.results.csv"]
    );
    let results = env.results("staff.results.csv");
    let v = verdicts(&results);
    assert_eq!(
        v.iter().filter(|(c, r)| c == "new" && r == "done").count(),
        4,
        "{results}"
    );
    assert_eq!(v.iter().filter(|(c, _)| c == "error").count(), 1, "{results}");
    assert_eq!(env.users(), 4);
}

#[test]
fn a_file_still_growing_is_not_taken() {
    let env = Env::start();
    let poll = env.spawn_poll(&[]);
    let path = env.inbox().join("grow.csv");
    let rows = 12;
    let all = roster(rows);
    let lines: Vec<&str> = all.lines().collect();
    fs::write(&path, format!("{}\n", lines[0])).expect("start file");
    // Append a row every 400 ms (5 s in all), reopening each time as an
    // uploading HR system would: a premature claim would leave a new
    // partial file behind and an incomplete run.
    for line in &lines[1..] {
        thread::sleep(Duration::from_millis(400));
        assert!(
            !env.inbox().join("processing/grow.csv").exists() && env.finished_in("archive").is_empty(),
            "a growing file was taken\n{}",
            poll.log()
        );
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("file still in the inbox");
        f.write_all(format!("{line}\n").as_bytes()).expect("append");
    }
    env.wait_archived(&poll, "grow.csv", 30, "the settled file to be archived");
    let log = poll.stop();
    assert_eq!(env.files_in("."), Vec::<String>::new(), "{log}");
    let results = env.results("grow.results.csv");
    assert_eq!(verdicts(&results).len(), rows, "{results}");
    assert_eq!(env.users(), rows);
}

#[test]
fn a_wrong_host_key_is_refused() {
    let env = Env::start();
    fs::write(env.inbox().join("staff.csv"), roster(2)).expect("drop file");
    let real = env.sshd.host_key_fingerprint_sha256().to_string();

    // A pinned fingerprint that is not the server's.
    env.write_config(&format!("host_key_fingerprint = \"SHA256:{}\"", "A".repeat(43)));
    for args in [&["inbox", "test", "hr"][..], &["inbox", "poll", "hr", "--once"][..]] {
        let stderr = env.refused(args);
        assert!(
            stderr.contains("does not match the pinned host_key_fingerprint"),
            "{stderr}"
        );
        assert!(stderr.contains(&real), "names the presented key: {stderr}");
    }

    // known_hosts with another key for this host: changed.
    let keys = tempfile::tempdir().expect("tmp");
    let other_pub = keygen(&keys.path().join("other"), "ed25519", "");
    let mut parts = other_pub.split_whitespace();
    let (kind, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let kh = env.dir.path().join("known_hosts");
    fs::write(&kh, format!("[127.0.0.1]:{} {kind} {key}\n", env.sshd.port())).expect("known_hosts");
    env.write_config(&format!("known_hosts = \"{}\"", kh.display()));
    let stderr = env.refused(&["inbox", "test", "hr"]);
    assert!(stderr.contains("CHANGED"), "{stderr}");

    // known_hosts without this host: unknown, never trusted on first use.
    fs::write(&kh, format!("otherhost {kind} {key}\n")).expect("known_hosts");
    let stderr = env.refused(&["inbox", "test", "hr"]);
    assert!(stderr.contains("unknown"), "{stderr}");
    assert_eq!(
        fs::read_to_string(&kh).unwrap_or_default(),
        format!("otherhost {kind} {key}\n"),
        "not learned"
    );

    // Nothing was taken.
    assert_eq!(env.files_in("."), vec!["staff.csv"]);

    // The right known_hosts line works.
    fs::write(&kh, format!("{}\n", env.sshd.known_hosts_line())).expect("known_hosts");
    let out = env.run(&["inbox", "test", "hr"]);
    assert!(out.status.success());
}

#[test]
fn server_stopped_mid_download_then_restarted_processes_the_file_once() {
    let mut env = Env::start();
    let rows = 1000; // about 50 KB: two 32 KiB read requests, a pause after each
    fs::write(env.inbox().join("big.csv"), roster(rows)).expect("drop file");
    let poll = env.spawn_poll(&[("DIRSYNC_TEST_SFTP_READ_DELAY_MS", "1500")]);
    env.wait_claimed(&poll, "big.csv");
    thread::sleep(Duration::from_millis(500));
    env.sshd.stop().expect("stop sshd");
    thread::sleep(Duration::from_secs(3));
    assert!(env.files_in("results").is_empty(), "{}", poll.log());
    assert!(env.inbox().join("processing/big.csv").exists());
    env.sshd.restart().expect("restart sshd");
    env.wait_archived(&poll, "big.csv", 60, "the file to be archived after the restart");
    let log = poll.stop();
    assert!(log.contains("retrying"), "the outage was logged: {log}");
    assert_eq!(env.files_in("results"), vec!["big.results.csv"]);
    assert_eq!(env.files_in("processing"), Vec::<String>::new());
    env.assert_all_new_and_done("big.results.csv", rows, "run exactly once");
    assert_eq!(env.users(), rows);
}

#[test]
fn a_claimed_file_is_resumed_after_dirsync_is_killed() {
    let env = Env::start();
    let rows = 50;
    fs::write(env.inbox().join("resume.csv"), roster(rows)).expect("drop file");
    let mut poll = env.spawn_poll(&[("DIRSYNC_TEST_SFTP_READ_DELAY_MS", "5000")]);
    env.wait_claimed(&poll, "resume.csv");
    // kill -9 mid-download.
    poll.kill();
    assert!(env.inbox().join("processing/resume.csv").exists());
    assert!(env.poll_once_ok().contains("resume.csv: archived"));
    assert_eq!(env.finished_in("archive"), vec!["resume.csv"]);
    assert_eq!(env.files_in("results"), vec!["resume.results.csv"]);
    assert_eq!(env.users(), rows);
}

#[test]
fn results_upload_fails_then_succeeds_on_retry() {
    let env = Env::start();
    let rows = 5;
    env.block_results();
    fs::write(env.inbox().join("upload.csv"), roster(rows)).expect("drop file");
    let poll = env.spawn_poll(&[]);
    poll.wait_log("stays in processing", 20, "the upload to fail");
    thread::sleep(Duration::from_secs(2)); // a retry or two, still failing
    assert!(env.inbox().join("processing/upload.csv").exists(), "{}", poll.log());
    assert!(env.finished_in("archive").is_empty());
    assert_eq!(env.users(), rows, "the run itself was done");

    env.unblock_results(&poll);
    env.wait_archived(&poll, "upload.csv", 30, "the retry to upload and archive");
    let log = poll.stop();
    assert_eq!(env.files_in("results"), vec!["upload.results.csv"], "{log}");
    env.assert_all_new_and_done("upload.results.csv", rows, "not run again");
    assert_eq!(env.users(), rows);
}

#[test]
fn marker_mode_waits_for_the_marker() {
    let env = Env::start();
    env.extend_config("", "marker = true");
    fs::write(env.inbox().join("m.csv"), roster(3)).expect("drop file");
    env.poll_once_ok();
    assert_eq!(env.files_in("."), vec!["m.csv"], "no marker: not taken");
    fs::write(env.inbox().join("m.csv.done"), b"").expect("marker");
    let out = env.run(&["inbox", "poll", "hr", "--once"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("m.csv: archived"));
    assert_eq!(
        env.files_in("."),
        Vec::<String>::new(),
        "file and marker are gone from the inbox"
    );
    assert_eq!(env.users(), 3);
}

fn keygen(path: &std::path::Path, kind: &str, passphrase: &str) -> String {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", "dirsync-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    fs::read_to_string(path.with_extension("pub")).expect("public key")
}

#[test]
fn key_authentication_and_its_errors() {
    let mut env = Env::start();
    let pin = format!("host_key_fingerprint = \"{}\"", env.sshd.host_key_fingerprint_sha256());
    let keys = tempfile::tempdir().expect("tmp");

    // An RSA key with a passphrase, authorised on the server.
    let rsa = keys.path().join("id_rsa");
    let public = keygen(&rsa, "rsa", "correct horse");
    let mut ak = fs::OpenOptions::new()
        .append(true)
        .open(env.sshd.dir().join("authorized_keys"))
        .expect("authorized_keys");
    ak.write_all(public.as_bytes()).expect("authorise");
    let pass = keys.path().join("passphrase");
    fs::write(&pass, "correct horse\n").expect("passphrase");
    env.write_config_with(
        &pin,
        &format!(
            "key_file = \"{}\"\npassphrase_file = \"{}\"",
            rsa.display(),
            pass.display()
        ),
    );
    let out = env.run(&["inbox", "test", "hr"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("correct horse"),
        "the passphrase is never logged: {stderr}"
    );

    // Wrong passphrase.
    fs::write(&pass, "wrong\n").expect("passphrase");
    let stderr = env.refused(&["inbox", "test", "hr"]);
    assert!(
        stderr.contains("cannot load the private key") && stderr.contains("passphrase"),
        "{stderr}"
    );

    // A key the server does not know.
    let stranger = keys.path().join("id_stranger");
    keygen(&stranger, "ed25519", "");
    env.write_config_with(&pin, &format!("key_file = \"{}\"", stranger.display()));
    let stderr = env.refused(&["inbox", "test", "hr"]);
    assert!(
        stderr.contains("refused user") && stderr.contains("authorized_keys"),
        "{stderr}"
    );

    // Nobody listening.
    env.write_config(&pin);
    env.sshd.stop().expect("stop sshd");
    let stderr = env.refused(&["inbox", "test", "hr"]);
    assert!(
        stderr.contains("cannot connect") && stderr.contains("refused"),
        "{stderr}"
    );
}

#[test]
fn target_down_keeps_the_file_in_processing_until_it_is_back() {
    let env = Env::start();
    fs::write(env.inbox().join("later.csv"), roster(4)).expect("drop file");
    // A database that cannot be opened: its "folder" is a file.
    let (good, bad) = (
        "sqlite://state/directory.db",
        "sqlite://policies/staff.toml/directory.db",
    );
    env.replace_in_config(good, bad);
    let out = env.run(&["inbox", "poll", "hr", "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("later.csv: stays in processing/"));
    assert_eq!(env.files_in("processing"), vec!["later.csv"]);
    assert!(env.files_in("results").is_empty());

    env.replace_in_config(bad, good);
    assert!(env.poll_once_ok().contains("later.csv: archived"));
    assert_eq!(env.finished_in("archive"), vec!["later.csv"]);
    assert_eq!(env.users(), 4);
}

#[test]
fn an_oversized_file_is_rejected_unread() {
    let env = Env::start();
    env.extend_config("", "max_file_mb = 1");
    let mut big = roster(2).into_bytes();
    big.resize(1024 * 1024 + 1, b'x');
    fs::write(env.inbox().join("huge.csv"), &big).expect("drop file");
    assert!(env.poll_once_ok().contains("huge.csv: rejected"));
    assert_eq!(env.finished_in("rejected"), vec!["huge.csv"]);
    let results = env.results("huge.results.csv");
    assert!(results.contains("max_file_mb"), "{results}");
}

/// `dirsync serve` runs an SFTP file like a dropped one: through the journal
/// (listed by `dirsync runs` under the SFTP inbox's name), results back on
/// the server and mailed to the submitter, credentials to the new users; an
/// identical file uploaded again is not applied again, and its results say so.
#[test]
fn serve_runs_an_sftp_file_through_the_journal_and_refuses_an_identical_one() {
    let env = Env::start();
    let smtp = Smtp::start().unwrap_or_else(|e| panic!("cannot start the test SMTP server: {e}"));
    env.extend_config(&smtp_section(smtp.port(), ""), "");
    let sample = fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example/sample.csv")).expect("sample");
    fs::write(env.inbox().join("staff.csv"), &sample).expect("upload file");
    let serve = env.spawn_serve();
    env.wait_archived(&serve, "staff.csv", 60, "the file to be archived on the server");
    assert_eq!(env.files_in("results"), vec!["staff.results.csv"], "{}", serve.log());
    let results = env.results("staff.results.csv");
    let v = verdicts(&results);
    assert_eq!(
        v.iter().filter(|(c, r)| c == "new" && r == "done").count(),
        4,
        "{results}"
    );
    assert_eq!(env.users(), 4);
    // The local copy went the daemon's way: archived with its results beside it.
    let spool = env.dir.path().join("state/sftp/hr/archive");
    let local: Vec<PathBuf> = fs::read_dir(&spool)
        .expect("spool archive")
        .flatten()
        .map(|d| d.path().join("staff.results.csv"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(local.len(), 1, "results archived locally");
    assert_eq!(fs::read_to_string(&local[0]).expect("local results"), results);

    // Mail: the results to the submitter, a password to each new user.
    let msgs = smtp
        .wait_for_messages(5, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
    let to: Vec<String> = msgs.iter().map(|raw| to_of(&parse(raw))).collect();
    assert_eq!(to.iter().filter(|t| *t == "hr@example.org").count(), 1, "{to:?}");
    let results_mail = msgs
        .iter()
        .map(|raw| parse(raw))
        .find(|m| to_of(m) == "hr@example.org")
        .expect("results mail");
    let att = results_mail.attachments().next().expect("results attached");
    assert_eq!(
        att.contents(),
        results.as_bytes(),
        "the mailed results are the uploaded ones"
    );

    // The same bytes again, under another name: a new delivery, not applied again.
    fs::write(env.inbox().join("again.csv"), &sample).expect("upload again");
    wait_for(
        "the identical file to be answered",
        Duration::from_secs(60),
        || env.finished_in("rejected") == vec!["again.csv".to_string()],
        || serve.log(),
    );
    let log = serve.stop();
    let again = env.results("again.results.csv");
    assert!(
        again.contains("duplicate") && again.contains("not applied again") && again.contains("staff.csv"),
        "{again}\n{log}"
    );
    assert_eq!(env.users(), 4);
    assert_eq!(env.finished_in("archive"), vec!["staff.csv"]);
    assert_eq!(env.files_in("processing"), Vec::<String>::new());

    // `dirsync runs`: both runs, under the SFTP inbox's name.
    let runs = env.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        (runs[1][1].as_str(), runs[1][2].as_str()),
        ("staff.csv", "hr"),
        "{runs:?}"
    );
    assert_eq!(runs[1][5], "done", "{runs:?}");
    assert_eq!(
        (runs[0][1].as_str(), runs[0][2].as_str()),
        ("again.csv", "hr"),
        "{runs:?}"
    );
    assert_eq!(runs[0][5], "duplicate", "{runs:?}");
    // As for a dropped file, the duplicate's answer is its results file; no
    // more mail went out.
    assert_eq!(smtp.messages().len(), 5, "{log}");
}

/// kill -9 `dirsync serve` in the middle of an SFTP file's run, start it
/// again: the run resumes from the journal and the file is processed
/// exactly once (every row new and done, one results file on the server).
#[test]
fn serve_killed_mid_run_processes_the_sftp_file_exactly_once() {
    let env = Env::start();
    env.replace_in_config("create_schema = true", "create_schema = true\nbatch_size = 5");
    let rows = 3000;
    fs::write(env.inbox().join("big.csv"), roster(rows)).expect("upload file");
    let mut serve = env.spawn_serve();
    wait_for(
        "the run to be under way",
        Duration::from_secs(60),
        || env.users_now() > 0,
        || serve.log(),
    );
    serve.kill();
    let at_kill = env.users_now();
    eprintln!("killed at {at_kill} of {rows} rows");
    assert!(
        at_kill < rows,
        "killed mid-run ({at_kill} of {rows} rows)\n{}",
        serve.log()
    );
    assert!(env.inbox().join("processing/big.csv").exists());
    assert!(env.files_in("results").is_empty());

    let serve = env.spawn_serve();
    env.wait_archived(&serve, "big.csv", 120, "the file to be archived after the restart");
    let log = serve.stop();
    assert!(log.contains("Resuming an unfinished run"), "{log}");
    assert_eq!(env.files_in("results"), vec!["big.results.csv"], "{log}");
    assert_eq!(env.files_in("processing"), Vec::<String>::new());
    assert!(env.finished_in("rejected").is_empty());
    env.assert_all_new_and_done("big.results.csv", rows, "each row applied exactly once");
    assert_eq!(env.users(), rows);
    let runs = env.runs();
    assert_eq!(runs.len(), 1, "one run: {runs:?}");
    assert_eq!(runs[0][5], "done", "{runs:?}");
}

/// The run finished but its results could not be uploaded, and `serve` was
/// killed: after the restart the claim (still in `processing/` on the
/// server) gets its original results from the journal, not a duplicate
/// notice, and nothing is applied again.
#[test]
fn serve_restarted_after_the_run_uploads_the_original_results() {
    let env = Env::start();
    let rows = 5;
    env.block_results();
    fs::write(env.inbox().join("upload.csv"), roster(rows)).expect("upload file");
    let mut serve = env.spawn_serve();
    serve.wait_log("stays in processing", 30, "the results upload to fail");
    assert_eq!(env.users(), rows, "the run itself was done");
    serve.kill();
    assert!(env.inbox().join("processing/upload.csv").exists());

    env.unblock_results(&serve);
    let serve = env.spawn_serve();
    env.wait_archived(&serve, "upload.csv", 60, "the file to be archived after the restart");
    let log = serve.stop();
    assert!(log.contains("handed over again"), "{log}");
    assert_eq!(env.files_in("results"), vec!["upload.results.csv"], "{log}");
    env.assert_all_new_and_done(
        "upload.results.csv",
        rows,
        "the original results, not a duplicate notice",
    );
    assert_eq!(env.users(), rows);
    assert_eq!(env.runs().len(), 1);
}

/// SIGHUP restarts the poller of an SFTP inbox whose settings changed: a
/// wrong host key pin takes nothing; the corrected pin, reloaded, does.
#[test]
fn serve_reloads_a_changed_sftp_inbox_on_sighup() {
    let env = Env::start();
    let good = fs::read_to_string(env.config()).expect("config");
    env.write_config(&format!("host_key_fingerprint = \"SHA256:{}\"", "A".repeat(43)));
    fs::write(env.inbox().join("hup.csv"), roster(3)).expect("upload file");
    let serve = env.spawn_serve();
    serve.wait_log(
        "does not match the pinned host_key_fingerprint",
        30,
        "the wrong pin to be refused",
    );
    assert_eq!(env.files_in("."), vec!["hup.csv"], "nothing taken");
    fs::write(env.config(), good).expect("config");
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(serve.child.id().to_string())
        .status();
    env.wait_archived(&serve, "hup.csv", 60, "the file to be archived after the reload");
    let log = serve.stop();
    assert!(log.contains("SFTP inbox changed; restarting its poller"), "{log}");
    assert_eq!(env.users(), 3);
    assert_eq!(env.runs().len(), 1);
}
