//! Issue 18: every file dirsync writes that holds a secret is readable by
//! dirsync alone whatever the umask — run here with umask 022, as outside
//! the systemd unit (whose `UMask=0077` hid the problem): the `.eml` files
//! of the file transport (a generated password, an activation link) 0600 in
//! a 0700 folder, the journal and the outbox databases, their keys, and the
//! embedded SQLite target (password hashes), and the console's spooled
//! uploads (an HR file may carry passwords).

#[path = "common/console_env.rs"]
mod console_env;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/web.rs"]
mod web;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dirsync");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn secret_files_are_0600_and_their_folders_0700_under_umask_022() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(dir.join("policies/staff.toml"), serve::cheap_example_policy()).expect("policy");
    std::fs::write(
        dir.join("dirsync.toml"),
        "[service]\nstate_dir = \"state\"\n\n[targets.staff]\nkind = \"sql\"\nurl = \"sqlite://data/directory.db\"\n\
         create_schema = true\n\n[policies]\nstaff = \"policies/staff.toml\"\n\n\
         [mail]\nfrom = \"dirsync <dirsync@example.org>\"\ntransport = \"file\"\nfolder = \"out/mail\"\n\
         outbox = \"sqlite://spool/outbox.db\"\nkey_file = \"keys/outbox.key\"\n",
    )
    .expect("config");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example/sample.csv"),
        dir.join("hr.csv"),
    )
    .expect("sample");
    let out = Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg(format!("umask 022; exec {BIN} --config dirsync.toml apply hr.csv"))
        .output()
        .expect("run dirsync under umask 022");
    // 1: the sample has a row it rejects.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mails: Vec<_> = std::fs::read_dir(dir.join("out/mail"))
        .expect("mail folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!mails.is_empty(), "credentials mails were written");
    for m in &mails {
        assert!(m.extension().is_some_and(|e| e == "eml"), "{}", m.display());
        assert_eq!(mode(m), 0o600, "{}", m.display());
    }
    for folder in ["out", "out/mail", "state", "data", "spool", "keys"] {
        assert_eq!(mode(&dir.join(folder)), 0o700, "{folder}");
    }
    for file in [
        "state/journal.db",
        "state/journal.key",
        "spool/outbox.db",
        "keys/outbox.key",
        "data/directory.db",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    // SQLite's side files follow their database's mode.
    for side in ["state/journal.db-wal", "state/journal.db-shm", "spool/outbox.db-wal"] {
        if dir.join(side).exists() {
            assert_eq!(mode(&dir.join(side)), 0o600, "{side}");
        }
    }
    // The results file holds no secret: it keeps the umask's mode.
    assert_eq!(mode(&dir.join("hr.results.csv")), 0o644);
}

#[test]
fn console_uploads_are_spooled_0600_in_0700_folders_under_umask_022() {
    // SAFETY: umask(2) sets this test process's mask, which the daemon inherits.
    unsafe { libc::umask(0o022) };
    let env = console_env::Env::new("");
    let _daemon = env.serve();
    let mut op = env.client();
    assert_eq!(op.login("alice", "correct horse battery").status, 303);
    let csrf = op.get("/upload").csrf();
    let r = op.post_file(
        "/upload",
        &[("csrf", &csrf), ("inbox", "hr")],
        "staff.csv",
        &console_env::roster(2, "Clerk", None),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let spool = env.dir.join("state/uploads");
    assert_eq!(mode(&spool), 0o700);
    let dirs: Vec<_> = std::fs::read_dir(&spool)
        .expect("spool")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(mode(&dirs[0]), 0o700);
    assert_eq!(mode(&dirs[0].join("staff.csv")), 0o600);
}
