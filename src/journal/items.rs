//! The journal's per-item side: the plan, each write's intent and outcome,
//! the approvals that reopen held items, and the sealed passwords generated
//! for a run.

use std::collections::HashMap;
use std::fmt;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Journal, JournalError, Result};
use crate::core::plan::ChangeKind;
use crate::core::{Secret, UserKey, Verdict};

/// Which plan item a record is, stable across re-plans of the same file:
/// the Nth roster entry, or an account in scope that the file does not name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemId {
    Row(usize),
    /// Case-folded key.
    Absent(String),
}

impl ItemId {
    pub fn absent(key: &UserKey) -> ItemId {
        ItemId::Absent(key.folded().to_string())
    }

    fn parse(s: &str) -> Option<ItemId> {
        if let Some(n) = s.strip_prefix("row:") {
            return n.parse().ok().map(ItemId::Row);
        }
        s.strip_prefix("absent:").map(|k| ItemId::Absent(k.to_string()))
    }
}

/// As stored (and as the seal's associated data): `row:N` or `absent:KEY`.
impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemId::Row(n) => write!(f, "row:{n}"),
            ItemId::Absent(k) => write!(f, "absent:{k}"),
        }
    }
}

/// One plan item as journaled.
#[derive(Clone, Debug)]
pub struct ItemRecord {
    pub id: ItemId,
    pub line: Option<i64>,
    pub user_key: Option<String>,
    pub change: ChangeKind,
    /// What the change does, as shown to people ("title: Clerk → Accountant").
    /// An approval applies a held change only while it still reads the same.
    pub detail: Option<String>,
    /// The write was about to be made (its outcome may be missing).
    pub intent: bool,
    /// An operator approved this held item; it waits to be applied.
    pub approved: bool,
    pub verdict: Option<Verdict>,
    pub message: Option<String>,
}

/// An item's outcome, for [`Journal::record_outcomes`].
pub struct OutcomeRecord<'a> {
    pub id: &'a ItemId,
    pub change: ChangeKind,
    pub verdict: Verdict,
    pub message: &'a str,
}

/// Rows per multi-row statement: one round trip and one statement per
/// chunk instead of per item (100k outcomes took seconds one by one).
const CHUNK: usize = 200;
/// Keys per `IN (…)` list (intents, grouped by change).
const IN_CHUNK: usize = 500;

pub(super) const ITEM_COLUMNS: &str = "ident, line, user_key, change, detail, intent, approved, verdict, message";

