//! Throwaway real servers for integration tests.
//!
//! Each guard in this module starts one real server (OpenLDAP `slapd`,
//! PostgreSQL, MariaDB, OpenSSH `sshd` for SFTP, an `aiosmtpd` SMTP sink) in
//! its own temporary directory, listening on `127.0.0.1` and a free high
//! port, waits (bounded by [`START_TIMEOUT`]) until the server really answers
//! its protocol, and kills it and deletes the directory when dropped.
//!
//! Use it from an integration test with
//!
//! ```ignore
//! #[path = "support/servers.rs"]
//! mod servers;
//! ```
//!
//! or through `tests/support/mod.rs`. It needs only `std` and the `tempfile`
//! dev-dependency.
//!
//! The servers come from Debian packages; `scripts/install-test-deps`
//! installs them all. When a binary is missing or a server does not come up,
//! `start()` returns `Err` naming the package to install and quoting the
//! tail of the server's log: it never panics and never skips silently.
//!
//! Process ownership:
//! - each server is a direct child of the test process, started through one
//!   long-lived spawner thread with `PR_SET_PDEATHSIG = SIGKILL`, so servers
//!   die with the test process even when it is killed, aborts, or a guard
//!   sits in a `static` (a static guard is never dropped, so its temp dir
//!   stays behind in /tmp; prefer one guard per test);
//! - dropping a guard (also while a test panics and unwinds) `SIGKILL`s the
//!   server (PostgreSQL gets `SIGQUIT` first, up to 5 s) and any processes
//!   it forked (sshd's per-connection processes), then removes the temp dir;
//! - `stop()` shuts the server down gracefully and `restart()` brings it back
//!   on the same port with the same data, for "server restarts mid-run"
//!   tests.
//!
//! Ports: [`free_port`] binds `127.0.0.1:0` and never hands out the same port
//! twice in one process; if a server still loses a race for its port
//! ("Address already in use"), `start()` retries on another port.
//!
//! Set `DIRSYNC_TEST_KEEP_DIRS=1` to keep the temp dirs (configs, data, logs)
//! after the guards are dropped; their paths are printed to stderr.
//!
//! Logs: each server writes stdout and stderr to `<dir>/server.log`
//! (appended over restarts; `log_path()` on each guard).
//!
//! `directories.rs` (Samba AD DC, 389 DS) builds its guards on this file's
//! plumbing (process spawning and ownership, [`Guard`], `launch`, temp
//! dirs, ports, `run_ok`, ...), which is `pub(crate)` for it; its includer
//! declares this file as a sibling module named `servers`. What differs
//! between the two families of guards (waits, install script) is a
//! [`Limits`].

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long `start()` / `restart()` wait for a server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop()` waits for a graceful shutdown before `SIGKILL`.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound for one client command (`ldapadd`, `psql`, ...): generous,
/// because bulk loads through a client can take a minute; it only exists so a
/// hung server cannot hang the test run forever.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(600);
/// Upper bound for one readiness probe.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `Drop` waits after the polite signal before `SIGKILL`.
const DROP_GRACE: Duration = Duration::from_secs(5);
/// Start attempts on fresh ports when the port was taken meanwhile.
const PORT_ATTEMPTS: usize = 4;
/// How many lines of a log or of a failed command's output errors quote.
const LOG_TAIL_LINES: usize = 40;
const INSTALL_HINT: &str = "run scripts/install-test-deps";
/// Set (non-empty) to keep the guards' temp dirs.
const KEEP_ENV: &str = "DIRSYNC_TEST_KEEP_DIRS";

/// The waits of one family of guards and where their packages come from:
/// [`LIMITS`] for this file's, slower ones for `directories.rs`'s.
pub(crate) struct Limits {
    /// How long `start()` / `restart()` wait for the server to answer.
    pub start: Duration,
    /// How long `stop()` / `restart()` wait for a graceful shutdown before
    /// `SIGKILL`.
    pub stop: Duration,
    /// How long `restart()` retries a port the old process still holds.
    pub relaunch: Duration,
    /// What to run when a package is missing.
    pub install_hint: &'static str,
}

/// This file's guards.
const LIMITS: Limits = Limits {
    start: START_TIMEOUT,
    stop: STOP_TIMEOUT,
    relaunch: Duration::from_secs(10),
    install_hint: INSTALL_HINT,
};

impl Limits {
    /// Err unless `path` exists, naming the Debian package that provides it.
    pub(crate) fn require(&self, path: &str, package: &str) -> Result<PathBuf, String> {
        let p = PathBuf::from(path);
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "{path} not found: install the Debian package `{package}` ({})",
                self.install_hint
            ))
        }
    }
}

/// Whether [`KEEP_ENV`] asks to keep the temp dirs.
pub(crate) fn keep_dirs() -> bool {
    std::env::var_os(KEEP_ENV).is_some_and(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1, never returned before by this process.
///
/// Binds `127.0.0.1:0`, reads the port and closes the socket. Another process
/// may still grab it before the server binds: the `start()` functions retry
/// on a fresh port when that happens.
///
/// # Panics
/// If no loopback port can be bound at all (the guards' `start()` use the
/// non-panicking [`try_free_port`]).
pub fn free_port() -> u16 {
    match try_free_port() {
        Ok(port) => port,
        Err(e) => panic!("free_port: {e}"),
    }
}

/// Like [`free_port`], returning an error instead of panicking.
pub fn try_free_port() -> Result<u16, String> {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let set = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..100 {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot read local address: {e}"))?
            .port();
        drop(listener);
        if port < 1024 {
            continue;
        }
        let mut handed = set.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if handed.insert(port) {
            return Ok(port);
        }
    }
    Err("no unused loopback port found in 100 tries".to_string())
}

/// Connect to `127.0.0.1:port` within `timeout`.
pub fn tcp_connect(port: u16, timeout: Duration) -> Result<TcpStream, String> {
    tcp_connect_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
}

/// Connect to `addr` within `timeout`.
pub fn tcp_connect_addr(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    Ok(stream)
}

/// Wait until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match tcp_connect(port, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Connect and read the first line the server sends (its greeting).
fn read_banner(port: u16) -> Result<String, String> {
    let stream = tcp_connect(port, Duration::from_secs(2))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading greeting on port {port}: {e}"))?;
    Ok(line)
}

// ---------------------------------------------------------------------------
// Low-level process helpers (std only; two libc calls declared by hand)
// ---------------------------------------------------------------------------

pub(crate) mod sys {
    use std::io;
    use std::os::raw::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    pub const SIGINT: c_int = 2;
    pub const SIGQUIT: c_int = 3;
    pub const SIGKILL: c_int = 9;
    pub const SIGTERM: c_int = 15;

    unsafe extern "C" {
        fn kill(pid: c_int, sig: c_int) -> c_int;
        fn atexit(cb: extern "C" fn()) -> c_int;
        #[cfg(target_os = "linux")]
        fn prctl(option: c_int, ...) -> c_int;
    }

    /// Send `sig` to `pid`. Callers only pass pids of live, unreaped
    /// children (or descendants checked by start time), so the pid cannot
    /// have been reused.
    pub fn signal(pid: u32, sig: c_int) -> bool {
        let Ok(pid) = c_int::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { kill(pid, sig) == 0 }
    }

    /// Run `cb` when the process exits normally (exit(3), i.e. also when
    /// the test harness returns from main).
    pub fn at_exit(cb: extern "C" fn()) -> bool {
        // SAFETY: atexit(3) only stores the function pointer.
        unsafe { atexit(cb) == 0 }
    }

    /// Make the child receive SIGKILL when the thread that spawned it dies
    /// (we spawn from a thread that lives as long as the process). Runs
    /// after `Command::uid` has switched users, so the setting survives.
    pub fn die_with_parent(cmd: &mut Command) {
        #[cfg(target_os = "linux")]
        {
            const PR_SET_PDEATHSIG: c_int = 1;
            // SAFETY: the closure runs between fork and exec and only makes
            // one async-signal-safe syscall (prctl), allocating nothing.
            unsafe {
                cmd.pre_exec(|| {
                    if prctl(PR_SET_PDEATHSIG, SIGKILL as c_ulong) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = cmd;
    }
}

/// Spawn `cmd` from a dedicated thread that lives until the process exits,
/// with PR_SET_PDEATHSIG, so the server dies with the test process but not
/// when the (short-lived) test thread that started it ends.
fn spawn_owned(mut cmd: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        let spawned = thread::Builder::new()
            .name("test-server-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            eprintln!("servers.rs: cannot start spawner thread: {e}");
        }
        tx
    });
    sys::die_with_parent(&mut cmd);
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is not running"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread dropped the request"))?
}

/// Start time (field 22 of /proc/PID/stat) and parent pid of a process.
fn proc_stat(pid: u32) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

/// All live descendants of `root` as (pid, start time) pairs.
fn descendants(root: u32) -> Vec<(u32, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<(u32, u32, u64)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| proc_stat(pid).map(|(ppid, start)| (pid, ppid, start)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, start) in &all {
            if ppid == parent && !found.iter().any(|&(p, _)| p == pid) {
                found.push((pid, start));
                frontier.push(pid);
            }
        }
    }
    found
}

/// Run a short-lived client command with a time limit, feeding `input` to
/// its stdin. Returns its output whatever the exit status.
fn run_with_timeout(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> Result<Output, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let writer = match (input, child.stdin.take()) {
        (Some(data), Some(mut stdin)) => {
            let data = data.to_vec();
            Some(thread::spawn(move || {
                let _ = stdin.write_all(&data);
            }))
        }
        _ => None,
    };
    fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {}s (killed)",
                    timeout.as_secs()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Run a client command and return its stdout, or an error quoting stderr.
pub(crate) fn run_ok(what: &str, cmd: Command, input: Option<&[u8]>, timeout: Duration) -> Result<String, String> {
    let out = run_with_timeout(cmd, input, timeout).map_err(|e| format!("{what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            tail_lines(String::from_utf8_lossy(&out.stderr).trim_end(), LOG_TAIL_LINES),
            if stdout.trim().is_empty() {
                String::new()
            } else {
                format!("\nstdout: {}", tail_lines(stdout.trim_end(), LOG_TAIL_LINES))
            }
        ))
    }
}

/// The last `n` lines of `text`.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// [`Limits::require`] with this file's install hint.
fn require(path: &str, package: &str) -> Result<PathBuf, String> {
    LIMITS.require(path, package)
}

/// A local account from /etc/passwd, with its primary group's name.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub group: String,
}

pub(crate) fn passwd_lookup(matches: impl Fn(&str, u32) -> bool) -> Option<Account> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let groups = fs::read_to_string("/etc/group").unwrap_or_default();
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (name, uid, gid): (&str, u32, u32) = (f.first()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        matches(name, uid).then(|| Account {
            name: name.to_string(),
            uid,
            gid,
            group: groups
                .lines()
                .find_map(|g| {
                    let gf: Vec<&str> = g.split(':').collect();
                    (gf.get(2)?.parse::<u32>().ok()? == gid).then(|| gf[0].to_string())
                })
                .unwrap_or_else(|| gid.to_string()),
        })
    })
}

/// The effective uid of this process (owner of /proc/self).
pub(crate) fn effective_uid() -> Result<u32, String> {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot stat /proc/self: {e}"))
}

/// Who a server process runs as. Root must hand PostgreSQL and MariaDB to
/// their system users (initdb refuses root); anyone else runs them as
/// themselves.
#[derive(Clone, Debug)]
enum RunAs {
    Myself,
    User(Account),
}

impl RunAs {
    /// The system user `name` when we are root, else ourselves.
    fn system_user(name: &str, package: &str) -> Result<RunAs, String> {
        if effective_uid()? != 0 {
            return Ok(RunAs::Myself);
        }
        passwd_lookup(|n, _| n == name).map(RunAs::User).ok_or_else(|| {
            format!(
                "system user `{name}` does not exist: install the Debian package \
                     `{package}` ({INSTALL_HINT})"
            )
        })
    }

    fn apply(&self, cmd: &mut Command) {
        if let RunAs::User(a) = self {
            cmd.uid(a.uid).gid(a.gid);
        }
    }

    /// Give `path` (a directory we created) to the run-as user.
    fn own(&self, path: &Path) -> Result<(), String> {
        match self {
            RunAs::Myself => Ok(()),
            RunAs::User(a) => std::os::unix::fs::chown(path, Some(a.uid), Some(a.gid))
                .map_err(|e| format!("chown {} to {}: {e}", path.display(), a.name)),
        }
    }
}

// ---------------------------------------------------------------------------
// Temp dir, log and process plumbing shared by all guards
// ---------------------------------------------------------------------------

/// A temp dir that is removed on drop unless [`KEEP_ENV`] is set.
pub(crate) struct ServerDir {
    dir: TempDir,
}

impl ServerDir {
    /// `dirsync-<server>-pid<PID>-...` in the temp dir: the pid lets a later
    /// process tell the dirs of killed test processes (`directories.rs`
    /// removes its own).
    pub(crate) fn new(server: &str) -> Result<ServerDir, String> {
        static SWEPT: OnceLock<()> = OnceLock::new();
        SWEPT.get_or_init(remove_dead_processes_dirs);
        let dir = tempfile::Builder::new()
            .prefix(&format!("dirsync-{server}-pid{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("{server}: cannot create temp dir: {e}"))?;
        Ok(ServerDir { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.join("server.log")
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        if keep_dirs() {
            self.dir.disable_cleanup(true);
            eprintln!("servers.rs: keeping {}", self.dir.path().display());
        }
    }
}

/// Remove the server dirs of test processes that no longer exist: killed
/// ones, and those whose server lived in a `static` (never dropped, as the
/// PostgreSQL that `tests/ha.rs` shares), which left one dir a run behind.
fn remove_dead_processes_dirs() {
    if !keep_dirs() {
        remove_dirs_of_dead_processes(&["dirsync-"]);
    }
}

/// Remove the temp dirs named with one of `prefixes` and `-pid<PID>-` whose
/// process is gone (this process's own are left alone).
pub(crate) fn remove_dirs_of_dead_processes(prefixes: &[&str]) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Some(pid) = name
            .split('-')
            .find_map(|part| part.strip_prefix("pid")?.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

const LOG_MARKER: &str = "=== servers.rs: launching";

/// The last lines of `log` since the most recent launch marker.
pub(crate) fn log_tail(log: &Path) -> String {
    let Ok(bytes) = fs::read(log) else {
        return format!("(no log at {})", log.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let since = text.rfind(LOG_MARKER).map_or(&text[..], |i| &text[i..]);
    format!(
        "--- last lines of {} ({KEEP_ENV}=1 keeps it) ---\n{}",
        log.display(),
        tail_lines(since, LOG_TAIL_LINES)
    )
}

/// A running server process owned by a guard.
pub(crate) struct Proc {
    child: Child,
    /// Signal for a graceful shutdown (`stop()`/`restart()`).
    stop_signal: i32,
    /// Signal sent on drop before the grace period and SIGKILL.
    drop_signal: i32,
}

impl Proc {
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Signal the server, wait up to `grace`, then SIGKILL it. Afterwards
    /// SIGKILL whatever it had forked (e.g. sshd's per-connection processes).
    pub(crate) fn shut_down(&mut self, sig: i32, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = self.child.id();
        let kids = descendants(pid);
        sys::signal(pid, sig);
        let deadline = Instant::now() + grace;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        for (kid, start) in kids {
            // Only if it is still the same process (same start time).
            if proc_stat(kid).is_some_and(|(_, s)| s == start) {
                sys::signal(kid, sys::SIGKILL);
            }
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let sig = self.drop_signal;
        self.shut_down(sig, DROP_GRACE);
    }
}

/// Why a launch failed; `addr_in_use` means "try another address/port".
pub(crate) struct LaunchError {
    pub message: String,
    pub addr_in_use: bool,
}

impl LaunchError {
    pub(crate) fn fatal(message: String) -> LaunchError {
        LaunchError {
            message,
            addr_in_use: false,
        }
    }
}

/// Whether a server's log says it lost the race for its address.
fn mentions_addr_in_use(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("address already in use")
        || t.contains("address is in use") // NSPR (389 DS): "Local Network address is in use."
        || t.contains("nt_status_address_already_associated") // Samba
}

/// What to launch and how to tell it is ready.
pub(crate) struct LaunchSpec<'a> {
    pub server: &'static str,
    pub cmd: Command,
    pub log: PathBuf,
    pub stop_signal: i32,
    pub drop_signal: i32,
    /// The start timeout and install hint (the guard's [`Guard::LIMITS`]).
    pub limits: &'static Limits,
    /// Called repeatedly until it returns Ok or the deadline passes; Err is
    /// "not ready yet" and its message is reported on timeout.
    pub ready: &'a mut dyn FnMut() -> Result<(), String>,
}

/// Spawn the server with its output appended to its log and wait until
/// `ready` passes. On failure the process is killed and the error quotes
/// the log.
pub(crate) fn launch(spec: LaunchSpec<'_>) -> Result<Proc, LaunchError> {
    let LaunchSpec {
        server,
        mut cmd,
        log,
        stop_signal,
        drop_signal,
        limits,
        ready,
    } = spec;
    let open_log = || {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| LaunchError::fatal(format!("{server}: cannot open {}: {e}", log.display())))
    };
    let mut marker = open_log()?;
    let _ = writeln!(marker, "{LOG_MARKER} {cmd:?}");
    let out = open_log()?;
    let err = open_log()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let child = spawn_owned(cmd)
        .map_err(|e| LaunchError::fatal(format!("{server}: cannot spawn: {e} ({}?)", limits.install_hint)))?;
    let mut proc = Proc {
        child,
        stop_signal,
        drop_signal,
    };
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            let tail = log_tail(&log);
            return Err(LaunchError {
                addr_in_use: mentions_addr_in_use(&tail),
                message: format!("{server} exited during startup ({status})\n{tail}"),
            });
        }
        let last = match ready() {
            Ok(()) => {
                // The probe may have reached someone else on this port:
                // make sure our process is still the one alive.
                if proc.running() {
                    return Ok(proc);
                }
                continue;
            }
            Err(e) => e,
        };
        if started.elapsed() >= limits.start {
            drop(proc); // kills it
            let tail = log_tail(&log);
            return Err(LaunchError {
                addr_in_use: mentions_addr_in_use(&tail),
                message: format!(
                    "{server} not ready within {}s; last probe: {last}\n{tail}",
                    limits.start.as_secs()
                ),
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Try `attempt(port)` on fresh ports while it fails with "address in use".
fn on_free_port<T>(server: &str, mut attempt: impl FnMut(u16) -> Result<T, LaunchError>) -> Result<T, String> {
    retry_addr_in_use(server, "port", || {
        let port = try_free_port().map_err(|e| LaunchError::fatal(format!("{server}: {e}")))?;
        attempt(port)
    })
}

/// Call `attempt` (which picks a fresh `what`: port, address, ...) again
/// while it fails with "address in use", [`PORT_ATTEMPTS`] times at most.
pub(crate) fn retry_addr_in_use<T>(
    server: &str,
    what: &str,
    mut attempt: impl FnMut() -> Result<T, LaunchError>,
) -> Result<T, String> {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        match attempt() {
            Ok(t) => return Ok(t),
            Err(e) if e.addr_in_use => last = e.message,
            Err(e) => return Err(e.message),
        }
    }
    Err(format!(
        "{server}: {what} taken on {PORT_ATTEMPTS} attempts; last error:\n{last}"
    ))
}

/// Relaunch on the same port; a port still held (e.g. by the dying process)
/// is retried for `window`.
fn relaunch(window: Duration, mut attempt: impl FnMut() -> Result<Proc, LaunchError>) -> Result<Proc, String> {
    let deadline = Instant::now() + window;
    loop {
        match attempt() {
            Ok(p) => return Ok(p),
            Err(e) if e.addr_in_use && Instant::now() < deadline => thread::sleep(Duration::from_millis(250)),
            Err(e) => return Err(e.message),
        }
    }
}

pub(crate) fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub(crate) fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// What a guard supplies so that its `is_running()`, `stop()` and
/// `restart()` can be the shared [`guard_running`], [`guard_stop`] and
/// [`guard_restart`]. (The guards keep those three as inherent methods, so
/// callers need not import this trait.)
pub(crate) trait Guard {
    /// The server's name in messages.
    const SERVER: &'static str;

    /// Its waits; pass the same to [`LaunchSpec::limits`].
    const LIMITS: &'static Limits = &LIMITS;

    /// The running server process; `None` while stopped.
    fn proc_slot(&mut self) -> &mut Option<Proc>;

    /// Start the server on the guard's port with its data (`start()` picks
    /// the port first; `restart()` reuses it).
    fn launch(&self) -> Result<Proc, LaunchError>;
}

/// Shared is_running(): whether the server process is alive.
pub(crate) fn guard_running(guard: &mut impl Guard) -> bool {
    guard.proc_slot().as_mut().is_some_and(Proc::running)
}

/// Shared stop(): graceful shutdown, error if it had to be killed or had
/// already died.
pub(crate) fn guard_stop<G: Guard>(guard: &mut G) -> Result<(), String> {
    let Some(mut p) = guard.proc_slot().take() else {
        return Ok(());
    };
    if !p.running() {
        return Err(format!("{} had already exited before stop()", G::SERVER));
    }
    let sig = p.stop_signal;
    match p.shut_down(sig, G::LIMITS.stop) {
        Some(_) => Ok(()),
        None => Err(format!("{}: could not reap the process", G::SERVER)),
    }
}

/// Shared restart(): stop if running, then launch again on the same port.
pub(crate) fn guard_restart<G: Guard>(guard: &mut G) -> Result<(), String> {
    if let Some(mut p) = guard.proc_slot().take() {
        let sig = p.stop_signal;
        p.shut_down(sig, G::LIMITS.stop);
    }
    let proc = relaunch(G::LIMITS.relaunch, || guard.launch())?;
    *guard.proc_slot() = Some(proc);
    Ok(())
}

// ---------------------------------------------------------------------------
// OpenLDAP slapd
// ---------------------------------------------------------------------------

/// Completed-operation counters from slapd's `cn=Monitor` backend
/// (`cn=<Op>,cn=Operations,cn=Monitor`, attribute `monitorOpCompleted`).
///
/// Counted since the last (re)start; the query that reads them adds one bind
/// and one unbind (its own search is still in progress, so not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LdapOpCounts {
    pub bind: u64,
    pub unbind: u64,
    pub search: u64,
    pub compare: u64,
    pub modify: u64,
    pub modrdn: u64,
    pub add: u64,
    pub delete: u64,
    pub abandon: u64,
    pub extended: u64,
}

impl LdapOpCounts {
    /// add + modify + delete + modrdn.
    pub fn writes(&self) -> u64 {
        self.add + self.modify + self.delete + self.modrdn
    }
}

/// A throwaway OpenLDAP server (Debian `slapd` 2.5).
///
/// Starts `/usr/sbin/slapd -d none -h ldap://127.0.0.1:PORT/ -f slapd.conf`
/// as a foreground child with a `slapd.conf` in its temp dir:
/// - modules `back_mdb`, `ppolicy`, `argon2` and `pw-sha2` from
///   `/usr/lib/ldap` (so `{ARGON2}` and `{SSHA512}` hashes verify);
///   schemas core, cosine, inetorgperson, nis (ppolicy's is built in);
/// - `database monitor` (read by admin and service account: see
///   [`Slapd::op_counts`]);
/// - `database mdb`, suffix `dc=example,dc=org`, `maxsize` 4 GiB,
///   `dbnosync`, `lastmod on` (so `modifyTimestamp`/`entryCSN` exist),
///   equality indexes on objectClass, uid, mail, cn;
/// - rootdn `cn=admin,dc=example,dc=org` / [`Slapd::ADMIN_PASSWORD`];
/// - service account `cn=dirsync,ou=services,dc=example,dc=org` /
///   [`Slapd::SERVICE_PASSWORD`] with `write` on the whole tree and
///   `limits ... size=unlimited time=unlimited` (no 500-entry cap);
///   other users may read everything but passwords and change their own;
/// - `overlay ppolicy` with `ppolicy_default cn=default,ou=policies,...`:
///   `pwdAttribute: userPassword`, `pwdLockout: TRUE` (so an admin-set
///   `pwdAccountLockedTime` really refuses binds; slapd 2.5 ignores it
///   without a policy that has `pwdLockout: TRUE`), `pwdMaxFailure: 0` (wrong
///   passwords never lock anyone), `pwdMustChange: FALSE` (so `pwdReset:
///   TRUE` is stored but does not restrict the user's session; set it to TRUE
///   with `ldapmodify_ldif` to test enforcement).
///
/// The base tree is loaded offline with `slapadd` before the first start
/// (so the operation counters start at zero): `dc=example,dc=org`,
/// `ou=people`, `ou=leavers`, `ou=groups`, `ou=services` (with the service
/// account) and `ou=policies` (with the default policy).
///
/// Ready when an admin `ldapsearch` of the base entry succeeds.
/// Set `DIRSYNC_SLAPD_DEBUG=stats` (any `-d` level) for a verbose log.
pub struct Slapd {
    // Field order matters: the process is dropped (killed) before the dir.
    proc: Option<Proc>,
    port: u16,
    bin: PathBuf,
    dir: ServerDir,
}

