//! Delivery: one pass over the due messages ([`Outbox::deliver_due`]) and
//! the daemon's sender loop ([`run_sender`]): retry with backoff, `send_at`,
//! rate caps, and leases so two senders never send one row at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tracing::{error, info, warn};

use super::outbox::{Outbox, OutboxError};
use super::transport::{Mailer, SendError};
use crate::clock::now_unix;

/// First retry after a minute, doubling up to an hour.
const BACKOFF_FIRST: i64 = 60;
const BACKOFF_MAX: i64 = 3600;

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

impl Outbox {
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
                    Err(advice) => Err(SendError {
                        advice,
                        whole_relay: false,
                    }),
                },
                _ => Err(SendError {
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
                    info!(message_id = ?id, kind = %kind, "Mail sent.");
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
                        error!(message_id = ?id, kind = %kind, attempts, error = ?e.advice,
                            "Mail given up after its last attempt; fix the cause, then run `dirsync mail flush --retry-failed`.");
                        pass.failed += 1;
                    } else {
                        warn!(message_id = ?id, kind = %kind, attempts, retry_at, error = ?e.advice, "Mail not sent; will retry.");
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

/// `host:pid`: who is sending a row right now.
pub(super) fn lease_owner() -> String {
    crate::worker::worker_id()
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
/// `turn` says whether this process may send now: daemons sharing an
/// outbox take turns (one sends at a time, so the rate caps hold across
/// them); the others look again after `poll`.
pub async fn run_sender(
    outbox: Outbox,
    mailer: Mailer,
    opts: DeliverOptions,
    wake: Arc<tokio::sync::Notify>,
    poll: Duration,
    turn: impl Fn() -> futures::future::BoxFuture<'static, bool>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut down_for: i64 = 0;
    loop {
        let mut sleep = poll;
        if !turn().await {
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(sleep) => {}
            }
            continue;
        }
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
            Err(e) => warn!(error = ?e.to_string(), "Mail outbox unavailable; will try again."),
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
