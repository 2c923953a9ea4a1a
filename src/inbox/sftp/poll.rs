//! The poll loop: connect, resume what was claimed and not finished, claim
//! what is complete, hand each file to the run, put the results back, move
//! the file on. Network trouble drops the connection and reconnects with
//! backoff; nothing claimed is lost, because a claimed file stays in
//! `processing/` until its results are uploaded.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::{error, info, warn};

use super::client::{ClaimedFile, Outcome, SftpClient};
use super::config::SftpInbox;
use super::error::SftpError;
use super::listing::PollState;
use crate::core::report::write_rejection;
use crate::core::roster::{FileError, FileErrorKind};

/// What the run made of a file.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The results CSV, uploaded as `results/STEM.results.csv`.
    pub results: Vec<u8>,
    /// The file was rejected as a whole: it goes to `rejected/`, not `archive/`.
    pub rejected: bool,
}

/// Runs one downloaded file: the daemon plugs its journal and sync in here.
#[async_trait::async_trait]
pub trait FileHandler: Send + Sync {
    /// Run `bytes` (the file `file_name` from `inbox`). `Err` means it could
    /// not be run now (target down, ...): the file stays in `processing/`
    /// and is tried again at the next poll.
    ///
    /// `again` is false the first time a file this process claimed from the
    /// inbox is handed over: it is a new delivery. It is true when the same
    /// claim may have been handed over before: a retry after `Err`, or a file
    /// found in `processing/` at start (claimed before a restart). Then the
    /// handler should give back that claim's results rather than run it as a
    /// new file.
    async fn handle(
        &self,
        inbox: &SftpInbox,
        file_name: &str,
        bytes: Vec<u8>,
        again: bool,
    ) -> Result<Processed, String>;

    /// A poll of `inbox` ended; the next is in `next` (for the console).
    fn polled(&self, _inbox: &str, _next: Duration) {}
}

/// What one poll did.
#[derive(Debug, Default, Clone)]
pub struct PollReport {
    /// Finished files: name, outcome, remote results path.
    pub finished: Vec<(String, Outcome, String)>,
    /// Files seen but not complete yet.
    pub waiting: Vec<String>,
    /// Files that stay in `processing/` for now, with why.
    pub failed: Vec<(String, String)>,
}

impl PollReport {
    fn merge(&mut self, other: PollReport) {
        self.finished.extend(other.finished);
        self.waiting = other.waiting;
        self.failed = other.failed;
    }
}

struct Pending {
    file: ClaimedFile,
    processed: Option<Processed>,
    /// Handed over before (or may have been, before a restart).
    handed: bool,
}

/// The state of one inbox across polls and reconnections.
pub struct Poller {
    cfg: SftpInbox,
    handler: Arc<dyn FileHandler>,
    state: PollState,
    /// Claimed by this process (or found in `processing/` at start) and not
    /// finished. A file whose run is done keeps its results here until they
    /// are uploaded, so the run is never repeated for an upload problem.
    pending: BTreeMap<String, Pending>,
    resumed: bool,
}

impl Poller {
    pub fn new(cfg: SftpInbox, handler: Arc<dyn FileHandler>) -> Poller {
        Poller {
            cfg,
            handler,
            state: PollState::default(),
            pending: BTreeMap::new(),
            resumed: false,
        }
    }