impl Slapd {
    pub const BASE: &'static str = "dc=example,dc=org";
    pub const ADMIN_DN: &'static str = "cn=admin,dc=example,dc=org";
    pub const ADMIN_PASSWORD: &'static str = "admin-secret";
    pub const SERVICE_DN: &'static str = "cn=dirsync,ou=services,dc=example,dc=org";
    pub const SERVICE_PASSWORD: &'static str = "dirsync-secret";
    pub const PEOPLE_DN: &'static str = "ou=people,dc=example,dc=org";
    pub const LEAVERS_DN: &'static str = "ou=leavers,dc=example,dc=org";
    pub const GROUPS_DN: &'static str = "ou=groups,dc=example,dc=org";
    pub const POLICY_DN: &'static str = "cn=default,ou=policies,dc=example,dc=org";

    /// Start a fresh server with the base tree loaded.
    pub fn start() -> Result<Slapd, String> {
        let bin = require("/usr/sbin/slapd", "slapd")?;
        let slapadd = require("/usr/sbin/slapadd", "slapd")?;
        require("/usr/bin/ldapsearch", "ldap-utils")?;
        let dir = ServerDir::new("slapd")?;
        mkdir(&dir.join("data"))?;
        let conf = dir.join("slapd.conf");
        write_file(&conf, &Self::config(dir.path()))?;
        let base = dir.join("base.ldif");
        write_file(&base, &Self::base_ldif())?;
        // Offline load: also validates the config with a readable error.
        let mut cmd = Command::new(&slapadd);
        cmd.arg("-q").arg("-f").arg(&conf).arg("-l").arg(&base);
        run_ok("slapd: slapadd of the base tree", cmd, None, Duration::from_secs(60))?;
        let mut me = Slapd {
            proc: None,
            port: 0,
            bin,
            dir,
        };
        let proc = on_free_port("slapd", |port| {
            me.port = port;
            me.launch()
        })?;
        me.proc = Some(proc);
        Ok(me)
    }

