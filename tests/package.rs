//! Issue 19: the Debian package, installed on this machine with `dpkg -i` as
//! an admin would (the test machines are throwaway containers where we are
//! root), checked, run as the service would run it, then removed and purged.
//!
//! The package is the one `scripts/package` built (scripts/test builds it
//! first): `$DIRSYNC_DEB`, or `target/debian/dirsync_VERSION-1_ARCH.deb`.
//! The machine must be free of dirsync (package, user, /var/lib/dirsync,
//! /srv/dirsync) when the test starts; it is left so, even when the test fails.

#[path = "common/serve.rs"]
mod serve;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serve::{wait_until, Daemon};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The binary built from this tree: what the package's man pages must match.
const BIN: &str = env!("CARGO_BIN_EXE_dirsync");
const STATE: &str = "/var/lib/dirsync";
const INBOX: &str = "/srv/dirsync/inbox";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}")) // ok: test
}

/// Runs the command, asserts it succeeded, returns stdout and stderr.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}")) // ok: test
}

fn repo_file(rel: &str) -> String {
    read(&format!("{REPO}/{rel}"))
}

fn package_state() -> String {
    let out = run("dpkg-query", &["-W", "-f=${db:Status-Status}", "dirsync"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn the_deb() -> PathBuf {
    if let Some(p) = std::env::var_os("DIRSYNC_DEB") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join("target"));
    let arch = ok("dpkg", &["--print-architecture"]);
    target
        .join("debian")
        .join(format!("dirsync_{}-1_{}.deb", env!("CARGO_PKG_VERSION"), arch.trim()))
}

/// Leaves the machine as the test found it (free of dirsync), also after a
/// failed assertion.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "dirsync"]);
        if run("getent", &["passwd", "dirsync"]).status.success() {
            let _ = run("userdel", &["dirsync"]);
        }
        let _ = run("groupdel", &["dirsync"]);
        let _ = fs::remove_dir_all(STATE);
        let _ = fs::remove_dir_all("/srv/dirsync");
    }
}

