//! The mail outbox: a table in the journal database (SQLite or PostgreSQL).
//!
//! A mail is written here — formatted, with its final Message-ID, body sealed
//! (see [`super::BodyKey`]) — then delivered by [`Outbox::deliver_due`] /
//! [`run_sender`]. The row's id *is* the Message-ID, derived from the run and
//! the recipient, so enqueuing the same run twice adds nothing and a retry
//! after an unclear failure resends the very same message.
//!
//! [`create_tables`] and [`enqueue`] take a `&mut AnyConnection`, so the
//! journal can enqueue inside its run-completion transaction
//! (`outbox::enqueue(&mut *tx, &key, &mail, now)`).

use std::path::Path;
use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Row};

use super::crypto::BodyKey;
pub use super::deliver::{run_sender, DeliverOptions, Pass};

const TABLE_DDL: &str = "CREATE TABLE IF NOT EXISTS dirsync_mail_outbox (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    rate_group TEXT,
    rate_per_minute BIGINT,
    sent_at BIGINT
)";
const INDEX_DDL: [&str; 2] = [
    "CREATE INDEX IF NOT EXISTS dirsync_mail_outbox_due ON dirsync_mail_outbox (state, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS dirsync_mail_outbox_sent ON dirsync_mail_outbox (sent_at)",
];

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("mail outbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("mail outbox: {0}")]
    Other(String),
}

/// What a mail is, for rate caps and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Results,
    Credentials,
    Activation,
    Test,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Results => "results",
            MailKind::Credentials => "credentials",
            MailKind::Activation => "activation",
            MailKind::Test => "test",
        }
    }
}

/// A formatted mail, ready for the outbox. `message` may hold a password:
/// this type has no `Debug`.
#[derive(Clone)]
pub struct NewMail {
    /// The Message-ID without `<>`; the row's primary key.
    pub id: String,
    pub run_id: String,
    pub kind: MailKind,
    pub sender: String,
    /// Envelope recipients (To and Cc).
    pub recipients: Vec<String>,
    pub subject: String,
    /// The whole RFC 5322 message.
    pub message: Vec<u8>,
    /// Not sent before this time (Unix seconds): `send_at`.
    pub not_before: i64,
    /// Messages of one group share `rate_per_minute`.
    pub rate_group: Option<String>,
    pub rate_per_minute: Option<u32>,
}