    /// `slapd.conf`: `tests/support/slapd.conf.in` (shared with
    /// `benches/slapd.sh`) filled in for `dir`.
    fn config(dir: &Path) -> String {
        Self::fill(include_str!("slapd.conf.in")).replace("@DIR@", &dir.display().to_string())
    }

    /// The base tree: `tests/support/slapd-base.ldif.in` (also shared)
    /// filled in.
    fn base_ldif() -> String {
        Self::fill(include_str!("slapd-base.ldif.in"))
    }

    /// Replace the templates' `@NAME@` placeholders but `@DIR@`.
    fn fill(template: &str) -> String {
        [
            ("@BASE@", Self::BASE),
            ("@ADMIN_DN@", Self::ADMIN_DN),
            ("@ADMIN_PASSWORD@", Self::ADMIN_PASSWORD),
            ("@SERVICE_DN@", Self::SERVICE_DN),
            ("@SERVICE_PASSWORD@", Self::SERVICE_PASSWORD),
            ("@PEOPLE_DN@", Self::PEOPLE_DN),
            ("@LEAVERS_DN@", Self::LEAVERS_DN),
            ("@GROUPS_DN@", Self::GROUPS_DN),
            ("@POLICY_DN@", Self::POLICY_DN),
        ]
        .iter()
        .fold(template.to_string(), |text, (name, value)| text.replace(name, value))
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn base(&self) -> &'static str {
        Self::BASE
    }
    pub fn admin_dn(&self) -> &'static str {
        Self::ADMIN_DN
    }
    pub fn admin_password(&self) -> &'static str {
        Self::ADMIN_PASSWORD
    }
    pub fn service_dn(&self) -> &'static str {
        Self::SERVICE_DN
    }
    pub fn service_password(&self) -> &'static str {
        Self::SERVICE_PASSWORD
    }
    /// The server's temp dir (slapd.conf, data/, server.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// An ldap-utils client (simple bind as `bind`, default admin; an empty
    /// DN means anonymous), ignoring ldap.conf and .ldaprc.
    fn ldap_client(
        &self,
        tool: &str,
        bind: Option<(&str, &str)>,
        nettimeout: Option<Duration>,
    ) -> Result<Command, String> {
        let path = require(&format!("/usr/bin/{tool}"), "ldap-utils")?;
        let (dn, pw) = bind.unwrap_or((Self::ADMIN_DN, Self::ADMIN_PASSWORD));
        let mut cmd = Command::new(path);
        cmd.env("LDAPNOINIT", "1").arg("-x").arg("-H").arg(self.url());
        if let Some(t) = nettimeout {
            cmd.arg("-o").arg(format!("nettimeout={}", t.as_secs().max(1)));
        }
        if !dn.is_empty() {
            cmd.arg("-D").arg(dn).arg("-w").arg(pw);
        }
        Ok(cmd)
    }

    /// `ldapsearch -x -LLL -o ldif-wrap=no` as admin, subtree scope. Returns
    /// the LDIF (empty when nothing matches). Err if the base does not exist
    /// (result 32) or on any other failure.
    pub fn ldapsearch(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<String, String> {
        let mut cmd = self.ldap_client("ldapsearch", None, None)?;
        cmd.args(["-LLL", "-o", "ldif-wrap=no", "-b", base, filter]).args(attrs);
        run_ok(&format!("ldapsearch -b {base} {filter}"), cmd, None, CLIENT_TIMEOUT)
    }

    /// `ldapadd` the LDIF as admin.
    pub fn ldapadd_ldif(&self, ldif: &str) -> Result<(), String> {
        let cmd = self.ldap_client("ldapadd", None, None)?;
        run_ok("ldapadd", cmd, Some(ldif.as_bytes()), CLIENT_TIMEOUT).map(|_| ())
    }

    /// `ldapmodify` the LDIF (with `changetype:` lines) as admin.
    pub fn ldapmodify_ldif(&self, ldif: &str) -> Result<(), String> {
        let cmd = self.ldap_client("ldapmodify", None, None)?;
        run_ok("ldapmodify", cmd, Some(ldif.as_bytes()), CLIENT_TIMEOUT).map(|_| ())
    }

    /// Check that `dn` can bind with `password` (`ldapwhoami`). Err carries
    /// the client's message, e.g. `Invalid credentials (49)` for a wrong
    /// password or a locked account.
    pub fn bind_check(&self, dn: &str, password: &str) -> Result<(), String> {
        let cmd = self.ldap_client("ldapwhoami", Some((dn, password)), Some(PROBE_TIMEOUT))?;
        run_ok(&format!("bind as {dn}"), cmd, None, PROBE_TIMEOUT).map(|_| ())
    }

    /// Completed-operation counters from `cn=Monitor` since the last start.
    pub fn op_counts(&self) -> Result<LdapOpCounts, String> {
        let ldif = self.ldapsearch("cn=Operations,cn=Monitor", "(objectClass=*)", &["monitorOpCompleted"])?;
        let mut counts = LdapOpCounts::default();
        for entry in ldif.split("\n\n") {
            let mut dn = "";
            let mut n = None;
            for line in entry.lines() {
                if let Some(v) = line.strip_prefix("dn: ") {
                    dn = v;
                } else if let Some(v) = line.strip_prefix("monitorOpCompleted: ") {
                    n = v.trim().parse::<u64>().ok();
                }
            }
            let (Some(n), Some(op)) = (n, dn.strip_suffix(",cn=Operations,cn=Monitor")) else {
                continue;
            };
            let slot = match op.to_ascii_lowercase().as_str() {
                "cn=bind" => &mut counts.bind,
                "cn=unbind" => &mut counts.unbind,
                "cn=search" => &mut counts.search,
                "cn=compare" => &mut counts.compare,
                "cn=modify" => &mut counts.modify,
                "cn=modrdn" => &mut counts.modrdn,
                "cn=add" => &mut counts.add,
                "cn=delete" => &mut counts.delete,
                "cn=abandon" => &mut counts.abandon,
                "cn=extended" => &mut counts.extended,
                _ => continue,
            };
            *slot = n;
        }
        Ok(counts)
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Graceful shutdown (SIGTERM); data stays. Connections are dropped.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same port with the same
    /// data. Monitor counters restart from zero.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for Slapd {
    const SERVER: &'static str = "slapd";

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let debug = std::env::var("DIRSYNC_SLAPD_DEBUG").unwrap_or_else(|_| "none".into());
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-d")
            .arg(debug)
            .arg("-h")
            .arg(self.url() + "/")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .current_dir(self.dir.path());
        let mut ready = || {
            tcp_connect(self.port, Duration::from_millis(500))?;
            self.ldap_client("ldapsearch", None, Some(PROBE_TIMEOUT))
                .and_then(|mut c| {
                    c.args(["-b", Self::BASE, "-s", "base", "(objectClass=*)", "1.1"]);
                    run_ok("ldapsearch of the base", c, None, PROBE_TIMEOUT)
                })
                .map(|_| ())
        };
        launch(LaunchSpec {
            server: "slapd",
            cmd,
            log: self.dir.log(),
            stop_signal: sys::SIGTERM,
            drop_signal: sys::SIGKILL,
            limits: Self::LIMITS,
            ready: &mut ready,
        })
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/// A throwaway PostgreSQL cluster (Debian `postgresql`).
///
/// `initdb -U postgres --auth=trust --no-sync --no-locale -E UTF8` into
/// `<dir>/data`, then `postgres -D <dir>/data -c listen_addresses=127.0.0.1
/// -c port=P -c unix_socket_directories=<dir> -c fsync=off` (plus
/// `synchronous_commit=off`, `full_page_writes=off`) as a direct child.
/// As root, both run as the `postgres` system user (initdb refuses root)
/// and the temp dir is chowned to it.
///
/// Creates role `dirsync` (LOGIN CREATEDB, password `dirsync`, though trust
/// auth ignores it) owning database `dirsync_test`. Ready when
/// `psql -c 'SELECT 1'` succeeds.
pub struct Postgres {
    proc: Option<Proc>,
    port: u16,
    bin_dir: PathBuf,
    run_as: RunAs,
    dir: ServerDir,
}

impl Postgres {
    pub const USER: &'static str = "dirsync";
    pub const PASSWORD: &'static str = "dirsync";
    pub const DATABASE: &'static str = "dirsync_test";
    pub const SUPERUSER: &'static str = "postgres";

    /// Newest `/usr/lib/postgresql/<version>/bin` with `postgres` and `initdb`.
    fn find_bin_dir() -> Result<PathBuf, String> {
        let missing = || {
            format!(
                "no /usr/lib/postgresql/*/bin/postgres: install the Debian package \
                 `postgresql` ({INSTALL_HINT})"
            )
        };
        let entries = fs::read_dir("/usr/lib/postgresql").map_err(|_| missing())?;
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                (bin.join("postgres").exists() && bin.join("initdb").exists() && bin.join("psql").exists())
                    .then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin).ok_or_else(missing)
    }

    /// initdb, start, create role and database.
    pub fn start() -> Result<Postgres, String> {
        let bin_dir = Self::find_bin_dir()?;
        let run_as = RunAs::system_user("postgres", "postgresql")?;
        let dir = ServerDir::new("postgres")?;
        run_as.own(dir.path())?;
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", Self::SUPERUSER, "--auth=trust", "--no-sync"])
            .args(["--no-locale", "-E", "UTF8"])
            .current_dir(dir.path());
        run_as.apply(&mut initdb);
        run_ok("postgres: initdb", initdb, None, Duration::from_secs(120))?;
        let mut me = Postgres {
            proc: None,
            port: 0,
            bin_dir,
            run_as,
            dir,
        };
        let proc = on_free_port("postgres", |port| {
            me.port = port;
            me.launch()
        })?;
        me.proc = Some(proc);
        me.psql_as(
            Self::SUPERUSER,
            "postgres",
            &format!(
                "CREATE ROLE {u} LOGIN CREATEDB PASSWORD '{p}';\n\
                 CREATE DATABASE {d} OWNER {u};\n",
                u = Self::USER,
                p = Self::PASSWORD,
                d = Self::DATABASE
            ),
        )
        .map_err(|e| format!("postgres: creating role and database: {e}"))?;
        Ok(me)
    }

    fn psql_cmd(&self, user: &str, db: &str, connect_timeout: Duration) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("psql"));
        cmd.env("PGCONNECT_TIMEOUT", connect_timeout.as_secs().max(1).to_string())
            .env("PGSSLMODE", "disable")
            .env_remove("PGPASSWORD")
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-f", "-"]);
        cmd
    }

    /// `postgres://dirsync@127.0.0.1:PORT/dirsync_test`
    pub fn url(&self) -> String {
        format!("postgres://{}@127.0.0.1:{}/{}", Self::USER, self.port, Self::DATABASE)
    }
    /// `postgres://postgres@127.0.0.1:PORT/dirsync_test` (superuser).
    pub fn superuser_url(&self) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            Self::SUPERUSER,
            self.port,
            Self::DATABASE
        )
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn user(&self) -> &'static str {
        Self::USER
    }
    pub fn database(&self) -> &'static str {
        Self::DATABASE
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// Run SQL (one or more statements) with `psql -X -q -At -v
    /// ON_ERROR_STOP=1` as `dirsync` on `dirsync_test`; returns the output
    /// (rows `|`-separated, one per line).
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_as(Self::USER, Self::DATABASE, sql)
    }

    /// Like [`Postgres::psql`] with another role and database (e.g.
    /// `("postgres", "dirsync_test")` for superuser work).
    pub fn psql_as(&self, user: &str, db: &str, sql: &str) -> Result<String, String> {
        let cmd = self.psql_cmd(user, db, PROBE_TIMEOUT);
        run_ok("psql", cmd, Some(sql.as_bytes()), CLIENT_TIMEOUT)
    }

    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Fast shutdown (SIGINT: disconnects clients, checkpoints); data stays.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for Postgres {
    const SERVER: &'static str = "postgres";

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("port={}", self.port))
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.path().display()))
            .args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"])
            .current_dir(self.dir.path());
        self.run_as.apply(&mut cmd);
        let mut ready = || {
            tcp_connect(self.port, Duration::from_millis(500))?;
            let c = self.psql_cmd(Self::SUPERUSER, "postgres", PROBE_TIMEOUT);
            run_ok("psql SELECT 1", c, Some(b"SELECT 1;"), PROBE_TIMEOUT).map(|_| ())
        };
        launch(LaunchSpec {
            server: "postgres",
            cmd,
            log: self.dir.log(),
            stop_signal: sys::SIGINT,  // "fast" shutdown
            drop_signal: sys::SIGQUIT, // "immediate" shutdown, still cleans up
            limits: Self::LIMITS,
            ready: &mut ready,
        })
    }
}

