//! A running `dirsync serve` as the tests see it (its log, signals, a clean
//! stop or kill -9), the `sqlite3` program as an independent client, and
//! waiting for an event. Shared by tests/daemon.rs, tests/pipeline.rs and
//! tests/approval.rs:
//!
//! ```ignore
//! #[path = "common/serve.rs"]
//! mod serve;
//! ```
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port") // ok: test
}

/// Wait (`timeout` at most) until `f` holds; whether it did.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// The `sqlite3` program: an independent look at a database. A table that
/// does not exist yet (the first instants of a run) reads as empty.
pub fn sqlite(db: &Path, query: &str) -> String {
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 20000")
        .arg(db)
        .arg(query)
        .output()
        .expect("run sqlite3: install it with scripts/install-test-deps (Debian package sqlite3)"); // ok: test
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        if stderr.contains("no such table") {
            return String::new();
        }
        panic!("sqlite3 {query:?} failed: {stderr}");
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every `*.results.csv` under `dir` (an inbox: processing/, archive/, rejected/), sorted.
pub fn results_files(dir: &Path) -> Vec<std::path::PathBuf> {
    fn walk(d: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".results.csv") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// A running `dirsync serve`; killed (-9) when dropped.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Spawn `cmd` (a `dirsync … serve` command, its environment set by the
    /// caller) with its stderr to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("log file"); // ok: test
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start dirsync serve"); // ok: test
        Daemon {
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let ok = wait_until(timeout, || self.log().contains(needle));
        assert!(ok, "no {needle:?} in the log within {timeout:?}:\n{}", self.log());
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then the exit code.
    pub fn stop(&mut self, timeout: Duration) -> Option<i32> {
        self.child.as_ref()?;
        self.signal(libc::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return status.code();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "dirsync serve did not stop within {timeout:?} after SIGTERM:\n{}",
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The example staff policy with argon2 parameters cheap enough for tests
/// that create thousands of accounts; callers adjust the rest.
pub fn cheap_example_policy() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example/policies/staff.toml");
    std::fs::read_to_string(&p)
        .expect("example policy") // ok: test fixture in the repo
        .replace("argon2_memory_kib = 19456", "argon2_memory_kib = 8")
        .replace("argon2_iterations = 2", "argon2_iterations = 1")
}

/// A realistic roster of `rows` people from `dirsync-genroster`.
pub fn roster(rows: usize, seed: u64) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_dirsync-genroster"))
        .args(["--rows", &rows.to_string(), "--seed", &seed.to_string()])
        .output()
        .expect("run dirsync-genroster"); // ok: test
    assert!(
        out.status.success(),
        "genroster: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `dirsync --config dirsync.toml serve` in `dir` (as a newcomer runs it,
/// with relative paths), logging at info to the next free `serve-N.log`
/// there, outside systemd; returned once `ready` is in its log.
pub fn start_serve(dir: &Path, ready: &str) -> Daemon {
    let n = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
                .count()
        })
        .unwrap_or(0);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    cmd.current_dir(dir)
        .args(["--config", "dirsync.toml", "serve"])
        .env("DIRSYNC_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC");
    let d = Daemon::spawn(cmd, dir.join(format!("serve-{n}.log")));
    d.wait_log(ready, Duration::from_secs(30));
    d
}
