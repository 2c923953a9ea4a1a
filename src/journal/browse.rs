//! Runs and their rows a page at a time, filtered, for the web console and
//! its API: a 100k-row run is never read whole to show 100 of its rows.

use sqlx::Row;

use super::items::{item_from_row, ITEM_COLUMNS};
use super::runs::{run_from_row, COLUMNS};
use super::{ItemRecord, Journal, Result, RunRecord, RunState};

/// Which runs to list.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub inbox: Option<String>,
    pub state: Option<RunState>,
    /// Claimed at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Claimed before (Unix ms).
    pub until_ms: Option<i64>,
}

/// Which rows of a run to list.
#[derive(Clone, Debug, Default)]
pub struct RowFilter {
    /// Only rejected, failed and held rows ("show only errors").
    pub problems_only: bool,
    /// Only the changes a safety limit held.
    pub held_only: bool,
    /// Rows whose key contains this (case-insensitive).
    pub key: Option<String>,
}

/// One page of a longer list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many match in all.
    pub total: i64,
}

impl Journal {
    /// Runs matching `f`, newest first.
    pub async fn list_runs(&self, f: &RunFilter, limit: i64, offset: i64) -> Result<Page<RunRecord>> {
        let mut wh = vec!["1 = 1"];
        if f.inbox.is_some() {
            wh.push("inbox = ?");
        }
        if f.state.is_some() {
            wh.push("state = ?");
        }
        if f.since_ms.is_some() {
            wh.push("claimed_at >= ?");
        }
        if f.until_ms.is_some() {
            wh.push("claimed_at < ?");
        }
        let wh = wh.join(" AND ");
        let count_sql = self.sql(&format!("SELECT COUNT(*) FROM runs WHERE {wh}"));
        let list_sql = self.sql(&format!(
            "SELECT {COLUMNS} FROM runs WHERE {wh} ORDER BY id DESC LIMIT ? OFFSET ?"
        ));
        macro_rules! bind_filter {
            ($q:expr) => {{
                let mut q = $q;
                if let Some(i) = &f.inbox {
                    q = q.bind(i.clone());
                }
                if let Some(s) = f.state {
                    q = q.bind(s.as_str());
                }
                if let Some(t) = f.since_ms {
                    q = q.bind(t);
                }
                if let Some(t) = f.until_ms {
                    q = q.bind(t);
                }
                q
            }};
        }
        let total: i64 = bind_filter!(sqlx::query(&count_sql))
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let rows = bind_filter!(sqlx::query(&list_sql))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(run_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    /// Runs in `states`, oldest first (the dashboard's "waiting" and
    /// "in progress" lists).
    pub async fn runs_in(&self, states: &[RunState], limit: i64) -> Result<Vec<RunRecord>> {
        let marks = vec!["?"; states.len().max(1)].join(", ");
        let sql = self.sql(&format!(
            "SELECT {COLUMNS} FROM runs WHERE state IN ({marks}) ORDER BY id LIMIT ?"
        ));
        let mut q = sqlx::query(&sql);
        if states.is_empty() {
            q = q.bind("");
        }
        for s in states {
            q = q.bind(s.as_str());
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The newest run of each inbox.
    pub async fn last_run_per_inbox(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE state <> 'preview' GROUP BY inbox)"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// A run's journaled rows matching `f`, in file order.
    pub async fn list_rows(&self, run: i64, f: &RowFilter, limit: i64, offset: i64) -> Result<Page<ItemRecord>> {
        let mut wh = String::from("run_id = ?");
        if f.problems_only {
            wh.push_str(" AND (change = 'error' OR verdict IN ('failed', 'held'))");
        }
        if f.held_only {
            wh.push_str(" AND verdict = 'held'");
        }
        let pattern = f.key.as_ref().map(|k| {
            let escaped = k
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        if pattern.is_some() {
            wh.push_str(" AND LOWER(user_key) LIKE ? ESCAPE '\\'");
        }
        let count_sql = self.sql(&format!("SELECT COUNT(*) FROM run_items WHERE {wh}"));
        let list_sql = self.sql(&format!(
            "SELECT {ITEM_COLUMNS} FROM run_items WHERE {wh} ORDER BY line IS NULL, line, ident LIMIT ? OFFSET ?"
        ));
        let mut count = sqlx::query(&count_sql).bind(run);
        let mut list = sqlx::query(&list_sql).bind(run);
        if let Some(p) = &pattern {
            count = count.bind(p.clone());
            list = list.bind(p.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get(0)?;
        let rows = list.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let items = rows.iter().map(|r| item_from_row(run, r)).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    /// How many of a run's rows have an outcome (its progress), and how many it has.
    pub async fn progress(&self, run: i64) -> Result<(i64, i64)> {
        let row = sqlx::query(&self.sql("SELECT COUNT(verdict), COUNT(*) FROM run_items WHERE run_id = ?"))
            .bind(run)
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// A run's counts per change and result, as journaled when it ended a pass.
    pub async fn counts(&self, run: i64) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query(&self.sql("SELECT counts FROM runs WHERE id = ?"))
            .bind(run)
            .fetch_optional(&self.pool)
            .await?;
        let text: Option<String> = match row {
            Some(r) => r.try_get(0)?,
            None => None,
        };
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Console previews a process on this host began and died before
    /// finishing (their worker is gone): abandoned, with why. Their ids.
    pub async fn abandon_dead_previews(&self, now_ms: i64) -> Result<Vec<i64>> {
        let host = format!("{}:", crate::worker::hostname());
        let rows = sqlx::query(
            &self.sql("SELECT id, worker FROM runs WHERE state = 'preview' AND finished IS NULL AND inbox <> ?"),
        )
        .bind(super::CLI_INBOX)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let worker: Option<String> = r.try_get(1)?;
            let dead = worker
                .as_deref()
                .and_then(|w| w.strip_prefix(&host))
                .is_some_and(|pid| {
                    pid != std::process::id().to_string() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                });
            if dead {
                self.mark_abandoned(
                    id,
                    "the daemon stopped while checking this upload; upload it again",
                    now_ms,
                )
                .await?;
                out.push(id);
            }
        }
        Ok(out)
    }
}
