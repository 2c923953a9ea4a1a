//! The console tests' world: a real `dirsync serve` with an SQLite target,
//! one inbox `hr`, the console on a free loopback port, and two users
//! (alice, operator; victor, viewer) written with `dirsync http add-user`.
//! Shared by tests/console.rs and tests/console_browser.rs.
#![allow(dead_code)] // each test file uses its own part

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::serve::{self, cheap_example_policy, free_port, sqlite, wait_until, Daemon};
use crate::web::Client;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

const HEADER: &str = "Username,First Name,Last Name,E-mail Address,Job Title,Department,Site,User Type,Phone,Belong to,Status,Change password next time,Favourite colour";

pub struct Env {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub port: u16,
}

/// `n` people, `title` as everyone's job title; line 2 of every file is
/// `bad` when given (a row the policy rejects).
pub fn roster(n: usize, title: &str, bad: Option<&str>) -> Vec<u8> {
    let mut s = format!("{HEADER}\n");
    if let Some(b) = bad {
        s.push_str(b);
        s.push('\n');
    }
    for i in 0..n {
        s.push_str(&format!(
            "user{i:03},First{i},Last{i},user{i:03}@example.org,{title},Finance,HQ,Standard,,staff,,,\n"
        ));
    }
    s.into_bytes()
}

pub const BAD_ROW: &str = "tbroken,Tom,Broken,not-an-email,Clerk,Finance,HQ,Standard,,staff,,,";

impl Env {
    /// SQLite target, one inbox `hr`, the console with `http_extra` added to
    /// `[http]`, and users alice (operator) and victor (viewer).
    pub fn new(http_extra: &str) -> Env {
        let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
        let dir = tmp.path().to_path_buf();
        fs::create_dir_all(dir.join("policies")).expect("mkdir"); // ok: test
        fs::create_dir_all(dir.join("inbox")).expect("mkdir"); // ok: test
        fs::write(dir.join("policies/staff.toml"), cheap_example_policy()).expect("policy"); // ok: test
        let port = free_port();
        let config = format!(
            "[service]\nstate_dir = \"state\"\n\n[targets.staff]\nkind = \"sql\"\nurl = \"sqlite://state/directory.db\"\n\
             create_schema = true\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n[[inbox]]\nname = \"hr\"\n\
             folder = \"inbox\"\npolicy = \"staff\"\nsettle_seconds = 1\nsubmitter = \"hr@example.org\"\n\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\nusers_file = \"http-users.toml\"\n{http_extra}\n"
        );
        fs::write(dir.join("dirsync.toml"), config).expect("config"); // ok: test
        let env = Env { _tmp: tmp, dir, port };
        env.add_user("alice", "operator", "correct horse battery", Some("alice@example.org"));
        env.add_user("victor", "viewer", "viewer password 123", None);
        env
    }

    pub fn cli(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut child = Command::new(BIN)
            .current_dir(&self.dir)
            .args(["--config", "dirsync.toml"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dirsync"); // ok: test
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write"); // ok: test
        let out = child.wait_with_output().expect("wait"); // ok: test
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn add_user(&self, name: &str, role: &str, password: &str, email: Option<&str>) {
        let mut args = vec!["http", "add-user", name, "--role", role];
        if let Some(e) = email {
            args.extend(["--email", e]);
        }
        let (code, _, err) = self.cli(&args, &format!("{password}\n"));
        assert_eq!(code, 0, "{err}");
    }

    pub fn serve(&self) -> Daemon {
        serve::start_serve(&self.dir, "Web console listening")
    }

    pub fn client(&self) -> Client {
        Client::new(self.port)
    }

    pub fn db(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/directory.db"), q)
    }

    pub fn journal(&self, q: &str) -> String {
        sqlite(&self.dir.join("state/journal.db"), q)
    }

    /// Drop a file into the inbox and wait for its run to end.
    pub fn drop_file(&self, name: &str, bytes: &[u8]) -> i64 {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, bytes).expect("write"); // ok: test
        fs::rename(&tmp, self.dir.join("inbox").join(name)).expect("rename"); // ok: test
        let mut id = 0;
        let ended = wait_until(Duration::from_secs(60), || {
            let row = self.journal(&format!(
                "SELECT id FROM runs WHERE file_name = '{name}' AND filed = 1 ORDER BY id DESC LIMIT 1"
            ));
            id = row.parse().unwrap_or(0);
            id > 0
        });
        assert!(ended, "the run of {name} did not end");
        id
    }
}
