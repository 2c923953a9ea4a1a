//! One run's life in the daemon: claimed file → journal → (wait for the
//! target) → journaled sync → results → filed away. Shared state between the
//! service loop and the run tasks.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{error, info, info_span, warn, Instrument};

use super::{notify_systemd, now_ms, timestamp};
use crate::config::Config;
use crate::inbox::folder::{file_away, results_beside};
use crate::inbox::FolderInbox;
use crate::journal::{Done, Journal, JournalError, NewRun, RunRecord, RunState};
use crate::sync::journaled::{run_journaled, Finish, JournaledRun};
use crate::sync::{open_backend, write_atomically};

/// How long a run whose target failed waits before it is tried again.
const RETRY: Duration = Duration::from_secs(30);

/// What the tasks share.
pub(super) struct Shared {
    pub(super) journal: Journal,
    pub(super) config: RwLock<Arc<Config>>,
    /// One lock per target: runs against a target never interleave.
    pub(super) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Runs being worked on, so a run is never worked on twice at once.
    pub(super) active: Mutex<HashSet<i64>>,
    pub(super) stopping: AtomicBool,
    pub(super) retry: mpsc::UnboundedSender<i64>,
    /// The mail outbox, when `[mail]` is configured.
    pub(super) mail: Option<MailCtx>,
}

/// The outbox runs queue their mails into, and the sender's wake-up.
pub(super) struct MailCtx {
    pub(super) outbox: crate::mail::Outbox,
    pub(super) wake: Arc<tokio::sync::Notify>,
}

/// Why a run did not finish this time.
enum Again {
    /// Try again later (the target is down, a file could not be moved…).
    Later(String),
    /// Nothing to retry: logged, and left for an operator.
    Never,
}

impl From<JournalError> for Again {
    fn from(e: JournalError) -> Self {
        Again::Later(e.to_string())
    }
}

impl Shared {
    pub(super) fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn lock_for(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(locks.entry(target.to_string()).or_default())
    }

    fn set_active(&self, id: i64, on: bool) -> bool {
        let mut active = match self.active.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        if on {
            active.insert(id)
        } else {
            active.remove(&id)
        }
    }

    /// A task is working on run `id` now.
    pub(super) fn is_active(&self, id: i64) -> bool {
        match self.active.lock() {
            Ok(a) => a.contains(&id),
            Err(poisoned) => poisoned.into_inner().contains(&id),
        }
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Run one journaled run to its end (or until it must wait).
pub(super) async fn process(sh: Arc<Shared>, id: i64) {
    if !sh.set_active(id, true) {
        return;
    }
    let run = match sh.journal.run(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            sh.set_active(id, false);
            return;
        }
        Err(e) => {
            warn!(run_id = id, error = %e, "Cannot read the run from the journal; trying again later.");
            sh.set_active(id, false);
            retry_later(&sh, id);
            return;
        }
    };
    let span = info_span!("run", run_id = id, inbox = %run.inbox, file = %run.file_name);
    let result = work(&sh, run).instrument(span.clone()).await;
    sh.set_active(id, false);
    let _enter = span.enter();
    match result {
        Ok(()) => {}
        Err(Again::Never) => {}
        Err(Again::Later(why)) if !sh.stopping() => {
            warn!(error = %why, retry_in_s = RETRY.as_secs(), "Run not finished; it is tried again later.");
            retry_later(&sh, id);
        }
        Err(Again::Later(why)) => info!(error = %why, "Run not finished; it resumes on restart."),
    }
    notify_systemd(&[sd_notify::NotifyState::Status("idle; watching the inboxes")]);
}

fn retry_later(sh: &Arc<Shared>, id: i64) {
    let tx = sh.retry.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY).await;
        let _ = tx.send(id);
    });
}

