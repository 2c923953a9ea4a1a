//! What the journal says in numbers, for `/metrics` and `/readyz`.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Journal, Result, RunState};

/// The journal's runs in numbers, read at one moment.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Runs per inbox and state.
    pub runs: BTreeMap<(String, RunState), u64>,
    /// Rows per change (`new`, `update`, …) over every run that ended a pass.
    pub changes: BTreeMap<String, u64>,
    /// Rows per result (`done`, `failed`, `held`, …).
    pub results: BTreeMap<String, u64>,
    /// Seconds from start to end of each run that ended.
    pub durations: Vec<f64>,
    /// Per inbox, when its newest `done` run ended (Unix seconds).
    pub last_success: BTreeMap<String, f64>,
    /// Held changes in runs that await approval.
    pub held_waiting: u64,
}

fn add(into: &mut BTreeMap<String, u64>, counts: &serde_json::Value) {
    if let Some(map) = counts.as_object() {
        for (k, v) in map {
            *into.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
        }
    }
}

impl Journal {
    /// The journal answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    pub async fn stats(&self) -> Result<RunStats> {
        let mut s = RunStats::default();
        let rows = sqlx::query("SELECT inbox, state, COUNT(*) FROM runs GROUP BY inbox, state")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let state: String = r.try_get(1)?;
            let n: i64 = r.try_get(2)?;
            if let Some(state) = RunState::parse(&state) {
                s.runs.insert((r.try_get(0)?, state), n.max(0) as u64);
            }
        }
        let rows = sqlx::query("SELECT counts, started, finished, inbox, state FROM runs WHERE finished IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let counts: Option<String> = r.try_get(0)?;
            if let Some(v) = counts.and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok()) {
                add(&mut s.changes, &v["changes"]);
                add(&mut s.results, &v["verdicts"]);
            }
            let started: Option<i64> = r.try_get(1)?;
            let finished: i64 = r.try_get(2)?;
            if let Some(started) = started {
                s.durations.push((finished - started).max(0) as f64 / 1000.0);
            }
            let state: String = r.try_get(4)?;
            if state == RunState::Done.as_str() {
                let inbox: String = r.try_get(3)?;
                let at = finished as f64 / 1000.0;
                let e = s.last_success.entry(inbox).or_insert(at);
                *e = e.max(at);
            }
        }
        let held: i64 = sqlx::query(
            "SELECT COUNT(*) FROM run_items WHERE verdict = 'held' AND run_id IN \
             (SELECT id FROM runs WHERE state = 'awaiting-approval')",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        s.held_waiting = held.max(0) as u64;
        Ok(s)
    }
}
