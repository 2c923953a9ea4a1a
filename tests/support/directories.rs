//! Throwaway real directory servers for the LDAP integration tests:
//! Samba as an Active Directory domain controller ([`SambaAd`]) and
//! 389 Directory Server ([`Ds389`]).
//!
//! Same contract as `servers.rs`, and built on its plumbing (process
//! spawning and ownership, launch and readiness, `stop()`/`restart()`,
//! temp dirs, ports, running client commands): the includer must include
//! `servers.rs` too, as a sibling module named `servers`:
//!
//! ```ignore
//! #[path = "support/directories.rs"]
//! mod directories;
//! #[path = "support/servers.rs"]
//! mod servers;
//! ```
//!
//! It needs only `std` and the `tempfile` dev-dependency, plus the Debian
//! packages that `scripts/install-test-deps-directories` installs (`samba`,
//! `samba-ad-provision`, `samba-dsdb-modules`, `samba-vfs-modules`,
//! `ldb-tools`, `389-ds-base`, `libnss3-tools`, `ldap-utils`, `openssl`).
//! When something is missing or a server does not come up, `start()` returns
//! `Err` naming the package or quoting the tail of the server's log: it never
//! panics and never skips silently.
//!
//! Cost model (measured on the 2-core CI kind of machine while other builds
//! ran, load average 12): provisioning is slow — Samba's `samba-tool domain
//! provision` 17–34 s wall (≈5 s CPU), 389 DS's `dscreate` plus TLS and base
//! tree 8–12 s — and starting is fast: copying the template and starting a
//! server takes 0.9–1.4 s, `restart()` 1.6–3 s. So each server kind is
//! provisioned ONCE per test process into a template directory (on the first
//! `start()`; concurrent callers wait for it), and every `start()` copies the
//! template into its own temp dir and starts a server on it: every guard has
//! its own fresh data, and one guard per test is cheap. Put the directory
//! tests in ONE test binary (one process) so the provisioning is paid once
//! per `cargo test`. The template dirs (Samba ≈ 42 MB, 389 DS ≈ 10 MB) are
//! removed when the test process exits normally (an `atexit` hook); those
//! of killed test processes, and their guards' dirs, are removed by the next
//! test process that makes a template (the dir names carry the pid).
//! `DIRSYNC_TEST_TIMINGS=1` prints the provisioning time to stderr.
//!
//! Helpers shared by both guards: [`unicode_pwd_base64`] (AD's `unicodePwd`
//! LDIF value), [`base64`], [`count_entries`] (of an LDIF search result).
//! The `ldapsearch` helpers page (`-E pr=N/noprompt`), so their output may
//! end with a `# pagedresults: cookie=` comment line.
//!
//! TLS: one test CA per process (EC P-256, made with `openssl`). Each
//! server gets a certificate from it whose subjectAltName holds the IP the
//! server listens on (plus `localhost`/its DNS name), so clients verify the
//! server with [`SambaAd::ca_file`] / [`Ds389::ca_file`]. The CA is never in
//! the system trust store: a client that does not load it fails, which
//! proves verification is not skipped. The `ldap-utils` clients run by the
//! guards read no `ldap.conf`/`.ldaprc` (`LDAPCONF=/dev/null`) and get the CA
//! through `LDAPTLS_CACERT` with `LDAPTLS_REQCERT=demand`.
//!
//! Process ownership is `servers.rs`'s: each server is a direct child of
//! the test process, spawned from one long-lived thread with
//! `PR_SET_PDEATHSIG = SIGKILL` (so it dies with the test process even when
//! that is killed); dropping a guard kills the server and whatever it forked
//! and removes its temp dir (`DIRSYNC_TEST_KEEP_DIRS=1` keeps the dirs,
//! templates included, and prints their paths).

#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::servers::{
    effective_uid, guard_restart, guard_running, guard_stop, keep_dirs, launch, log_tail, mkdir, passwd_lookup,
    remove_dirs_of_dead_processes, retry_addr_in_use, run_ok, sys, tcp_connect_addr, try_free_port, write_file,
    Account, Guard, LaunchError, LaunchSpec, Limits, Proc, ServerDir, CLIENT_TIMEOUT, PROBE_TIMEOUT,
};

/// How long `start()` / `restart()` wait for a server to answer (after the
/// once-per-process provisioning, which has its own limit).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `stop()` waits for a graceful shutdown before `SIGKILL`.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for one provisioning command (`samba-tool domain provision`,
/// `dscreate`). Generous: both take 10–25 s on a loaded 2-core machine.
pub const PROVISION_TIMEOUT: Duration = Duration::from_secs(300);
const INSTALL_HINT: &str = "run scripts/install-test-deps-directories";

/// The guards' waits (longer than `servers.rs`'s) and install hint.
const LIMITS: Limits = Limits {
    start: START_TIMEOUT,
    stop: STOP_TIMEOUT,
    relaunch: Duration::from_secs(15),
    install_hint: INSTALL_HINT,
};

/// Err unless `path` exists, naming the Debian package that provides it.
fn require(path: &str, package: &str) -> Result<PathBuf, String> {
    LIMITS.require(path, package)
}

/// The first existing path of `candidates` (merged-/usr differences).
fn require_any(candidates: &[&str], package: &str) -> Result<PathBuf, String> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "{} not found: install the Debian package `{package}` ({INSTALL_HINT})",
                candidates[0]
            )
        })
}

fn read_file(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn chmod(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {mode:o} {}: {e}", path.display()))
}

/// `chown -R` without following symlinks.
fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", path.display()))?;
    let meta = fs::symlink_metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| format!("read {}: {e}", path.display()))? {
            let entry = entry.map_err(|e| format!("read {}: {e}", path.display()))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// `cp -a SRC/. DST` (keeps owners, modes and xattrs: Samba's sysvol ACLs
/// live in xattrs).
fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    mkdir(dst)?;
    let mut cmd = Command::new("cp");
    cmd.arg("-a").arg(format!("{}/.", src.display())).arg(dst);
    run_ok(
        &format!("cp -a {} {}", src.display(), dst.display()),
        cmd,
        None,
        Duration::from_secs(120),
    )
    .map(|_| ())
}

// ---------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------

static TEMPLATE_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn remove_templates() {
    if keep_dirs() {
        return;
    }
    let dirs = match TEMPLATE_DIRS.try_lock() {
        Ok(mut d) => std::mem::take(&mut *d),
        Err(_) => return,
    };
    for d in dirs {
        let _ = fs::remove_dir_all(d);
    }
}

/// A directory that lives until the test process exits (templates, the CA).
/// Named `dirsync-tmpl-<kind>-pid<PID>-...` so that a later process can
/// remove those of dead processes.
fn process_dir(kind: &str) -> Result<PathBuf, String> {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        if !sys::at_exit(remove_templates) {
            eprintln!("directories.rs: atexit failed; templates stay in the temp dir");
        }
        remove_stale_templates();
    });
    let dir = tempfile::Builder::new()
        .prefix(&format!("dirsync-tmpl-{kind}-pid{}-", std::process::id()))
        .tempdir()
        .map_err(|e| format!("{kind}: cannot create temp dir: {e}"))?
        .keep();
    if keep_dirs() {
        eprintln!("directories.rs: keeping {}", dir.display());
    }
    TEMPLATE_DIRS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(dir.clone());
    Ok(dir)
}

