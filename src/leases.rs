//! This process's leases ([`crate::journal`] keeps them): taken with a
//! compare-and-set in the journal, renewed by a heartbeat every third of
//! the lease time, and known here to be valid until the start of the last
//! renewal plus the lease time. A process frozen (SIGSTOP, a paused VM) or
//! cut off from the database past that time knows it lost its leases before
//! it asks anyone: the run loop checks [`Leases::valid`] before each batch,
//! and the journal checks the fence inside each write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::journal::{Fence, Journal, JournalError};

/// The lease of a run.
pub fn run_lease(id: i64) -> String {
    format!("run:{id}")
}

/// The lease that serialises the runs against one target (its description).
pub fn target_lease(place: &str) -> String {
    format!("target:{place}")
}

/// The lease of a file being claimed from an inbox.
pub fn file_lease(inbox: &str, name: &str) -> String {
    format!("file:{inbox}/{name}")
}

/// The lease of the daemon that carries out scheduled changes now.
pub fn schedule_lease() -> String {
    "schedule".to_string()
}

/// The lease of the daemon whose outbox sender sends now.
pub fn mail_lease() -> String {
    "mail-sender".to_string()
}

/// The lease that says a daemon is alive (`dirsync runs daemons`, the console).
pub fn presence_lease(owner: &str) -> String {
    format!("daemon:{owner}")
}

/// This process's leases.
pub struct Leases {
    journal: Journal,
    owner: String,
    ttl: Duration,
    /// Name → until when it is surely still ours.
    held: Mutex<HashMap<String, Instant>>,
}

impl Leases {
    /// Leases of this process (`host:pid#nonce`), each `ttl` long.
    pub fn new(journal: Journal, ttl: Duration) -> Arc<Leases> {
        Arc::new(Leases {
            journal,
            owner: format!("{}#{:08x}", crate::worker::worker_id(), rand::random::<u32>()),
            ttl,
            held: Mutex::new(HashMap::new()),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX / 4)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Take `name` unless another live process holds it.
    pub async fn take(&self, name: &str, run_id: Option<i64>) -> Result<bool, JournalError> {
        let t0 = Instant::now();
        let ok = self
            .journal
            .take_lease(name, &self.owner, self.ttl_ms(), run_id)
            .await?;
        if ok {
            self.held().insert(name.to_string(), t0 + self.ttl);
        }
        Ok(ok)
    }

    /// Take `name`, waiting while another process holds it; `false` when
    /// `stop` says so first.
    pub async fn take_waiting(
        &self,
        name: &str,
        run_id: Option<i64>,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<bool, JournalError> {
        let poll = (self.ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let mut said = false;
        loop {
            if self.take(name, run_id).await? {
                return Ok(true);
            }
            if stop() {
                return Ok(false);
            }
            if !said {
                debug!(lease = name, "Waiting for another daemon to finish with it.");
                said = true;
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Hold `name` again if it lapsed (a daemon's presence after a freeze).
    pub async fn keep(&self, name: &str) -> Result<bool, JournalError> {
        if self.valid(name) {
            return Ok(true);
        }
        self.take(name, None).await
    }

    /// Whether `name` is surely still ours.
    pub fn valid(&self, name: &str) -> bool {
        self.held().get(name).is_some_and(|until| Instant::now() < *until)
    }

    /// A fence of these leases, for [`Journal::fenced`].
    pub fn fence(&self, names: &[String]) -> Fence {
        Fence {
            owner: self.owner.clone(),
            names: names.to_vec(),
            ttl_ms: self.ttl_ms(),
        }
    }

    /// Give `name` up at once (another daemon may take it now).
    pub async fn release(&self, name: &str) {
        self.held().remove(name);
        if let Err(e) = self.journal.release_lease(name, &self.owner).await {
            warn!(lease = name, error = %e, "Cannot release a lease; it lapses by itself.");
        }
    }

    /// Keep `name` from everyone for `wait`, then let it lapse.
    pub async fn park(&self, name: &str, wait: Duration) {
        self.held().remove(name);
        let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
        if let Err(e) = self.journal.park_lease(name, &self.owner, ms).await {
            warn!(lease = name, error = %e, "Cannot park a lease; it lapses by itself.");
        }
    }

    /// Give every lease up (a clean stop: the others take the work over now).
    pub async fn release_all(&self) {
        let names: Vec<String> = self.held().keys().cloned().collect();
        for n in names {
            self.release(&n).await;
        }
    }

    /// Renew what this process holds; forget what it lost.
    pub async fn renew(&self) -> Result<(), JournalError> {
        let names: Vec<String> = self.held().keys().cloned().collect();
        let t0 = Instant::now();
        let kept = self.journal.renew_leases(&self.owner, &names, self.ttl_ms()).await?;
        let mut held = self.held();
        for n in names {
            if kept.contains(&n) {
                if let Some(until) = held.get_mut(&n) {
                    *until = t0 + self.ttl;
                }
            } else if held.remove(&n).is_some() {
                warn!(lease = %n, "Lease lost: this process was too slow to renew it; another daemon may take the work over.");
            }
        }
        Ok(())
    }

    /// Renew every third of the lease time until `stop`.
    pub async fn heartbeat(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let every = (self.ttl / 3).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(every) => {
                    if let Err(e) = self.renew().await {
                        warn!(error = %e, "Cannot renew the leases; the work stops when they lapse unless the journal answers again.");
                    }
                }
            }
        }
    }
}
