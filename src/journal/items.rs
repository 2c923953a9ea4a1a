//! The journal's per-item side: the plan, each write's intent and outcome,
//! and the sealed passwords generated for a run.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Journal, Result};
use crate::core::Secret;

/// One plan item as journaled. `ident` is stable across re-plans of the
/// same file: `row:N` (the Nth roster entry) or `absent:KEY`.
#[derive(Clone, Debug, Default)]
pub struct ItemRecord {
    pub ident: String,
    pub line: Option<i64>,
    pub user_key: Option<String>,
    /// The change's name (`new`, `update`, …).
    pub change: String,
    /// The write was about to be made (its outcome may be missing).
    pub intent: bool,
    pub verdict: Option<String>,
    pub message: Option<String>,
}

impl Journal {
    /// Journal the whole plan (and what the plan alone decided) in one
    /// transaction, and move the run to `applying`.
    pub async fn record_plan(&self, id: i64, items: &[ItemRecord], breaches: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for chunk in items.chunks(100) {
            let values = vec!["(?, ?, ?, ?, ?, 0, ?, ?)"; chunk.len()].join(", ");
            let sql = self.sql(&format!(
                "INSERT INTO run_items (run_id, ident, line, user_key, change, intent, verdict, message) \
                 VALUES {values} ON CONFLICT (run_id, ident) DO NOTHING"
            ));
            let mut q = sqlx::query(&sql);
            for it in chunk {
                q = q
                    .bind(id)
                    .bind(it.ident.clone())
                    .bind(it.line)
                    .bind(it.user_key.clone())
                    .bind(it.change.clone())
                    .bind(it.verdict.clone())
                    .bind(it.message.clone());
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(&self.sql("UPDATE runs SET state = 'applying', breaches = ? WHERE id = ?"))
            .bind(breaches)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every journaled item of a run, by ident.
    pub async fn items(&self, id: i64) -> Result<HashMap<String, ItemRecord>> {
        let rows = sqlx::query(
            &self.sql("SELECT ident, line, user_key, change, intent, verdict, message FROM run_items WHERE run_id = ?"),
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let it = item_from_row(r)?;
            out.insert(it.ident.clone(), it);
        }
        Ok(out)
    }

    /// The rejected and failed items of a run, in file order.
    pub async fn problem_items(&self, id: i64) -> Result<Vec<ItemRecord>> {
        let rows = sqlx::query(&self.sql(
            "SELECT ident, line, user_key, change, intent, verdict, message FROM run_items \
             WHERE run_id = ? AND (change = 'error' OR verdict = 'failed' OR verdict = 'held') \
             ORDER BY line, ident",
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// Before a batch is applied: its changes, and the passwords generated
    /// for it (sealed), in one transaction.
    pub async fn record_intent(&self, id: i64, changes: &[(&str, &str)], secrets: &[(&str, &Secret)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (ident, secret) in secrets {
            let sealed = self.seal.seal(id, ident, secret)?;
            sqlx::query(&self.sql(
                "INSERT INTO run_secrets (run_id, ident, sealed) VALUES (?, ?, ?) \
                 ON CONFLICT (run_id, ident) DO NOTHING",
            ))
            .bind(id)
            .bind(*ident)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        }
        let sql = self.sql("UPDATE run_items SET intent = 1, change = ? WHERE run_id = ? AND ident = ?");
        for (ident, change) in changes {
            sqlx::query(&sql)
                .bind(*change)
                .bind(id)
                .bind(*ident)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// After a batch: each item's change, verdict and results message.
    pub async fn record_outcomes(&self, id: i64, outcomes: &[(&str, &str, &str, &str)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let sql = self.sql("UPDATE run_items SET change = ?, verdict = ?, message = ? WHERE run_id = ? AND ident = ?");
        for (ident, change, verdict, message) in outcomes {
            sqlx::query(&sql)
                .bind(*change)
                .bind(*verdict)
                .bind(*message)
                .bind(id)
                .bind(*ident)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The passwords generated for a run, unsealed.
    pub async fn secrets(&self, id: i64) -> Result<HashMap<String, Secret>> {
        let rows = sqlx::query(&self.sql("SELECT ident, sealed FROM run_secrets WHERE run_id = ?"))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let ident: String = r.try_get(0)?;
            let sealed: String = r.try_get(1)?;
            let secret = self.seal.open(id, &ident, &sealed)?;
            out.insert(ident, secret);
        }
        Ok(out)
    }

    /// Drop a finished run's passwords: once the run is done (and its
    /// credentials handed on) the journal need not hold them.
    pub async fn forget_secrets(&self, id: i64) -> Result<()> {
        sqlx::query(&self.sql("DELETE FROM run_secrets WHERE run_id = ?"))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drop the passwords of finished runs (a crash can come between a run's
    /// end and [`Journal::forget_secrets`]).
    pub async fn forget_finished_secrets(&self) -> Result<()> {
        sqlx::query("DELETE FROM run_secrets WHERE run_id IN (SELECT id FROM runs WHERE state = 'finished')")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn item_from_row(r: &AnyRow) -> Result<ItemRecord> {
    let intent: i64 = r.try_get(4)?;
    Ok(ItemRecord {
        ident: r.try_get(0)?,
        line: r.try_get(1)?,
        user_key: r.try_get(2)?,
        change: r.try_get(3)?,
        intent: intent != 0,
        verdict: r.try_get(5)?,
        message: r.try_get(6)?,
    })
}