// ---------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------

/// A throwaway MariaDB server (Debian `mariadb-server`).
///
/// `mariadb-install-db --no-defaults --datadir=<dir>/data
/// --auth-root-authentication-method=normal --skip-test-db`, then
/// `mariadbd --no-defaults --datadir=<dir>/data --bind-address=127.0.0.1
/// --port=P --socket=<dir>/mysqld.sock --pid-file=<dir>/mysqld.pid` (plus a
/// 64 MiB buffer pool and `innodb_flush_log_at_trx_commit=2`) as a direct
/// child. As root both run as the `mysql` system user (set by this harness,
/// not by `--user`, so the parent-death signal survives) in a temp dir
/// chowned to it.
///
/// `root` has no password (also `root@127.0.0.1`); database `dirsync_test`
/// (utf8mb4) is created. Ready when `mariadb -e 'SELECT 1'` succeeds.
pub struct MariaDb {
    proc: Option<Proc>,
    port: u16,
    run_as: RunAs,
    dir: ServerDir,
}

impl MariaDb {
    pub const USER: &'static str = "root";
    pub const DATABASE: &'static str = "dirsync_test";

    pub fn start() -> Result<MariaDb, String> {
        let install_db = require("/usr/bin/mariadb-install-db", "mariadb-server")?;
        require("/usr/sbin/mariadbd", "mariadb-server")?;
        require("/usr/bin/mariadb", "mariadb-client")?;
        let run_as = RunAs::system_user("mysql", "mariadb-server")?;
        let dir = ServerDir::new("mariadb")?;
        run_as.own(dir.path())?;
        let mut cmd = Command::new(install_db);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .current_dir(dir.path());
        run_as.apply(&mut cmd);
        run_ok("mariadb: mariadb-install-db", cmd, None, Duration::from_secs(120))?;
        let mut me = MariaDb {
            proc: None,
            port: 0,
            run_as,
            dir,
        };
        let proc = on_free_port("mariadb", |port| {
            me.port = port;
            me.launch()
        })?;
        me.proc = Some(proc);
        let create = format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
            Self::DATABASE
        );
        run_ok(
            "mariadb: CREATE DATABASE",
            me.client(None, PROBE_TIMEOUT),
            Some(create.as_bytes()),
            CLIENT_TIMEOUT,
        )?;
        Ok(me)
    }

    fn client(&self, db: Option<&str>, connect_timeout: Duration) -> Command {
        // --no-defaults must come first.
        let mut cmd = Command::new("/usr/bin/mariadb");
        cmd.arg("--no-defaults")
            .arg("--protocol=TCP")
            .args(["-h", "127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={}", Self::USER))
            .arg(format!("--connect-timeout={}", connect_timeout.as_secs().max(1)))
            .args(["-N", "-B"]);
        if let Some(db) = db {
            cmd.arg(db);
        }
        cmd
    }

    /// `mysql://root@127.0.0.1:PORT/dirsync_test`
    pub fn url(&self) -> String {
        format!("mysql://{}@127.0.0.1:{}/{}", Self::USER, self.port, Self::DATABASE)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn database(&self) -> &'static str {
        Self::DATABASE
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// Run SQL with `mariadb -N -B` as root on `dirsync_test`; returns the
    /// tab-separated rows.
    pub fn query(&self, sql: &str) -> Result<String, String> {
        let cmd = self.client(Some(Self::DATABASE), PROBE_TIMEOUT);
        run_ok("mariadb", cmd, Some(sql.as_bytes()), CLIENT_TIMEOUT)
    }

    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Graceful shutdown (SIGTERM); data stays.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for MariaDb {
    const SERVER: &'static str = "mariadb";

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let d = self.dir.path().display();
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={d}/data"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={d}/mysqld.sock"))
            .arg(format!("--pid-file={d}/mysqld.pid"))
            .arg("--innodb-buffer-pool-size=64M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .current_dir(self.dir.path());
        self.run_as.apply(&mut cmd);
        let mut ready = || {
            tcp_connect(self.port, Duration::from_millis(500))?;
            run_ok(
                "mariadb SELECT 1",
                self.client(None, PROBE_TIMEOUT),
                Some(b"SELECT 1;"),
                PROBE_TIMEOUT,
            )
            .map(|_| ())
        };
        launch(LaunchSpec {
            server: "mariadb",
            cmd,
            log: self.dir.log(),
            stop_signal: sys::SIGTERM,
            drop_signal: sys::SIGKILL,
            limits: Self::LIMITS,
            ready: &mut ready,
        })
    }
}