#[test]
fn issue_19_install_check_run_remove_purge() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 || run("dpkg", &["--version"]).status.code() != Some(0) {
        eprintln!("SKIPPED tests/package.rs: installing a .deb needs root and dpkg");
        return;
    }
    let deb = the_deb();
    assert!(
        deb.is_file(),
        "no package at {}: build it with scripts/package (scripts/test does)",
        deb.display()
    );
    let deb = deb.to_string_lossy().into_owned();
    for leftover in [STATE, "/srv/dirsync"] {
        assert!(
            !Path::new(leftover).exists(),
            "{leftover} exists: this test installs and purges dirsync on this machine and needs it free of dirsync"
        );
    }
    assert!(
        matches!(package_state().as_str(), "" | "not-installed")
            && !run("getent", &["passwd", "dirsync"]).status.success(),
        "dirsync (the package or the user) is on this machine: this test installs and purges it and needs it free of dirsync"
    );
    let _cleanup = Cleanup;

    // The package's own metadata.
    let info = ok("dpkg-deb", &["--field", &deb, "Depends", "Section"]);
    assert!(info.contains("adduser"), "{info}");

    let installed = ok("dpkg", &["-i", &deb]);
    assert_eq!(package_state(), "installed");
    assert!(installed.contains("systemctl enable --now dirsync"), "{installed}");

    // Files.
    assert_eq!(
        read("/lib/systemd/system/dirsync.service"),
        repo_file("systemd/dirsync.service")
    );
    assert_eq!(read("/etc/dirsync/dirsync.toml"), repo_file("packaging/dirsync.toml"));
    assert_eq!(
        read("/etc/dirsync/policies/staff.toml"),
        repo_file("config/example/policies/staff.toml")
    );
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "dirsync"]);
    for c in ["/etc/dirsync/dirsync.toml", "/etc/dirsync/policies/staff.toml"] {
        assert!(conffiles.contains(c), "{c} is no conffile:\n{conffiles}");
    }
    for t in [
        "results.txt.j2",
        "results.html.j2",
        "credentials.txt.j2",
        "credentials.html.j2",
    ] {
        assert_eq!(
            read(&format!("/usr/share/dirsync/templates/{t}")),
            repo_file(&format!("config/templates/{t}"))
        );
    }
    let doc = "/usr/share/doc/dirsync";
    for f in [
        "README.md",
        "copyright",
        "docs/daemon.md",
        "docs/mail.md",
        "docs/sftp.md",
    ] {
        assert!(Path::new(doc).join(f).is_file(), "{doc}/{f} is missing");
    }
    // Every example the repository has (as git knows it: no local state).
    let examples = ok("git", &["-C", REPO, "ls-files", "config/example"]);
    for f in examples.lines().filter(|f| !f.ends_with("/.keep")) {
        let rel = f.trim_start_matches("config/example/");
        assert_eq!(
            read(&format!("{doc}/examples/{rel}")),
            repo_file(f),
            "{doc}/examples/{rel}"
        );
    }
    // The unit's Documentation= points at installed files.
    let unit = read("/lib/systemd/system/dirsync.service");
    for d in unit.lines().filter_map(|l| l.strip_prefix("Documentation=")) {
        for uri in d.split_whitespace() {
            if let Some(path) = uri.strip_prefix("file://") {
                assert!(Path::new(path).is_file(), "Documentation={uri}: no such file");
            }
        }
    }
    // No debug info in the package's binary (cargo-deb strips it; the release
    // package's symbols go to a separate dirsync-dbgsym package).
    let sections = ok("readelf", &["-S", "--wide", "/usr/bin/dirsync"]);
    assert!(!sections.contains(".debug_info"), "/usr/bin/dirsync has debug info");

    // The user and what it owns.
    let passwd = ok("getent", &["passwd", "dirsync"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid"); // ok: test
    assert!(uid < 1000, "dirsync is no system user: {passwd}");
    assert_eq!(fields[5], STATE, "{passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{passwd}");
    let gid: u32 = ok("getent", &["group", "dirsync"])
        .split(':')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .expect("gid"); // ok: test
    let meta = |p: &str| fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}")); // ok: test
    assert_eq!(
        (meta(STATE).uid(), meta(STATE).permissions().mode() & 0o7777),
        (uid, 0o700)
    );
    assert_eq!(meta(INBOX).uid(), uid);
    let etc = meta("/etc/dirsync");
    assert_eq!(
        (etc.uid(), etc.gid(), etc.permissions().mode() & 0o7777),
        (0, gid, 0o750)
    );

    // Man pages: dirsync(1) and one per subcommand, as this tree's CLI has them.
    assert_eq!(ok("man", &["-w", "dirsync"]).trim(), "/usr/share/man/man1/dirsync.1.gz");
    let expected = tempfile::tempdir().expect("temp dir"); // ok: test
    let pages = ok(BIN, &["manpages", &expected.path().to_string_lossy()]);
    assert!(pages.lines().count() > 10, "{pages}");
    for page in pages.lines() {
        let name = Path::new(page).file_stem().and_then(|s| s.to_str()).expect("page name"); // ok: test
        let found = ok("man", &["-w", name]);
        assert_eq!(found.trim(), format!("/usr/share/man/man1/{name}.1.gz"));
    }
    let rendered = ok("man", &["-P", "cat", "dirsync-config-check"]);
    assert!(rendered.contains("Load and validate the config"), "{rendered}");

    // Completions: installed where each shell looks, the same as `dirsync completions`.
    for (shell, path) in [
        ("bash", "/usr/share/bash-completion/completions/dirsync"),
        ("zsh", "/usr/share/zsh/vendor-completions/_dirsync"),
        ("fish", "/usr/share/fish/vendor_completions.d/dirsync.fish"),
    ] {
        assert_eq!(read(path), ok("dirsync", &["completions", shell]), "{path}");
    }
    // bash completes a subcommand from its first letters.
    let words = ok(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/completions/dirsync; \
             COMP_WORDS=(dirsync con); COMP_CWORD=1; _dirsync dirsync con dirsync; \
             echo \"${COMPREPLY[@]}\"",
        ],
    );
    assert_eq!(words.trim(), "config");

    assert_eq!(
        ok("dirsync", &["--version"]).trim(),
        format!("dirsync {}", env!("CARGO_PKG_VERSION"))
    );
    // `config check` on the shipped config, as the service user (the embedded
    // SQLite target is created and checked; no server needed).
    let check = ok("runuser", &["-u", "dirsync", "--", "dirsync", "config", "check"]);
    assert!(check.contains("target staff matches the mapping"), "{check}");
    assert_eq!(meta(&format!("{STATE}/directory.db")).uid(), uid);

    // The installed unit verifies (it names /usr/bin/dirsync, now installed).
    let verify = run("systemd-analyze", &["verify", "/lib/systemd/system/dirsync.service"]);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify failed:\n{stderr}");
    assert!(
        !stderr.contains("dirsync.service"),
        "systemd-analyze verify warns:\n{stderr}"
    );

    // What `systemctl start dirsync` runs: the unit's ExecStart as its User=
    // (without systemd's sandbox: no systemd runs in the test container).
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart"); // ok: test
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=dirsync", "--regid=dirsync", "--init-groups", "--"])
        .args(exec.split_whitespace());
    let logs = tempfile::tempdir().expect("temp dir"); // ok: test
    let mut daemon = Daemon::spawn(cmd, logs.path().join("serve.log"));
    daemon.wait_log("Ready.", Duration::from_secs(30));
    // An upload renamed into the inbox is taken at once.
    fs::copy(format!("{REPO}/config/example/sample.csv"), "/srv/dirsync/sample.csv").expect("copy"); // ok: test
    fs::rename("/srv/dirsync/sample.csv", format!("{INBOX}/sample.csv")).expect("rename"); // ok: test
    let archived = || {
        fs::read_dir(format!("{INBOX}/archive"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|day| day.path().join("sample.results.csv").is_file())
    };
    assert!(
        wait_until(Duration::from_secs(60), archived),
        "the sample was not archived with its results:\n{}",
        daemon.log()
    );
    let mails = || fs::read_dir(format!("{STATE}/mail")).map(|d| d.count()).unwrap_or(0);
    assert!(
        // sample.csv has one invalid row on purpose: 4 new users.
        wait_until(Duration::from_secs(30), || mails() == 5),
        "expected a results mail and 4 credentials mails in {STATE}/mail, found {}:\n{}",
        mails(),
        daemon.log()
    );
    assert_eq!(daemon.stop(Duration::from_secs(30)), Some(0), "{}", daemon.log());

    // Remove: the binary goes; conffiles, the user and the state stay.
    ok("dpkg", &["-r", "dirsync"]);
    assert_eq!(package_state(), "config-files");
    assert!(!Path::new("/usr/bin/dirsync").exists());
    assert!(!Path::new("/lib/systemd/system/dirsync.service").exists());
    assert!(Path::new("/etc/dirsync/dirsync.toml").is_file());
    assert!(run("getent", &["passwd", "dirsync"]).status.success());
    assert!(Path::new(&format!("{STATE}/directory.db")).is_file());

    // Purge: the conffiles go; the user, the journal, the target and the
    // archive stay, and the admin is told so.
    let purged = ok("dpkg", &["-P", "dirsync"]);
    assert!(purged.contains("kept /var/lib/dirsync"), "{purged}");
    assert!(matches!(package_state().as_str(), "" | "not-installed"));
    assert!(!Path::new("/etc/dirsync/dirsync.toml").exists());
    assert!(!ok("dpkg-statoverride", &["--list"]).contains("/etc/dirsync"));
    assert!(run("getent", &["passwd", "dirsync"]).status.success());
    for kept in ["directory.db", "journal.db", "journal.key"] {
        assert!(Path::new(STATE).join(kept).is_file(), "purge removed {STATE}/{kept}");
    }
    assert!(archived(), "purge removed the archive in {INBOX}");
}
