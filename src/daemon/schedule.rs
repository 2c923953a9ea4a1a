//! Scheduled changes carried out on their day (`[lifecycle]`): when what an
//! inbox's latest applied file put ahead falls due — a joiner's start day,
//! the day after a last day — the daemon runs that file again, without a new
//! file, through the same pipeline as a dropped one: a copy of the archived
//! file is claimed into `processing/` (forced, so it is not a duplicate),
//! journaled as a scheduled re-run, run, filed away, and its results mailed
//! to the inbox's submitter. A later file for the inbox wins: only the
//! latest file is ever re-run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::inboxes::inbox_config;
use super::job::journal_claim;
use super::shared::Shared;
use crate::clock::{now_ms, timestamp};
use crate::inbox::folder::{free_name, PROCESSING};
use crate::inbox::FolderInbox;
use crate::journal::RunRecord;
use crate::leases::file_lease;

/// The longest the daemon goes without looking at the journal's schedule
/// (a run it did not make — the console, another daemon — may add one).
const LOOK_AGAIN: Duration = Duration::from_secs(300);

/// When the daemon next looks for scheduled changes that are due.
pub(super) struct Schedule {
    next: Instant,
    /// Not looked yet (the first look is logged).
    first: bool,
}

impl Schedule {
    /// Look at once: what fell due while the daemon was stopped is done at start.
    pub(super) fn new() -> Schedule {
        Schedule {
            next: Instant::now(),
            first: true,
        }
    }

    /// Completes when it is time to look.
    pub(super) async fn wait(&self) {
        tokio::time::sleep_until(self.next).await
    }

    /// Start a scheduled re-run for every inbox whose latest file has
    /// something due; returns the new runs' ids. Then sleep until the next
    /// due time (at most [`LOOK_AGAIN`]).
    pub(super) async fn start_due(&mut self, sh: &Arc<Shared>) -> Vec<i64> {
        let now = now_ms();
        let mut started = Vec::new();
        // One daemon at a time among those sharing the journal.
        let lease = crate::leases::schedule_lease();
        match sh.leases.take(&lease, None).await {
            Ok(true) => {}
            Ok(false) => {
                self.next = Instant::now() + sh.leases.ttl().min(LOOK_AGAIN);
                return started;
            }
            Err(e) => {
                warn!(error = %e, "Cannot take the schedule's lease; trying again later.");
                self.next = Instant::now() + sh.leases.ttl().min(LOOK_AGAIN);
                return started;
            }
        }
        match sh.journal.due_runs(now).await {
            Ok(due) => {
                for (run, at) in due {
                    if let Some(id) = rerun(sh, &run, at).await {
                        started.push(id);
                    }
                }
            }
            Err(e) => warn!(error = %e, "Cannot read the journal's scheduled changes; trying again later."),
        }
        sh.leases.release(&lease).await;
        let next_due = sh.journal.next_due().await.ok().flatten();
        if std::mem::take(&mut self.first) {
            let next = next_due.map(timestamp).unwrap_or_else(|| "none".into());
            info!(started = started.len(), next_due = %next, "Looked for scheduled changes at start.");
        }
        let wait = match next_due {
            Some(at) => Duration::from_millis(at.saturating_sub(now_ms()).max(1000) as u64),
            None => LOOK_AGAIN,
        };
        self.next = Instant::now() + wait.min(LOOK_AGAIN);
        started
    }
}

/// Claim a copy of `run`'s file as a new, forced run marked as its
/// scheduled re-run. `None` when it cannot be (logged).
async fn rerun(sh: &Shared, run: &RunRecord, due: i64) -> Option<i64> {
    let config = sh.config();
    let Some(cfg) = inbox_config(&config, &run.inbox) else {
        warn!(run_id = run.id, inbox = ?run.inbox, "Scheduled changes are due but the run's inbox is no longer configured.");
        return None;
    };
    let inbox = FolderInbox::new(&cfg);
    let dir = inbox.dir.join(PROCESSING);
    let path = free_name(&dir, &run.file_name, "scheduled");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run.file_name.clone());
    // Under the file's lease: no daemon takes the copy for an unjournaled claim.
    let lease = file_lease(inbox.name(), &name);
    if !sh.leases.take(&lease, None).await.unwrap_or(false) {
        return None;
    }
    let id = match place_copy(&dir, &path, &name, run).await {
        Ok(()) => journal_claim(sh, &inbox, &path, &name, true, None).await,
        Err(e) => {
            warn!(run_id = run.id, file = ?run.file_path(), error = %e, "Scheduled changes are due but the run's file cannot be copied into processing/; trying again later.");
            None
        }
    };
    sh.leases.release(&lease).await;
    let id = id?;
    if let Err(e) = sh.journal.mark_rerun(id, run.id).await {
        warn!(run_id = id, error = %e, "Cannot mark the run as a scheduled re-run; it runs as a forced one.");
    }
    info!(run_id = id, rerun_of = run.id, inbox = ?run.inbox, file = ?run.file_name, due = %timestamp(due), "Scheduled changes are due: the inbox's latest file runs again.");
    Some(id)
}

/// Copy the run's (archived) file into the inbox's `processing/`, its
/// force marker first, as a claim would leave it: a crash before it is
/// journaled leaves a forced claim that the next start runs.
async fn place_copy(dir: &Path, path: &Path, name: &str, run: &RunRecord) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let bytes = tokio::fs::read(run.file_path()).await?;
    let tmp = dir.join(format!(".{name}.part"));
    tokio::fs::write(dir.join(format!("{name}.force")), b"").await?;
    tokio::fs::write(&tmp, &bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
