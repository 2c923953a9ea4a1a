//! "May this process still write?" The daemon runs a pass with a check (do
//! I still hold the run's and the target's leases?), and the backends ask
//! it at the last moment before a write becomes visible: before a SQL
//! transaction commits, before each LDAP operation goes out. A daemon that
//! was frozen (SIGSTOP, a paused VM) or cut off past its lease thus rolls
//! back the batch it was in instead of writing over the daemon that took
//! the run over. Outside such a pass (the command line, tools) every write
//! may go.

use std::future::Future;
use std::sync::Arc;

/// The check a pass is run with.
pub type WriteGuard = Arc<dyn Fn() -> bool + Send + Sync>;

tokio::task_local! {
    static GUARD: WriteGuard;
}

/// Run `f` with writes allowed only while `guard` says so.
pub async fn guarded<F: Future>(guard: WriteGuard, f: F) -> F::Output {
    GUARD.scope(guard, f).await
}

/// Whether a write may be made now.
pub fn may_write() -> bool {
    GUARD.try_with(|g| g()).unwrap_or(true)
}

/// The check of the pass this task runs in, to take to a blocking thread.
pub fn current() -> Option<WriteGuard> {
    GUARD.try_with(|g| g.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_go_unless_the_pass_lost_its_hold() {
        assert!(may_write(), "outside a guarded pass");
        assert!(guarded(Arc::new(|| true), async { may_write() }).await);
        assert!(!guarded(Arc::new(|| false), async { may_write() }).await);
    }
}
