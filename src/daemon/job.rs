//! One run's life in the daemon: claimed file → journal → (wait for the
//! target's lock) → the one pipeline (`sync::drive`) → filed away with its
//! results. A run whose target failed stays in `processing/` and is tried
//! again; every other end (done, awaiting approval, rejected, duplicate) is
//! filed into `archive/DATE/` or `rejected/`.
//!
//! Among daemons sharing a journal, a run is worked on by the holder of its
//! lease alone, and runs against one target by the holder of the target's
//! lease alone; the journal's writes are fenced by both (see
//! [`crate::leases`]).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{debug, error, info, info_span, warn, Instrument};

use super::inboxes::inbox_config;
use super::shared::Shared;
use super::{notify_systemd, now_ms, timestamp};
use crate::inbox::folder::{file_away, results_beside};
use crate::inbox::FolderInbox;
use crate::journal::{Journal, JournalError, NewRun, RunRecord, RunState, Terminal};
use crate::leases::run_lease;
use crate::sync::{drive, write_atomically, Finish, SyncError};

/// Why a run did not finish this time.
enum Again {
    /// Try again later (the target is down, a file could not be moved…).
    Later(String),
    /// This process lost the run's lease (frozen or cut off past it):
    /// another daemon may be working on the run; this one writes no more.
    Lost(String),
    /// Nothing to retry: logged, and left for an operator.
    Never,
}

impl From<JournalError> for Again {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::LeaseLost(l) => Again::Lost(l),
            e => Again::Later(e.to_string()),
        }
    }
}

/// Run one journaled run to its end (or until it must wait), if no other
/// daemon holds it.
pub(super) async fn process(sh: Arc<Shared>, id: i64) {
    if !sh.set_active(id, true) {
        return;
    }
    let lease = run_lease(id);
    match sh.leases.take(&lease, Some(id)).await {
        Ok(true) => {}
        Ok(false) => {
            debug!(run_id = id, "Another daemon works on the run.");
            sh.set_active(id, false);
            return;
        }
        Err(e) => {
            warn!(run_id = id, error = %e, "Cannot take the run's lease; trying again later.");
            sh.set_active(id, false);
            retry_later(&sh, id);
            return;
        }
    }
    let journal = sh.journal.fenced(sh.leases.fence(std::slice::from_ref(&lease)));
    let run = match journal.run(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            sh.leases.release(&lease).await;
            sh.set_active(id, false);
            return;
        }
        Err(e) => {
            warn!(run_id = id, error = %e, "Cannot read the run from the journal; trying again later.");
            sh.leases.release(&lease).await;
            sh.set_active(id, false);
            retry_later(&sh, id);
            return;
        }
    };
    let span = info_span!("run", run_id = id, inbox = ?run.inbox, file = ?run.file_name);
    let result = work(&sh, &journal, run).instrument(span.clone()).await;
    let _enter = span.enter();
    match result {
        Ok(()) | Err(Again::Never) => sh.leases.release(&lease).await,
        Err(Again::Lost(what)) => {
            warn!(lease = %what, "This daemon lost its hold on the run (it was frozen or cut off from the journal); it writes no more, and a daemon holding the lease finishes the run.");
            sh.leases.release(&lease).await;
        }
        Err(Again::Later(why)) if !sh.stopping() => {
            let wait = sh.leases.ttl();
            warn!(error = ?why, retry_in_s = wait.as_secs(), "Run not finished; it is tried again later.");
            // No daemon tries it before then.
            sh.leases.park(&lease, wait).await;
            retry_later(&sh, id);
        }
        Err(Again::Later(why)) => {
            info!(error = ?why, "Run not finished; another daemon sharing the journal, or this one at its next start, resumes it.");
            sh.leases.release(&lease).await;
        }
    }
    sh.set_active(id, false);
    notify_systemd(&[sd_notify::NotifyState::Status("idle; watching the inboxes")]);
}