async fn work(sh: &Shared, run: RunRecord) -> Result<(), Again> {
    let id = run.id;
    match run.state {
        RunState::Finished => return Ok(()),
        RunState::Done => return finish_files(sh, &run).await,
        RunState::Claimed | RunState::Applying => {}
    }
    let config = sh.config();
    let Some(inbox_cfg) = super::sftp::inbox_config(&config, &run.inbox) else {
        error!("The run's inbox is no longer configured; its file waits in processing/ until the inbox is configured again (then send SIGHUP).");
        return Err(Again::Never);
    };
    let Some(lp) = config.policies.get(&run.policy) else {
        error!(policy = %run.policy, "The run's policy is no longer configured; its file waits in processing/.");
        return Err(Again::Never);
    };
    let inbox = FolderInbox::new(&inbox_cfg);
    // "The same target" is the same place, whatever the config calls it.
    let place = config
        .target(lp)
        .map(|t| t.describe())
        .unwrap_or_else(|_| lp.target.clone());
    let lock = sh.lock_for(&place);
    let _guard = lock.lock().await;
    if sh.stopping() {
        return Err(Again::Later("shutting down".into()));
    }
    let status = format!("run {id}: {} ({})", run.file_name, run.inbox);
    notify_systemd(&[sd_notify::NotifyState::Status(&status)]);
    sh.journal.mark_started(id, now_ms()).await?;
    let bytes = match tokio::fs::read(&run.claimed).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            error!(path = %run.claimed.display(), "The claimed file is gone from processing/; the run is abandoned. Drop the file again to run it.");
            sh.journal
                .mark_abandoned(id, "the claimed file was removed from processing/", now_ms())
                .await?;
            return Err(Again::Never);
        }
        Err(e) => return Err(Again::Later(format!("reading {}: {e}", run.claimed.display()))),
    };
    let results = results_beside(&run.claimed);

    if run.state == RunState::Claimed && !run.forced {
        if let Some(prev) = sh.journal.applied_before(&run.sha256, &run.policy, id).await? {
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
            write_atomically(&results, |w| {
                let mut out = csv::Writer::from_writer(w);
                out.write_record(["change", "result", "message"])?;
                out.write_record(["duplicate", "skipped", message.as_str()])?;
                out.flush()
            })
            .map_err(|e| Again::Later(e.to_string()))?;
            let now = now_ms();
            let dest = inbox.destination(id, &run.file_name, true, now);
            sh.journal
                .mark_done(
                    id,
                    &Done {
                        outcome: "duplicate",
                        summary: "not applied: identical to an applied file",
                        dest: &dest,
                        note: Some(&message),
                        now_ms: now,
                    },
                )
                .await?;
            let run = sh.journal.run(id).await?.unwrap_or(run);
            return finish_files(sh, &run).await;
        }
    }

    let backend = open_backend(&config, lp)
        .await
        .map_err(|e| Again::Later(format!("target {}: {e}", lp.target)))?;
    let stop = || sh.stopping();
    let jr = JournaledRun {
        journal: &sh.journal,
        run_id: id,
        resuming: run.state == RunState::Applying,
        now: run.claimed_at.div_euclid(1000),
        stop: &stop,
    };
    info!(resuming = jr.resuming, "Run started.");
    let report = match run_journaled(backend.as_ref(), lp, &bytes, &results, &jr).await {
        Ok(Finish::Done(report)) => report,
        Ok(Finish::Stopped) => return Err(Again::Later("shutting down".into())),
        Err(e) => return Err(Again::Later(e.to_string())),
    };
    let rejected = report.file_error.is_some();
    // Queue the run's mails before the run is marked done: enqueueing is
    // idempotent per run (stable Message-IDs), so a crash in between
    // re-queues nothing twice, and a done run always has its mails queued.
    queue_mails(sh, &config, lp, &inbox_cfg, &run, &report).await;
    let now = now_ms();
    let dest = inbox.destination(id, &run.file_name, rejected, now);
    let summary = match &report.file_error {
        Some(e) => format!("file rejected: {e}"),
        None => report.summary.to_string(),
    };
    sh.journal
        .mark_done(
            id,
            &Done {
                outcome: if rejected { "rejected" } else { "applied" },
                summary: &summary,
                dest: &dest,
                note: report.target_error.as_deref(),
                now_ms: now,
            },
        )
        .await?;
    if rejected {
        warn!(summary = %summary, "File rejected as a whole; nothing written.");
    } else {
        info!(
            summary = %summary,
            credentials = report.credentials.len(),
            "Run done."
        );
    }
    let run = sh.journal.run(id).await?.unwrap_or(run);
    finish_files(sh, &run).await?;
    sh.journal.forget_secrets(id).await?;
    Ok(())
}

