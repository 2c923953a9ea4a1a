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
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Row};
use tracing::{error, info, warn};

use super::crypto::BodyKey;
use super::transport::Mailer;

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

/// First retry after a minute, doubling up to an hour.
const BACKOFF_FIRST: i64 = 60;
const BACKOFF_MAX: i64 = 3600;

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
    Test,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Results => "results",
            MailKind::Credentials => "credentials",
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

/// How a delivery pass behaves.
#[derive(Debug, Clone, Copy)]
pub struct DeliverOptions {
    /// Try messages waiting for their backoff now (an operator's `mail flush`).
    /// `send_at` and rate caps still hold.
    pub ignore_backoff: bool,
    /// Give up on a message after this many failed attempts.
    pub max_attempts: u32,
    /// At most this many messages per minute in all.
    pub max_per_minute: Option<u32>,
    /// Attempt at most this many messages in one pass (0 = all), so a sender
    /// loop notices shutdown between batches.
    pub batch: usize,
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone)]
pub struct Pass {
    pub sent: usize,
    /// Failed this time; will be retried.
    pub retrying: usize,
    /// Failed for the last time; an operator must look (`dirsync mail list`).
    pub failed: usize,
    /// Waiting for `send_at` or a rate cap, or left because the relay failed.
    pub waiting: usize,
    /// The advice for each distinct failure.
    pub errors: Vec<String>,
    /// When the next message falls due (Unix seconds), if any is waiting.
    pub next_due: Option<i64>,
    /// The relay failed as a whole; the pass stopped early.
    pub relay_down: bool,
    /// The pass stopped at `batch` attempts; more are due now.
    pub more: bool,
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
    pool: AnyPool,
    key: Arc<BodyKey>,
    owner: String,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Outbox {
    /// Open (and create) the outbox at a `sqlite://` or `postgres://` URL.
    pub async fn open(url: &str, key_file: &Path) -> Result<Outbox, OutboxError> {
        sqlx::any::install_default_drivers();
        let key = BodyKey::load_or_create(key_file).map_err(OutboxError::Other)?;
        let url = if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(dir) = Path::new(path.split('?').next().unwrap_or(path)).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        OutboxError::Other(format!(
                            "cannot create the folder {} for the outbox: {e}",
                            dir.display()
                        ))
                    })?;
                }
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
        drop(conn);
        Ok(Outbox {
            pool,
            key: Arc::new(key),
            owner: lease_owner(),
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

    /// The outbox, newest first.
    pub async fn list(&self, limit: i64) -> Result<Vec<Entry>, OutboxError> {
        let rows = sqlx::query(
            "SELECT id, run_id, kind, recipients, subject, state, attempts, not_before, next_attempt_at, \
             last_error, sent_at FROM dirsync_mail_outbox ORDER BY created_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
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
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// How many mails of a group (or all, with `None`) went out since `since`,
    /// and the oldest of them.
    async fn sent_since(&self, group: Option<&str>, since: i64) -> Result<(i64, Option<i64>), OutboxError> {
        let row = match group {
            Some(g) => {
                sqlx::query(
                    "SELECT COUNT(*) AS n, MIN(sent_at) AS oldest FROM dirsync_mail_outbox \
                     WHERE sent_at IS NOT NULL AND sent_at > $1 AND rate_group = $2",
                )
                .bind(since)
                .bind(g)
                .fetch_one(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT COUNT(*) AS n, MIN(sent_at) AS oldest FROM dirsync_mail_outbox \
                     WHERE sent_at IS NOT NULL AND sent_at > $1",
                )
                .bind(since)
                .fetch_one(&self.pool)
                .await?
            }
        };
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    /// Deliver every message that is due, once. Never loses a message: a row
    /// leaves `pending` only when the relay accepted it or it ran out of attempts.
    pub async fn deliver_due(&self, mailer: &Mailer, opts: DeliverOptions) -> Result<Pass, OutboxError> {
        let mut pass = Pass::default();
        let now = now_unix();
        let backoff_until = if opts.ignore_backoff { i64::MAX } else { now };
        let rows = sqlx::query(
            "SELECT id, kind, sender, recipients, attempts, rate_group, rate_per_minute, lease_owner, \
             lease_until, not_before, next_attempt_at FROM dirsync_mail_outbox WHERE state = 'pending' \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let due_later = |t: i64, pass: &mut Pass| {
            pass.waiting += 1;
            pass.next_due = Some(pass.next_due.map_or(t, |d| d.min(t)));
        };
        for row in rows {
            let id: String = row.try_get("id")?;
            let not_before: i64 = row.try_get("not_before")?;
            let next_attempt: i64 = row.try_get("next_attempt_at")?;
            let now = now_unix();
            if not_before > now {
                due_later(not_before, &mut pass);
                continue;
            }
            if next_attempt > backoff_until {
                due_later(next_attempt, &mut pass);
                continue;
            }
            if pass.relay_down {
                due_later(now + BACKOFF_FIRST, &mut pass);
                continue;
            }
            let lease: Option<String> = row.try_get("lease_owner")?;
            let lease_until: Option<i64> = row.try_get("lease_until")?;
            if let (Some(owner), Some(until)) = (&lease, lease_until) {
                if until > now && !lease_is_dead(owner, &self.owner) {
                    due_later(until, &mut pass);
                    continue;
                }
            }
            // Rate caps: the global one and the message's group.
            let group: Option<String> = row.try_get("rate_group")?;
            let group_cap: Option<i64> = row.try_get("rate_per_minute")?;
            let mut wait_until = None;
            if let Some(cap) = opts.max_per_minute {
                let (n, oldest) = self.sent_since(None, now - 60).await?;
                if n >= i64::from(cap) {
                    wait_until = Some(oldest.unwrap_or(now) + 61);
                }
            }
            if let (Some(g), Some(cap)) = (&group, group_cap) {
                let (n, oldest) = self.sent_since(Some(g), now - 60).await?;
                if n >= cap {
                    wait_until = Some(wait_until.unwrap_or(0).max(oldest.unwrap_or(now) + 61));
                }
            }
            if let Some(t) = wait_until {
                due_later(t, &mut pass);
                continue;
            }
            if opts.batch > 0 && pass.sent + pass.retrying + pass.failed >= opts.batch {
                pass.more = true;
                break;
            }
            // Claim: compare-and-set on the observed lease and attempts, so two
            // senders on one PostgreSQL journal never send the same row at once.
            let attempts: i64 = row.try_get("attempts")?;
            let claimed = sqlx::query(
                "UPDATE dirsync_mail_outbox SET lease_owner = $1, lease_until = $2 \
                 WHERE id = $3 AND state = 'pending' AND attempts = $4 AND COALESCE(lease_owner, '') = $5",
            )
            .bind(&self.owner)
            .bind(now + mailer.max_send_secs() as i64 + 60)
            .bind(&id)
            .bind(attempts)
            .bind(lease.clone().unwrap_or_default())
            .execute(&self.pool)
            .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            let kind: String = row.try_get("kind")?;
            let sender: String = row.try_get("sender")?;
            let recipients: String = row.try_get("recipients")?;
            // Bodies are read one at a time: a big run queues thousands.
            let body: Option<String> = sqlx::query("SELECT body FROM dirsync_mail_outbox WHERE id = $1")
                .bind(&id)
                .fetch_one(&self.pool)
                .await?
                .try_get("body")?;
            let result = match (serde_json::from_str::<Vec<String>>(&recipients), body) {
                (Ok(to), Some(body)) => match self.key.open(&id, &body) {
                    Ok(message) => mailer.send(&sender, &to, &message).await,
                    Err(advice) => Err(super::transport::SendError {
                        advice,
                        whole_relay: false,
                    }),
                },
                _ => Err(super::transport::SendError {
                    advice: "the outbox row is damaged (no body or bad recipient list)".into(),
                    whole_relay: false,
                }),
            };
            let now = now_unix();
            match result {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE dirsync_mail_outbox SET state = 'sent', sent_at = $1, body = NULL, \
                         attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_until = NULL \
                         WHERE id = $2",
                    )
                    .bind(now)
                    .bind(&id)
                    .execute(&self.pool)
                    .await?;
                    info!(message_id = %id, kind = %kind, "Mail sent.");
                    pass.sent += 1;
                }
                Err(e) => {
                    let attempts = attempts + 1;
                    let give_up = attempts >= i64::from(opts.max_attempts.max(1));
                    let retry_at = now + backoff(attempts);
                    sqlx::query(
                        "UPDATE dirsync_mail_outbox SET state = $1, attempts = $2, next_attempt_at = $3, \
                         last_error = $4, lease_owner = NULL, lease_until = NULL WHERE id = $5",
                    )
                    .bind(if give_up { "failed" } else { "pending" })
                    .bind(attempts)
                    .bind(retry_at)
                    .bind(&e.advice)
                    .bind(&id)
                    .execute(&self.pool)
                    .await?;
                    if give_up {
                        error!(message_id = %id, kind = %kind, attempts, error = %e.advice,
                            "Mail given up after its last attempt; fix the cause, then run `dirsync mail flush --retry-failed`.");
                        pass.failed += 1;
                    } else {
                        warn!(message_id = %id, kind = %kind, attempts, retry_at, error = %e.advice, "Mail not sent; will retry.");
                        pass.retrying += 1;
                        pass.next_due = Some(pass.next_due.map_or(retry_at, |d| d.min(retry_at)));
                    }
                    if !pass.errors.contains(&e.advice) {
                        pass.errors.push(e.advice.clone());
                    }
                    pass.relay_down |= e.whole_relay;
                }
            }
        }
        Ok(pass)
    }
}

fn backoff(attempts: i64) -> i64 {
    let shift = (attempts - 1).clamp(0, 16) as u32;
    (BACKOFF_FIRST << shift).min(BACKOFF_MAX)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// `host:pid`: who is sending a row right now.
fn lease_owner() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// A lease held by a process on this host that no longer exists (killed
/// mid-send) does not block: its message goes again, with the same Message-ID.
fn lease_is_dead(owner: &str, me: &str) -> bool {
    let (Some((host, pid)), Some((my_host, _))) = (owner.rsplit_once(':'), me.rsplit_once(':')) else {
        return false;
    };
    host == my_host && owner != me && !Path::new(&format!("/proc/{pid}")).exists()
}

/// The sender loop for the daemon: deliver what is due, sleep until the next
/// message falls due (at most `poll`), or until `wake` is notified (after an
/// enqueue), until `shutdown` resolves. When the relay is down it backs off,
/// doubling from a minute to an hour.
pub async fn run_sender(
    outbox: Outbox,
    mailer: Mailer,
    opts: DeliverOptions,
    wake: Arc<tokio::sync::Notify>,
    poll: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut down_for: i64 = 0;
    loop {
        let mut sleep = poll;
        match outbox.deliver_due(&mailer, opts).await {
            Ok(pass) => {
                if pass.relay_down {
                    down_for += 1;
                    sleep = Duration::from_secs(backoff(down_for) as u64);
                } else {
                    down_for = 0;
                    if pass.more {
                        sleep = Duration::ZERO;
                    } else if let Some(t) = pass.next_due {
                        let secs = (t - now_unix()).max(1) as u64;
                        sleep = sleep.min(Duration::from_secs(secs));
                    }
                }
            }
            Err(e) => warn!(error = %e, "Mail outbox unavailable; will try again."),
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(id: &str, body: &str) -> NewMail {
        NewMail {
            id: id.into(),
            run_id: "run1".into(),
            kind: MailKind::Credentials,
            sender: "d@example.org".into(),
            recipients: vec!["u@example.org".into()],
            subject: "s".into(),
            message: format!("Subject: s\r\n\r\n{body}\r\n").into_bytes(),
            not_before: 0,
            rate_group: None,
            rate_per_minute: None,
        }
    }

    #[tokio::test]
    async fn enqueue_is_idempotent_and_the_sender_loop_delivers() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        let outbox = Outbox::open(&url, &dir.path().join("k")).await.unwrap(); // ok: test
        let mut tx = outbox.pool().begin().await.unwrap(); // ok: test
        assert!(enqueue(&mut tx, outbox.key(), &mail("a@x", "one"), 1).await.unwrap()); // ok: test
        assert!(!enqueue(&mut tx, outbox.key(), &mail("a@x", "one"), 1).await.unwrap()); // ok: test
        tx.commit().await.unwrap(); // ok: test
        assert_eq!(
            outbox
                .enqueue_all(&[mail("a@x", "one"), mail("b@x", "two")], 2)
                .await
                .unwrap(),
            1
        ); // ok: test

        let cfg: super::super::MailConfig = toml::from_str("from = \"d@example.org\"\ntransport = \"file\"").unwrap(); // ok: test
        let cfg = cfg.resolved(dir.path(), Path::new("."));
        let mailer = Mailer::from_config(&cfg).unwrap(); // ok: test
        let folder = dir.path().join("mail");
        let wake = Arc::new(tokio::sync::Notify::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let opts = DeliverOptions {
            batch: 1,
            ..super::super::deliver_options(&cfg, false)
        };
        let task = tokio::spawn(run_sender(
            outbox.clone(),
            mailer,
            opts,
            wake.clone(),
            Duration::from_secs(30),
            async move {
                let _ = stopped.await;
            },
        ));
        let count = || std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
        for _ in 0..200 {
            if count() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count(), 2);
        outbox.enqueue_all(&[mail("c@x", "three")], 3).await.unwrap(); // ok: test
        wake.notify_one();
        for _ in 0..200 {
            if count() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count(), 3);
        let _ = stop.send(());
        task.await.unwrap(); // ok: test
        let states: Vec<String> = outbox.list(10).await.unwrap().into_iter().map(|e| e.state).collect(); // ok: test
        assert_eq!(states, ["sent", "sent", "sent"]);
    }
}