fn retry_later(sh: &Arc<Shared>, id: i64) {
    let tx = sh.retry.clone();
    let wait = sh.leases.ttl();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let _ = tx.send(id);
    });
}

async fn work(sh: &Shared, journal: &Journal, run: RunRecord) -> Result<(), Again> {
    let id = run.id;
    let config = sh.config();
    let Some(inbox_cfg) = inbox_config(&config, &run.inbox) else {
        error!("The run's inbox is no longer configured; its file waits in processing/ until the inbox is configured again (then send SIGHUP).");
        return Err(Again::Never);
    };
    let inbox = FolderInbox::new(&inbox_cfg);
    if !run.state.resumable() {
        // Ended, not yet filed (the process stopped in between).
        return file(journal, &inbox, &run).await;
    }
    let Some(lp) = config.policies.get(&run.policy) else {
        error!(policy = ?run.policy, "The run's policy is no longer configured; its file waits in processing/.");
        return Err(Again::Never);
    };
    let Some(hold) = sh.hold_target(&config, &lp.name, id).await? else {
        return Err(Again::Later("shutting down".into()));
    };
    let result = on_target(sh, journal, run, &hold.lease).await;
    sh.release_target(hold).await;
    let run = result?;
    file(journal, &inbox, &run).await
}

/// The part of a run that needs its target held: the duplicate check and
/// the pipeline. Returns the run as it ended.
async fn on_target(sh: &Shared, journal: &Journal, run: RunRecord, target: &str) -> Result<RunRecord, Again> {
    let id = run.id;
    let config = sh.config();
    if sh.stopping() {
        return Err(Again::Later("shutting down".into()));
    }
    let status = format!(
        "run {id}: {} ({})",
        run.file_name.escape_debug(),
        run.inbox.escape_debug()
    );
    notify_systemd(&[sd_notify::NotifyState::Status(&status)]);

    if run.state == RunState::Claimed && !run.forced {
        if let Some(prev) = journal.applied_before(&run.sha256, &run.policy, id).await? {
            return duplicate(journal, &run, &prev).await;
        }
    }

    info!(state = run.state.as_str(), "Run started.");
    let held = [run_lease(id), target.to_string()];
    let report = match sh.with_ctx(&config, &held, async |ctx| drive(ctx, id).await).await {
        Ok(Finish::Ended(report)) => report,
        Ok(Finish::Stopped) if sh.stopping() => return Err(Again::Later("shutting down".into())),
        Ok(Finish::Stopped) => return Err(Again::Lost(held.join(", "))),
        Err(SyncError::Journal(JournalError::LeaseLost(l))) => return Err(Again::Lost(l)),
        Err(SyncError::FileGone { path, .. }) => {
            error!(path = ?path, "The claimed file is gone from processing/; the run is abandoned. Drop the file again to run it.");
            journal
                .mark_abandoned(id, "the claimed file was removed from processing/", now_ms())
                .await?;
            return Err(Again::Never);
        }
        Err(e) => return Err(Again::Later(e.to_string())),
    };
    if let Some(e) = &report.target_error {
        if report.state == RunState::Failed {
            return Err(Again::Later(format!("target: {e}")));
        }
    }
    match report.state {
        RunState::Rejected => warn!(summary = %report.summary, "File rejected as a whole; nothing written."),
        RunState::AwaitingApproval => warn!(
            summary = %report.summary,
            "Safety limits held changes back; the run awaits approval (`dirsync runs show {id}`, `dirsync runs approve {id}`)."
        ),
        _ => info!(summary = %report.summary, credentials = report.credentials.len(), "Run done."),
    }
    Ok(journal.run(id).await?.unwrap_or(run))
}

