//! The journal: every run, its plan, each write's intent (before) and outcome
//! (after), and the passwords generated for it — so a run killed at any
//! moment resumes without repeating a write or generating a second password.
//!
//! SQLite at `{state_dir}/journal.db` by default (created 0600), PostgreSQL
//! when `[service] journal` names one. Generated passwords are sealed with a
//! key that lives only in the state folder (see [`seal`]).

mod items;
mod seal;

use std::path::{Path, PathBuf};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::config::ServiceConfig;
pub use items::ItemRecord;
pub use seal::SecretBox;

/// A journal problem. The journal is dirsync's memory: without it nothing runs.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {url}: {message}")]
    Open { url: String, message: String },
    #[error("journal: {0}")]
    Query(String),
    #[error("journal key {path}: {message}")]
    Key { path: PathBuf, message: String },
}

impl From<sqlx::Error> for JournalError {
    fn from(e: sqlx::Error) -> Self {
        JournalError::Query(match e {
            sqlx::Error::Database(d) => d.message().to_string(),
            other => other.to_string(),
        })
    }
}

type Result<T> = std::result::Result<T, JournalError>;

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// The file is in `processing/`; nothing planned yet.
    Claimed,
    /// The plan is journaled; writes are being made.
    Applying,
    /// The results file is written; the files are being moved to `dest`.
    Done,
    /// Archived (or rejected) with its results. Nothing left to do.
    Finished,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Claimed => "claimed",
            RunState::Applying => "applying",
            RunState::Done => "done",
            RunState::Finished => "finished",
        }
    }
    fn parse(s: &str) -> RunState {
        match s {
            "claimed" => RunState::Claimed,
            "applying" => RunState::Applying,
            "done" => RunState::Done,
            _ => RunState::Finished,
        }
    }
}

/// One run as the journal holds it.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: i64,
    pub inbox: String,
    /// The name the file was dropped with.
    pub file_name: String,
    /// Where the file sits while the run is in progress (`processing/…`).
    pub claimed: PathBuf,
    pub sha256: String,
    pub policy: String,
    pub target: String,
    pub state: RunState,
    /// "applied", "rejected" or "duplicate" once done.
    pub outcome: Option<String>,
    /// Apply even if an identical file was applied before.
    pub forced: bool,
    /// Unix milliseconds.
    pub claimed_at: i64,
    /// When the run got its target (runs against one target are serialised).
    pub started: Option<i64>,
    pub finished: Option<i64>,
    /// Counts per change and result ("3 new, 1 error (3 done, 1 skipped)").
    pub summary: Option<String>,
    /// Safety-limit breaches of the original plan (JSON).
    pub breaches: Option<String>,
    /// Where the file goes (or went): `archive/DATE/NAME` or `rejected/NAME`.
    pub dest: Option<PathBuf>,
    /// Why the run ended as it did, for `dirsync runs show`.
    pub note: Option<String>,
}

/// A new run, before it has an id.
pub struct NewRun<'a> {
    pub inbox: &'a str,
    pub file_name: &'a str,
    pub claimed: &'a Path,
    pub sha256: &'a str,
    pub policy: &'a str,
    pub target: &'a str,
    pub forced: bool,
    pub now_ms: i64,
}

/// Which SQL the journal speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The journal.
pub struct Journal {
    pool: AnyPool,
    dialect: Dialect,
    seal: SecretBox,
    url: String,
}

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS runs (
        id BIGINT PRIMARY KEY,
        inbox TEXT NOT NULL,
        file_name TEXT NOT NULL,
        claimed TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        policy TEXT NOT NULL,
        target TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        forced BIGINT NOT NULL DEFAULT 0,
        claimed_at BIGINT NOT NULL,
        started BIGINT,
        finished BIGINT,
        summary TEXT,
        breaches TEXT,
        dest TEXT,
        note TEXT)",
    "CREATE INDEX IF NOT EXISTS runs_sha256 ON runs (sha256)",
    "CREATE TABLE IF NOT EXISTS run_items (
        run_id BIGINT NOT NULL,
        ident TEXT NOT NULL,
        line BIGINT,
        user_key TEXT,
        change TEXT NOT NULL,
        intent BIGINT NOT NULL DEFAULT 0,
        verdict TEXT,
        message TEXT,
        PRIMARY KEY (run_id, ident))",
    "CREATE TABLE IF NOT EXISTS run_secrets (
        run_id BIGINT NOT NULL,
        ident TEXT NOT NULL,
        sealed TEXT NOT NULL,
        PRIMARY KEY (run_id, ident))",
];

const RUN_COLUMNS: &str = "id, inbox, file_name, claimed, sha256, policy, target, state, outcome, forced, \
                           claimed_at, started, finished, summary, breaches, dest, note";

