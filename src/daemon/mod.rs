//! `dirsync serve`: watch the drop folders, run each complete file through
//! the journaled sync, file it away with its results. Runs against one
//! target are serialised; different targets run in parallel. Unfinished runs
//! are resumed at start. SIGHUP reloads the config (a broken one is refused
//! and the old one stays); the caller's `shutdown` future stops it cleanly:
//! runs finish the batch in flight, journal it, and resume on the next start.

mod claims;
mod console;
mod folders;
mod inboxes;
mod job;
mod schedule;
mod services;
mod sftp;
mod shared;

use crate::clock::now_ms;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::event::{EventKind, ModifyKind, RenameMode};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::inbox::FolderInbox;
use crate::journal::JournalError;
use folders::{make_inboxes, reload, watch};
use services::{notify_systemd, sender_turn, start_http, watchdog_usec};
use shared::{MailCtx, Shared};

/// How often the folders are scanned (settle checks, and the fallback for
/// events the watcher missed).
const TICK: Duration = Duration::from_millis(500);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Journal(#[from] JournalError),
    #[error("[http] {0}")]
    Http(String),
}

pub use crate::clock::timestamp;

/// Serve until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let journal = crate::sync::open_journal(&config).await?;
    info!(
        journal = %journal.describe(),
        inboxes = config.inboxes.len(),
        sftp_inboxes = config.sftp_inboxes.len(),
        "dirsync serve starting."
    );
    if config.inboxes.is_empty() && config.sftp_inboxes.is_empty() {
        warn!(config = %config.path.display(), "No [[inbox]] or [[sftp_inbox]] configured: nothing to watch. Add one and send SIGHUP.");
    }
    let others = crate::config::shared_journal::other_configs(&config);
    if let Some(w) = crate::config::shared_journal::warning(&config, &others) {
        warn!("{w}");
    }
    if let Err(e) = crate::config::shared_journal::note_config(&config) {
        warn!(error = %e, "Cannot note this config beside the SQLite journal.");
    }
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel();
    let mut inboxes = make_inboxes(&config, Vec::new());
    // Leases: what this daemon holds, renewed by a heartbeat; its presence.
    let leases = crate::leases::Leases::new(journal.clone(), config.service.lease());
    let heartbeat_stop = Arc::new(tokio::sync::Notify::new());
    let heartbeat = {
        let stop = Arc::clone(&heartbeat_stop);
        tokio::spawn(Arc::clone(&leases).heartbeat(async move { stop.notified().await }))
    };
    let presence = crate::leases::presence_lease(leases.owner());
    leases.take(&presence, None).await?;
    info!(daemon = %leases.owner(), lease_s = config.service.lease().as_secs(), "Holding work through leases in the journal.");
    // Mail: an outbox in the journal database and a sender that delivers it.
    let mail_stop = Arc::new(tokio::sync::Notify::new());
    let mut sender = None;
    let mail = match &config.mail {
        None => None,
        Some(cfg) => match (
            crate::mail::open_outbox(cfg).await,
            crate::mail::Mailer::from_config(cfg),
        ) {
            (Ok(outbox), Ok(mailer)) => {
                let wake = Arc::new(tokio::sync::Notify::new());
                let stop = Arc::clone(&mail_stop);
                sender = Some(tokio::spawn(crate::mail::outbox::run_sender(
                    outbox.clone(),
                    mailer,
                    crate::mail::deliver_options(cfg, false),
                    Arc::clone(&wake),
                    Duration::from_secs(30),
                    sender_turn(Arc::clone(&leases)),
                    async move { stop.notified().await },
                )));
                info!(mail = %cfg.describe(), "Mail sender started.");
                Some(MailCtx { outbox, wake })
            }
            (Err(e), _) | (_, Err(e)) => {
                error!(error = %e, "Mail is configured but unusable; runs go on without mail. Fix [mail] and restart.");
                None
            }
        },
    };
    let sh = Arc::new(Shared {
        journal,
        config: RwLock::new(Arc::new(config)),
        locks: Mutex::new(HashMap::new()),
        active: Mutex::new(HashSet::new()),
        stopping: AtomicBool::new(false),
        retry: retry_tx,
        mail,
        next_poll: Mutex::new(HashMap::new()),
        leases,
    });
    let mut tasks = JoinSet::new();

    // Health checks and metrics, when [http] is configured.
    let http_stop = Arc::new(tokio::sync::Notify::new());
    let http_task = match sh.config().http.clone() {
        None => None,
        Some(h) => Some(start_http(&sh, &h, Arc::clone(&http_stop)).await?),
    };

    sh.journal.forget_ended_secrets().await?;
    for id in sh.journal.abandon_dead_previews(now_ms()).await? {
        info!(
            run_id = id,
            "A console preview left unfinished by a stopped daemon is abandoned."
        );
    }
    // Resume what a previous process left unfinished (oldest first), and
    // journal files claimed just before a crash, before their run was.
    share_work(&sh, &inboxes, &mut tasks).await;

    // SFTP inboxes: after the start-up scan above, so a file spooled just
    // before a crash is journaled before its poller hands it over again.
    let mut pollers = sftp::SftpPollers::new(Arc::clone(&sh));
    pollers.update(&sh.config());

    let (mut watcher, mut events) = watch(&inboxes);
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "Cannot listen for SIGHUP; reload by restarting.");
            None
        }
    };
    let watchdog_usec = watchdog_usec();
    let watchdog = watchdog_usec > 0;
    let mut watchdog_tick = tokio::time::interval(Duration::from_micros((watchdog_usec / 2).max(1_000_000)));
    let mut share_tick =
        tokio::time::interval((sh.leases.ttl() / 3).clamp(Duration::from_secs(1), Duration::from_secs(10)));
    share_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("idle; watching the inboxes"),
    ]);
    info!("Ready.");
    let mut scan_errors: HashMap<String, String> = HashMap::new();
    let mut due = schedule::Schedule::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                inboxes = reload(&sh, inboxes);
                pollers.update(&sh.config());
                let (w, e) = watch(&inboxes);
                watcher = w;
                events = e;
                continue;
            }
            Some(ev) = events.recv() => {
                if let Ok(ev) = ev {
                    let renamed: Vec<&std::path::PathBuf> = match ev.kind {
                        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => ev.paths.iter().collect(),
                        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => ev.paths.last().into_iter().collect(),
                        _ => Vec::new(),
                    };
                    for p in renamed {
                        for inbox in inboxes.iter_mut() {
                            inbox.note_renamed(p);
                        }
                    }
                }
            }
            _ = tick.tick() => {}
            _ = due.wait() => {
                for id in due.start_due(&sh).await {
                    tasks.spawn(job::process(Arc::clone(&sh), id));
                }
                continue;
            }
            Some(id) = retry_rx.recv() => {
                tasks.spawn(job::process(Arc::clone(&sh), id));
                continue;
            }
            _ = share_tick.tick() => {
                share_work(&sh, &inboxes, &mut tasks).await;
                continue;
            }
            _ = watchdog_tick.tick(), if watchdog => {
                notify_systemd(&[sd_notify::NotifyState::Watchdog]);
                continue;
            }
            Some(res) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = res {
                    error!(error = %e, "A run task failed unexpectedly; its run resumes at the next start.");
                }
                continue;
            }
        }
        // Scan: claim every complete file.
        let now = Instant::now();
        for inbox in inboxes.iter_mut() {
            let names = match inbox.ready(now) {
                Ok(n) => {
                    scan_errors.remove(inbox.name());
                    n
                }
                Err(e) => {
                    let msg = e.to_string();
                    if scan_errors.get(inbox.name()) != Some(&msg) {
                        warn!(inbox = ?inbox.name(), folder = ?inbox.dir, error = %msg, "Cannot scan the inbox folder; trying again.");
                        scan_errors.insert(inbox.name().to_string(), msg);
                    }
                    continue;
                }
            };
            for name in names {
                if let Some(id) = claims::claim(&sh, inbox, &name).await {
                    tasks.spawn(job::process(Arc::clone(&sh), id));
                }
            }
        }
    }

    info!("Stopping: runs finish their batch in flight and resume at the next start.");
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    sh.stopping.store(true, Ordering::SeqCst);
    drop(watcher);
    pollers.stop().await;
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            error!(error = %e, "A run task failed unexpectedly; its run resumes at the next start.");
        }
    }
    http_stop.notify_one();
    if let Some(t) = http_task {
        let _ = t.await;
    }
    // The sender finishes the pass in flight, then stops; the rest waits in the outbox.
    mail_stop.notify_one();
    if let Some(s) = sender {
        let _ = s.await;
    }
    // Hand over: what this daemon held, the others may take now.
    sh.leases.release_all().await;
    heartbeat_stop.notify_one();
    let _ = heartbeat.await;
    info!("Stopped.");
    Ok(())
}

/// Take over the unfinished runs no live daemon holds, and journal the
/// files in `processing/` no run reads.
async fn share_work(sh: &Arc<Shared>, inboxes: &[FolderInbox], tasks: &mut JoinSet<()>) {
    if let Err(e) = sh.leases.keep(&crate::leases::presence_lease(sh.leases.owner())).await {
        warn!(error = %e, "Cannot renew this daemon's presence in the journal; trying again.");
    }
    if let Err(e) = claims::take_over(sh, tasks).await {
        warn!(error = %e, "Cannot look for unfinished runs in the journal; trying again.");
    }
    match claims::adopt_orphans(sh, inboxes).await {
        Ok(ids) => {
            for id in ids {
                tasks.spawn(job::process(Arc::clone(sh), id));
            }
        }
        Err(e) => warn!(error = %e, "Cannot look for unjournaled files in processing/; trying again."),
    }
}
