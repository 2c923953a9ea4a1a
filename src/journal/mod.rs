//! The journal: every run (from the command line or the daemon), its plan,
//! each write's intent (before) and outcome (after), the passwords generated
//! for it, and the approvals of held changes — so a run killed at any moment
//! resumes without repeating a write or generating a second password, and an
//! approval applies exactly what the operator was shown.
//!
//! SQLite at `{state_dir}/journal.db` by default (created 0600), PostgreSQL
//! when `[service] journal` names one. Generated passwords are sealed with a
//! key that lives only in the state folder (see [`seal`]).
//!
//! - [`runs`]: the run records; [`state`]: their states.
//! - [`items`]: plan items with typed identities, changes and verdicts.
//! - [`approvals`]: who approved or rejected which held class, and when.
//! - [`stats`]: the runs in numbers, for metrics.
//! - `generated`: values generated for new accounts, per run and for good.
//! - [`browse`]: runs and their rows a page at a time, for the console.
//! - [`leases`]: who works on which run, target and file; fenced writes.
//! - [`schedule`]: when a run's scheduled changes fall due, and scheduled re-runs.
//! - [`activation`]: one-time activation links, stored as hashes.

pub mod activation;
mod approvals;
mod browse;
mod generated;
mod items;
mod leases;
mod runs;
mod schedule;
mod schema;
mod seal;
mod state;
mod stats;

use std::path::{Path, PathBuf};

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use activation::{token_hash, ActivationRecord, ActivationState, NewActivation};
pub use approvals::{Approval, Decision};
pub use browse::{Page, RowFilter, RunFilter};
pub use items::{ItemId, ItemRecord, OutcomeRecord};
pub use leases::{owner_is_dead, Fence, Lease};
pub use runs::{NewRun, RunRecord, Terminal, CLI_INBOX};
pub use schedule::Schedule;
pub use seal::SecretBox;
pub use state::RunState;
pub use stats::RunStats;

/// A journal problem. The journal is dirsync's memory: without it nothing runs.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {url}: {message}")]
    Open { url: String, message: String },
    #[error("journal: {0}")]
    Query(String),
    #[error("journal key {path}: {message}")]
    Key { path: PathBuf, message: String },
    /// This process no longer holds a lease its writes are fenced by: it
    /// was frozen or cut off past the expiry, and another daemon may have
    /// taken the work over. Nothing was written.
    #[error("journal: the lease on {0} was lost (another daemon may have taken the work over); nothing written")]
    LeaseLost(String),
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

/// Which SQL the journal speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The journal (cheap to clone: a pool and a key).
#[derive(Clone)]
pub struct Journal {
    pool: AnyPool,
    dialect: Dialect,
    seal: SecretBox,
    url: String,
    /// `host:pid` of this process, recorded on the runs it works on.
    worker: String,
    /// When set, every write checks these leases first ([`Journal::fenced`]).
    fence: Option<std::sync::Arc<Fence>>,
}

/// Where the journal is: its database URL and the key file that seals the
/// passwords it holds (both from `[service]`).
pub struct JournalLocation {
    pub url: String,
    pub key_file: PathBuf,
}

impl Journal {
    /// Open (and create, or bring up to date) the journal.
    pub async fn open(at: &JournalLocation) -> Result<Journal> {
        sqlx::any::install_default_drivers();
        let url = at.url.clone();
        let open_err = |message: String| JournalError::Open {
            url: crate::redact::redact_url(&url),
            message,
        };
        let (dialect, connect_url) = if let Some(path) = url.strip_prefix("sqlite://") {
            crate::private_files::create_file(Path::new(path)).map_err(|e| {
                open_err(format!(
                    "cannot create it: {e}; dirsync keeps its journal in [service] state_dir \
                     (default: `state` beside the config file): set state_dir (or journal) to a \
                     folder this user can write"
                ))
            })?;
            (Dialect::Sqlite, format!("{url}?mode=rwc"))
        } else {
            (Dialect::Postgres, url.clone())
        };
        let seal = SecretBox::open_or_create(&at.key_file)?;
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
        schema::create_or_upgrade(&pool)
            .await
            .map_err(|e| open_err(format!("creating tables: {e}")))?;
        let journal = Journal {
            pool,
            dialect,
            seal,
            url,
            worker: crate::worker::worker_id(),
            fence: None,
        };
        journal.check_key().await?;
        Ok(journal)
    }

    /// The URL, without any password, for logs.
    pub fn describe(&self) -> String {
        crate::redact::redact_url(&self.url)
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
}