/// Create the outbox table when missing. Idempotent; call it when the
/// journal opens (inside or outside a transaction).
pub async fn create_tables(conn: &mut AnyConnection) -> Result<(), OutboxError> {
    sqlx::query(TABLE_DDL).execute(&mut *conn).await?;
    for ddl in INDEX_DDL {
        sqlx::query(ddl).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Every process sharing the outbox must seal bodies with the same key:
/// the first seals a probe, the others must be able to open it.
async fn check_key(conn: &mut AnyConnection, key: &BodyKey, key_file: &Path) -> Result<(), OutboxError> {
    const PROBE: &[u8] = b"dirsync outbox key check";
    sqlx::query("CREATE TABLE IF NOT EXISTS key_checks (name TEXT PRIMARY KEY, sealed TEXT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("SELECT sealed FROM key_checks WHERE name = 'outbox'")
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => {
            let sealed = key.seal("key-check", PROBE).map_err(OutboxError::Other)?;
            sqlx::query("INSERT INTO key_checks (name, sealed) VALUES ('outbox', $1) ON CONFLICT (name) DO NOTHING")
                .bind(sealed)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        Some(r) => {
            let sealed: String = r.try_get(0)?;
            match key.open("key-check", &sealed) {
                Ok(p) if p == PROBE => Ok(()),
                _ => Err(OutboxError::Other(format!(
                    "the key {} is not the one this outbox was first used with: every daemon and command \
                     sharing the outbox needs the same key file; copy it (mode 0600) from the host that first used it",
                    key_file.display()
                ))),
            }
        }
    }
}

/// Write one mail into the outbox (on this connection or transaction).
/// Returns false when a mail with this id is already there: a resumed run
/// enqueues nothing twice.
pub async fn enqueue(conn: &mut AnyConnection, key: &BodyKey, mail: &NewMail, now: i64) -> Result<bool, OutboxError> {
    let body = key.seal(&mail.id, &mail.message).map_err(OutboxError::Other)?;
    let recipients = serde_json::to_string(&mail.recipients).map_err(|e| OutboxError::Other(e.to_string()))?;
    let r = sqlx::query(
        "INSERT INTO dirsync_mail_outbox (id, run_id, kind, sender, recipients, subject, body, state, created_at, \
         not_before, next_attempt_at, attempts, rate_group, rate_per_minute) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, 0, $11, $12) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&mail.id)
    .bind(&mail.run_id)
    .bind(mail.kind.as_str())
    .bind(&mail.sender)
    .bind(recipients)
    .bind(&mail.subject)
    .bind(body)
    .bind(now)
    .bind(mail.not_before)
    .bind(mail.not_before)
    .bind(mail.rate_group.clone())
    .bind(mail.rate_per_minute.map(i64::from))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One row of `dirsync mail list`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub run_id: String,
    pub kind: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub not_before: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// The outbox on its own pool (the CLI, the sender loop).
#[derive(Clone)]
pub struct Outbox {
    pub(super) pool: AnyPool,
    pub(super) key: Arc<BodyKey>,
    /// `host:pid`, for leases.
    pub(super) owner: String,
}

impl Outbox {
    /// Open (and create) the outbox at a `sqlite://` or `postgres://` URL.
    pub async fn open(url: &str, key_file: &Path) -> Result<Outbox, OutboxError> {
        sqlx::any::install_default_drivers();
        let key = BodyKey::load_or_create(key_file).map_err(OutboxError::Other)?;
        let url = if let Some(path) = url.strip_prefix("sqlite://") {
            // Created 0600 (its folder 0700) before SQLite makes it with the umask's mode.
            let file = Path::new(path.split('?').next().unwrap_or(path));
            if !file.as_os_str().is_empty() && !file.starts_with(":memory:") {
                crate::private_files::create_file(file)
                    .map_err(|e| OutboxError::Other(format!("cannot create the outbox {}: {e}", file.display())))?;
            }
            if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if url.starts_with("sqlite:") { 1 } else { 4 })
            .connect(&url)
            .await?;
        let mut conn = pool.acquire().await?;
        create_tables(&mut conn).await?;
        check_key(&mut conn, &key, key_file).await?;
        drop(conn);
        Ok(Outbox {
            pool,
            key: Arc::new(key),
            owner: super::deliver::lease_owner(),
        })
    }

    pub fn key(&self) -> &BodyKey {
        &self.key
    }

    /// The pool, e.g. to begin a transaction for [`super::enqueue_run`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Enqueue several mails in one transaction; returns how many were new.
    pub async fn enqueue_all(&self, mails: &[NewMail], now: i64) -> Result<usize, OutboxError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for m in mails {
            if enqueue(&mut tx, &self.key, m, now).await? {
                added += 1;
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Put messages that were given up on back into the queue.
    pub async fn retry_failed(&self, now: i64) -> Result<u64, OutboxError> {
        let r = sqlx::query(
            "UPDATE dirsync_mail_outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 \
             WHERE state = 'failed' AND body IS NOT NULL",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// How many mails are in each state, and when the oldest one still to
    /// send was queued (Unix seconds), for metrics.
    pub async fn counts(&self) -> Result<(Vec<(String, i64)>, Option<i64>), OutboxError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM dirsync_mail_outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
        }
        let oldest: Option<i64> =
            sqlx::query("SELECT MIN(created_at) FROM dirsync_mail_outbox WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        Ok((out, oldest))
    }

    /// The outbox, newest first.
    pub async fn list(&self, limit: i64) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM dirsync_mail_outbox ORDER BY created_at DESC, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(entry)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The mails of run `id` (its results mails, credentials mails and the
    /// results mails of its approvals), oldest first.
    pub async fn for_run(&self, id: i64) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM dirsync_mail_outbox WHERE run_id = $1 OR run_id LIKE $2 \
             ORDER BY created_at, id"
        ))
        .bind(format!("run-{id}"))
        .bind(format!("run-{id}-approval-%"))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(entry)
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }
}

const ENTRY_COLUMNS: &str =
    "id, run_id, kind, recipients, subject, state, attempts, not_before, next_attempt_at, last_error, sent_at";

fn entry(r: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    let recipients: String = r.try_get("recipients")?;
    Ok(Entry {
        id: r.try_get("id")?,
        run_id: r.try_get("run_id")?,
        kind: r.try_get("kind")?,
        recipients: serde_json::from_str(&recipients).unwrap_or_default(),
        subject: r.try_get("subject")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        not_before: r.try_get("not_before")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        sent_at: r.try_get("sent_at")?,
    })
}

#[cfg(test)]
mod tests;
