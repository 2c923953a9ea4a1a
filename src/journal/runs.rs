//! Runs as the journal holds them: one per file, from the command line or an
//! inbox, with a state that says what is left to do.

use std::path::{Path, PathBuf};

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Journal, JournalError, Result, RunState};
use crate::core::plan::Breach;

/// The `inbox` of a run started from the command line (`check`, `apply`).
pub const CLI_INBOX: &str = "(cli)";

/// The states a run ends a pass in, with what the journal records then.
pub struct Terminal<'a> {
    pub state: RunState,
    pub summary: &'a str,
    /// The counts per change and per result, as JSON
    /// (`{"changes": {"new": 3}, "verdicts": {"done": 3}}`), for metrics.
    pub counts: Option<&'a str>,
    pub note: Option<&'a str>,
    pub now_ms: i64,
}

/// One run as the journal holds it.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: i64,
    /// The inbox it came from, or [`CLI_INBOX`].
    pub inbox: String,
    /// The name the file was dropped with (or given on the command line).
    pub file_name: String,
    /// The file the run reads: `processing/NAME` in an inbox, the given
    /// path from the command line.
    pub claimed: PathBuf,
    pub sha256: String,
    pub policy: String,
    pub target: String,
    pub state: RunState,
    /// Apply even if an identical file was applied before (`.force`).
    pub forced: bool,
    /// `--allow-over-limit`: classes over their limits are applied.
    pub allow_over_limit: bool,
    /// Unix milliseconds.
    pub claimed_at: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    /// Counts per change and result ("3 new, 1 error (3 done, 1 skipped)").
    pub summary: Option<String>,
    /// Safety-limit breaches of the original plan.
    pub breaches: Vec<Breach>,
    /// Where the daemon files it: `archive/DATE/NAME` or `rejected/NAME`.
    pub dest: Option<PathBuf>,
    /// The daemon has moved the file (and its results) to `dest`.
    pub filed: bool,
    /// Where the results file is.
    pub results: Option<PathBuf>,
    /// Who gets the results mail.
    pub submitter: Option<String>,
    pub superseded_by: Option<i64>,
    /// Why the run ended as it did, for `dirsync runs show`.
    pub note: Option<String>,
    /// `host:pid` of the process that last worked on it.
    pub worker: Option<String>,
}

impl RunRecord {
    pub fn from_cli(&self) -> bool {
        self.inbox == CLI_INBOX
    }

    /// Where the run's file is now.
    pub fn file_path(&self) -> &Path {
        match (&self.dest, self.filed) {
            (Some(d), true) => d,
            _ => &self.claimed,
        }
    }
}

/// A new run, before it has an id.
pub struct NewRun<'a> {
    pub inbox: &'a str,
    pub file_name: &'a str,
    pub claimed: &'a Path,
    pub sha256: &'a str,
    pub policy: &'a str,
    pub target: &'a str,
    pub forced: bool,
    pub allow_over_limit: bool,
    /// A preview (`check`): the run starts in state `preview`.
    pub preview: bool,
    pub results: Option<&'a Path>,
    pub submitter: Option<&'a str>,
    pub now_ms: i64,
}