    /// One poll. `stop` is asked between files. A connection error is
    /// returned (reconnect); per-file trouble is logged and reported.
    pub async fn poll(
        &mut self,
        client: &SftpClient,
        stop: &mut (dyn FnMut() -> bool + Send),
    ) -> Result<PollReport, SftpError> {
        let inbox = self.cfg.name.clone();
        let mut report = PollReport::default();
        if !self.resumed {
            // Only at start: later, processing/ may hold another dirsync's
            // files; ours are in `pending`.
            for file in client.list_processing().await? {
                if !self.pending.contains_key(&file.name) {
                    info!(inbox = %inbox, file = ?file.name, "Resuming a file claimed earlier and not finished.");
                    self.pending.insert(
                        file.name.clone(),
                        Pending {
                            file,
                            processed: None,
                            handed: true,
                        },
                    );
                }
            }
            self.resumed = true;
        }
        for f in client.list_complete(&mut self.state).await? {
            if stop() {
                return Ok(report);
            }
            match client.claim(&f).await {
                Ok(Some(file)) => {
                    self.state.forget(&file.name);
                    self.pending.insert(
                        file.name.clone(),
                        Pending {
                            file,
                            processed: None,
                            handed: false,
                        },
                    );
                }
                Ok(None) => {}
                Err(e) if e.is_connection() => return Err(e),
                Err(e) => {
                    warn!(inbox = %inbox, file = ?f.name, error = ?e.to_string(), "Cannot claim the file; trying again at the next poll.");
                    report.failed.push((f.name.clone(), e.to_string()));
                }
            }
        }
        let names: Vec<String> = self.pending.keys().cloned().collect();
        for name in names {
            if stop() {
                break;
            }
            match self.process(client, &name).await {
                Ok((outcome, results)) => {
                    self.pending.remove(&name);
                    report.finished.push((name, outcome, results));
                }
                Err(e) if e.is_connection() => return Err(e),
                Err(e) if e.is_not_found() && self.pending.get(&name).map(|p| p.file.path.as_str()) == e.path() => {
                    warn!(inbox = %inbox, file = ?name, error = ?e.to_string(),
                        "The claimed file is gone from processing/ (moved or removed by someone else); forgetting it.");
                    self.pending.remove(&name);
                    report.failed.push((name, e.to_string()));
                }
                Err(e) => {
                    warn!(inbox = %inbox, file = ?name, error = ?e.to_string(), "File stays in processing/; trying again at the next poll.");
                    report.failed.push((name, e.to_string()));
                }
            }
        }
        report.waiting = self.state_names();
        Ok(report)
    }

    fn state_names(&self) -> Vec<String> {
        self.state
            .names()
            .filter(|n| !self.pending.contains_key(*n))
            .map(str::to_string)
            .collect()
    }

    async fn process(&mut self, client: &SftpClient, name: &str) -> Result<(Outcome, String), SftpError> {
        let Some(p) = self.pending.get_mut(name) else {
            return Err(SftpError::Run(format!("{name} is not pending")));
        };
        if p.processed.is_none() {
            let processed = match client.download(&p.file).await {
                Ok(bytes) => {
                    let again = std::mem::replace(&mut p.handed, true);
                    self.handler
                        .handle(&self.cfg, &p.file.name, bytes, again)
                        .await
                        .map_err(SftpError::Run)?
                }
                Err(e @ SftpError::TooLarge { .. }) => {
                    warn!(inbox = %self.cfg.name, file = ?name, error = ?e.to_string(), "File rejected unread.");
                    rejection(&e.to_string())
                }
                Err(e) => return Err(e),
            };
            p.processed = Some(processed);
        }
        let (results, rejected) = match &p.processed {
            Some(done) => (done.results.as_slice(), done.rejected),
            None => return Err(SftpError::Run(format!("{name} has no results"))),
        };
        let path = client.upload_results(&p.file, results).await?;
        let outcome = if rejected { Outcome::Rejected } else { Outcome::Archived };
        client.finish(&p.file, outcome).await?;
        Ok((outcome, path))
    }
}

/// The results of a file rejected before it was read.
fn rejection(why: &str) -> Processed {
    let error = FileError::new(FileErrorKind::TooManyRows, why);
    let mut results = Vec::new();
    // ok: writing into a Vec cannot fail.
    let _ = write_rejection(&mut results, None, &error);
    Processed {
        results,
        rejected: true,
    }
}

/// Doubling waits between reconnections, up to the inbox's maximum.
struct Backoff {
    next: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Duration::from_secs(1),
            max,
            failures: 0,
        }
    }
    fn fail(&mut self) -> Duration {
        let wait = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        self.failures += 1;
        wait
    }
    fn reset(&mut self) {
        self.next = Duration::from_secs(1);
        self.failures = 0;
    }
}

/// A shutdown future that can be asked "has it fired?" more than once.
struct Shutdown<F: Future<Output = ()>> {
    fut: Pin<Box<F>>,
    fired: bool,
}

impl<F: Future<Output = ()>> Shutdown<F> {
    fn fired(&mut self) -> bool {
        if !self.fired {
            self.fired = self.fut.as_mut().now_or_never().is_some();
        }
        self.fired
    }
    /// Sleep; true when shutdown came first.
    async fn sleep(&mut self, d: Duration) -> bool {
        if self.fired {
            return true;
        }
        tokio::select! {
            _ = self.fut.as_mut() => { self.fired = true; true }
            _ = tokio::time::sleep(d) => false,
        }
    }
}

