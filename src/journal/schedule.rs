//! Scheduled changes (`[lifecycle]`): when something a run's plan put ahead
//! falls due (a joiner's start day, the day after a last day), and which
//! runs the daemon started to carry them out — a scheduled re-run of the
//! inbox's latest file. Only an inbox's latest file is ever re-run, so a
//! later file replaces an earlier one's schedule.

use std::collections::HashMap;

use sqlx::Row;

use super::runs::{run_from_row, CLI_INBOX, COLUMNS};
use super::{Journal, Result, RunRecord};

const TABLE: &str = "CREATE TABLE IF NOT EXISTS run_schedule (
        run_id BIGINT PRIMARY KEY,
        due BIGINT,
        rerun_of BIGINT)";

/// A run's schedule as the journal holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Unix milliseconds: the earliest time something of the run's plan
    /// falls due.
    pub due: Option<i64>,
    /// The run this one re-ran on its due day (a scheduled run).
    pub rerun_of: Option<i64>,
}

/// The states in which a run is an inbox's latest file, or will become it:
/// every state but a file refused as a whole, a duplicate, an abandoned
/// run and a preview.
const COUNTS: &str = "state NOT IN ('rejected', 'duplicate', 'abandoned', 'preview')";

pub(super) async fn create(pool: &sqlx::AnyPool) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(TABLE).execute(pool).await.map(|_| ())
}

impl Journal {
    /// Record when something of run `id`'s plan falls due (none: nothing);
    /// fenced like the run's other writes.
    pub async fn set_due(&self, id: i64, due_ms: Option<i64>) -> Result<()> {
        self.exec(
            sqlx::query(&self.sql(
                "INSERT INTO run_schedule (run_id, due) VALUES (?, ?) \
             ON CONFLICT (run_id) DO UPDATE SET due = excluded.due",
            ))
            .bind(id)
            .bind(due_ms),
        )
        .await?;
        Ok(())
    }

    /// Run `id` is the scheduled re-run of run `of`.
    pub async fn mark_rerun(&self, id: i64, of: i64) -> Result<()> {
        self.exec(
            sqlx::query(&self.sql(
                "INSERT INTO run_schedule (run_id, rerun_of) VALUES (?, ?) \
             ON CONFLICT (run_id) DO UPDATE SET rerun_of = excluded.rerun_of",
            ))
            .bind(id)
            .bind(of),
        )
        .await?;
        Ok(())
    }

    /// Run `id`'s schedule.
    pub async fn schedule(&self, id: i64) -> Result<Schedule> {
        let row = sqlx::query(&self.sql("SELECT due, rerun_of FROM run_schedule WHERE run_id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Schedule {
                due: r.try_get(0)?,
                rerun_of: r.try_get(1)?,
            },
            None => Schedule::default(),
        })
    }

    /// The runs among `ids` that are scheduled re-runs, with the run each re-ran.
    pub async fn reruns(&self, ids: &[i64]) -> Result<HashMap<i64, i64>> {
        let mut out = HashMap::new();
        let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(out);
        };
        let rows = sqlx::query(
            &self
                .sql("SELECT run_id, rerun_of FROM run_schedule WHERE run_id BETWEEN ? AND ? AND rerun_of IS NOT NULL"),
        )
        .bind(*lo)
        .bind(*hi)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let (id, of): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            if ids.contains(&id) {
                out.insert(id, of);
            }
        }
        Ok(out)
    }

    /// The inbox runs whose schedule is due at `now_ms`, each its inbox's
    /// latest file and applied (done, or waiting for approval), oldest
    /// first, with their due times. A newer file of the inbox — applied or
    /// still to run — takes the schedule over.
    pub async fn due_runs(&self, now_ms: i64) -> Result<Vec<(RunRecord, i64)>> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS}, s.due FROM runs JOIN run_schedule s ON s.run_id = runs.id \
             WHERE s.due IS NOT NULL AND s.due <= ? AND runs.inbox <> ? \
             AND runs.state IN ('done', 'awaiting-approval') \
             AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.inbox = runs.inbox AND n.id > runs.id AND n.{COUNTS}) \
             ORDER BY runs.id"
        )))
        .bind(now_ms)
        .bind(CLI_INBOX)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            // `s.due` comes right after the run's own columns.
            .map(|r| Ok((run_from_row(r)?, r.try_get::<i64, _>(COLUMNS.split(',').count())?)))
            .collect()
    }

    /// The earliest due time among the inboxes' latest applied runs.
    pub async fn next_due(&self) -> Result<Option<i64>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT MIN(s.due) FROM runs JOIN run_schedule s ON s.run_id = runs.id \
             WHERE s.due IS NOT NULL AND runs.inbox <> ? AND runs.state IN ('done', 'awaiting-approval') \
             AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.inbox = runs.inbox AND n.id > runs.id AND n.{COUNTS})"
        )))
        .bind(CLI_INBOX)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }
}
