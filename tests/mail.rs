//! Mail, end to end: the built binary against a real SMTP server (Debian's
//! `python3-aiosmtpd`), messages parsed with a MIME parser, passwords checked
//! against the SQLite target's argon2id hashes with the `sqlite3` CLI.

#[path = "common/certs.rs"]
mod certs;
#[path = "common/mime.rs"]
mod mime;
#[path = "support/servers.rs"]
mod servers;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use mail_parser::MimeHeaders;
use mime::{parse, smtp_section, to_of};
use servers::Smtp;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");
const WAIT: Duration = Duration::from_secs(30);
const NEW_USERS: [(&str, &str); 4] = [
    ("jsmith", "jane.smith@example.org"),
    ("bnguyen", "bao.nguyen@example.org"),
    ("mobrien", "maire.obrien@example.org"),
    ("akhan", "aisha.khan@example.org"),
];
const SUBMITTER: &str = "hr@example.org";

fn smtp() -> Smtp {
    Smtp::start().unwrap_or_else(|e| panic!("cannot start the test SMTP server: {e}"))
}

/// A config (SQLite target, cheap argon2) with the sample roster in a temp dir.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new(mail_section: &str, policy_mail: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example");
        let policy = std::fs::read_to_string(root.join("policies/staff.toml")).expect("example policy");
        let policy = policy
            .split("\n# Mail for this policy.")
            .next()
            .expect("policy text")
            .replace("argon2_memory_kib = 19456", "argon2_memory_kib = 8")
            .replace("argon2_iterations = 2", "argon2_iterations = 1");
        std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
        std::fs::write(
            dir.path().join("policies/staff.toml"),
            format!("{policy}\n{policy_mail}\n"),
        )
        .expect("write");
        std::fs::copy(root.join("sample.csv"), dir.path().join("hr.csv")).expect("copy sample");
        let s = Setup { dir };
        s.write_config(mail_section);
        s
    }

    fn write_config(&self, mail_section: &str) {
        let config = format!(
            "[service]\nstate_dir = \"state\"\n\n[targets.staff]\nkind = \"sql\"\nurl = \"sqlite://state/directory.db\"\n\
             create_schema = true\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n{mail_section}"
        );
        std::fs::write(self.path("dirsync.toml"), config).expect("write config");
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.path("dirsync.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DIRSYNC_LOG", "debug");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run dirsync")
    }

    /// The stored argon2id hash of a user (read with the sqlite3 CLI).
    fn password_hash(&self, user: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.path("state/directory.db"))
            .arg(format!("SELECT password_hash FROM users WHERE username = '{user}'"))
            .output()
            .expect("sqlite3 (Debian package sqlite3)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The envelope recipients aiosmtpd recorded (X-RcptTo).
fn envelope_to(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    s.lines()
        .find_map(|l| l.strip_prefix("X-RcptTo: "))
        .unwrap_or_default()
        .trim()
        .to_lowercase()
}

fn password_in(body: &str) -> String {
    body.lines()
        .find_map(|l| l.trim().strip_prefix("Password:"))
        .map(|p| p.trim().to_string())
        .expect("a Password: line")
}

fn verify(hash: &str, password: &str) -> bool {
    let parsed = PasswordHash::new(hash).expect("an argon2 PHC string");
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

fn settle_count(smtp: &Smtp, n: usize) -> Vec<Vec<u8>> {
    let msgs = smtp.wait_for_messages(n, WAIT).unwrap_or_else(|e| panic!("{e}"));
    // Nothing more arrives afterwards.
    std::thread::sleep(Duration::from_millis(500));
    let again = smtp.messages();
    assert_eq!(again.len(), n, "expected exactly {n} messages");
    msgs
}

#[test]
fn results_and_credentials_mails_reach_only_their_recipients() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "");
    let out = s.run(&["apply", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out)); // one row rejected
    let msgs = settle_count(&smtp, 5);
    let results_csv = std::fs::read(s.path("hr.results.csv")).expect("results file");

    let mut passwords = Vec::new();
    let mut results_mail = None;
    for raw in &msgs {
        let m = parse(raw);
        let to = to_of(&m);
        assert_eq!(envelope_to(raw), to, "envelope recipient = header recipient");
        if to == SUBMITTER {
            results_mail = Some(raw.clone());
            continue;
        }
        let (user, _) = NEW_USERS
            .iter()
            .find(|(_, email)| *email == to)
            .unwrap_or_else(|| panic!("mail to an unexpected address {to}"));
        assert!(m.cc().is_none(), "credentials are never copied");
        let body = m.body_text(0).expect("text body");
        let password = password_in(&body);
        assert!(password.len() >= 16, "a generated password");
        assert!(body.contains("change this password the next time"), "{body}");
        assert!(m.body_html(0).expect("html body").contains(&password));
        assert!(
            verify(&s.password_hash(user), &password),
            "the mailed password logs {user} in at the target"
        );
        passwords.push(password);
    }
    assert_eq!(passwords.len(), 4);

    let raw = results_mail.expect("a results mail to the submitter");
    let m = parse(&raw);
    assert_eq!(m.subject(), Some("hr.csv: 4 new, 1 rejected"));
    assert_eq!(m.attachment_count(), 1);
    let att = m.attachment(0).expect("attachment");
    assert_eq!(att.attachment_name(), Some("hr.results.csv"));
    assert!(
        att.contents() == results_csv.as_slice(),
        "attachment is the results file byte for byte"
    );
    let body = m.body_text(0).expect("text body");
    assert!(body.contains("new        4"), "{body}");

    // No password anywhere but in its own mail.
    let journal = std::fs::read(s.path("state/journal.db")).expect("journal");
    for p in &passwords {
        let holders = msgs.iter().filter(|raw| contains(raw, p.as_bytes())).count();
        assert_eq!(holders, 1, "a password is in exactly one message");
        assert!(!contains(&results_csv, p.as_bytes()), "password in the results file");
        assert!(!contains(&out.stdout, p.as_bytes()) && !contains(&out.stderr, p.as_bytes()));
        assert!(!contains(&journal, p.as_bytes()), "password in clear in the outbox");
    }
    // Delivered bodies are deleted from the outbox.
    let left = Command::new("sqlite3")
        .arg(s.path("state/journal.db"))
        .arg("SELECT COUNT(*) FROM dirsync_mail_outbox WHERE body IS NOT NULL OR state <> 'sent'")
        .output()
        .expect("sqlite3");
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn check_run_mail_says_nothing_was_written() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), "cc = [\"it@example.org\"]"), "");
    let out = s.run(&["check", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msgs = settle_count(&smtp, 1);
    let m = parse(&msgs[0]);
    assert_eq!(
        m.subject(),
        Some("hr.csv (preview, nothing written): 4 new, 1 rejected")
    );
    assert!(m.body_text(0).expect("text").contains("NOTHING WAS WRITTEN"));
    assert_eq!(envelope_to(&msgs[0]), "hr@example.org, it@example.org");
}

#[test]
fn rejected_file_mail_gives_the_reason() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "");
    std::fs::write(s.path("bad.csv"), "Username,First Name\njsmith,Jane\n").expect("write");
    let out = s.run(&["apply", "bad.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msgs = settle_count(&smtp, 1);
    let m = parse(&msgs[0]);
    let subject = m.subject().unwrap_or_default().to_string();
    assert!(
        subject.starts_with("bad.csv: rejected, nothing written (bad header"),
        "{subject}"
    );
    let body = m.body_text(0).expect("text");
    assert!(body.contains("REJECTED as a whole"), "{body}");
    let att = m.attachment(0).expect("attachment");
    assert!(att.contents() == std::fs::read(s.path("bad.results.csv")).expect("results").as_slice());
}

#[test]
fn smtp_down_during_the_run_then_up_every_mail_arrives_once() {
    let mut smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "");
    smtp.stop().expect("stop smtp");
    let out = s.run(&["apply", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connection refused"), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kept in the outbox"),
        "{}",
        text(&out)
    );

    let list = s.run(&["mail", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert_eq!(
        listed.lines().filter(|l| l.contains("\tpending ")).count(),
        5,
        "{listed}"
    );
    let ids: BTreeSet<String> = listed
        .lines()
        .filter_map(|l| Some(l.split_once("\t<")?.1.split_once('>')?.0.to_string()))
        .collect();

    smtp.restart().expect("restart smtp");
    let flush = s.run(&["mail", "flush"]);
    assert_eq!(flush.status.code(), Some(0), "{}", text(&flush));
    let again = s.run(&["mail", "flush"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to send"),
        "{}",
        text(&again)
    );
    let msgs = settle_count(&smtp, 5);
    let got: BTreeSet<String> = msgs
        .iter()
        .map(|raw| parse(raw).message_id().unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, ids, "the queued Message-IDs are the delivered ones");
}

#[test]
fn killed_during_delivery_mail_arrives_once_after_restart() {
    let smtp = smtp();
    // A relay that accepts connections and never answers: the run enqueues,
    // connects, and hangs in delivery; there it is killed.
    let blackhole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole_port = blackhole.local_addr().expect("addr").port();
    let s = Setup::new(
        &smtp_section(hole_port, "").replace("timeout_secs = 5", "timeout_secs = 120"),
        "",
    );
    let mut child = s
        .command(&["apply", "hr.csv", "--mail-to", SUBMITTER])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    blackhole.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + WAIT;
    let _conn = loop {
        match blackhole.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("dirsync never tried to deliver: {e}"),
        }
    };
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert!(smtp.messages().is_empty());

    s.write_config(&smtp_section(smtp.port(), ""));
    let flush = s.run(&["mail", "flush"]);
    assert_eq!(flush.status.code(), Some(0), "{}", text(&flush));
    let msgs = settle_count(&smtp, 5);
    let ids: BTreeSet<String> = msgs
        .iter()
        .map(|raw| parse(raw).message_id().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 5, "five different mails, each once");
    let again = s.run(&["mail", "flush"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to send"),
        "{}",
        text(&again)
    );
    assert_eq!(smtp.messages().len(), 5);
}

#[test]
fn custom_template_from_the_policy_is_used() {
    let smtp = smtp();
    let policy_mail = "[mail.templates]\ncredentials_text = \"welcome.txt.j2\"\n\
                       credentials_subject = \"Welcome aboard, {{ username }}\"\n";
    let s = Setup::new(&smtp_section(smtp.port(), ""), policy_mail);
    std::fs::write(
        s.path("policies/welcome.txt.j2"),
        "Welcome {{ username }}!\nPassword: {{ password }}\n{% if must_change %}Change it at first login.{% endif %}\n",
    )
    .expect("write template");
    let out = s.run(&["apply", "hr.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msgs = settle_count(&smtp, 4); // no --mail-to: credentials only
    for raw in &msgs {
        let m = parse(raw);
        let subject = m.subject().unwrap_or_default();
        assert!(subject.starts_with("Welcome aboard, "), "{subject}");
        let body = m.body_text(0).expect("text");
        assert!(body.starts_with("Welcome "), "{body}");
        assert!(body.contains("Change it at first login."), "{body}");
        assert!(!contains(raw, b"text/html"), "a text-only override sends text only");
        assert_ne!(to_of(&m), SUBMITTER);
    }
}

#[test]
fn template_syntax_error_fails_config_check_with_file_and_line() {
    let s = Setup::new(
        &smtp_section(25, ""),
        "[mail.templates]\nresults_text = \"results.txt.j2\"\n",
    );
    std::fs::write(
        s.path("policies/results.txt.j2"),
        "Hello\n\n{% for c in changes %}\n{{ c.count }\n{% endfor %}\n",
    )
    .expect("write template");
    let out = s.run(&["config", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = s.path("policies/results.txt.j2");
    let line = stderr
        .lines()
        .find(|l| l.contains(&*file.to_string_lossy()))
        .unwrap_or_else(|| panic!("no error names {}: {stderr}", file.display()));
    assert!(line.contains("line 4"), "{line}");
}

#[test]
fn mail_test_sends_and_turns_errors_into_advice() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "");
    let ok = s.run(&["mail", "test", "--to", "ops@example.org"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let msgs = settle_count(&smtp, 1);
    assert_eq!(parse(&msgs[0]).subject(), Some("dirsync test message"));

    let advice = |section: String| {
        s.write_config(&section);
        let out = s.run(&["mail", "test", "--to", "ops@example.org"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let closed = servers::free_port();
    let e = advice(smtp_section(closed, ""));
    assert!(e.contains("connection refused") && e.contains("nothing listens"), "{e}");
    let e = advice(smtp_section(smtp.port(), "").replace("tls = \"none\"", "tls = \"implicit\""));
    assert!(e.contains("does not speak TLS from the first byte"), "{e}");
    let e = advice(smtp_section(smtp.port(), "").replace("tls = \"none\"", "tls = \"starttls\""));
    assert!(e.contains("does not offer STARTTLS"), "{e}");
    std::fs::write(s.path("smtp.secret"), "hunter2\n").expect("write secret");
    let e = advice(smtp_section(
        smtp.port(),
        "username = \"dirsync\"\npassword_file = \"smtp.secret\"",
    ));
    assert!(e.contains("offers no login (AUTH)"), "{e}");
    assert!(!e.contains("hunter2"));
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn credentials_honour_send_at_and_the_rate_cap() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "[mail]\nmax_per_minute = 2\n");
    let out = s.run(&["apply", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msgs = settle_count(&smtp, 3); // results + 2 credentials; 2 wait for the next minute
    assert_eq!(msgs.iter().filter(|r| to_of(&parse(r)) == SUBMITTER).count(), 1);
    let flush = s.run(&["mail", "flush"]);
    assert!(
        String::from_utf8_lossy(&flush.stdout).contains("2 waiting"),
        "{}",
        text(&flush)
    );
    assert_eq!(smtp.messages().len(), 3);

    // send_at: credentials wait for their time of day (12 hours from now);
    // the results mail goes at once.
    let smtp2 = Smtp::start().expect("smtp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let later = (now / 60 + 12 * 60) % (24 * 60);
    let send_at = format!("{:02}:{:02}", later / 60, later % 60);
    let s2 = Setup::new(
        &smtp_section(smtp2.port(), ""),
        &format!("[mail]\nsend_at = \"{send_at}\"\n"),
    );
    let out = s2.run(&["apply", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msgs = settle_count(&smtp2, 1);
    assert_eq!(to_of(&parse(&msgs[0])), SUBMITTER);
    let list = String::from_utf8_lossy(&s2.run(&["mail", "list"]).stdout).to_string();
    assert_eq!(list.lines().filter(|l| l.contains("held until")).count(), 4, "{list}");
}

/// aiosmtpd with STARTTLS (required) or implicit TLS.
struct TlsSmtp {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
}

impl TlsSmtp {
    fn start(certs: &Path, implicit: bool) -> TlsSmtp {
        let port = servers::free_port();
        let maildir = certs.join(format!("maildir-{port}"));
        let (cert, key) = if implicit {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        let child = Command::new("/usr/bin/python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(cert)
            .arg(certs.join("server.pem"))
            .arg(key)
            .arg(certs.join("server.key"))
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd");
        servers::wait_for_port(port, WAIT).expect("aiosmtpd with TLS did not start");
        TlsSmtp { child, port, maildir }
    }

    fn count(&self) -> usize {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for TlsSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn starttls_and_implicit_tls_with_a_private_ca() {
    let s = Setup::new(&smtp_section(25, ""), "");
    let certs = s.path("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    certs::make_certs(&certs);
    let starttls = TlsSmtp::start(&certs, false);
    let implicit = TlsSmtp::start(&certs, true);
    let test = |section: String| {
        s.write_config(&section);
        s.run(&["mail", "test", "--to", "ops@example.org"])
    };
    let tls = |port: u16, mode: &str, extra: &str| {
        smtp_section(port, extra).replace("tls = \"none\"", &format!("tls = \"{mode}\""))
    };

    let out = test(tls(starttls.port, "starttls", ""));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not trusted"),
        "{}",
        text(&out)
    );

    let out = test(tls(starttls.port, "starttls", "ca_file = \"certs/ca.pem\""));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = test(tls(implicit.port, "implicit", "ca_file = \"certs/ca.pem\""));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let deadline = Instant::now() + WAIT;
    while (starttls.count(), implicit.count()) != (1, 1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((starttls.count(), implicit.count()), (1, 1));

    // STARTTLS spoken to an implicit-TLS port: no greeting comes.
    let out = test(
        tls(implicit.port, "starttls", "ca_file = \"certs/ca.pem\"").replace("timeout_secs = 5", "timeout_secs = 2"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not answer within 2 s"),
        "{}",
        text(&out)
    );
}

#[test]
fn outbox_on_postgresql_survives_smtp_down() {
    let pg = servers::Postgres::start().unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    let mut smtp = smtp();
    let outbox = format!("outbox = \"{}\"", pg.url());
    let s = Setup::new(&smtp_section(smtp.port(), &outbox), "");
    smtp.stop().expect("stop smtp");
    let out = s.run(&["apply", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let pending = pg
        .psql("SELECT COUNT(*) FROM dirsync_mail_outbox WHERE state = 'pending' AND body LIKE 'v1:%'")
        .expect("psql");
    assert_eq!(pending.trim(), "5");
    smtp.restart().expect("restart smtp");
    let flush = s.run(&["mail", "flush"]);
    assert_eq!(flush.status.code(), Some(0), "{}", text(&flush));
    settle_count(&smtp, 5);
    let sent = pg
        .psql("SELECT COUNT(*) FROM dirsync_mail_outbox WHERE state = 'sent' AND body IS NULL")
        .expect("psql");
    assert_eq!(sent.trim(), "5");
    // The run's journal is SQLite (no [service] journal); the outbox is not in it.
    let tables = std::process::Command::new("sqlite3")
        .arg(s.path("state/journal.db"))
        .arg(".tables")
        .output()
        .expect("sqlite3");
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(tables.contains("runs"), "{tables}");
    assert!(!tables.contains("outbox"), "the outbox lives in PostgreSQL: {tables}");
}

/// aiosmtpd that requires a login (dirsync / right-password), over plain SMTP.
const AUTH_SERVER: &str = r#"
import sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

def check(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"dirsync" and auth_data.password == b"right-password"
    return AuthResult(success=ok, handled=False)

c = Controller(Mailbox(sys.argv[2]), hostname="127.0.0.1", port=int(sys.argv[1]),
               authenticator=check, auth_required=True, auth_require_tls=False)
c.start()
while True:
    time.sleep(3600)
"#;

#[test]
fn smtp_login_with_password_from_env_and_refused_login_advice() {
    let s = Setup::new(&smtp_section(25, ""), "");
    let port = servers::free_port();
    let maildir = s.path("auth-maildir");
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", AUTH_SERVER, &port.to_string()])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3-aiosmtpd");
    let started = servers::wait_for_port(port, WAIT);
    let login = |password: &str| {
        s.write_config(&smtp_section(
            port,
            "username = \"dirsync\"\npassword_env = \"TEST_SMTP_PASSWORD\"",
        ));
        s.command(&["mail", "test", "--to", "ops@example.org"])
            .env("TEST_SMTP_PASSWORD", password)
            .output()
            .expect("run dirsync")
    };
    let result = std::panic::catch_unwind(|| {
        started.expect("aiosmtpd with AUTH did not start");
        let out = login("wrong-password");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refused the login of user \"dirsync\""), "{}", text(&out));
        assert!(!err.contains("wrong-password"));
        let out = login("right-password");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("right-password"));
        let deadline = Instant::now() + WAIT;
        let count = || std::fs::read_dir(maildir.join("new")).map(|d| d.count()).unwrap_or(0);
        while count() < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(count(), 1);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// An SMTP server that takes the first message and then drops the
/// connection instead of answering 250: the sender cannot know it arrived.
const UNCLEAR_SERVER: &str = r#"
import os, sys, time
from aiosmtpd.controller import Controller

class Handler:
    def __init__(self, folder):
        self.folder, self.n = folder, 0
        os.makedirs(folder, exist_ok=True)
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        with open(os.path.join(self.folder, "%d.eml" % self.n), "wb") as f:
            f.write(envelope.original_content)
        if self.n == 1:
            server.transport.abort()
        return "250 OK"

c = Controller(Handler(sys.argv[2]), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
while True:
    time.sleep(3600)
"#;

#[test]
fn retry_after_an_unclear_failure_resends_the_same_message() {
    let s = Setup::new(&smtp_section(25, ""), "");
    let port = servers::free_port();
    let folder = s.path("unclear");
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", UNCLEAR_SERVER, &port.to_string()])
        .arg(&folder)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3-aiosmtpd");
    let started = servers::wait_for_port(port, WAIT);
    let result = std::panic::catch_unwind(|| {
        started.expect("test SMTP server did not start");
        s.write_config(&smtp_section(port, ""));
        let out = s.run(&["check", "hr.csv", "--mail-to", SUBMITTER]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("kept in the outbox"),
            "{}",
            text(&out)
        );
        let flush = s.run(&["mail", "flush"]);
        assert_eq!(flush.status.code(), Some(0), "{}", text(&flush));
        let first = std::fs::read(folder.join("1.eml")).expect("first delivery");
        let second = std::fs::read(folder.join("2.eml")).expect("the retry");
        assert!(parse(&first).message_id().is_some());
        assert!(
            first == second,
            "the retry is the same message, byte for byte (same Message-ID and Date)"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn held_changes_are_explained_with_the_override() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "");
    let policy = std::fs::read_to_string(s.path("policies/staff.toml")).expect("policy");
    let policy = policy.replace("adds = { max = 10000 }", "adds = { max = 2 }");
    std::fs::write(s.path("policies/staff.toml"), policy).expect("write policy");
    let out = s.run(&["apply", "hr.csv", "--mail-to", SUBMITTER]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msgs = settle_count(&smtp, 1); // held: no account made, no credentials
    let m = parse(&msgs[0]);
    assert_eq!(m.subject(), Some("hr.csv: 4 new, 1 rejected, 4 held back"));
    let body = m.body_text(0).expect("text");
    assert!(body.contains("Safety limits held changes back"), "{body}");
    assert!(body.contains("4 adds exceed limits.adds"), "{body}");
    assert!(body.contains("--allow-over-limit"), "{body}");
}

/// `dirsync serve` mails every run it processes: the results to the inbox's
/// submitter (results file attached byte for byte, as archived) and each
/// generated password to its new user only.
#[test]
fn serve_mails_results_to_the_submitter_and_credentials_to_new_users() {
    let smtp = smtp();
    let s = Setup::new(&smtp_section(smtp.port(), ""), "");
    let config = std::fs::read_to_string(s.path("dirsync.toml")).expect("config");
    std::fs::write(
        s.path("dirsync.toml"),
        format!(
            "{config}\n[[inbox]]\nname = \"hr\"\nfolder = \"inbox\"\npolicy = \"staff\"\nsubmitter = \"{SUBMITTER}\"\nsettle_seconds = 1\n"
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(s.path("inbox")).expect("mkdir inbox");
    let mut daemon = s
        .command(&["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dirsync serve");
    // Write elsewhere, rename in: complete at once.
    std::fs::copy(s.path("hr.csv"), s.path("hr.tmp-upload")).expect("copy");
    std::fs::rename(s.path("hr.tmp-upload"), s.path("inbox/hr.csv")).expect("rename");

    // The results mail and four credentials mails.
    let msgs = smtp.wait_for_messages(5, WAIT);
    // Stop the daemon before asserting, so a failure does not leave it running.
    let _ = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
    let status = daemon.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = daemon.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let msgs = msgs.unwrap_or_else(|e| panic!("{e}\n{stderr}"));
    assert_eq!(status.code(), Some(0), "{stderr}");

    let archived: Vec<PathBuf> = std::fs::read_dir(s.path("inbox/archive"))
        .expect("archive/")
        .flatten()
        .flat_map(|d| {
            std::fs::read_dir(d.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.to_string_lossy().ends_with(".results.csv"))
        .collect();
    assert_eq!(archived.len(), 1, "one results file archived");
    let results = std::fs::read(&archived[0]).expect("results");

    let mut to_submitter = 0;
    let mut users = BTreeSet::new();
    for raw in &msgs {
        let m = parse(raw);
        let to = to_of(&m);
        if to == SUBMITTER {
            to_submitter += 1;
            let att = m.attachments().next().expect("results attached");
            assert_eq!(
                att.contents(),
                &results[..],
                "attachment equals the archived results file"
            );
            assert!(!contains(raw, b"Password:"), "no password in the submitter's mail");
        } else {
            let user = NEW_USERS
                .iter()
                .find(|(_, mail)| *mail == to)
                .map(|(u, _)| *u)
                .expect("a new user");
            let body = m.body_text(0).expect("text body").to_string();
            let pw = password_in(&body);
            assert!(verify(&s.password_hash(user), &pw), "{user}'s mailed password logs in");
            assert!(!contains(&results, pw.as_bytes()));
            assert!(!stderr.contains(&pw), "password in the log");
            users.insert(user);
        }
    }
    assert_eq!(to_submitter, 1);
    assert_eq!(users.len(), 4, "{users:?}");
}
