//! The poll loop: connect, resume what was claimed and not finished, claim
//! what is complete, hand each file to the run, put the results back, move
//! the file on. Network trouble drops the connection and reconnects with
//! backoff; nothing claimed is lost, because a claimed file stays in
//! `processing/` until its results are uploaded. This file holds one poll
//! (`Poller`); driver.rs holds the loop around it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::client::{ClaimedFile, Outcome, SftpClient};
use super::config::SftpInbox;
use super::error::SftpError;
use super::listing::PollState;
use crate::core::report::write_rejection;
use crate::core::roster::{FileError, FileErrorKind};

mod driver;

pub use driver::{poll_once, run_sftp_inbox};

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