impl Journal {
    /// Journal the whole plan (and what the plan alone decided) in one
    /// transaction, with the run's breaches, and move the run to `state`.
    pub async fn record_plan(
        &self,
        id: i64,
        items: &[ItemRecord],
        breaches: &[crate::core::plan::Breach],
        state: super::RunState,
    ) -> Result<()> {
        let breaches = serde_json::to_string(breaches).map_err(|e| JournalError::Query(format!("breaches: {e}")))?;
        let mut tx = self.begin().await?;
        for chunk in items.chunks(CHUNK) {
            let values = vec!["(?, ?, ?, ?, ?, ?, 0, 0, ?, ?)"; chunk.len()].join(", ");
            let sql = self.sql(&format!(
                "INSERT INTO run_items (run_id, {ITEM_COLUMNS}) VALUES {values} ON CONFLICT (run_id, ident) DO NOTHING"
            ));
            let mut q = sqlx::query(&sql);
            for it in chunk {
                q = q
                    .bind(id)
                    .bind(it.id.to_string())
                    .bind(it.line)
                    .bind(it.user_key.clone())
                    .bind(it.change.as_str())
                    .bind(it.detail.clone())
                    .bind(it.verdict.map(Verdict::as_str))
                    .bind(it.message.clone());
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(&self.sql("UPDATE runs SET state = ?, breaches = ? WHERE id = ?"))
            .bind(state.as_str())
            .bind(breaches)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every journaled item of a run.
    pub async fn items(&self, id: i64) -> Result<HashMap<ItemId, ItemRecord>> {
        let rows = sqlx::query(&self.sql(&format!("SELECT {ITEM_COLUMNS} FROM run_items WHERE run_id = ?")))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let it = item_from_row(id, r)?;
            out.insert(it.id.clone(), it);
        }
        Ok(out)
    }

    /// The rejected, failed and held items of a run, in file order.
    pub async fn problem_items(&self, id: i64) -> Result<Vec<ItemRecord>> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {ITEM_COLUMNS} FROM run_items WHERE run_id = ? \
             AND (change = 'error' OR verdict = 'failed' OR verdict = 'held') ORDER BY line, ident"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| item_from_row(id, r)).collect()
    }

    /// Before a batch is applied: its changes, and the passwords generated
    /// for it (sealed), in one transaction.
    pub async fn record_intent(
        &self,
        id: i64,
        changes: &[(&ItemId, ChangeKind)],
        secrets: &[(&ItemId, &Secret)],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        for (item, secret) in secrets {
            let ident = item.to_string();
            let sealed = self.seal.seal(id, &ident, secret)?;
            sqlx::query(&self.sql(
                "INSERT INTO run_secrets (run_id, ident, sealed) VALUES (?, ?, ?) \
                 ON CONFLICT (run_id, ident) DO NOTHING",
            ))
            .bind(id)
            .bind(ident)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        }
        // Grouped by change: one `IN` list per group and chunk.
        let mut by_change: HashMap<&str, Vec<String>> = HashMap::new();
        for (item, change) in changes {
            by_change.entry(change.as_str()).or_default().push(item.to_string());
        }
        for (change, idents) in &by_change {
            for chunk in idents.chunks(IN_CHUNK) {
                let sql = self.sql(&format!(
                    "UPDATE run_items SET intent = 1, change = ? WHERE run_id = ? AND ident IN ({})",
                    vec!["?"; chunk.len()].join(", ")
                ));
                let mut q = sqlx::query(&sql).bind(*change).bind(id);
                for ident in chunk {
                    q = q.bind(ident.as_str());
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// After a batch: each item's change, verdict and results message. An
    /// approved item is approved no more once it has its outcome.
    pub async fn record_outcomes(&self, id: i64, outcomes: &[OutcomeRecord<'_>]) -> Result<()> {
        let mut tx = self.begin().await?;
        for chunk in outcomes.chunks(CHUNK) {
            let sql = self.sql(&format!(
                "UPDATE run_items SET change = v.column2, verdict = v.column3, message = v.column4, approved = 0 \
                 FROM (VALUES {}) AS v WHERE run_items.run_id = ? AND run_items.ident = v.column1",
                vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
            ));
            let mut q = sqlx::query(&sql);
            for o in chunk {
                q = q
                    .bind(o.id.to_string())
                    .bind(o.change.as_str())
                    .bind(o.verdict.as_str())
                    .bind(o.message);
            }
            q.bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The passwords generated for a run, unsealed.
    pub async fn secrets(&self, id: i64) -> Result<HashMap<ItemId, Secret>> {
        let rows = sqlx::query(&self.sql("SELECT ident, sealed FROM run_secrets WHERE run_id = ?"))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let ident: String = r.try_get(0)?;
            let sealed: String = r.try_get(1)?;
            let secret = self.seal.open(id, &ident, &sealed)?;
            let item = ItemId::parse(&ident)
                .ok_or_else(|| JournalError::Query(format!("run {id}: unknown item {ident:?}")))?;
            out.insert(item, secret);
        }
        Ok(out)
    }

    /// Drop a run's passwords: once its credentials mails are queued (sealed
    /// in the outbox), the journal need not hold them.
    pub async fn forget_secrets(&self, id: i64) -> Result<()> {
        self.exec(sqlx::query(&self.sql("DELETE FROM run_secrets WHERE run_id = ?")).bind(id))
            .await?;
        Ok(())
    }
}

pub(super) fn item_from_row(run: i64, r: &AnyRow) -> Result<ItemRecord> {
    let ident: String = r.try_get(0)?;
    let change: String = r.try_get(3)?;
    let intent: i64 = r.try_get(5)?;
    let approved: i64 = r.try_get(6)?;
    let verdict: Option<String> = r.try_get(7)?;
    let bad = |what: &str| JournalError::Query(format!("run {run}, item {ident:?}: unknown {what}"));
    Ok(ItemRecord {
        id: ItemId::parse(&ident).ok_or_else(|| bad("item"))?,
        line: r.try_get(1)?,
        user_key: r.try_get(2)?,
        change: ChangeKind::parse(&change).ok_or_else(|| bad("change"))?,
        detail: r.try_get(4)?,
        intent: intent != 0,
        approved: approved != 0,
        verdict: match verdict {
            None => None,
            Some(v) => Some(Verdict::parse(&v).ok_or_else(|| bad("verdict"))?),
        },
        message: r.try_get(8)?,
    })
}

impl Journal {
    /// Drop the passwords of runs that have ended (a crash can come between
    /// a run's end and [`Journal::forget_secrets`]).
    pub async fn forget_ended_secrets(&self) -> Result<()> {
        sqlx::query(
            "DELETE FROM run_secrets WHERE run_id IN \
             (SELECT id FROM runs WHERE state NOT IN ('claimed', 'running', 'failed'))",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalLocation, RunState};

    #[tokio::test]
    async fn intents_and_outcomes_land_on_their_own_rows() -> Result<()> {
        let dir = tempfile::tempdir().expect("temp dir"); // ok: test
        let j = Journal::open(&JournalLocation {
            url: format!("sqlite://{}", dir.path().join("journal.db").display()),
            key_file: dir.path().join("journal.key"),
        })
        .await?;
        let id = 1;
        let n = 1200; // more than one `IN` chunk of intents of one change
        let ids: Vec<ItemId> = (0..n).map(ItemId::Row).collect();
        let plan: Vec<ItemRecord> = ids
            .iter()
            .map(|i| ItemRecord {
                id: i.clone(),
                line: None,
                user_key: None,
                change: ChangeKind::Add,
                detail: None,
                intent: false,
                approved: false,
                verdict: None,
                message: None,
            })
            .collect();
        j.record_plan(id, &plan, &[], RunState::Running).await?;
        // Two change kinds among the intents.
        let kind = |k: usize| {
            if k % 3 == 0 {
                ChangeKind::Update
            } else {
                ChangeKind::Add
            }
        };
        let intents: Vec<(&ItemId, ChangeKind)> = ids.iter().enumerate().map(|(k, i)| (i, kind(k))).collect();
        j.record_intent(id, &intents, &[]).await?;
        // Most outcomes alike, every tenth its own.
        let messages: Vec<String> = (0..n)
            .map(|k| match k {
                _ if k % 10 == 0 => format!("own message {k}"),
                1..=5 => "rare".to_string(),
                _ => "created".to_string(),
            })
            .collect();
        let verdict = |k: usize| if k % 7 == 0 { Verdict::Failed } else { Verdict::Done };
        let outcomes: Vec<OutcomeRecord<'_>> = ids
            .iter()
            .enumerate()
            .map(|(k, i)| OutcomeRecord {
                id: i,
                change: kind(k),
                verdict: verdict(k),
                message: &messages[k],
            })
            .collect();
        j.record_outcomes(id, &outcomes).await?;
        let stored = j.items(id).await?;
        assert_eq!(stored.len(), n);
        for (k, i) in ids.iter().enumerate() {
            let r = &stored[i];
            assert!(r.intent, "{i}");
            assert_eq!(r.change, kind(k), "{i}");
            assert_eq!(r.verdict, Some(verdict(k)), "{i}");
            assert_eq!(r.message.as_deref(), Some(messages[k].as_str()), "{i}");
        }
        Ok(())
    }
}