// ---------------------------------------------------------------------------
// OpenSSH sshd (SFTP)
// ---------------------------------------------------------------------------

/// A throwaway SFTP server: OpenSSH `sshd` (Debian `openssh-server`).
///
/// Generates an ed25519 host key and an ed25519 user key (no passphrase)
/// with `ssh-keygen`, writes `authorized_keys` and an `sshd_config`
/// (`ListenAddress 127.0.0.1`, `PasswordAuthentication no`, `UsePAM no`,
/// `StrictModes no`, `PermitRootLogin prohibit-password`,
/// `Subsystem sftp internal-sftp -d <root_dir>`), creates `/run/sshd`, and
/// runs `/usr/sbin/sshd -D -e -f <config>` as a direct child.
///
/// The login user is the user running the tests (root here). There is no
/// chroot: SFTP sessions start in [`Sshd::root_dir`], so relative remote
/// paths land there, and absolute remote paths are the same paths on this
/// machine (`root_dir().join("x")` is valid remotely and locally).
///
/// The host key is kept across `restart()`. `stop()` also kills the
/// per-connection processes, so open sessions drop as in an outage.
/// Ready when the server sends its `SSH-2.0-` greeting.
pub struct Sshd {
    proc: Option<Proc>,
    port: u16,
    user: String,
    host_fingerprint: String,
    host_public_key: String,
    dir: ServerDir,
}

