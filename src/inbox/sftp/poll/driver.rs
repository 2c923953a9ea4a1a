//! What drives a `Poller`: `run_sftp_inbox`, the loop that reconnects with
//! backoff until shutdown, and `poll_once` for a single look (cron, `--once`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::{error, info, warn};

use super::super::client::SftpClient;
use super::super::config::SftpInbox;
use super::super::error::SftpError;
use super::{FileHandler, PollReport, Poller};

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
    if cfg.settle() == super::super::config::Settle::Stable && !report.waiting.is_empty() {
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
