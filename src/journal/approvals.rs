//! Decisions on held changes: who approved, rejected (or tried to approve,
//! and was refused) which classes of a run, and when.

use sqlx::Row;

use super::{Journal, JournalError, Result, RunState};
use crate::core::plan::ChangeKind;
use crate::core::Class;

/// What an operator decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    /// An approval refused because the plan changed since it was shown.
    Refused,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Refused => "refused",
        }
    }
    fn parse(s: &str) -> Option<Decision> {
        [Decision::Approve, Decision::Reject, Decision::Refused]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One decision as journaled.
#[derive(Clone, Debug)]
pub struct Approval {
    /// 1, 2, … within the run.
    pub seq: i64,
    pub decision: Decision,
    pub classes: Vec<Class>,
    pub by: String,
    /// Unix milliseconds.
    pub at: i64,
    pub note: Option<String>,
}

fn class_list(classes: &[Class]) -> String {
    classes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
}

impl Journal {
    /// The decisions on a run, oldest first.
    pub async fn approvals(&self, run: i64) -> Result<Vec<Approval>> {
        let rows =
            sqlx::query(&self.sql(
                "SELECT seq, decision, classes, by_name, at, note FROM run_approvals WHERE run_id = ? ORDER BY seq",
            ))
            .bind(run)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let decision: String = r.try_get(1)?;
            let classes: String = r.try_get(2)?;
            out.push(Approval {
                seq: r.try_get(0)?,
                decision: Decision::parse(&decision)
                    .ok_or_else(|| JournalError::Query(format!("run {run}: unknown decision {decision:?}")))?,
                classes: classes
                    .split(',')
                    .filter_map(|c| Class::ALL.into_iter().find(|k| k.as_str() == c))
                    .collect(),
                by: r.try_get(3)?,
                at: r.try_get(4)?,
                note: r.try_get(5)?,
            });
        }
        Ok(out)
    }

    /// Record a decision; for an approval, reopen the run's held items of
    /// those classes and set it running again, in one transaction. Fails
    /// when the run no longer awaits approval (someone else decided).
    pub async fn decide(&self, run: i64, a: &Approval) -> Result<i64> {
        let mut tx = self.begin().await?;
        // Write first: a SQLite transaction that reads before it writes
        // fails at once ("database is locked") when another process wrote
        // meanwhile, instead of waiting for its turn.
        sqlx::query(&self.sql(
            "INSERT INTO run_approvals (run_id, seq, decision, classes, by_name, at, note) \
             SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ? FROM run_approvals WHERE run_id = ?",
        ))
        .bind(run)
        .bind(a.decision.as_str())
        .bind(class_list(&a.classes))
        .bind(&a.by)
        .bind(a.at)
        .bind(a.note.as_deref())
        .bind(run)
        .execute(&mut *tx)
        .await?;
        let seq: i64 = sqlx::query(&self.sql("SELECT MAX(seq) FROM run_approvals WHERE run_id = ?"))
            .bind(run)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let next = match a.decision {
            Decision::Approve => Some(RunState::Running),
            Decision::Reject => Some(RunState::Done),
            Decision::Refused => None,
        };
        if let Some(next) = next {
            let moved = sqlx::query(&self.sql("UPDATE runs SET state = ?, note = ? WHERE id = ? AND state = ?"))
                .bind(next.as_str())
                .bind(a.note.as_deref())
                .bind(run)
                .bind(RunState::AwaitingApproval.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved != 1 {
                return Err(JournalError::Query(format!(
                    "run {run} no longer awaits approval (decided meanwhile); see `dirsync runs show {run}`"
                )));
            }
        }
        if a.decision == Decision::Approve {
            let sql = self.sql(
                "UPDATE run_items SET approved = 1, verdict = NULL WHERE run_id = ? AND verdict = 'held' AND change = ?",
            );
            for class in &a.classes {
                sqlx::query(&sql)
                    .bind(run)
                    .bind(ChangeKind::of_class(*class).as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(seq)
    }
}