pub(super) const COLUMNS: &str =
    "id, inbox, file_name, claimed, sha256, policy, target, state, forced, allow_over_limit, \
                       claimed_at, started, finished, summary, breaches, dest, filed, results, submitter, \
                       superseded_by, note, worker";

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Journal {
    /// Record a file as a new run; returns its id.
    pub async fn create_run(&self, r: &NewRun<'_>) -> Result<i64> {
        // Ids are small integers people can type; a second daemon sharing a
        // PostgreSQL journal that takes the same id makes the insert fail,
        // and the next try takes the next one.
        let state = if r.preview {
            RunState::Preview
        } else {
            RunState::Claimed
        };
        for _ in 0..5 {
            let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM runs")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            let res = sqlx::query(&self.sql(
                "INSERT INTO runs (id, inbox, file_name, claimed, sha256, policy, target, state, forced, \
                 allow_over_limit, claimed_at, results, submitter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(id)
            .bind(r.inbox)
            .bind(r.file_name)
            .bind(path_text(r.claimed))
            .bind(r.sha256)
            .bind(r.policy)
            .bind(r.target)
            .bind(state.as_str())
            .bind(i64::from(r.forced))
            .bind(i64::from(r.allow_over_limit))
            .bind(r.now_ms)
            .bind(r.results.map(path_text))
            .bind(r.submitter)
            .execute(&self.pool)
            .await;
            match res {
                Ok(_) => return Ok(id),
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JournalError::Query("could not allocate a run id; try again".into()))
    }

    pub async fn run(&self, id: i64) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// Inbox runs the daemon has work on: resumable, or ended and not yet
    /// filed away. Oldest first.
    pub async fn unfinished_runs(&self) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM runs WHERE inbox <> ? AND state <> 'preview' \
             AND (filed = 0 OR state IN ('claimed', 'running', 'failed')) ORDER BY id"
        )))
        .bind(CLI_INBOX)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The files inbox runs read that are not filed away yet: a file in
    /// `processing/` that is none of these was never journaled.
    pub async fn unfiled_claims(&self) -> Result<std::collections::HashSet<PathBuf>> {
        let rows =
            sqlx::query(&self.sql("SELECT claimed FROM runs WHERE inbox <> ? AND state <> 'preview' AND filed = 0"))
                .bind(CLI_INBOX)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map(PathBuf::from).map_err(JournalError::from))
            .collect()
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(&self.sql(&format!("SELECT {COLUMNS} FROM runs ORDER BY id DESC LIMIT ?")))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// An earlier run that applied a file with these bytes under this policy.
    pub async fn applied_before(&self, sha256: &str, policy: &str, not_id: i64) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM runs WHERE sha256 = ? AND policy = ? AND id <> ? \
             AND state IN ('done', 'awaiting-approval', 'superseded') ORDER BY id DESC LIMIT 1"
        )))
        .bind(sha256)
        .bind(policy)
        .bind(not_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// An unfinished command-line run of these bytes under this policy:
    /// `apply` of the same file again resumes it.
    pub async fn unfinished_cli_run(&self, sha256: &str, policy: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM runs WHERE sha256 = ? AND policy = ? AND inbox = ? \
             AND state IN ('claimed', 'running', 'failed') ORDER BY id DESC LIMIT 1"
        )))
        .bind(sha256)
        .bind(policy)
        .bind(CLI_INBOX)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// The newest run of this file (same inbox, name and bytes) that was not
    /// abandoned: an SFTP claim handed over again finds its run here.
    pub async fn latest_run_of(&self, inbox: &str, file_name: &str, sha256: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(&self.sql(&format!(
            "SELECT {COLUMNS} FROM runs WHERE inbox = ? AND file_name = ? AND sha256 = ? \
             AND state <> 'abandoned' ORDER BY id DESC LIMIT 1"
        )))
        .bind(inbox)
        .bind(file_name)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// A newer run of the same inbox and policy supersedes the runs still
    /// awaiting approval there. Returns their ids.
    pub async fn supersede_waiting(&self, newer: &RunRecord) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            &self.sql("SELECT id FROM runs WHERE inbox = ? AND policy = ? AND id < ? AND state = 'awaiting-approval'"),
        )
        .bind(&newer.inbox)
        .bind(&newer.policy)
        .bind(newer.id)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        for id in &ids {
            self.exec(
                sqlx::query(&self.sql(
                    "UPDATE runs SET state = 'superseded', superseded_by = ?, \
                 note = ? WHERE id = ? AND state = 'awaiting-approval'",
                ))
                .bind(newer.id)
                .bind(format!(
                    "superseded by run {} ({}): its held changes are no longer waiting",
                    newer.id, newer.file_name
                ))
                .bind(*id),
            )
            .await?;
        }
        Ok(ids)
    }

    /// The run starts (or resumes) work.
    pub async fn mark_started(&self, id: i64, now_ms: i64) -> Result<()> {
        self.exec(
            sqlx::query(&self.sql("UPDATE runs SET started = COALESCE(started, ?), worker = ? WHERE id = ?"))
                .bind(now_ms)
                .bind(&self.worker)
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// The run ended this pass in `t.state`.
    pub async fn mark_state(&self, id: i64, t: &Terminal<'_>) -> Result<()> {
        self.exec(
            sqlx::query(
                &self.sql("UPDATE runs SET state = ?, summary = ?, counts = ?, note = ?, finished = ? WHERE id = ?"),
            )
            .bind(t.state.as_str())
            .bind(t.summary)
            .bind(t.counts)
            .bind(t.note)
            .bind(t.now_ms)
            .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Where the daemon files the run, recorded before the files move.
    pub async fn set_dest(&self, id: i64, dest: &Path) -> Result<()> {
        self.exec(
            sqlx::query(&self.sql("UPDATE runs SET dest = ? WHERE id = ?"))
                .bind(path_text(dest))
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// The files are at `dest`, the results beside them.
    pub async fn mark_filed(&self, id: i64, results: &Path) -> Result<()> {
        self.exec(
            sqlx::query(&self.sql("UPDATE runs SET filed = 1, results = ? WHERE id = ?"))
                .bind(path_text(results))
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Where a run writes its results.
    pub async fn set_results(&self, id: i64, results: &Path) -> Result<()> {
        self.exec(
            sqlx::query(&self.sql("UPDATE runs SET results = ? WHERE id = ?"))
                .bind(path_text(results))
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// A run that cannot go on (its file vanished), with why.
    pub async fn mark_abandoned(&self, id: i64, note: &str, now_ms: i64) -> Result<()> {
        self.exec(sqlx::query(&self.sql(
            "UPDATE runs SET state = 'abandoned', filed = 1, note = ?, finished = COALESCE(finished, ?) WHERE id = ?",
        ))
        .bind(note)
        .bind(now_ms)
        .bind(id)
        )
        .await?;
        Ok(())
    }
}

pub(super) fn run_from_row(r: &AnyRow) -> Result<RunRecord> {
    let state: String = r.try_get(7)?;
    let forced: i64 = r.try_get(8)?;
    let allow: i64 = r.try_get(9)?;
    let claimed: String = r.try_get(3)?;
    let breaches: Option<String> = r.try_get(14)?;
    let dest: Option<String> = r.try_get(15)?;
    let filed: i64 = r.try_get(16)?;
    let results: Option<String> = r.try_get(17)?;
    let id: i64 = r.try_get(0)?;
    let state = RunState::parse(&state)
        .ok_or_else(|| JournalError::Query(format!("run {id} has an unknown state {state:?}")))?;
    let breaches = match breaches.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| JournalError::Query(format!("run {id}: its breaches cannot be read: {e}")))?,
    };
    Ok(RunRecord {
        id,
        inbox: r.try_get(1)?,
        file_name: r.try_get(2)?,
        claimed: PathBuf::from(claimed),
        sha256: r.try_get(4)?,
        policy: r.try_get(5)?,
        target: r.try_get(6)?,
        state,
        forced: forced != 0,
        allow_over_limit: allow != 0,
        claimed_at: r.try_get(10)?,
        started: r.try_get(11)?,
        finished: r.try_get(12)?,
        summary: r.try_get(13)?,
        breaches,
        dest: dest.map(PathBuf::from),
        filed: filed != 0,
        results: results.map(PathBuf::from),
        submitter: r.try_get(18)?,
        superseded_by: r.try_get(19)?,
        note: r.try_get(20)?,
        worker: r.try_get(21)?,
    })
}