/// Create the SQLite file (and its folder) readable by dirsync alone, before
/// SQLite creates it with the umask's permissions.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Journal {
    /// Open (and create) the journal the service config names.
    pub async fn open(service: &ServiceConfig) -> Result<Journal> {
        sqlx::any::install_default_drivers();
        let url = service.journal_url();
        let open_err = |message: String| JournalError::Open {
            url: crate::backend::sql::redact_url(&url),
            message,
        };
        let (dialect, connect_url) = if let Some(path) = url.strip_prefix("sqlite://") {
            create_private_file(Path::new(path)).map_err(|e| {
                open_err(format!(
                    "cannot create it: {e}; check that the state folder is writable by dirsync"
                ))
            })?;
            (Dialect::Sqlite, format!("{url}?mode=rwc"))
        } else {
            (Dialect::Postgres, url.clone())
        };
        let seal = SecretBox::open_or_create(&service.state_dir.join("journal.key"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 1 } else { 4 })
            .acquire_timeout(std::time::Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL: `dirsync runs` reads while the daemon writes.
                        // synchronous=FULL: a committed intent or outcome survives
                        // a crash of the machine, not only of the process.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        for stmt in SCHEMA {
            sqlx::query(stmt)
                .execute(&pool)
                .await
                .map_err(|e| open_err(format!("creating tables: {e}")))?;
        }
        Ok(Journal {
            pool,
            dialect,
            seal,
            url,
        })
    }

    /// The URL, without any password, for logs.
    pub fn describe(&self) -> String {
        crate::backend::sql::redact_url(&self.url)
    }

    /// `?` placeholders in the journal's dialect.
    fn sql(&self, s: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => s.to_string(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(s.len() + 16);
                let mut n = 0;
                for c in s.chars() {
                    if c == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Record a claimed file as a new run; returns its id.
    pub async fn create_run(&self, r: &NewRun<'_>) -> Result<i64> {
        // Ids are small integers people can type; a second daemon sharing a
        // PostgreSQL journal that takes the same id makes the insert fail,
        // and the next try takes the next one.
        for _ in 0..5 {
            let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM runs")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            let res = sqlx::query(&self.sql(
                "INSERT INTO runs (id, inbox, file_name, claimed, sha256, policy, target, state, forced, claimed_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'claimed', ?, ?)",
            ))
            .bind(id)
            .bind(r.inbox)
            .bind(r.file_name)
            .bind(r.claimed.to_string_lossy().into_owned())
            .bind(r.sha256)
            .bind(r.policy)
            .bind(r.target)
            .bind(i64::from(r.forced))
            .bind(r.now_ms)
            .execute(&self.pool)
            .await;
            match res {
                Ok(_) => return Ok(id),
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JournalError::Query("could not allocate a run id; try again".into()))
    }

    pub async fn run(&self, id: i64) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// Runs not yet finished, oldest first.
    pub async fn unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE state <> 'finished' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&self.sql(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?")))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// An earlier run that applied a file with these bytes under this policy.
    pub async fn applied_before(&self, sha256: &str, policy: &str, not_id: i64) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE sha256 = ? AND policy = ? AND outcome = 'applied' AND id <> ? \
             ORDER BY id DESC LIMIT 1"
        )))
        .bind(sha256)
        .bind(policy)
        .bind(not_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// The newest run of this file (same inbox, name and bytes) that was not
    /// abandoned: an SFTP claim handed over again finds its run here.
    pub async fn latest_run_of(&self, inbox: &str, file_name: &str, sha256: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE inbox = ? AND file_name = ? AND sha256 = ? \
             AND COALESCE(outcome, '') <> 'abandoned' ORDER BY id DESC LIMIT 1"
        )))
        .bind(inbox)
        .bind(file_name)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// The run got its target and starts (or resumes) work.
    pub async fn mark_started(&self, id: i64, now_ms: i64) -> Result<()> {
        sqlx::query(&self.sql("UPDATE runs SET started = COALESCE(started, ?) WHERE id = ?"))
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The results file is written: record how the run came out and where
    /// its files go, before they are moved.
    pub async fn mark_done(&self, id: i64, done: &Done<'_>) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE runs SET state = 'done', outcome = ?, summary = ?, dest = ?, note = ?, finished = ? WHERE id = ?",
        ))
        .bind(done.outcome)
        .bind(done.summary)
        .bind(done.dest.to_string_lossy().into_owned())
        .bind(done.note)
        .bind(done.now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The files are where `dest` says.
    pub async fn mark_finished(&self, id: i64) -> Result<()> {
        sqlx::query(&self.sql("UPDATE runs SET state = 'finished' WHERE id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A run that cannot go on (its file vanished): finished, with why.
    pub async fn mark_abandoned(&self, id: i64, note: &str, now_ms: i64) -> Result<()> {
        sqlx::query(&self.sql(
            "UPDATE runs SET state = 'finished', outcome = COALESCE(outcome, 'abandoned'), note = ?, \
             finished = COALESCE(finished, ?) WHERE id = ?",
        ))
        .bind(note)
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// How a run came out, for [`Journal::mark_done`].
pub struct Done<'a> {
    pub outcome: &'a str,
    pub summary: &'a str,
    pub dest: &'a Path,
    pub note: Option<&'a str>,
    pub now_ms: i64,
}

fn run_from_row(r: &AnyRow) -> Result<RunRecord> {
    let forced: i64 = r.try_get(9)?;
    let claimed: String = r.try_get(3)?;
    let dest: Option<String> = r.try_get(15)?;
    let state: String = r.try_get(7)?;
    Ok(RunRecord {
        id: r.try_get(0)?,
        inbox: r.try_get(1)?,
        file_name: r.try_get(2)?,
        claimed: PathBuf::from(claimed),
        sha256: r.try_get(4)?,
        policy: r.try_get(5)?,
        target: r.try_get(6)?,
        state: RunState::parse(&state),
        outcome: r.try_get(8)?,
        forced: forced != 0,
        claimed_at: r.try_get(10)?,
        started: r.try_get(11)?,
        finished: r.try_get(12)?,
        summary: r.try_get(13)?,
        breaches: r.try_get(14)?,
        dest: dest.map(PathBuf::from),
        note: r.try_get(16)?,
    })
}
