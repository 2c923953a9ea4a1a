//! `dirsync serve`: watch the drop folders, run each complete file through
//! the journaled sync, file it away with its results. Runs against one
//! target are serialised; different targets run in parallel. Unfinished runs
//! are resumed at start. SIGHUP reloads the config (a broken one is refused
//! and the old one stays); the caller's `shutdown` future stops it cleanly:
//! runs finish the batch in flight, journal it, and resume on the next start.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::config::Config;
use crate::inbox::folder::{file_away, results_beside};
use crate::inbox::FolderInbox;
use crate::journal::{Done, Journal, JournalError, NewRun, RunRecord, RunState};
use crate::sync::journaled::{run_journaled, Finish, JournaledRun};
use crate::sync::{open_backend, write_atomically};

/// How often the folders are scanned (settle checks, and the fallback for
/// events the watcher missed).
const TICK: Duration = Duration::from_millis(500);
/// How long a run whose target failed waits before it is tried again.
const RETRY: Duration = Duration::from_secs(30);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Journal(#[from] JournalError),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 (UTC), for people.
pub fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd (no NOTIFY_SOCKET) this does nothing.
    if let Err(e) = sd_notify::notify(false, states) {
        debug!(error = %e, "Cannot notify systemd.");
    }
}

/// What the tasks share.
struct Shared {
    journal: Journal,
    config: RwLock<Arc<Config>>,
    /// One lock per target: runs against a target never interleave.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Runs being worked on, so a run is never worked on twice at once.
    active: Mutex<HashSet<i64>>,
    stopping: AtomicBool,
    retry: mpsc::UnboundedSender<i64>,
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
    fn config(&self) -> Arc<Config> {
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

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Run one journaled run to its end (or until it must wait).
async fn process(sh: Arc<Shared>, id: i64) {
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
    let Some(inbox_cfg) = config.inboxes.iter().find(|i| i.name == run.inbox) else {
        error!("The run's inbox is no longer configured; its file waits in processing/ until the inbox is configured again (then send SIGHUP).");
        return Err(Again::Never);
    };
    let Some(lp) = config.policies.get(&run.policy) else {
        error!(policy = %run.policy, "The run's policy is no longer configured; its file waits in processing/.");
        return Err(Again::Never);
    };
    let inbox = FolderInbox::new(inbox_cfg);
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
    // The credentials mail (issue: mail) takes `report.credentials` here,
    // before the journal forgets the passwords.
    let run = sh.journal.run(id).await?.unwrap_or(run);
    finish_files(sh, &run).await?;
    sh.journal.forget_secrets(id).await?;
    Ok(())
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
async fn journal_claim(sh: &Shared, inbox: &FolderInbox, path: &Path, name: &str, forced: bool) -> Option<i64> {
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

type Events = mpsc::UnboundedReceiver<notify::Result<notify::Event>>;

fn watch(inboxes: &[FolderInbox]) -> (Option<notify::RecommendedWatcher>, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |ev| {
        let _ = tx.send(ev);
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "Cannot watch the folders for changes; scanning them every half second instead.");
            return (None, rx);
        }
    };
    for inbox in inboxes {
        if let Err(e) = watcher.watch(&inbox.dir, RecursiveMode::NonRecursive) {
            warn!(inbox = %inbox.name(), folder = %inbox.dir.display(), error = %e, "Cannot watch the folder; scanning it instead.");
        }
    }
    (Some(watcher), rx)
}

fn make_inboxes(config: &Config, old: Vec<FolderInbox>) -> Vec<FolderInbox> {
    let mut old: HashMap<String, FolderInbox> = old.into_iter().map(|i| (i.config.name.clone(), i)).collect();
    let mut out = Vec::new();
    for cfg in &config.inboxes {
        let inbox = match old.remove(&cfg.name) {
            Some(i) if i.config == *cfg => i,
            _ => FolderInbox::new(cfg),
        };
        match inbox.prepare() {
            Ok(()) => {
                info!(inbox = %inbox.name(), folder = %inbox.dir.display(), marker = cfg.marker, settle_s = cfg.settle_seconds, "Watching inbox.")
            }
            Err(e) => error!(inbox = %inbox.name(), error = %e, "Inbox not usable; the others go on."),
        }
        out.push(inbox);
    }
    out
}

/// Serve until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let journal = Journal::open(&config.service).await?;
    info!(journal = %journal.describe(), inboxes = config.inboxes.len(), "dirsync serve starting.");
    if config.inboxes.is_empty() {
        warn!(config = %config.path.display(), "No [[inbox]] configured: nothing to watch. Add one and send SIGHUP.");
    }
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel();
    let mut inboxes = make_inboxes(&config, Vec::new());
    let sh = Arc::new(Shared {
        journal,
        config: RwLock::new(Arc::new(config)),
        locks: Mutex::new(HashMap::new()),
        active: Mutex::new(HashSet::new()),
        stopping: AtomicBool::new(false),
        retry: retry_tx,
    });
    let mut tasks = JoinSet::new();

    sh.journal.forget_finished_secrets().await?;
    // Resume what a previous process left unfinished, oldest first.
    let unfinished = sh.journal.unfinished_runs().await?;
    let claimed: HashSet<std::path::PathBuf> = unfinished.iter().map(|r| r.claimed.clone()).collect();
    for r in &unfinished {
        info!(run_id = r.id, inbox = %r.inbox, file = %r.file_name, state = r.state.as_str(), "Resuming an unfinished run.");
        tasks.spawn(process(Arc::clone(&sh), r.id));
    }
    // Files claimed just before a crash, before their run was journaled.
    for inbox in &inboxes {
        let Ok(found) = inbox.processing() else { continue };
        for c in found.into_iter().filter(|c| !claimed.contains(&c.path)) {
            if let Some(id) = journal_claim(&sh, inbox, &c.path, &c.name, c.forced).await {
                tasks.spawn(process(Arc::clone(&sh), id));
            }
        }
    }

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
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("idle; watching the inboxes"),
    ]);
    info!("Ready.");
    let mut scan_errors: HashMap<String, String> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                inboxes = reload(&sh, inboxes);
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
            Some(id) = retry_rx.recv() => {
                tasks.spawn(process(Arc::clone(&sh), id));
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
                        warn!(inbox = %inbox.name(), folder = %inbox.dir.display(), error = %msg, "Cannot scan the inbox folder; trying again.");
                        scan_errors.insert(inbox.name().to_string(), msg);
                    }
                    continue;
                }
            };
            for name in names {
                match inbox.claim(&name) {
                    Ok(Some(c)) => {
                        if let Some(id) = journal_claim(&sh, inbox, &c.path, &c.name, c.forced).await {
                            tasks.spawn(process(Arc::clone(&sh), id));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        warn!(inbox = %inbox.name(), file = %name, error = %e, "Cannot claim the file; trying again.")
                    }
                }
            }
        }
    }

    info!("Stopping: runs finish their batch in flight and resume at the next start.");
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    sh.stopping.store(true, Ordering::SeqCst);
    drop(watcher);
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            error!(error = %e, "A run task failed unexpectedly; its run resumes at the next start.");
        }
    }
    info!("Stopped.");
    Ok(())
}