/// Queue the results mail (to the inbox's submitter) and the credentials
/// mails (to new users) of a finished run. Failure is logged, never fatal:
/// the run's writes are done and its results file exists either way.
async fn queue_mails(
    sh: &Shared,
    config: &Config,
    lp: &crate::config::LoadedPolicy,
    inbox: &crate::config::InboxConfig,
    run: &RunRecord,
    report: &crate::sync::RunReport,
) {
    let (Some(ctx), Some(cfg)) = (&sh.mail, config.mail.as_ref()) else {
        if !report.credentials.is_empty() {
            warn!(
                credentials = report.credentials.len(),
                "Generated passwords were mailed to nobody: there is no [mail] section. Configure mail, then reset those users' passwords."
            );
        }
        return;
    };
    let run_id = format!("run-{}", run.id);
    let facts = report.mail_facts(&run_id, &run.file_name, &lp.name, true);
    let users = report.new_users();
    let now = now_ms().div_euclid(1000);
    let queued = async {
        let mut tx = ctx.outbox.pool().begin().await.map_err(|e| e.to_string())?;
        let mails = crate::mail::enqueue_run(
            &mut tx,
            ctx.outbox.key(),
            cfg,
            lp,
            &facts,
            inbox.submitter.as_deref(),
            &users,
            now,
        )
        .await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(mails)
    }
    .await;
    match queued {
        Ok(m) => {
            for n in &m.notes {
                warn!(note = %n, "Mail note.");
            }
            info!(mails = m.mails.len(), "Mails queued.");
            ctx.wake.notify_one();
        }
        Err(e) => error!(
            error = %e,
            credentials = report.credentials.len(),
            "Cannot queue this run's mails; the generated passwords reached nobody. Fix the outbox, then reset those users' passwords."
        ),
    }
}

/// Move a done run's files where the journal says, then mark it finished.
async fn finish_files(sh: &Shared, run: &RunRecord) -> Result<(), Again> {
    let Some(dest) = &run.dest else {
        return Err(Again::Later("the run has no destination yet".into()));
    };
    file_away(&run.claimed, dest).map_err(|e| {
        Again::Later(format!(
            "moving {} to {}: {e}; check the folder's permissions",
            run.claimed.display(),
            dest.display()
        ))
    })?;
    sh.journal.mark_finished(run.id).await?;
    info!(dest = %dest.display(), results = %results_beside(dest).display(), "Run filed away with its results.");
    Ok(())
}

/// A claimed file becomes a run in the journal.
pub(super) async fn journal_claim(
    sh: &Shared,
    inbox: &FolderInbox,
    path: &Path,
    name: &str,
    forced: bool,
) -> Option<i64> {
    let config = sh.config();
    let Some(lp) = config.policies.get(&inbox.config.policy) else {
        error!(inbox = %inbox.name(), "The inbox's policy is not configured.");
        return None;
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) => {
            warn!(inbox = %inbox.name(), file = name, error = %e, "Cannot read a claimed file; it is tried again at the next start.");
            return None;
        }
    };
    let sha = hex::encode(Sha256::digest(&bytes));
    let new = NewRun {
        inbox: inbox.name(),
        file_name: name,
        claimed: path,
        sha256: &sha,
        policy: &lp.name,
        target: &lp.target,
        forced,
        now_ms: now_ms(),
    };
    match sh.journal.create_run(&new).await {
        Ok(id) => {
            info!(run_id = id, inbox = %inbox.name(), file = name, forced, "File claimed.");
            Some(id)
        }
        Err(e) => {
            error!(inbox = %inbox.name(), file = name, error = %e, "Cannot journal a claimed file; it stays in processing/ and is picked up at the next start.");
            None
        }
    }
}