impl Sshd {
    pub fn start() -> Result<Sshd, String> {
        let sshd = require("/usr/sbin/sshd", "openssh-server")?;
        let keygen = require("/usr/bin/ssh-keygen", "openssh-client")?;
        let uid = effective_uid()?;
        let user = passwd_lookup(|_, u| u == uid)
            .map(|a| a.name)
            .ok_or_else(|| format!("sshd: uid {uid} is not in /etc/passwd"))?;
        // sshd exits with "Missing privilege separation directory" without it.
        mkdir(Path::new("/run/sshd")).map_err(|e| format!("sshd: {e} (needs root or an existing /run/sshd)"))?;
        let dir = ServerDir::new("sshd")?;
        mkdir(&dir.join("root"))?;
        for (file, comment) in [
            ("ssh_host_ed25519_key", "dirsync-test-host"),
            ("id_ed25519", "dirsync-test-user"),
        ] {
            let mut cmd = Command::new(&keygen);
            cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(dir.join(file));
            run_ok("sshd: ssh-keygen", cmd, None, PROBE_TIMEOUT)?;
        }
        let read = |name: &str| {
            fs::read_to_string(dir.join(name))
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("sshd: reading {name}: {e}"))
        };
        let host_public_key = read("ssh_host_ed25519_key.pub")?;
        write_file(&dir.join("authorized_keys"), &(read("id_ed25519.pub")? + "\n"))?;
        let mut cmd = Command::new(&keygen);
        cmd.arg("-lf").arg(dir.join("ssh_host_ed25519_key.pub"));
        let listing = run_ok("sshd: ssh-keygen -lf", cmd, None, PROBE_TIMEOUT)?;
        // "256 SHA256:xxxx comment (ED25519)"
        let host_fingerprint = listing
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .map(str::to_string)
            .ok_or_else(|| format!("sshd: unexpected ssh-keygen -lf output: {listing}"))?;
        let mut me = Sshd {
            proc: None,
            port: 0,
            user,
            host_fingerprint,
            host_public_key,
            dir,
        };
        let mut checked = false;
        let proc = on_free_port("sshd", |port| {
            me.port = port;
            me.write_config().map_err(LaunchError::fatal)?;
            if !checked {
                // Validate once, for a readable error (sshd -t).
                let mut t = Command::new(&sshd);
                t.arg("-t").arg("-f").arg(me.dir.join("sshd_config"));
                run_ok("sshd -t (config check)", t, None, PROBE_TIMEOUT).map_err(LaunchError::fatal)?;
                checked = true;
            }
            me.launch()
        })?;
        me.proc = Some(proc);
        Ok(me)
    }

    fn write_config(&self) -> Result<(), String> {
        let d = self.dir.path().display();
        let config = format!(
            "# Written by tests/support/servers.rs
Port {port}
ListenAddress 127.0.0.1
HostKey {d}/ssh_host_ed25519_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
UsePAM no
StrictModes no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp -d {d}/root
",
            port = self.port,
            user = self.user,
        );
        write_file(&self.dir.join("sshd_config"), &config)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// Always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    /// The login user (the user running the tests).
    pub fn user(&self) -> &str {
        &self.user
    }
    /// Private ed25519 key (OpenSSH format, mode 0600, no passphrase)
    /// authorised for [`Sshd::user`].
    pub fn user_key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// The host key's `SHA256:...` fingerprint, as `ssh-keygen -lf` prints it.
    pub fn host_key_fingerprint_sha256(&self) -> &str {
        &self.host_fingerprint
    }
    /// The host public key line, `ssh-ed25519 AAAA... dirsync-test-host`.
    pub fn host_public_key_line(&self) -> &str {
        &self.host_public_key
    }
    /// A `known_hosts` line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_public_key.split_whitespace();
        let (kind, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        format!("[127.0.0.1]:{} {kind} {key}", self.port)
    }
    /// Where SFTP sessions start; inspect uploaded files here directly.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.join("root")
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// Run an `sftp -b -` batch (commands on stdin) with the user key and
    /// host key checking off; returns sftp's output.
    pub fn sftp_batch(&self, batch: &str) -> Result<String, String> {
        let sftp = require("/usr/bin/sftp", "openssh-client")?;
        let mut cmd = Command::new(sftp);
        cmd.arg("-i")
            .arg(self.user_key_path())
            .arg("-P")
            .arg(self.port.to_string())
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
            .args(["-b", "-"])
            .arg(format!("{}@127.0.0.1", self.user))
            .current_dir(self.dir.path());
        run_ok("sftp", cmd, Some(batch.as_bytes()), CLIENT_TIMEOUT)
    }

    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Stop the listener (SIGTERM) and kill its open sessions; files stay.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same port and host key.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for Sshd {
    const SERVER: &'static str = "sshd";

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .current_dir(self.dir.path());
        let mut ready = || {
            let banner = read_banner(self.port)?;
            if banner.starts_with("SSH-2.0-") {
                Ok(())
            } else {
                Err(format!("unexpected greeting {banner:?}"))
            }
        };
        launch(LaunchSpec {
            server: "sshd",
            cmd,
            log: self.dir.log(),
            stop_signal: sys::SIGTERM,
            drop_signal: sys::SIGKILL,
            limits: Self::LIMITS,
            ready: &mut ready,
        })
    }
}

