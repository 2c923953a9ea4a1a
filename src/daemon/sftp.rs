//! SFTP inboxes under `dirsync serve`: each `[[sftp_inbox]]` gets a poller
//! (`inbox::sftp::run_sftp_inbox`) whose handler runs the downloaded file
//! exactly like a dropped one.
//!
//! Each SFTP inbox has a local spool folder, `{state_dir}/sftp/{name}/`,
//! which the daemon treats as one more folder inbox (same name, policy and
//! submitter as the `[[sftp_inbox]]`). The handler writes the downloaded
//! bytes into the spool's `processing/` (temporary name, then an atomic
//! rename), journals the claim, and runs it through the same journaled
//! machinery as a dropped file: dedupe by sha256, per-target serialisation,
//! resume after a crash, results beside the file in `archive/DATE/` or
//! `rejected/`, and the mails. The run's results file is what goes back to
//! the server.
//!
//! A claim handed over again (a retry, or a remote file found in
//! `processing/` at start) finds its run in the journal by inbox, file name
//! and sha256 and gets that run's results; it is not run as a new file. A
//! fresh upload of an identical file is a new claim: a new run, which the
//! journal's dedupe answers with "identical, not applied again".

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::inboxes::inbox_config;
use super::job::{journal_claim, process};
use super::now_ms;
use super::shared::Shared;
use crate::config::Config;
use crate::inbox::folder::{results_beside, PROCESSING};
use crate::inbox::sftp::{run_sftp_inbox, FileHandler, Processed, SftpInbox};
use crate::inbox::FolderInbox;
use crate::journal::{RunRecord, RunState};

/// How often a handler looks whether a run another task works on finished.
const WAIT_STEP: Duration = Duration::from_millis(250);

/// Hands downloaded files to the journal and waits for their runs.
struct DaemonHandler {
    sh: Arc<Shared>,
}

