//! Activation tokens: the one-time links that let a new user set their own
//! password (`[passwords] deliver = "activation"`).
//!
//! A token is stored only as its SHA-256 (hex): a copy of the journal holds
//! no usable link. Each is issued for one plan item of a run (or a resend,
//! `ident = resend:MS`), expires, is used at most once — claimed by one
//! conditional UPDATE, so of two concurrent uses only one wins — and is
//! voided when a newer link is issued for the same account. In a shared
//! (PostgreSQL) journal every daemon sees the same tokens.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Journal, Result};

const TABLE: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS activations (
        run_id BIGINT NOT NULL,
        ident TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        policy TEXT NOT NULL,
        target TEXT NOT NULL,
        user_key TEXT NOT NULL,
        email TEXT,
        issued BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        used_at BIGINT,
        voided_at BIGINT,
        PRIMARY KEY (run_id, ident))",
    "CREATE UNIQUE INDEX IF NOT EXISTS activations_token ON activations (token_hash)",
    "CREATE INDEX IF NOT EXISTS activations_key ON activations (policy, user_key)",
];

/// Create the table (part of the journal's schema).
pub(super) async fn create_table(pool: &sqlx::AnyPool) -> std::result::Result<(), sqlx::Error> {
    for stmt in TABLE {
        sqlx::query(stmt).execute(pool).await?;
    }
    Ok(())
}

/// How a token is stored: SHA-256 of its text, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A link about to be mailed, for [`Journal::issue_activation`].
pub struct NewActivation<'a> {
    pub run_id: i64,
    /// `row:N` for a run's new account, `resend:MS` for a resend.
    pub ident: &'a str,
    pub token_hash: &'a str,
    pub policy: &'a str,
    pub target: &'a str,
    pub user_key: &'a str,
    pub email: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
    pub expires: i64,
}

/// Where a link stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationState {
    Pending,
    Used,
    Voided,
    Expired,
}

impl ActivationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivationState::Pending => "pending",
            ActivationState::Used => "used",
            ActivationState::Voided => "voided",
            ActivationState::Expired => "expired",
        }
    }
}

/// One issued link (never the token itself).
#[derive(Clone, Debug)]
pub struct ActivationRecord {
    pub run_id: i64,
    pub ident: String,
    pub policy: String,
    pub target: String,
    pub user_key: String,
    pub email: Option<String>,
    /// Unix seconds.
    pub issued: i64,
    pub expires: i64,
    pub used_at: Option<i64>,
    pub voided_at: Option<i64>,
}

impl ActivationRecord {
    pub fn state(&self, now: i64) -> ActivationState {
        if self.used_at.is_some() {
            ActivationState::Used
        } else if self.voided_at.is_some() {
            ActivationState::Voided
        } else if self.expires <= now {
            ActivationState::Expired
        } else {
            ActivationState::Pending
        }
    }
}

const COLUMNS: &str = "run_id, ident, policy, target, user_key, email, issued, expires, used_at, voided_at";

fn record(r: &AnyRow) -> Result<ActivationRecord> {
    Ok(ActivationRecord {
        run_id: r.try_get(0)?,
        ident: r.try_get(1)?,
        policy: r.try_get(2)?,
        target: r.try_get(3)?,
        user_key: r.try_get(4)?,
        email: r.try_get(5)?,
        issued: r.try_get(6)?,
        expires: r.try_get(7)?,
        used_at: r.try_get(8)?,
        voided_at: r.try_get(9)?,
    })
}

impl Journal {
    /// Journal a link before its mail is queued, voiding every other open
    /// link of the same account. Issuing again for the same run item (a
    /// resumed run whose first token was never sealed) replaces its hash
    /// while it is unused.
    pub async fn issue_activation(&self, a: &NewActivation<'_>) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(&self.sql(
            "INSERT INTO activations (run_id, ident, token_hash, policy, target, user_key, email, issued, expires) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, ident) DO UPDATE SET \
             token_hash = excluded.token_hash, issued = excluded.issued, expires = excluded.expires \
             WHERE activations.used_at IS NULL",
        ))
        .bind(a.run_id)
        .bind(a.ident)
        .bind(a.token_hash)
        .bind(a.policy)
        .bind(a.target)
        .bind(a.user_key)
        .bind(a.email)
        .bind(a.now)
        .bind(a.expires)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&self.sql(
            "UPDATE activations SET voided_at = ? WHERE policy = ? AND LOWER(user_key) = LOWER(?) \
             AND used_at IS NULL AND voided_at IS NULL AND NOT (run_id = ? AND ident = ?)",
        ))
        .bind(a.now)
        .bind(a.policy)
        .bind(a.user_key)
        .bind(a.run_id)
        .bind(a.ident)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The link a token opens, whatever its state.
    pub async fn activation(&self, token_hash: &str) -> Result<Option<ActivationRecord>> {
        let row = sqlx::query(&self.sql(&format!("SELECT {COLUMNS} FROM activations WHERE token_hash = ?")))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Claim a link for use at `now`: true for the one caller that wins
    /// (the link was pending), false for every other.
    pub async fn claim_activation(&self, token_hash: &str, now: i64) -> Result<bool> {
        let n = sqlx::query(&self.sql(
            "UPDATE activations SET used_at = ? WHERE token_hash = ? AND used_at IS NULL \
             AND voided_at IS NULL AND expires > ?",
        ))
        .bind(now)
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Give back a claim whose password the target refused: the link works
    /// again (until it expires).
    pub async fn release_activation(&self, token_hash: &str, claimed_at: i64) -> Result<()> {
        sqlx::query(&self.sql("UPDATE activations SET used_at = NULL WHERE token_hash = ? AND used_at = ?"))
            .bind(token_hash)
            .bind(claimed_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The links issued by a run (and resends of its accounts' links), by key.
    pub async fn run_activations(&self, run_id: i64) -> Result<Vec<ActivationRecord>> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM activations WHERE run_id = ? ORDER BY LOWER(user_key), issued"
        )))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// The accounts (keys, lower case) of a policy that were given a link
    /// and have used none: their users have not set a password yet.
    pub async fn awaiting_activation(&self, policy: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(&self.sql(
            "SELECT LOWER(user_key) FROM activations WHERE policy = ? \
             GROUP BY LOWER(user_key) HAVING COUNT(used_at) = 0",
        ))
        .bind(policy)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// The newest link of an account under a policy.
    pub async fn latest_activation(&self, policy: &str, user_key: &str) -> Result<Option<ActivationRecord>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM activations WHERE policy = ? AND LOWER(user_key) = LOWER(?) \
             ORDER BY issued DESC, ident DESC LIMIT 1"
        )))
        .bind(policy)
        .bind(user_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }
}