/// A file identical to one applied before is not run again.
async fn duplicate(journal: &Journal, run: &RunRecord, prev: &RunRecord) -> Result<RunRecord, Again> {
    let when = prev.finished.or(prev.started).unwrap_or(prev.claimed_at);
    let message = format!(
        "identical to {:?}, applied by run {} at {}; not applied again. To apply it again, drop {}.force first, then the file",
        prev.file_name,
        prev.id,
        timestamp(when),
        run.file_name
    );
    warn!(
        previous_run = prev.id,
        "File identical to one already applied; not applied again."
    );
    let results = results_beside(&run.claimed);
    write_atomically(&results, |w| {
        let mut out = csv::Writer::from_writer(w);
        out.write_record(["change", "result", "message"])?;
        out.write_record(["duplicate", "skipped", message.as_str()])?;
        out.flush()
    })
    .map_err(|e| Again::Later(e.to_string()))?;
    journal
        .mark_state(
            run.id,
            &Terminal {
                state: RunState::Duplicate,
                summary: "not applied: identical to an applied file",
                counts: None,
                note: Some(&message),
                now_ms: now_ms(),
            },
        )
        .await?;
    Ok(journal.run(run.id).await?.unwrap_or_else(|| run.clone()))
}

/// Move an ended run's file and results to `archive/DATE/` (or
/// `rejected/`), recording where before the move, and that it is filed after.
async fn file(journal: &Journal, inbox: &FolderInbox, run: &RunRecord) -> Result<(), Again> {
    if run.filed {
        return Ok(());
    }
    let dest = match &run.dest {
        Some(d) => d.clone(),
        None => {
            let rejected = matches!(run.state, RunState::Rejected | RunState::Duplicate);
            let d = inbox.destination(run.id, &run.file_name, rejected, run.finished.unwrap_or_else(now_ms));
            journal.set_dest(run.id, &d).await?;
            d
        }
    };
    file_away(&run.claimed, &dest).map_err(|e| {
        Again::Later(format!(
            "moving {} to {}: {e}; check the folder's permissions",
            run.claimed.display(),
            dest.display()
        ))
    })?;
    let results = results_beside(&dest);
    journal.mark_filed(run.id, &results).await?;
    info!(dest = ?dest, results = ?results, "Run filed away with its results.");
    Ok(())
}

/// A claimed file becomes a run in the journal. Its results go to the
/// inbox's submitter, and to `also_to` (the console's uploader) when given.
pub(super) async fn journal_claim(
    sh: &Shared,
    inbox: &FolderInbox,
    path: &Path,
    name: &str,
    forced: bool,
    also_to: Option<&str>,
) -> Option<i64> {
    let config = sh.config();
    let Some(lp) = config.policies.get(&inbox.config.policy) else {
        error!(inbox = ?inbox.name(), "The inbox's policy is not configured.");
        return None;
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) => {
            warn!(inbox = ?inbox.name(), file = ?name, error = %e, "Cannot read a claimed file; it is tried again at the next start.");
            return None;
        }
    };
    let sha = hex::encode(Sha256::digest(&bytes));
    let results = results_beside(path);
    let submitter: Vec<&str> = inbox.config.submitter.as_deref().into_iter().chain(also_to).collect();
    let submitter = submitter.join(", ");
    let new = NewRun {
        inbox: inbox.name(),
        file_name: name,
        claimed: path,
        sha256: &sha,
        policy: &lp.name,
        target: &lp.target,
        forced,
        allow_over_limit: false,
        preview: false,
        results: Some(&results),
        submitter: Some(submitter.as_str()).filter(|s| !s.is_empty()),
        now_ms: now_ms(),
    };
    match sh.journal.create_run(&new).await {
        Ok(id) => {
            info!(run_id = id, inbox = ?inbox.name(), file = ?name, forced, "File claimed.");
            Some(id)
        }
        Err(e) => {
            error!(inbox = ?inbox.name(), file = ?name, error = %e, "Cannot journal a claimed file; it stays in processing/ and is picked up at the next start.");
            None
        }
    }
}