/// The watchdog interval systemd asks for (0: none). As sd_watchdog_enabled(3):
/// `WATCHDOG_USEC` set, and `WATCHDOG_PID` unset or ours.
fn watchdog_usec() -> u64 {
    let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|s| s.parse::<u64>().ok());
    let pid_ok = match std::env::var("WATCHDOG_PID") {
        Ok(p) => p.parse::<u32>().ok() == Some(std::process::id()),
        Err(_) => true,
    };
    match usec {
        Some(u) if pid_ok => u,
        _ => 0,
    }
}

/// SIGHUP: load the config again; keep the old one if the new one is broken.
fn reload(sh: &Shared, inboxes: Vec<FolderInbox>) -> Vec<FolderInbox> {
    let current = sh.config();
    let mono = sd_notify::NotifyState::monotonic_usec_now().ok();
    let mut states = vec![sd_notify::NotifyState::Reloading];
    states.extend(mono);
    notify_systemd(&states);
    let result = match Config::load(&current.path) {
        Ok(new) => {
            if new.service.journal_url() != current.service.journal_url() {
                warn!("service.journal changed: the journal in use stays until dirsync is restarted.");
            }
            let inboxes = make_inboxes(&new, inboxes);
            match sh.config.write() {
                Ok(mut c) => *c = Arc::new(new),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(new),
            }
            info!(config = %current.path.display(), "Configuration reloaded.");
            inboxes
        }
        Err(errors) => {
            let problems: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            error!(
                config = %current.path.display(),
                problems = %problems.join("; "),
                "Configuration reload refused; the previous configuration stays in force. Fix the file, check it with `dirsync config check`, and send SIGHUP again."
            );
            inboxes
        }
    };
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    result
}