/// Remove template and guard dirs left by test processes that no longer
/// exist (killed before their atexit hook / guard drops ran).
fn remove_stale_templates() {
    // Templates, and guard dirs of this file (they carry the pid too).
    remove_dirs_of_dead_processes(&["dirsync-tmpl-", "dirsync-samba-pid", "dirsync-389ds-pid"]);
}

// ---------------------------------------------------------------------------
// Loopback addresses
// ---------------------------------------------------------------------------

/// A 127.0.0.x address (x in 2..=254) on which nothing listens on the AD
/// ports, never returned before by this process. Other processes are
/// avoided by probing with bind() (we are root: the ports are < 1024) and by
/// starting the scan at an offset derived from the pid; a lost race shows up
/// as "address in use" and `start()` tries another address.
fn free_loopback_ip() -> Result<Ipv4Addr, String> {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u8>>> = OnceLock::new();
    let set = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    let offset = (std::process::id() % 253) as u8;
    for i in 0..253u8 {
        let last = 2 + (offset.wrapping_add(i) % 253);
        let ip = Ipv4Addr::new(127, 0, 0, last);
        if set.lock().unwrap_or_else(|p| p.into_inner()).contains(&last) {
            continue;
        }
        let free = SambaAd::PORTS.iter().all(|&port| TcpListener::bind((ip, port)).is_ok());
        if free && set.lock().unwrap_or_else(|p| p.into_inner()).insert(last) {
            return Ok(ip);
        }
    }
    Err("no 127.0.0.x address with ports 389/636/3268/3269 free".to_string())
}

// ---------------------------------------------------------------------------
// Test CA
// ---------------------------------------------------------------------------

/// The per-process test CA (EC P-256, 10 years), in a process dir.
struct TestCa {
    dir: PathBuf,
    openssl: PathBuf,
}

impl TestCa {
    fn get() -> Result<&'static TestCa, String> {
        static CA: OnceLock<Result<TestCa, String>> = OnceLock::new();
        CA.get_or_init(TestCa::create).as_ref().map_err(Clone::clone)
    }

    fn create() -> Result<TestCa, String> {
        let openssl = require_any(&["/usr/bin/openssl", "/bin/openssl"], "openssl")?;
        let dir = process_dir("ca")?;
        chmod(&dir, 0o755)?; // servers running as other users read ca.pem
        let mut cmd = Command::new(&openssl);
        cmd.args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(dir.join("ca.key"))
        .arg("-out")
        .arg(dir.join("ca.pem"))
        .args(["-days", "3650", "-subj", "/O=dirsync tests/CN=dirsync test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .args(["-addext", "subjectKeyIdentifier=hash"]);
        run_ok("openssl: making the test CA", cmd, None, Duration::from_secs(60))?;
        chmod(&dir.join("ca.pem"), 0o644)?;
        Ok(TestCa { dir, openssl })
    }

    fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issue a server certificate into `out_dir` (`server.pem`, `server.key`
    /// mode 0600, `ca.pem`) for `cn` with the given subjectAltNames
    /// (`IP:127.0.0.2`, `DNS:localhost`, ...).
    fn issue(&self, out_dir: &Path, cn: &str, sans: &[String]) -> Result<(), String> {
        mkdir(out_dir)?;
        let key = out_dir.join("server.key");
        let csr = out_dir.join("server.csr");
        let ext = out_dir.join("server.ext");
        let mut cmd = Command::new(&self.openssl);
        cmd.args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .arg("-subj")
        .arg(format!("/O=dirsync tests/CN={cn}"));
        run_ok("openssl: server key and CSR", cmd, None, Duration::from_secs(60))?;
        write_file(
            &ext,
            &format!(
                "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
                 subjectAltName={}\n",
                sans.join(",")
            ),
        )?;
        let mut cmd = Command::new(&self.openssl);
        cmd.args(["x509", "-req", "-days", "3650", "-set_serial"])
            .arg(format!(
                "{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(1)
            ))
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(self.ca_pem())
            .arg("-CAkey")
            .arg(self.dir.join("ca.key"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(out_dir.join("server.pem"));
        run_ok(
            "openssl: signing the server certificate",
            cmd,
            None,
            Duration::from_secs(60),
        )?;
        chmod(&key, 0o600)?;
        fs::copy(self.ca_pem(), out_dir.join("ca.pem")).map_err(|e| format!("copy ca.pem: {e}"))?;
        Ok(())
    }
}

/// base64 (standard alphabet, padded), for LDIF `attr:: value` lines.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value of AD's `unicodePwd` for `password`: the password in double
/// quotes, UTF-16LE, base64 — for an LDIF line `unicodePwd:: <this>`.
pub fn unicode_pwd_base64(password: &str) -> String {
    let quoted = format!("\"{password}\"");
    let bytes: Vec<u8> = quoted.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64(&bytes)
}

// ---------------------------------------------------------------------------
// ldap-utils clients
// ---------------------------------------------------------------------------

/// The `ldap-utils` clients of one server, the same for both guards: where
/// it listens, the CA that verifies it and whom to bind as by default.
struct LdapClient<'a> {
    url: String,
    /// `-ZZ`: StartTLS on a plain `ldap://` URL, or fail.
    starttls: bool,
    ca_file: PathBuf,
    cwd: &'a Path,
    /// DN and password of the default bind.
    admin: (&'static str, &'static str),
}

impl LdapClient<'_> {
    /// `tool -x -H <url> [-ZZ] -D <dn> -w <password>`, bound as `bind`
    /// (default: the admin). It reads no ldap.conf/.ldaprc, trusts only
    /// `ca_file` and demands a valid certificate.
    fn command(&self, tool: &str, bind: Option<(&str, &str)>) -> Result<Command, String> {
        let path = require(&format!("/usr/bin/{tool}"), "ldap-utils")?;
        let mut cmd = Command::new(path);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LDAP") {
                cmd.env_remove(k);
            }
        }
        // LDAPNOINIT would also disable the LDAPTLS_* variables: instead
        // point the config at /dev/null and .ldaprc at a name that does not
        // exist.
        cmd.env("LDAPCONF", "/dev/null")
            .env("LDAPRC", "dirsync-test-no-ldaprc")
            .env("LDAPTLS_CACERT", &self.ca_file)
            .env("LDAPTLS_REQCERT", "demand")
            .current_dir(self.cwd);
        let (dn, pw) = bind.unwrap_or(self.admin);
        cmd.arg("-x").arg("-H").arg(&self.url);
        if self.starttls {
            cmd.arg("-ZZ");
        }
        cmd.arg("-D").arg(dn).arg("-w").arg(pw);
        Ok(cmd)
    }

    /// `ldapsearch -LLL -o ldif-wrap=no` as the admin, subtree scope, paged
    /// `page` entries at a time.
    fn search(&self, base: &str, filter: &str, attrs: &[&str], page: u32) -> Result<String, String> {
        let mut cmd = self.command("ldapsearch", None)?;
        cmd.args(["-LLL", "-o", "ldif-wrap=no", "-E"])
            .arg(format!("pr={page}/noprompt"))
            .args(["-b", base, filter])
            .args(attrs);
        run_ok(&format!("ldapsearch -b {base} {filter}"), cmd, None, CLIENT_TIMEOUT)
    }

    /// `tool` (`ldapadd`, `ldapmodify`) with the LDIF on stdin, as the admin.
    fn feed_ldif(&self, tool: &str, ldif: &str) -> Result<(), String> {
        let cmd = self.command(tool, None)?;
        run_ok(tool, cmd, Some(ldif.as_bytes()), CLIENT_TIMEOUT).map(|_| ())
    }

    /// Whether `dn` can bind with `password`: `tool` with `args` (a cheap
    /// operation) bound as `dn`, 5 s network timeout.
    fn bind_check(&self, dn: &str, password: &str, tool: &str, args: &[&str]) -> Result<(), String> {
        let mut cmd = self.command(tool, Some((dn, password)))?;
        cmd.args(["-o", "nettimeout=5"]).args(args);
        run_ok(&format!("bind as {dn}"), cmd, None, PROBE_TIMEOUT).map(|_| ())
    }

    /// Readiness probe: a base-scope search of `base` as the admin.
    fn probe(&self, base: &str) -> Result<(), String> {
        let mut cmd = self.command("ldapsearch", None)?;
        cmd.args(["-o", "nettimeout=5", "-b", base, "-s", "base", "(objectClass=*)", "1.1"]);
        let what = format!("ldapsearch of the base at {}", self.url);
        run_ok(&what, cmd, None, PROBE_TIMEOUT).map(|_| ())
    }
}

