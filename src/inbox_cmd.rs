//! `dirsync inbox test|poll NAME`: an SFTP inbox without the daemon. Files
//! are kept under `state_dir/sftp/INBOX/` and run like `dirsync apply`:
//! journaled, through the one pipeline.

use dirsync::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::info;

use dirsync::config::Config;
use dirsync::inbox::sftp::{
    self, FileHandler, HostKeyPin, Outcome, Processed, Settle, SftpClient, SftpError, SftpInbox,
};
use dirsync::sync::{CliRun, Finish};

use crate::cli_run::Session;

/// Runs each file with apply. Keeps each run's results under
/// `state_dir/sftp/INBOX/` by the file's sha256, so a file handed over
/// again (dirsync stopped after the run, before the upload) is not applied a
/// second time: its first results are sent again.
struct SyncHandler {
    session: Arc<Session>,
}

impl SyncHandler {
    fn cache_dir(&self, inbox: &SftpInbox) -> PathBuf {
        self.session.config.service.state_dir.join("sftp").join(&inbox.name)
    }
}

fn read_cached(dir: &Path, sha: &str) -> Option<Processed> {
    for (suffix, rejected) in [("archived", false), ("rejected", true)] {
        if let Ok(results) = std::fs::read(dir.join(format!("{sha}.{suffix}.results.csv"))) {
            return Some(Processed { results, rejected });
        }
    }
    None
}

#[async_trait::async_trait]
impl FileHandler for SyncHandler {
    async fn handle(
        &self,
        inbox: &SftpInbox,
        file_name: &str,
        bytes: Vec<u8>,
        _again: bool,
    ) -> Result<Processed, String> {
        let sha = hex::encode(Sha256::digest(&bytes));
        let dir = self.cache_dir(inbox);
        if let Some(done) = read_cached(&dir, &sha) {
            info!(inbox = ?inbox.name, file = ?file_name, sha256 = %sha, "Already run; sending its results again.");
            return Ok(done);
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let config = &self.session.config;
        let lp = config.policy(Some(&inbox.policy))?;
        // The file is kept (by content) so that an interrupted run resumes.
        let file = dir.join(format!("{sha}.csv"));
        if !file.exists() {
            let tmp = dir.join(format!(".{sha}.csv.tmp"));
            std::fs::write(&tmp, &bytes)
                .and_then(|_| std::fs::rename(&tmp, &file))
                .map_err(|e| format!("cannot keep {}: {e}", file.display()))?;
        }
        let running = dir.join(format!("{sha}.running.results.csv"));
        let cli = CliRun {
            file: &file,
            policy: lp,
            preview: false,
            allow_over_limit: false,
            results: Some(running.clone()),
            submitter: inbox.submitter.as_deref(),
        };
        let report = match self.session.start(&cli).await.map_err(|e| e.to_string())?.finish {
            Finish::Ended(r) => r,
            Finish::Stopped => return Err("stopped; the file resumes at the next poll".into()),
        };
        self.session.deliver(&report).await;
        if let (Some(e), dirsync::journal::RunState::Failed) = (&report.target_error, report.state) {
            return Err(format!(
                "target: {e}; the file stays in processing/ and its run (run {}) resumes at the next poll",
                report.run_id
            ));
        }
        let results =
            std::fs::read(&report.results).map_err(|e| format!("cannot read {}: {e}", report.results.display()))?;
        let rejected = report.file_error.is_some();
        if report.target_error.is_none() {
            // Done for good: remember it. After a target error the file is
            // sent again and its run resumes.
            let suffix = if rejected { "rejected" } else { "archived" };
            let keep = dir.join(format!("{sha}.{suffix}.results.csv"));
            std::fs::copy(&report.results, &keep).map_err(|e| format!("cannot keep {}: {e}", keep.display()))?;
            let _ = std::fs::remove_file(&file);
        }
        info!(inbox = ?inbox.name, file = ?file_name, run_id = report.run_id, summary = %report.summary, "Run finished.");
        Ok(Processed { results, rejected })
    }
}

fn describe_pin(inbox: &SftpInbox) -> String {
    match inbox.pin() {
        Ok(HostKeyPin::Fingerprint(f)) => format!("host_key_fingerprint {f}"),
        Ok(HostKeyPin::KnownHosts(p)) => format!("known_hosts {}", p.display()),
        Err(e) => e,
    }
}

/// `dirsync inbox test NAME`.
pub async fn test(config: &Config, name: &str) -> ExitCode {
    let inbox = match config.sftp_inbox(name) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let client = match SftpClient::connect(inbox).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: inbox {name}: {e}");
            return ExitCode::from(2);
        }
    };
    say!(
        "connected to {} ({}): host key {} matches the pinned {}",
        client.addr(),
        inbox.sftp,
        client.host_key_fingerprint(),
        describe_pin(inbox)
    );
    match listing(inbox, &client).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: inbox {name}: {e}");
            ExitCode::from(2)
        }
    }
}

async fn listing(inbox: &SftpInbox, client: &SftpClient) -> Result<(), SftpError> {
    let dirs = client.dirs();
    let files = client.list().await?;
    let markers = client.markers().await?;
    say!("inbox folder {}: {} file(s)", dirs.inbox, files.len());
    for f in &files {
        let verdict = match inbox.settle() {
            Settle::Marker if markers.contains(&f.name) => "would be taken now (its .done marker is there)".to_string(),
            Settle::Marker => format!("waits for its marker {}.done", f.name),
            Settle::Stable => format!(
                "would be taken if unchanged at the next poll (in {} s)",
                inbox.poll_interval_secs
            ),
        };
        say!("  {} ({} bytes): {verdict}", f.name, f.size);
    }
    let resumed = client.list_processing().await?;
    if !resumed.is_empty() {
        say!(
            "{}: {} file(s) claimed and not finished, resumed at the next start:",
            dirs.processing,
            resumed.len()
        );
        for f in &resumed {
            say!("  {}", f.name);
        }
    }
    say!(
        "results to {}, processed files to {} or {}",
        dirs.results,
        dirs.archive,
        dirs.rejected
    );
    Ok(())
}

/// `dirsync inbox poll NAME [--once]`.
pub async fn poll(config: Config, name: &str, once: bool) -> ExitCode {
    let inbox = match config.sftp_inbox(name) {
        Ok(i) => i.clone(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let session = match Session::open(config).await {
        Ok(s) => s.for_many_runs(),
        Err(code) => return code,
    };
    let handler: Arc<dyn FileHandler> = Arc::new(SyncHandler {
        session: Arc::new(session),
    });
    if !once {
        sftp::run_sftp_inbox(inbox, handler, shutdown_signal()).await;
        return ExitCode::SUCCESS;
    }
    match sftp::poll_once(&inbox, handler).await {
        Ok(report) => {
            for (file, outcome, results) in &report.finished {
                let outcome = match outcome {
                    Outcome::Archived => "archived",
                    Outcome::Rejected => "rejected",
                };
                say!("{file}: {outcome}; results: {results}");
            }
            for file in &report.waiting {
                say!("{file}: not complete yet, left for the next poll");
            }
            for (file, why) in &report.failed {
                say!("{file}: stays in processing/: {why}");
            }
            if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: inbox {name}: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