fn log_trouble(cfg: &SftpInbox, e: &SftpError, wait: Duration) {
    let secs = wait.as_secs();
    if e.needs_operator() {
        error!(inbox = %cfg.name, retry_in_secs = secs, error = ?e.to_string(), "SFTP inbox needs an operator.");
    } else {
        warn!(inbox = %cfg.name, retry_in_secs = secs, error = ?e.to_string(), "SFTP inbox unreachable; retrying.");
    }
}

/// Poll the inbox until `shutdown` completes. A file being processed is
/// finished before it returns. Never returns an error: trouble is logged
/// with advice and retried with backoff (errors an operator must fix wait
/// the longest backoff between attempts).
pub async fn run_sftp_inbox(cfg: SftpInbox, handler: Arc<dyn FileHandler>, shutdown: impl Future<Output = ()> + Send) {
    let mut shutdown = Shutdown {
        fut: Box::pin(shutdown),
        fired: false,
    };
    let mut poller = Poller::new(cfg.clone(), Arc::clone(&handler));
    let max = Duration::from_secs(cfg.max_backoff_secs.max(1));
    let mut backoff = Backoff::new(max);
    info!(inbox = %cfg.name, url = ?cfg.sftp.to_string(), "SFTP inbox started.");
    'connect: while !shutdown.fired() {
        let client = tokio::select! {
            c = SftpClient::connect(&cfg) => c,
            _ = shutdown.fut.as_mut() => { shutdown.fired = true; break 'connect; }
        };
        let client = match client {
            Ok(c) => {
                if backoff.failures > 0 {
                    info!(inbox = %cfg.name, "SFTP inbox reachable again.");
                }
                backoff.reset();
                c
            }
            Err(e) => {
                let wait = if e.needs_operator() { max } else { backoff.fail() };
                log_trouble(&cfg, &e, wait);
                if shutdown.sleep(wait).await {
                    break;
                }
                continue;
            }
        };
        loop {
            match poller.poll(&client, &mut || shutdown.fired()).await {
                Ok(report) => {
                    for (name, outcome, results) in &report.finished {
                        info!(inbox = %cfg.name, file = ?name, outcome = ?outcome, results = ?results, "File processed.");
                    }
                }
                Err(e) if e.is_connection() => {
                    let wait = backoff.fail();
                    log_trouble(&cfg, &e, wait);
                    if shutdown.sleep(wait).await {
                        break 'connect;
                    }
                    continue 'connect;
                }
                Err(e) => {
                    // The connection is fine; the folder is not (missing,
                    // no permission). Look again at the next poll.
                    warn!(inbox = %cfg.name, error = ?e.to_string(), "Cannot look at the SFTP inbox; trying again at the next poll.");
                }
            }
            handler.polled(&cfg.name, cfg.poll_interval());
            if shutdown.sleep(cfg.poll_interval()).await {
                break 'connect;
            }
        }
    }
    info!(inbox = %cfg.name, "SFTP inbox stopped.");
}

/// Take what is complete now and stop: resume unfinished files, look at the
/// folder, and (unless `marker = true`) look again after one poll interval;
/// process what did not change. For `dirsync inbox poll --once` and cron.
pub async fn poll_once(cfg: &SftpInbox, handler: Arc<dyn FileHandler>) -> Result<PollReport, SftpError> {
    let client = SftpClient::connect(cfg).await?;
    let mut poller = Poller::new(cfg.clone(), handler);
    let mut report = poller.poll(&client, &mut || false).await?;
    if cfg.settle() == super::config::Settle::Stable && !report.waiting.is_empty() {
        tokio::time::sleep(cfg.poll_interval()).await;
        let second = poller.poll(&client, &mut || false).await?;
        report.merge(second);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|_| b.fail().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
        assert_eq!(b.failures, 5);
        b.reset();
        assert_eq!(b.fail(), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn shutdown_can_be_asked_again_after_it_fired() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut s = Shutdown {
            fut: Box::pin(async move {
                let _ = rx.await;
            }),
            fired: false,
        };
        assert!(!s.fired());
        let _ = tx.send(());
        assert!(s.sleep(Duration::from_secs(60)).await);
        assert!(s.fired());
        assert!(s.fired());
    }
}