/// Count the `dn:` lines of an LDIF search result.
pub fn count_entries(ldif: &str) -> usize {
    ldif.lines()
        .filter(|l| l.starts_with("dn:") || l.starts_with("dn::"))
        .count()
}

// ---------------------------------------------------------------------------
// Samba AD DC
// ---------------------------------------------------------------------------

/// The provisioned Samba domain all [`SambaAd`] guards copy.
struct SambaTemplate {
    dir: PathBuf,
}

impl SambaTemplate {
    fn get() -> Result<&'static SambaTemplate, String> {
        static T: OnceLock<Result<SambaTemplate, String>> = OnceLock::new();
        T.get_or_init(|| {
            let started = Instant::now();
            let t = SambaTemplate::create();
            if std::env::var_os("DIRSYNC_TEST_TIMINGS").is_some() {
                eprintln!(
                    "directories.rs: samba provision took {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            t
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    fn create() -> Result<SambaTemplate, String> {
        let tool = require("/usr/bin/samba-tool", "samba")?;
        let ldbadd = require("/usr/bin/ldbadd", "ldb-tools")?;
        let ldbmodify = require("/usr/bin/ldbmodify", "ldb-tools")?;
        if !fs::read_dir("/usr/share/samba/setup/ad-schema").is_ok_and(|mut d| d.next().is_some()) {
            return Err(format!(
                "samba: /usr/share/samba/setup/ad-schema is missing: install the Debian package \
                 `samba-ad-provision` ({INSTALL_HINT})"
            ));
        }
        let root = process_dir("samba")?;
        let prov = root.join("prov");
        mkdir(&prov)?;
        let empty = root.join("empty.conf");
        write_file(&empty, "")?;
        let mut cmd = Command::new(&tool);
        // An empty -s keeps /etc/samba/smb.conf out of the provisioned
        // config; everything lands under --targetdir.
        cmd.args(["domain", "provision", "-s"])
            .arg(&empty)
            .arg(format!("--targetdir={}", prov.display()))
            .args(["--realm", SambaAd::REALM, "--domain", SambaAd::DOMAIN])
            .args(["--server-role=dc", "--use-rfc2307", "--dns-backend=SAMBA_INTERNAL"])
            .arg(format!("--host-name={}", SambaAd::HOST_NAME))
            .arg(format!("--adminpass={}", SambaAd::ADMIN_PASSWORD))
            // Not the resolv.conf nameserver: nothing may ever be forwarded
            // off this machine (the DNS service is not started anyway).
            .arg("--option=dns forwarder = 127.0.0.1")
            .current_dir(&root);
        let out = run_ok("samba: samba-tool domain provision", cmd, None, PROVISION_TIMEOUT).map_err(|e| {
            let mut msg = e;
            if msg.contains("samba_secrets") || msg.contains("LDB_MODULES_PATH") {
                msg.push_str("\n(install the Debian package `samba-dsdb-modules`)");
            }
            if msg.contains("acl_xattr") {
                msg.push_str("\n(install the Debian package `samba-vfs-modules`)");
            }
            if msg.contains(".ldf") {
                msg.push_str("\n(install the Debian package `samba-ad-provision`)");
            }
            format!("{msg}\n{INSTALL_HINT}")
        })?;
        let _ = write_file(&root.join("provision.log"), &out);
        let sam = prov.join("private/sam.ldb");
        // Offline (ldb-tools, system session): base OUs and a service
        // account in Domain Admins.
        let mut cmd = Command::new(&ldbadd);
        cmd.arg("-H").arg(&sam);
        run_ok(
            "samba: ldbadd of the base tree",
            cmd,
            Some(SambaAd::base_ldif().as_bytes()),
            PROVISION_TIMEOUT,
        )?;
        // Relaxed password policy: no complexity, no length/age/history
        // limits (`samba-tool domain passwordsettings set` does the same).
        let mut cmd = Command::new(&ldbmodify);
        cmd.arg("-H").arg(&sam);
        run_ok(
            "samba: ldbmodify of the password policy",
            cmd,
            Some(SambaAd::policy_ldif().as_bytes()),
            PROVISION_TIMEOUT,
        )?;
        for runtime in ["msg.lock", "msg.sock"] {
            let p = prov.join(runtime);
            if p.is_dir() {
                let _ = fs::remove_dir_all(&p);
            } else {
                let _ = fs::remove_file(&p);
            }
        }
        Ok(SambaTemplate { dir: prov })
    }
}

/// A throwaway Samba Active Directory domain controller (Debian `samba`
/// 4.17), realm `EXAMPLE.ORG`, NetBIOS domain `EXAMPLE`, base
/// `DC=example,DC=org`, RFC 2307 attributes enabled.
///
/// Samba's LDAP ports are fixed (389, 636, 3268, 3269), so each guard gets
/// its own loopback address 127.0.0.x (x ≥ 2) in the root network namespace:
/// `interfaces = 127.0.0.x/8` + `bind interfaces only = yes` (a bare
/// `127.0.0.x` finds no interface: "WARNING: no network interfaces found").
/// Linux routes all of 127/8 to `lo`, so no address or namespace has to be
/// configured and any process on the machine — the test process, `ldap3`,
/// `ldapsearch` — reaches it directly at [`SambaAd::ldaps_url`]. Needs root
/// (ports below 1024).
///
/// Only the `ldap` service runs (`server services = ldap`, process model
/// `single`): no DNS, KDC, NetBIOS, SMB, DNS updates or NTP, so nothing is
/// ever sent anywhere but loopback. Simple binds need TLS (plain `ldap://`
/// binds fail with "Strong(er) authentication required (8)", as on Windows
/// with LDAP signing required): use LDAPS, or StartTLS on [`SambaAd::ldap_url`].
///
/// Contents (copied from the once-per-process template):
/// - `CN=Administrator,CN=Users,...` / [`SambaAd::ADMIN_PASSWORD`];
/// - service account `CN=dirsync,CN=Users,...` (sAMAccountName `dirsync`)
///   / [`SambaAd::SERVICE_PASSWORD`], member of Domain Admins;
/// - `OU=people`, `OU=leavers`, `OU=groups` under the base;
/// - password policy relaxed: complexity off, min length/age, max age and
///   history 0; `old password allowed period = 0` so an old password stops
///   working at once after a reset.
///
/// The template is provisioned with an empty `-s` config (so
/// `/etc/samba/smb.conf` is never read), `--dns-backend=SAMBA_INTERNAL` and
/// `dns forwarder = 127.0.0.1` (provision otherwise copies the
/// resolv.conf nameserver into the config), then changed offline with
/// `ldbadd`/`ldbmodify` on `sam.ldb` (well under a second; `samba-tool`
/// would start Python once per change).
///
/// Behaviour worth knowing (Samba 4.17): a wrong password and a disabled
/// account both fail the bind with `Invalid credentials (49)`; the
/// diagnostic says `data 52e` (bad password) or `data 533` (disabled).
/// Unlike Windows, Samba lets an account be enabled without a password
/// and returns more than 1,000 entries unpaged — code for Windows.
///
/// Ready when an admin LDAPS search of the base (verifying the CA) works.
pub struct SambaAd {
    proc: Option<Proc>,
    ip: Ipv4Addr,
    dir: ServerDir,
}

impl SambaAd {
    pub const REALM: &'static str = "EXAMPLE.ORG";
    pub const DOMAIN: &'static str = "EXAMPLE";
    pub const DNS_DOMAIN: &'static str = "example.org";
    pub const HOST_NAME: &'static str = "dc1";
    pub const BASE: &'static str = "DC=example,DC=org";
    pub const ADMIN_DN: &'static str = "CN=Administrator,CN=Users,DC=example,DC=org";
    pub const ADMIN_PASSWORD: &'static str = "Admin-Secret-1";
    pub const SERVICE_DN: &'static str = "CN=dirsync,CN=Users,DC=example,DC=org";
    pub const SERVICE_PASSWORD: &'static str = "Dirsync-Secret-1";
    pub const USERS_DN: &'static str = "CN=Users,DC=example,DC=org";
    pub const PEOPLE_DN: &'static str = "OU=people,DC=example,DC=org";
    pub const LEAVERS_DN: &'static str = "OU=leavers,DC=example,DC=org";
    pub const GROUPS_DN: &'static str = "OU=groups,DC=example,DC=org";
    /// LDAP, LDAPS, global catalog, global catalog over TLS.
    pub const PORTS: [u16; 4] = [389, 636, 3268, 3269];

    fn base_ldif() -> String {
        format!(
            "dn: {people}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: {leavers}\nobjectClass: organizationalUnit\nou: leavers\n\n\
             dn: {groups}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: {svc}\nobjectClass: user\nsAMAccountName: dirsync\nuserPrincipalName: dirsync@{dns}\n\
             unicodePwd:: {pw}\nuserAccountControl: 66048\n",
            people = Self::PEOPLE_DN,
            leavers = Self::LEAVERS_DN,
            groups = Self::GROUPS_DN,
            svc = Self::SERVICE_DN,
            dns = Self::DNS_DOMAIN,
            pw = unicode_pwd_base64(Self::SERVICE_PASSWORD),
        )
    }

    fn policy_ldif() -> String {
        format!(
            "dn: CN=Domain Admins,{users}\nchangetype: modify\nadd: member\nmember: {svc}\n\n\
             dn: {base}\nchangetype: modify\nreplace: pwdProperties\npwdProperties: 0\n-\n\
             replace: minPwdLength\nminPwdLength: 0\n-\nreplace: minPwdAge\nminPwdAge: 0\n-\n\
             replace: maxPwdAge\nmaxPwdAge: 0\n-\nreplace: pwdHistoryLength\npwdHistoryLength: 0\n",
            users = Self::USERS_DN,
            svc = Self::SERVICE_DN,
            base = Self::BASE,
        )
    }

    /// Copy the provisioned domain (provisioning it first if this process
    /// has not yet) and start a DC on a free 127.0.0.x.
    pub fn start() -> Result<SambaAd, String> {
        require("/usr/sbin/samba", "samba")?;
        require("/usr/bin/ldapsearch", "ldap-utils")?;
        if effective_uid()? != 0 {
            return Err(
                "samba: SambaAd needs root: Samba AD binds the fixed ports 389/636/3268/3269 \
                        (and provisioning as non-root fails)"
                    .to_string(),
            );
        }
        let template = SambaTemplate::get()?;
        let ca = TestCa::get()?;
        let dir = ServerDir::new("samba")?;
        copy_tree(&template.dir, &dir.join("prov"))?;
        mkdir(&dir.join("run"))?;
        let mut me = SambaAd {
            proc: None,
            ip: Ipv4Addr::LOCALHOST,
            dir,
        };
        let proc = retry_addr_in_use("samba", "address", || {
            me.ip = free_loopback_ip().map_err(|e| LaunchError::fatal(format!("samba: {e}")))?;
            ca.issue(
                &me.dir.join("tls"),
                &format!("{}.{}", Self::HOST_NAME, Self::DNS_DOMAIN),
                &[
                    format!("IP:{}", me.ip),
                    format!("DNS:{}.{}", Self::HOST_NAME, Self::DNS_DOMAIN),
                    "DNS:localhost".to_string(),
                ],
            )
            .map_err(LaunchError::fatal)?;
            write_file(&me.dir.join("smb.conf"), &me.config()).map_err(LaunchError::fatal)?;
            me.launch()
        })?;
        me.proc = Some(proc);
        Ok(me)
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        format!(
            "# Written by tests/support/directories.rs
[global]
\tnetbios name = {host}
\tworkgroup = {domain}
\trealm = {realm}
\tserver role = active directory domain controller
\tidmap_ldb:use rfc2307 = yes
\tprivate dir = {d}/prov/private
\tstate directory = {d}/prov/state
\tcache directory = {d}/prov/cache
\tlock directory = {d}/prov
\tbinddns dir = {d}/prov/bind-dns
\tpid directory = {d}/run
\tncalrpc dir = {d}/run/ncalrpc
\twinbindd socket directory = {d}/run/winbindd
\tntp signd socket directory = {d}/run/ntp_signd
\tinterfaces = {ip}/8
\tbind interfaces only = yes
\tserver services = ldap
\tdns forwarder = 127.0.0.1
\tdisable netbios = yes
\ttls enabled = yes
\ttls keyfile = {d}/tls/server.key
\ttls certfile = {d}/tls/server.pem
\ttls cafile = {d}/tls/ca.pem
\told password allowed period = 0
\tlog level = 1
",
            host = Self::HOST_NAME.to_ascii_uppercase(),
            domain = Self::DOMAIN,
            realm = Self::REALM,
            ip = self.ip,
        )
    }

    /// `ldaps://127.0.0.x` (port 636).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}", self.ip)
    }
    /// `ldap://127.0.0.x` (port 389): StartTLS, or SASL; simple binds
    /// without TLS are refused.
    pub fn ldap_url(&self) -> String {
        format!("ldap://{}", self.ip)
    }
    /// The loopback address the DC listens on (also in its certificate).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }
    /// The test CA's certificate (PEM) that signed the DC's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
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
    /// `example.org`: userPrincipalName suffix.
    pub fn upn_suffix(&self) -> &'static str {
        Self::DNS_DOMAIN
    }
    /// The guard's temp dir (smb.conf, prov/, tls/, server.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// The `ldap-utils` clients over LDAPS, Administrator by default.
    fn ldaps(&self) -> LdapClient<'_> {
        LdapClient {
            url: self.ldaps_url(),
            starttls: false,
            ca_file: self.ca_file(),
            cwd: self.dir.path(),
            admin: (Self::ADMIN_DN, Self::ADMIN_PASSWORD),
        }
    }

    /// An `ldap-utils` command against [`Self::ldaps_url`] with the CA
    /// verified, bound as `bind` (default: Administrator). Add the tool's
    /// own arguments and run it yourself for anything the helpers lack.
    pub fn client(&self, tool: &str, bind: Option<(&str, &str)>) -> Result<Command, String> {
        self.ldaps().command(tool, bind)
    }

    /// `ldapsearch -LLL -o ldif-wrap=no` as Administrator over LDAPS,
    /// subtree scope, paged 1,000 at a time (as Windows AD requires).
    pub fn ldapsearch(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<String, String> {
        self.ldapsearch_paged(base, filter, attrs, 1000)
    }

    /// Like [`Self::ldapsearch`] with the given page size.
    pub fn ldapsearch_paged(&self, base: &str, filter: &str, attrs: &[&str], page: u32) -> Result<String, String> {
        self.ldaps().search(base, filter, attrs, page)
    }

    /// `ldapadd` the LDIF as Administrator over LDAPS.
    pub fn ldapadd_ldif(&self, ldif: &str) -> Result<(), String> {
        self.ldaps().feed_ldif("ldapadd", ldif)
    }

    /// `ldapmodify` the LDIF (with `changetype:` lines) as Administrator
    /// over LDAPS.
    pub fn ldapmodify_ldif(&self, ldif: &str) -> Result<(), String> {
        self.ldaps().feed_ldif("ldapmodify", ldif)
    }

    /// Reset `dn`'s password as Administrator (`replace: unicodePwd`).
    pub fn set_password(&self, dn: &str, password: &str) -> Result<(), String> {
        self.ldapmodify_ldif(&format!(
            "dn: {dn}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n",
            unicode_pwd_base64(password)
        ))
    }

    /// Check that `dn` (or a UPN like `jdoe@example.org`) can bind with
    /// `password` over LDAPS (a base search of the root DSE: Samba has no
    /// Who-am-I operation). Err carries the client's message, e.g.
    /// `Invalid credentials (49)` with `data 52e` (wrong password) or
    /// `data 533` (account disabled).
    pub fn bind_check(&self, dn: &str, password: &str) -> Result<(), String> {
        let root_dse = ["-LLL", "-b", "", "-s", "base", "(objectClass=*)", "1.1"];
        self.ldaps().bind_check(dn, password, "ldapsearch", &root_dse)
    }

    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Graceful shutdown (SIGTERM); data stays.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same address with the same
    /// data.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for SambaAd {
    const SERVER: &'static str = "samba";
    const LIMITS: &'static Limits = &LIMITS;

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let mut cmd = Command::new("/usr/sbin/samba");
        cmd.args(["-F", "--debug-stdout", "-M", "single", "-s"])
            .arg(self.dir.join("smb.conf"))
            .current_dir(self.dir.path());
        let addr = SocketAddr::from((self.ip, 636));
        let mut ready = || {
            tcp_connect_addr(addr, Duration::from_millis(500))?;
            self.ldaps().probe(Self::BASE)
        };
        launch(LaunchSpec {
            server: "samba",
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
// 389 Directory Server
// ---------------------------------------------------------------------------

const DS_INSTANCE: &str = "test";

/// Who ns-slapd runs as: `dirsrv` when we are root (389 DS will not run as
/// root by default), else ourselves.
fn ds_account() -> Result<Account, String> {
    let uid = effective_uid()?;
    if uid == 0 {
        passwd_lookup(|n, _| n == "dirsrv").ok_or_else(|| {
            format!("system user `dirsrv` does not exist: install the Debian package `389-ds-base` ({INSTALL_HINT})")
        })
    } else {
        passwd_lookup(|_, u| u == uid).ok_or_else(|| format!("389-ds: uid {uid} is not in /etc/passwd"))
    }
}

/// The `dscreate`d instance all [`Ds389`] guards copy (stopped, with the
/// base tree, TLS material and tuning in place).
struct DsTemplate {
    prefix: PathBuf,
    account: Account,
}

fn ds_config_dir(prefix: &Path) -> PathBuf {
    prefix.join(format!("etc/dirsrv/slapd-{DS_INSTANCE}"))
}

impl DsTemplate {
    fn get() -> Result<&'static DsTemplate, String> {
        static T: OnceLock<Result<DsTemplate, String>> = OnceLock::new();
        T.get_or_init(|| {
            let started = Instant::now();
            let t = DsTemplate::create();
            if std::env::var_os("DIRSYNC_TEST_TIMINGS").is_some() {
                eprintln!(
                    "directories.rs: 389-ds template took {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            t
        })
        .as_ref()
        .map_err(Clone::clone)
    }

    fn defaults_inf(prefix: &Path, account: &Account) -> String {
        let p = prefix.display();
        format!(
            "; Written by tests/support/directories.rs: every writable path under the prefix.
[slapd]
product = 389 Directory Server
version = 2
asan_enabled = 0
enable_rust = off
with_systemd = 0
with_selinux =
prefix = {p}
bin_dir = /usr/bin
sbin_dir = /usr/sbin
lib_dir = /usr/lib/{triple}
data_dir = /usr/share
tmp_dir = {p}/tmp
sysconf_dir = {p}/etc
initconfig_dir = {p}/etc
config_dir = {p}/etc/dirsrv/slapd-{{instance_name}}
local_state_dir = {p}
run_dir = {p}/run
ldapi = {p}/run/slapd.socket
pid_file = {p}/run/slapd.pid
ldapi_listen = on
ldapi_autobind = off
inst_dir = {p}/inst
plugin_dir = {plugins}
system_schema_dir = /usr/share/dirsrv/schema
tmpfiles_d = {p}/tmpfiles.d
user = {user}
group = {group}
root_dn = {root_dn}
schema_dir = {p}/etc/dirsrv/slapd-{{instance_name}}/schema
cert_dir = {p}/etc/dirsrv/slapd-{{instance_name}}
lock_dir = {p}/lock
log_dir = {p}/log
access_log = {p}/log/access
audit_log = {p}/log/audit
error_log = {p}/log/errors
security_log = {p}/log/security
db_dir = {p}/db
db_home_dir = {p}/db
backup_dir = {p}/bak
ldif_dir = {p}/ldif
",
            triple = Self::lib_triple(),
            plugins = Self::plugin_dir().display(),
            user = account.name,
            group = account.group,
            root_dn = Ds389::ADMIN_DN,
        )
    }

    fn plugin_dir() -> PathBuf {
        PathBuf::from(format!("/usr/lib/{}/dirsrv/plugins", Self::lib_triple()))
    }

    fn lib_triple() -> &'static str {
        if Path::new("/usr/lib/aarch64-linux-gnu/dirsrv").exists() {
            "aarch64-linux-gnu"
        } else {
            "x86_64-linux-gnu"
        }
    }

    fn instance_inf() -> String {
        format!(
            "[general]
full_machine_name = localhost
strict_host_checking = False
start = False
[slapd]
instance_name = {DS_INSTANCE}
; no TCP listener while provisioning: dscreate talks over LDAPI
port = 0
root_password = {pw}
self_sign_cert = False
[backend-userroot]
suffix = {base}
create_suffix_entry = True
",
            pw = Ds389::ADMIN_PASSWORD,
            base = Ds389::BASE,
        )
    }

    fn create() -> Result<DsTemplate, String> {
        let dscreate = require("/usr/sbin/dscreate", "389-ds-base")?;
        require("/usr/sbin/ns-slapd", "389-ds-base")?;
        let certutil = require("/usr/bin/certutil", "libnss3-tools")?;
        let pk12util = require("/usr/bin/pk12util", "libnss3-tools")?;
        require("/usr/bin/ldapadd", "ldap-utils")?;
        if !Self::plugin_dir().exists() {
            return Err(format!(
                "{} not found: install the Debian package `389-ds-base` ({INSTALL_HINT})",
                Self::plugin_dir().display()
            ));
        }
        let account = ds_account()?;
        let ca = TestCa::get()?;
        let root = process_dir("389ds")?;
        let prefix = root.join("ds");
        // dscreate expects every directory to exist and be owned by the
        // run-as user (otherwise it waits 60 s for the server and deletes
        // the instance), and copies schema/config from <sysconf>/dirsrv.
        for d in [
            "share/dirsrv/inf",
            "etc/dirsrv",
            "run",
            "lock",
            "log",
            "db",
            "bak",
            "ldif",
            "tmp",
            "inst",
            "tmpfiles.d",
        ] {
            mkdir(&prefix.join(d))?;
        }
        for sub in ["schema", "config"] {
            let src = Path::new("/etc/dirsrv").join(sub);
            if let Err(e) = fs::read_dir(&src) {
                return Err(format!(
                    "389-ds: cannot read {} ({e}): it comes with the Debian package `389-ds-base` \
                     ({INSTALL_HINT}) and is readable only by root and the group `dirsrv`: run the \
                     tests as root or as a member of that group",
                    src.display()
                ));
            }
            copy_tree(&src, &prefix.join("etc/dirsrv").join(sub))?;
        }
        write_file(
            &prefix.join("share/dirsrv/inf/defaults.inf"),
            &Self::defaults_inf(&prefix, &account),
        )?;
        let inf = root.join("instance.inf");
        write_file(&inf, &Self::instance_inf())?;
        chown_tree(&root, account.uid, account.gid)?;
        let mut cmd = Command::new(&dscreate);
        cmd.env("PREFIX", &prefix)
            .arg("-v")
            .arg("from-file")
            .arg(&inf)
            .current_dir(&root);
        let out = run_ok("389-ds: dscreate from-file", cmd, None, PROVISION_TIMEOUT)?;
        let _ = write_file(&root.join("dscreate.log"), &out);

        let config_dir = ds_config_dir(&prefix);
        // TLS: our CA (trusted) and a server certificate named Server-Cert,
        // which dscreate's cn=RSA,cn=encryption,cn=config already names.
        let tls = root.join("tls");
        ca.issue(
            &tls,
            "localhost",
            &["IP:127.0.0.1".to_string(), "DNS:localhost".to_string()],
        )?;
        let p12 = tls.join("server.p12");
        let mut cmd = Command::new(&ca.openssl);
        cmd.args(["pkcs12", "-export", "-name", "Server-Cert", "-passout", "pass:"])
            .arg("-in")
            .arg(tls.join("server.pem"))
            .arg("-inkey")
            .arg(tls.join("server.key"))
            .arg("-out")
            .arg(&p12);
        run_ok("openssl pkcs12 -export", cmd, None, Duration::from_secs(60))?;
        let pwdfile = config_dir.join("pwdfile.txt");
        let nssdb = format!("sql:{}", config_dir.display());
        let mut cmd = Command::new(&certutil);
        cmd.args(["-A", "-n", "dirsync-test-ca", "-t", "CT,,", "-a", "-d", &nssdb])
            .arg("-i")
            .arg(ca.ca_pem())
            .arg("-f")
            .arg(&pwdfile);
        run_ok("certutil -A (test CA)", cmd, None, Duration::from_secs(60))?;
        let mut cmd = Command::new(&pk12util);
        cmd.args(["-d", &nssdb, "-W", ""])
            .arg("-i")
            .arg(&p12)
            .arg("-k")
            .arg(&pwdfile);
        run_ok("pk12util -i (server certificate)", cmd, None, Duration::from_secs(60))?;
        chown_tree(&root, account.uid, account.gid)?;

        // Start once on LDAPI only to load the base tree and tune.
        let log = root.join("template.log");
        let mut cmd = Command::new("/usr/sbin/ns-slapd");
        cmd.arg("-D")
            .arg(&config_dir)
            .arg("-i")
            .arg(prefix.join("run/slapd.pid"))
            .args(["-d", "0"]);
        if effective_uid()? == 0 {
            cmd.uid(account.uid).gid(account.gid);
        }
        let ldapi = LdapClient {
            url: format!("ldapi://{}", percent_encode_path(&prefix.join("run/slapd.socket"))),
            starttls: false,
            ca_file: ca.ca_pem(),
            cwd: &root,
            admin: (Ds389::ADMIN_DN, Ds389::ADMIN_PASSWORD),
        };
        let mut ready = || ldapi.probe("");
        let mut proc = launch(LaunchSpec {
            server: "389-ds (template)",
            cmd,
            log: log.clone(),
            stop_signal: sys::SIGTERM,
            drop_signal: sys::SIGKILL,
            limits: &LIMITS,
            ready: &mut ready,
        })
        .map_err(|e| e.message)?;
        let mut c = ldapi.command("ldapadd", None)?;
        c.arg("-c");
        run_ok(
            "389-ds: ldapadd of the base tree",
            c,
            Some(Ds389::base_ldif().as_bytes()),
            CLIENT_TIMEOUT,
        )?;
        let c = ldapi.command("ldapmodify", None)?;
        run_ok(
            "389-ds: ldapmodify of cn=config",
            c,
            Some(Ds389::tuning_ldif().as_bytes()),
            CLIENT_TIMEOUT,
        )?;
        if proc.shut_down(sys::SIGTERM, STOP_TIMEOUT).is_none_or(|s| !s.success()) {
            return Err(format!(
                "389-ds: template server did not stop cleanly\n{}",
                log_tail(&log)
            ));
        }
        // Region files are rebuilt at start; logs and backups are per copy.
        for entry in fs::read_dir(prefix.join("db"))
            .map_err(|e| format!("read db dir: {e}"))?
            .flatten()
        {
            if entry.file_name().to_string_lossy().starts_with("__db.") {
                let _ = fs::remove_file(entry.path());
            }
        }
        for f in ["dse.ldif.bak", "dse.ldif.startOK", "dse.ldif.tmp"] {
            let _ = fs::remove_file(config_dir.join(f));
        }
        for dir in ["log", "run"] {
            for entry in fs::read_dir(prefix.join(dir))
                .map_err(|e| format!("read {dir}: {e}"))?
                .flatten()
            {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(DsTemplate { prefix, account })
    }
}

/// `/a b/c` -> `%2Fa%20b%2Fc` for an ldapi:// URL.
fn percent_encode_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A throwaway 389 Directory Server (Debian `389-ds-base` 2.3), suffix
/// `dc=example,dc=org`, on 127.0.0.1: plain LDAP (with StartTLS) on
/// [`Ds389::port`] and LDAPS on [`Ds389::ldaps_port`], both with a
/// certificate for IP 127.0.0.1 and `localhost` from the test CA.
///
/// The instance is made once per process with `dscreate from-file` under a
/// private prefix (a `defaults.inf` pointing every path there, LDAPI only,
/// no TCP listener while provisioning), then each guard copies it, rewrites
/// the paths, ports and listen addresses in `dse.ldif` offline and runs
/// `ns-slapd -D <configdir> -d 0` in the foreground — as `dirsrv` when the
/// test process is root, else as the current user. LDAPI is off in copies.
///
/// Contents:
/// - root DN `cn=Directory Manager` / [`Ds389::ADMIN_PASSWORD`];
/// - `ou=people`, `ou=leavers`, `ou=groups`, `ou=services` under the base;
/// - service account `cn=dirsync,ou=services,...` / [`Ds389::SERVICE_PASSWORD`]
///   with all rights on the tree (including `nsAccountLock`) and no size,
///   look-through or paged limits;
/// - ACIs: authenticated users read everything except `userPassword`, and
///   may change their own password;
/// - `passwordStorageScheme: SSHA512` (cheap for tests: the default
///   PBKDF2-SHA512 costs ~8 ms of CPU per hash), caches sized for tests
///   (autosize off, 32 MiB db cache).
///
/// Disable an account with `nsAccountLock: true` (binds then fail with
/// "Server is unwilling to perform (53)"); the Password Modify extended
/// operation (`ldappasswd`, [`Ds389::ldappasswd`]) needs TLS.
///
/// Root is needed in practice: as root the server runs as `dirsrv`. A
/// non-root process must at least be able to read `/etc/dirsrv` (mode 0750
/// `dirsrv`; `start()` says so); running it as `nobody` with group `dirsrv`
/// got as far as `dscreate` failing to start ns-slapd ("Unable to find
/// pid"), which was not pursued (CI runs as root).
///
/// The error log (and ns-slapd's own output) is `<dir>/server.log`, the
/// access log `<dir>/ds/log/access`. Ready when an admin LDAPS search of
/// the base (verifying the CA) works.
pub struct Ds389 {
    proc: Option<Proc>,
    port: u16,
    tls_port: u16,
    account: Account,
    dir: ServerDir,
}

impl Ds389 {
    pub const BASE: &'static str = "dc=example,dc=org";
    pub const ADMIN_DN: &'static str = "cn=Directory Manager";
    pub const ADMIN_PASSWORD: &'static str = "Admin-Secret-1";
    pub const SERVICE_DN: &'static str = "cn=dirsync,ou=services,dc=example,dc=org";
    pub const SERVICE_PASSWORD: &'static str = "Dirsync-Secret-1";
    pub const PEOPLE_DN: &'static str = "ou=people,dc=example,dc=org";
    pub const LEAVERS_DN: &'static str = "ou=leavers,dc=example,dc=org";
    pub const GROUPS_DN: &'static str = "ou=groups,dc=example,dc=org";

    fn base_ldif() -> String {
        format!(
            "dn: {base}
changetype: modify
add: aci
aci: (targetattr!=\"userPassword\")(version 3.0; acl \"dirsync tests: users read\"; allow (read, search, compare) userdn=\"ldap:///all\";)
aci: (targetattr=\"userPassword\")(version 3.0; acl \"dirsync tests: own password\"; allow (write) userdn=\"ldap:///self\";)
aci: (targetattr=\"*||nsAccountLock||nsRoleDN||passwordExpirationTime\")(version 3.0; acl \"dirsync tests: service account\"; allow (all) userdn=\"ldap:///{svc}\";)

dn: {people}
changetype: add
objectClass: top
objectClass: organizationalUnit
ou: people

dn: {leavers}
changetype: add
objectClass: top
objectClass: organizationalUnit
ou: leavers

dn: {groups}
changetype: add
objectClass: top
objectClass: organizationalUnit
ou: groups

dn: ou=services,{base}
changetype: add
objectClass: top
objectClass: organizationalUnit
ou: services

dn: {svc}
changetype: add
objectClass: top
objectClass: person
objectClass: organizationalPerson
cn: dirsync
sn: dirsync
userPassword: {svc_pw}
nsSizeLimit: -1
nsLookThroughLimit: -1
nsPagedSizeLimit: -1
nsIdleTimeout: -1
",
            base = Self::BASE,
            people = Self::PEOPLE_DN,
            leavers = Self::LEAVERS_DN,
            groups = Self::GROUPS_DN,
            svc = Self::SERVICE_DN,
            svc_pw = Self::SERVICE_PASSWORD,
        )
    }

    fn tuning_ldif() -> String {
        "dn: cn=config
changetype: modify
replace: passwordStorageScheme
passwordStorageScheme: SSHA512

dn: cn=config,cn=ldbm database,cn=plugins,cn=config
changetype: modify
replace: nsslapd-cache-autosize
nsslapd-cache-autosize: 0

dn: cn=config,cn=ldbm database,cn=plugins,cn=config
changetype: modify
replace: nsslapd-dbcachesize
nsslapd-dbcachesize: 33554432
"
        .to_string()
    }

    /// Copy the instance (creating it first if this process has not yet)
    /// and start it on free ports.
    pub fn start() -> Result<Ds389, String> {
        require("/usr/sbin/ns-slapd", "389-ds-base")?;
        require("/usr/bin/ldapsearch", "ldap-utils")?;
        let template = DsTemplate::get()?;
        let dir = ServerDir::new("389ds")?;
        copy_tree(&template.prefix, &dir.join("ds"))?;
        fs::copy(TestCa::get()?.ca_pem(), dir.join("ca.pem")).map_err(|e| format!("389-ds: copy ca.pem: {e}"))?;
        // The temp dir is 0700 root: the server user must reach ds/ and
        // write server.log.
        let account = template.account.clone();
        std::os::unix::fs::chown(dir.path(), Some(account.uid), Some(account.gid))
            .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        let mut me = Ds389 {
            proc: None,
            port: 0,
            tls_port: 0,
            account,
            dir,
        };
        let template_prefix = template.prefix.to_string_lossy().into_owned();
        let proc = retry_addr_in_use("389-ds", "ports", || {
            let port = || try_free_port().map_err(|e| LaunchError::fatal(format!("389-ds: {e}")));
            me.port = port()?;
            me.tls_port = port()?;
            me.configure(&template_prefix).map_err(LaunchError::fatal)?;
            me.launch()
        })?;
        me.proc = Some(proc);
        Ok(me)
    }

    fn prefix(&self) -> PathBuf {
        self.dir.join("ds")
    }

    fn config_dir(&self) -> PathBuf {
        ds_config_dir(&self.prefix())
    }

    /// Rewrite the copied instance's dse.ldif (paths, ports, listen
    /// addresses, TLS on, LDAPI off, error log) and NSS module config.
    fn configure(&self, template_prefix: &str) -> Result<(), String> {
        let prefix = self.prefix().to_string_lossy().into_owned();
        let pkcs11 = self.config_dir().join("pkcs11.txt");
        if pkcs11.exists() {
            let text = read_file(&pkcs11)?;
            write_file(&pkcs11, &text.replace(template_prefix, &prefix))?;
        }
        let dse = self.config_dir().join("dse.ldif");
        // The current text (template or our previous attempt) with paths
        // already pointing here after the first rewrite.
        let text = read_file(&dse)?.replace(template_prefix, &prefix);
        let mut out = String::with_capacity(text.len() + 256);
        for entry in text.split("\n\n") {
            if entry.trim().is_empty() {
                continue;
            }
            let in_cn_config = entry.starts_with("dn: cn=config\n");
            for line in entry.lines() {
                let skip = in_cn_config
                    && [
                        "nsslapd-port:",
                        "nsslapd-secureport:",
                        "nsslapd-listenhost:",
                        "nsslapd-securelistenhost:",
                        "nsslapd-security:",
                        "nsslapd-ldapilisten:",
                        "nsslapd-errorlog:",
                    ]
                    .iter()
                    .any(|k| line.to_ascii_lowercase().starts_with(k));
                if !skip {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            if in_cn_config {
                let _ = write!(
                    out,
                    "nsslapd-port: {}\nnsslapd-securePort: {}\nnsslapd-listenhost: 127.0.0.1\n\
                     nsslapd-securelistenhost: 127.0.0.1\nnsslapd-security: on\nnsslapd-ldapilisten: off\n\
                     nsslapd-errorlog: {}\n",
                    self.port,
                    self.tls_port,
                    self.dir.log().display()
                );
            }
            out.push('\n');
        }
        write_file(&dse, &out)?;
        for f in [&dse, &pkcs11] {
            let _ = std::os::unix::fs::chown(f, Some(self.account.uid), Some(self.account.gid));
        }
        Ok(())
    }

    /// `ldap://127.0.0.1:PORT` (plain; StartTLS available).
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn ldaps_port(&self) -> u16 {
        self.tls_port
    }
    /// The test CA's certificate (PEM) that signed the server's certificate
    /// (subjectAltName IP:127.0.0.1, DNS:localhost).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
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
    /// The guard's temp dir (ds/ = the instance prefix, server.log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }

    /// The `ldap-utils` clients over LDAPS, Directory Manager by default.
    fn ldaps(&self) -> LdapClient<'_> {
        LdapClient {
            url: self.ldaps_url(),
            starttls: false,
            ca_file: self.ca_file(),
            cwd: self.dir.path(),
            admin: (Self::ADMIN_DN, Self::ADMIN_PASSWORD),
        }
    }

    /// The same over StartTLS on the plain port ([`Self::url`], `-ZZ`).
    fn starttls(&self) -> LdapClient<'_> {
        LdapClient {
            url: self.url(),
            starttls: true,
            ..self.ldaps()
        }
    }

    /// An `ldap-utils` command against [`Self::ldaps_url`] with the CA
    /// verified, bound as `bind` (default: Directory Manager).
    pub fn client(&self, tool: &str, bind: Option<(&str, &str)>) -> Result<Command, String> {
        self.ldaps().command(tool, bind)
    }

    /// Like [`Self::client`], over StartTLS on the plain port
    /// ([`Self::url`] with `-ZZ`: TLS or nothing), as dirsync's
    /// `starttls = true` connects.
    pub fn starttls_client(&self, tool: &str, bind: Option<(&str, &str)>) -> Result<Command, String> {
        self.starttls().command(tool, bind)
    }

    /// `ldapsearch -LLL -o ldif-wrap=no` as Directory Manager over LDAPS,
    /// subtree scope, paged 1,000 at a time.
    pub fn ldapsearch(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<String, String> {
        self.ldapsearch_paged(base, filter, attrs, 1000)
    }

    /// Like [`Self::ldapsearch`] with the given page size.
    pub fn ldapsearch_paged(&self, base: &str, filter: &str, attrs: &[&str], page: u32) -> Result<String, String> {
        self.ldaps().search(base, filter, attrs, page)
    }

    /// `ldapadd` the LDIF as Directory Manager over LDAPS.
    pub fn ldapadd_ldif(&self, ldif: &str) -> Result<(), String> {
        self.ldaps().feed_ldif("ldapadd", ldif)
    }

    /// `ldapmodify` the LDIF (with `changetype:` lines) as Directory
    /// Manager over LDAPS.
    pub fn ldapmodify_ldif(&self, ldif: &str) -> Result<(), String> {
        self.ldaps().feed_ldif("ldapmodify", ldif)
    }

    /// Set `dn`'s password with the Password Modify extended operation
    /// (`ldappasswd -ZZ`, StartTLS on [`Self::url`], CA verified) as
    /// Directory Manager.
    pub fn ldappasswd(&self, dn: &str, new_password: &str) -> Result<(), String> {
        let mut cmd = self.starttls().command("ldappasswd", None)?;
        cmd.args(["-s", new_password, dn]);
        run_ok(&format!("ldappasswd {dn}"), cmd, None, CLIENT_TIMEOUT).map(|_| ())
    }

    /// Check that `dn` can bind with `password` over LDAPS (`ldapwhoami`).
    /// Err carries the client's message: `Invalid credentials (49)` for a
    /// wrong password, `Server is unwilling to perform (53)` with "Account
    /// inactivated" for `nsAccountLock: true`.
    pub fn bind_check(&self, dn: &str, password: &str) -> Result<(), String> {
        self.ldaps().bind_check(dn, password, "ldapwhoami", &[])
    }

    pub fn is_running(&mut self) -> bool {
        guard_running(self)
    }

    /// Graceful shutdown (SIGTERM); data stays.
    pub fn stop(&mut self) -> Result<(), String> {
        guard_stop(self)
    }

    /// Stop if running, then start again on the same ports with the same
    /// data.
    pub fn restart(&mut self) -> Result<(), String> {
        guard_restart(self)
    }
}

impl Guard for Ds389 {
    const SERVER: &'static str = "389-ds";
    const LIMITS: &'static Limits = &LIMITS;

    fn proc_slot(&mut self) -> &mut Option<Proc> {
        &mut self.proc
    }

    fn launch(&self) -> Result<Proc, LaunchError> {
        let mut cmd = Command::new("/usr/sbin/ns-slapd");
        cmd.arg("-D")
            .arg(self.config_dir())
            .arg("-i")
            .arg(self.prefix().join("run/slapd.pid"))
            .args(["-d", "0"])
            .current_dir(self.dir.path());
        if effective_uid().map_err(LaunchError::fatal)? == 0 {
            cmd.uid(self.account.uid).gid(self.account.gid);
        }
        let log = self.dir.log();
        // ns-slapd (as the server user) appends its error log there too.
        if !log.exists() {
            write_file(&log, "").map_err(LaunchError::fatal)?;
        }
        let _ = std::os::unix::fs::chown(&log, Some(self.account.uid), Some(self.account.gid));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.tls_port));
        let mut ready = || {
            tcp_connect_addr(addr, Duration::from_millis(500))?;
            self.ldaps().probe(Self::BASE)
        };
        launch(LaunchSpec {
            server: "389-ds",
            cmd,
            log,
            stop_signal: sys::SIGTERM,
            drop_signal: sys::SIGKILL,
            limits: Self::LIMITS,
            ready: &mut ready,
        })
    }
}
