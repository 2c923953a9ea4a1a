//! What the daemon's tasks share: the journal, the config (reloaded on
//! SIGHUP), one lock per target, the runs being worked on, the outbox.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::journal::{Journal, JournalError};
use crate::leases::{target_lease, Leases};
use crate::sync::{Ctx, MailOut};

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
    /// When each SFTP inbox is polled next (Unix ms), for the console.
    pub(super) next_poll: Mutex<HashMap<String, i64>>,
    /// This process's leases in the journal: other daemons sharing it see
    /// which runs, targets and files this one holds.
    pub(super) leases: Arc<Leases>,
}

/// A target held: this process's lock on it, and its lease among daemons.
pub(super) struct TargetHold {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    pub(super) lease: String,
}

/// The outbox runs queue their mails into, and the sender's wake-up.
pub(super) struct MailCtx {
    pub(super) outbox: crate::mail::Outbox,
    pub(super) wake: Arc<tokio::sync::Notify>,
}

impl Shared {
    pub(super) fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Hold the target `policy` writes to for run `run_id`: its lock in this
    /// process, then its lease among daemons (waiting while another daemon
    /// runs against it). `None` when the daemon stops first.
    pub(super) async fn hold_target(
        &self,
        config: &Config,
        policy: &str,
        run_id: i64,
    ) -> Result<Option<TargetHold>, JournalError> {
        let place = config.target_place(policy);
        let lock = {
            let mut locks = match self.locks.lock() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            Arc::clone(locks.entry(place.clone()).or_default())
        };
        let guard = lock.lock_owned().await;
        let lease = target_lease(&place);
        let stop = || self.stopping();
        if !self.leases.take_waiting(&lease, Some(run_id), &stop).await? {
            return Ok(None);
        }
        Ok(Some(TargetHold { _guard: guard, lease }))
    }

    /// Let the target go (the lease first, then the lock).
    pub(super) async fn release_target(&self, hold: TargetHold) {
        self.leases.release(&hold.lease).await;
    }

    pub(super) fn set_active(&self, id: i64, on: bool) -> bool {
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

    /// Run `f` with the pipeline's context: the daemon's journal fenced by
    /// the leases `held` (its writes stop when one is lost), its outbox
    /// (waking the sender when mail is queued), and "stop" when the daemon
    /// stops or a lease is no longer surely ours.
    pub(super) async fn with_ctx<T>(&self, config: &Config, held: &[String], f: impl AsyncFnOnce(&Ctx<'_>) -> T) -> T {
        let wake = || {
            if let Some(m) = &self.mail {
                m.wake.notify_one();
            }
        };
        let mail = match (&self.mail, config.mail.as_ref()) {
            (Some(m), Some(cfg)) => Some(MailOut {
                cfg,
                outbox: &m.outbox,
                wake: &wake,
            }),
            _ => None,
        };
        let stop = || self.stopping() || held.iter().any(|l| !self.leases.valid(l));
        let journal = match held {
            [] => self.journal.clone(),
            _ => self.journal.fenced(self.leases.fence(held)),
        };
        let ctx = Ctx {
            config,
            journal: &journal,
            mail,
            stop: &stop,
            exits_after: false,
        };
        // The backends ask this before each write becomes visible.
        let guard: crate::backend::guard::WriteGuard = {
            let leases = Arc::clone(&self.leases);
            let held = held.to_vec();
            Arc::new(move || held.iter().all(|l| leases.valid(l)))
        };
        crate::backend::guard::guarded(guard, f(&ctx)).await
    }
}