fn err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl DaemonHandler {
    /// Put the bytes into the spool's `processing/` and journal them as a
    /// new run. A crash after the rename and before the journal is covered
    /// by the daemon's start-up scan of `processing/`.
    async fn spool(&self, inbox: &SftpInbox, file_name: &str, bytes: &[u8]) -> Result<i64, String> {
        if file_name.is_empty() || file_name.contains('/') || file_name == "." || file_name == ".." {
            return Err(format!(
                "{file_name:?} is not a plain file name; rename it on the server"
            ));
        }
        let config = self.sh.config();
        let cfg = inbox_config(&config, &inbox.name)
            .ok_or_else(|| format!("inbox {} is no longer configured", inbox.name))?;
        let folder = FolderInbox::new(&cfg);
        let processing = folder.dir.join(PROCESSING);
        std::fs::create_dir_all(&processing).map_err(err(&format!(
            "cannot create {} (check that the state folder is writable by dirsync)",
            processing.display()
        )))?;
        let path = processing.join(file_name);
        if path.exists() {
            return Err(format!(
                "{} is still in its run; this file waits until it is finished",
                path.display()
            ));
        }
        // Hidden, so never taken; one handler per inbox, so one name will do
        // (a leftover of a crash is overwritten).
        let tmp = processing.join(format!(".{file_name}.spool.tmp"));
        write_synced(&tmp, bytes).map_err(err(&format!("cannot write {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(err(&format!("cannot move {} into place", tmp.display())))?;
        // The rename is durable before the journal says the run exists.
        if let Err(e) = std::fs::File::open(&processing).and_then(|d| d.sync_all()) {
            warn!(folder = %processing.display(), error = %e, "Cannot sync the spool folder; going on.");
        }
        journal_claim(&self.sh, &folder, &path, file_name, false, None)
            .await
            .ok_or_else(|| format!("cannot journal {}; it is run at the next start", path.display()))
    }

    /// Work on run `id` (or wait while another task does) until it is
    /// finished; then its results. `Err` when it cannot finish now: the
    /// poller hands the file over again later.
    async fn finish(&self, id: i64) -> Result<Processed, String> {
        let mut tried = false;
        loop {
            let run = self
                .sh
                .journal
                .run(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("run {id} is not in the journal"))?;
            if run.filed {
                return results_of(&run);
            }
            if self.sh.stopping() {
                return Err("shutting down; the file resumes at the next start".into());
            }
            if self.sh.is_active(id) {
                tokio::time::sleep(WAIT_STEP).await;
                continue;
            }
            if tried {
                return Err(format!(
                    "run {id} is not finished yet ({}); see the log for why",
                    run.state.as_str()
                ));
            }
            process(Arc::clone(&self.sh), id).await;
            tried = true;
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A finished run's results file and whether its file went to `rejected/`.
fn results_of(run: &RunRecord) -> Result<Processed, String> {
    if run.state == RunState::Abandoned {
        return Err(format!(
            "run {} was abandoned ({}); the file is run again at the next poll",
            run.id,
            run.note.as_deref().unwrap_or("no reason recorded")
        ));
    }
    let Some(dest) = &run.dest else {
        return Err(format!("run {} has no results file", run.id));
    };
    let path = results_beside(dest);
    let results = std::fs::read(&path).map_err(err(&format!(
        "cannot read the results of run {} at {} (was it moved? put it back)",
        run.id,
        path.display()
    )))?;
    Ok(Processed {
        results,
        // As a dropped file: a rejected file and a duplicate go to rejected/.
        rejected: matches!(run.state, RunState::Rejected | RunState::Duplicate),
    })
}

#[async_trait::async_trait]
impl FileHandler for DaemonHandler {
    async fn handle(
        &self,
        inbox: &SftpInbox,
        file_name: &str,
        bytes: Vec<u8>,
        again: bool,
    ) -> Result<Processed, String> {
        let sha = hex::encode(Sha256::digest(&bytes));
        let known = if again {
            self.sh
                .journal
                .latest_run_of(&inbox.name, file_name, &sha)
                .await
                .map_err(|e| e.to_string())?
        } else {
            None
        };
        let id = match known {
            Some(run) => {
                info!(run_id = run.id, inbox = ?inbox.name, file = ?file_name, "SFTP file handed over again; its run goes on.");
                run.id
            }
            None => self.spool(inbox, file_name, &bytes).await?,
        };
        self.finish(id).await
    }

    fn polled(&self, inbox: &str, next: Duration) {
        let at = now_ms() + i64::try_from(next.as_millis()).unwrap_or(i64::MAX / 2);
        match self.sh.next_poll.lock() {
            Ok(mut m) => m.insert(inbox.to_string(), at),
            Err(p) => p.into_inner().insert(inbox.to_string(), at),
        };
    }
}

/// The pollers of the SFTP inboxes, by name.
pub(super) struct SftpPollers {
    sh: Arc<Shared>,
    running: HashMap<String, Poller>,
    /// Pollers of removed inboxes, finishing their file in flight.
    retired: Vec<JoinHandle<()>>,
}

struct Poller {
    /// The config it runs with (Debug text: paths and settings, no secrets).
    key: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn start(sh: &Arc<Shared>, cfg: SftpInbox, after: Option<JoinHandle<()>>) -> Poller {
    let (stop, mut rx) = watch::channel(false);
    let handler: Arc<dyn FileHandler> = Arc::new(DaemonHandler { sh: Arc::clone(sh) });
    let key = format!("{cfg:?}");
    let task = tokio::spawn(async move {
        // A reloaded inbox starts once its old poller finished its file.
        if let Some(old) = after {
            let _ = old.await;
        }
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        run_sftp_inbox(cfg, handler, shutdown).await;
    });
    Poller { key, stop, task }
}

impl SftpPollers {
    pub(super) fn new(sh: Arc<Shared>) -> SftpPollers {
        SftpPollers {
            sh,
            running: HashMap::new(),
            retired: Vec::new(),
        }
    }

    /// Start, restart (when changed) and stop pollers to match `config`.
    pub(super) fn update(&mut self, config: &Config) {
        let mut old = std::mem::take(&mut self.running);
        for cfg in &config.sftp_inboxes {
            let key = format!("{cfg:?}");
            let poller = match old.remove(&cfg.name) {
                Some(p) if p.key == key => p,
                Some(p) => {
                    info!(inbox = ?cfg.name, "SFTP inbox changed; restarting its poller.");
                    let _ = p.stop.send(true);
                    start(&self.sh, cfg.clone(), Some(p.task))
                }
                None => start(&self.sh, cfg.clone(), None),
            };
            self.running.insert(cfg.name.clone(), poller);
        }
        for (name, p) in old {
            info!(inbox = ?name, "SFTP inbox removed from the configuration; stopping its poller.");
            let _ = p.stop.send(true);
            self.retired.push(p.task);
        }
        self.retired.retain(|t| !t.is_finished());
    }

    /// Stop every poller and wait until each finished its file in flight.
    pub(super) async fn stop(self) {
        for p in self.running.values() {
            let _ = p.stop.send(true);
        }
        let running = self.running.into_iter().map(|(n, p)| (n, p.task));
        let retired = self.retired.into_iter().map(|t| ("(removed)".to_string(), t));
        for (name, task) in running.chain(retired) {
            if let Err(e) = task.await {
                warn!(inbox = ?name, error = %e, "An SFTP poller failed unexpectedly; its files resume at the next start.");
            }
        }
    }
}
