//! The resume rule, made deterministic: a batch that reached the target but
//! whose outcome never reached the journal (the process died in between)
//! is confirmed on resume, not written twice, and keeps its password.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use dirsync::backend::{Backend, BackendError, Op, OpResult};
use dirsync::config::Config;
use dirsync::core::Snapshot;
use dirsync::journal::{Journal, NewRun};
use dirsync::sync::journaled::{run_journaled, Finish, JournaledRun};
use dirsync::sync::open_backend;

/// Applies every batch, but "dies" right after the target committed batch
/// number `die_after` (1-based): the caller sees an error, as a killed
/// process would never record the outcome.
struct DiesAfterCommit {
    inner: Box<dyn Backend>,
    batches: AtomicUsize,
    die_after: usize,
}

#[async_trait]
impl Backend for DiesAfterCommit {
    async fn health(&self) -> Result<(), BackendError> {
        self.inner.health().await
    }
    async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        self.inner.snapshot().await
    }
    fn batch_size(&self) -> usize {
        self.inner.batch_size()
    }
    async fn apply(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError> {
        let res = self.inner.apply(ops).await?;
        if self.batches.fetch_add(1, Ordering::SeqCst) + 1 == self.die_after {
            return Err(BackendError::Connect("simulated crash after commit".into()));
        }
        Ok(res)
    }
}

fn sqlite(db: &Path, q: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(q)
        .output()
        .expect("sqlite3: install it with scripts/install-test-deps"); // ok: test
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_landed_before_a_crash_is_confirmed_not_repeated() {
    let tmp = tempfile::tempdir().expect("temp dir"); // ok: test
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir"); // ok: test
    let policy =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example/policies/staff.toml"))
            .expect("example policy") // ok: test
            .replace("argon2_memory_kib = 19456", "argon2_memory_kib = 8")
            .replace("argon2_iterations = 2", "argon2_iterations = 1");
    std::fs::write(dir.join("policies/staff.toml"), policy).expect("policy"); // ok: test
    std::fs::write(
        dir.join("dirsync.toml"),
        "[service]\nstate_dir = \"state\"\n[targets.staff]\nkind = \"sql\"\nurl = \"sqlite://state/directory.db\"\n\
         create_schema = true\nbatch_size = 2\n[policies]\nstaff = \"policies/staff.toml\"\n",
    )
    .expect("config"); // ok: test
    let config = Config::load(&dir.join("dirsync.toml")).expect("config loads"); // ok: test
    let lp = config.policy(Some("staff")).expect("policy"); // ok: test
    let journal = Journal::open(&config.service).await.expect("journal"); // ok: test
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example/sample.csv")).expect("sample"); // ok: test
    let file = dir.join("sample.csv");
    let results = dir.join("sample.results.csv");
    let id = journal
        .create_run(&NewRun {
            inbox: "test",
            file_name: "sample.csv",
            claimed: &file,
            sha256: "x",
            policy: "staff",
            target: "staff",
            forced: false,
            now_ms: 1_700_000_000_000,
        })
        .await
        .expect("run"); // ok: test
    let never = || false;

    // First attempt: batch 1 (2 adds) recorded; batch 2 (2 adds) committed
    // in the target but its outcome lost.
    let dying = DiesAfterCommit {
        inner: open_backend(&config, lp).await.expect("backend"), // ok: test
        batches: AtomicUsize::new(0),
        die_after: 2,
    };
    let jr = JournaledRun {
        journal: &journal,
        run_id: id,
        resuming: false,
        now: 1_700_000_000,
        stop: &never,
    };
    assert!(run_journaled(&dying, lp, &bytes, &results, &jr).await.is_err());
    let db = dir.join("state/directory.db");
    assert_eq!(sqlite(&db, "SELECT COUNT(*) FROM users"), "4");
    let hashes_before = sqlite(&db, "SELECT username || password_hash FROM users ORDER BY username");
    let journal_db = dir.join("state/journal.db");
    assert_eq!(
        sqlite(
            &journal_db,
            "SELECT COUNT(*) FROM run_items WHERE intent = 1 AND verdict IS NULL"
        ),
        "2",
        "batch 2: intent journaled, outcome not"
    );
    assert_eq!(sqlite(&journal_db, "SELECT COUNT(*) FROM run_secrets"), "4");
    assert!(
        !sqlite(&journal_db, "SELECT group_concat(sealed) FROM run_secrets").is_empty(),
        "sealed passwords are journaled"
    );

    // Resume with a healthy target.
    let backend = open_backend(&config, lp).await.expect("backend"); // ok: test
    let jr = JournaledRun { resuming: true, ..jr };
    let report = match run_journaled(backend.as_ref(), lp, &bytes, &results, &jr).await {
        Ok(Finish::Done(r)) => r,
        other => panic!("resume did not finish: {other:?}"),
    };
    assert_eq!(report.summary.change("new"), 4, "{}", report.summary);
    assert_eq!(report.summary.change("error"), 1);
    assert_eq!(
        report.summary.verdict(dirsync::core::Verdict::Failed),
        0,
        "nothing written twice"
    );
    assert_eq!(report.credentials.len(), 4, "every new user still gets their password");
    assert_eq!(
        sqlite(&db, "SELECT username || password_hash FROM users ORDER BY username"),
        hashes_before
    );
    let text = std::fs::read_to_string(&results).expect("results"); // ok: test
    assert_eq!(
        text.matches("confirmed by reading the target again").count(),
        2,
        "{text}"
    );
    assert_eq!(
        sqlite(
            &journal_db,
            "SELECT COUNT(*) FROM run_items WHERE run_id = 1 AND verdict IS NULL"
        ),
        "0"
    );
    // The credentials are the ones generated before the crash: the hash in
    // the target verifies them.
    for c in &report.credentials {
        let hash = sqlite(
            &db,
            &format!("SELECT password_hash FROM users WHERE username = '{}'", c.key.as_str()),
        );
        use argon2::PasswordVerifier;
        let parsed = argon2::PasswordHash::new(&hash).expect("PHC string"); // ok: test
        assert!(
            argon2::Argon2::default()
                .verify_password(c.password.expose().as_bytes(), &parsed)
                .is_ok(),
            "the password of {} is not the one set before the crash",
            c.key
        );
    }
}
