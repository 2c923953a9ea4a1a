//! The activation tests' world (issue 18): a config in a temp dir with a
//! policy delivering passwords by activation, `.eml` mail in `mail/`, the
//! console on a free port; the mails read back and parsed, the links in
//! them, and the checks an independent client makes (argon2, SHA-256).
//! Shared by tests/activation.rs and tests/activation_pg.rs.
#![allow(dead_code)] // each test file uses its own part

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::mime;
use crate::serve::{self, cheap_example_policy, free_port, sqlite, Daemon};

pub const BIN: &str = env!("CARGO_BIN_EXE_dirsync");
pub const HEADER: &str = "Username,First Name,Last Name,E-mail Address,Job Title,Department,Site,User Type,Phone,Belong to,Status,Change password next time";

/// A config in a temp dir: SQLite target, `.eml` mail in `mail/`, the
/// console on a free port, and a policy delivering passwords by activation.
pub struct Env {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub port: u16,
}

pub fn roster(users: &[&str]) -> Vec<u8> {
    let mut s = format!("{HEADER}\n");
    for u in users {
        s.push_str(&format!(
            "{u},First,Last,{u}@example.org,Clerk,Finance,HQ,Standard,,staff,,\n"
        ));
    }
    s.into_bytes()
}

impl Env {
    /// SQLite target and journal under `state/`.
    pub fn new(edit: impl Fn(String) -> String) -> Env {
        Env::with("", "url = \"sqlite://state/directory.db\"", edit)
    }

    /// `service` lines added to `[service]`, `target` the target's URL line.
    pub fn with(service: &str, target: &str, edit: impl Fn(String) -> String) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("policies")).expect("mkdir");
        fs::create_dir_all(dir.join("inbox")).expect("mkdir");
        let policy = cheap_example_policy().replace("deliver = \"mail\"", "deliver = \"activation\"");
        assert!(
            policy.contains("deliver = \"activation\""),
            "the example policy documents deliver"
        );
        fs::write(dir.join("policies/staff.toml"), edit(policy)).expect("policy");
        let port = free_port();
        let config = format!(
            "[service]\nstate_dir = \"state\"\n{service}\n[targets.staff]\nkind = \"sql\"\n{target}\n\
             create_schema = true\nbatch_size = 5\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n[[inbox]]\nname = \"hr\"\n\
             folder = \"inbox\"\npolicy = \"staff\"\nsettle_seconds = 1\nsubmitter = \"hr@example.org\"\n\n\
             [mail]\nfrom = \"dirsync <dirsync@example.org>\"\ntransport = \"file\"\nfolder = \"mail\"\n\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\nusers_file = \"http-users.toml\"\npublic_url = \"http://127.0.0.1:{port}/\"\n"
        );
        fs::write(dir.join("dirsync.toml"), config).expect("config");
        Env { _tmp: tmp, dir, port }
    }

    pub fn cli(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut child = Command::new(BIN)
            .current_dir(&self.dir)
            .args(["--config", "dirsync.toml"])
            .args(args)
            .env("DIRSYNC_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dirsync");
        use std::io::Write;
        let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn apply(&self, name: &str, bytes: &[u8]) -> (i32, String, String) {
        fs::write(self.dir.join(name), bytes).expect("write roster");
        self.cli(&["apply", name], "")
    }

    pub fn db(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/directory.db"), q)
    }

    pub fn journal(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/journal.db"), q)
    }

    pub fn serve(&self) -> Daemon {
        serve::start_serve(&self.dir, "Web console listening")
    }

    /// Every `.eml` file written so far, parsed: (to, subject, text body).
    pub fn mails(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let Ok(dir) = fs::read_dir(self.dir.join("mail")) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "eml")) {
            let raw = fs::read(p).expect("read mail");
            let m = mime::parse(&raw);
            out.push((
                mime::to_of(&m),
                m.subject().unwrap_or_default().to_string(),
                m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            ));
        }
        out
    }

    /// The activation link mailed to `to` (the only one, asserted).
    pub fn link_of(&self, to: &str) -> String {
        let links = self.links_of(to);
        assert_eq!(links.len(), 1, "one activation mail to {to}: {links:?}");
        links[0].clone()
    }

    /// Every activation link mailed to `to` (in no particular order).
    pub fn links_of(&self, to: &str) -> Vec<String> {
        self.mails()
            .into_iter()
            .filter(|(t, _, _)| t == to)
            .filter_map(|(_, _, body)| {
                body.split_whitespace()
                    .find(|w| w.contains("/activate/"))
                    .map(str::to_string)
            })
            .collect()
    }
}

/// The path of a link (`/activate/TOKEN`), checking it points at the console.
pub fn path_of(env: &Env, link: &str) -> String {
    let base = format!("http://127.0.0.1:{}", env.port);
    assert!(link.starts_with(&format!("{base}/activate/")), "{link}");
    link[base.len()..].to_string()
}

pub fn token_of(link: &str) -> &str {
    link.rsplit('/').next().unwrap_or_default()
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub fn argon2_ok(hash: &str, password: &str) -> bool {
    let parsed = PasswordHash::new(hash).expect("a PHC string");
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}