// ---------------------------------------------------------------------------
// SMTP sink (aiosmtpd)
// ---------------------------------------------------------------------------

/// A throwaway SMTP server that stores every message (Debian
/// `python3-aiosmtpd`).
///
/// Runs `/usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c
/// aiosmtpd.handlers.Mailbox <dir>/maildir` (Debian's module is only visible
/// to `/usr/bin/python3`, not necessarily the `python3` on PATH). Plain
/// SMTP, no TLS, no AUTH; every message is accepted and written to
/// `<dir>/maildir/new/` with `X-Peer`, `X-MailFrom` and `X-RcptTo` headers
/// prepended. Ready when the server sends its `220` greeting. Messages
/// survive `restart()`.
pub struct Smtp {
    proc: Option<Proc>,
    port: u16,
    dir: ServerDir,
}

impl Smtp {
    pub fn start() -> Result<Smtp, String> {
        let python = require("/usr/bin/python3", "python3")?;
        let check = run_with_timeout(
            {
                let mut c = Command::new(&python);
                c.args(["-c", "import aiosmtpd"]);
                c
            },
            None,
            Duration::from_secs(20),
        )?;
        if !check.status.success() {
            return Err(format!(
                "/usr/bin/python3 cannot import aiosmtpd: install the Debian package \
                 `python3-aiosmtpd` ({INSTALL_HINT}): {}",
                String::from_utf8_lossy(&check.stderr).trim()
            ));
        }
        let dir = ServerDir::new("smtp")?;
        let mut me = Smtp {
            proc: None,
            port: 0,
            dir,
        };
        let proc = on_free_port("smtp", |port| {
            me.port = port;
            me.launch()
        })?;
        me.proc = Some(proc);
        Ok(me)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// Always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    /// The Maildir the messages go to (files under `new/`).
    pub fn maildir(&self) -> PathBuf {
        self.dir.join("maildir")
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// The raw messages received so far (files under `maildir/new`), oldest
    /// first (by modification time, then file name). A message is complete
    /// once the client has had its `250` reply to the DATA.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(entries) = fs::read_dir(self.maildir().join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let mtime = e.metadata().ok()?.modified().ok()?;
                Some((mtime, e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().filter_map(|(_, path)| fs::read(path).ok()).collect()
    }

    /// Wait until at least `count` messages arrived; returns them all.
    pub fn wait_for_messages(&self, count: usize, timeout: Duration) -> Result<Vec<Vec<u8>>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages();
            if msgs.len() >= count {
                return Ok(msgs);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "smtp: {} message(s) after {:?}, expected {count}",
                    msgs.len(),
                    timeout
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Stop the server (SIGTERM); stored messages stay.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for Smtp {
    const SERVER: &'static str = "smtp";

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.env("PYTHONUNBUFFERED", "1")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .current_dir(self.dir.path());
        let mut ready = || {
            let banner = read_banner(self.port)?;
            if banner.starts_with("220") {
                Ok(())
            } else {
                Err(format!("unexpected greeting {banner:?}"))
            }
        };
        launch(LaunchSpec {
            server: "smtp (aiosmtpd)",
            cmd,
            log: self.dir.log(),
            stop_signal: sys::SIGTERM,
            drop_signal: sys::SIGKILL,
            limits: Self::LIMITS,
            ready: &mut ready,
        })
    }
}
