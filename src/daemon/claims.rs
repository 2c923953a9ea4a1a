//! Work among daemons sharing a journal. A complete file in an inbox is
//! claimed by one of them: its file lease, then the atomic rename into
//! `processing/`, then its run in the journal, then the lease let go. A
//! file left in `processing/` by a daemon that died before journaling it
//! is adopted by one daemon, under the same lease. An unfinished run whose
//! lease lapsed (its daemon was killed, frozen or cut off) or was let go (a
//! clean stop) is taken over by whichever daemon scans first.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::{info, warn};

use super::job::{journal_claim, process};
use super::shared::Shared;
use crate::inbox::FolderInbox;
use crate::journal::{owner_is_dead, JournalError, Lease};
use crate::leases::{file_lease, run_lease};

/// Claim file `name` of `inbox` and journal it; its run's id, unless
/// another daemon claims it.
pub(super) async fn claim(sh: &Shared, inbox: &mut FolderInbox, name: &str) -> Option<i64> {
    let lease = file_lease(inbox.name(), name);
    match sh.leases.take(&lease, None).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            warn!(inbox = ?inbox.name(), file = ?name, error = %e, "Cannot claim the file (the journal does not answer); trying again.");
            return None;
        }
    }
    let id = match inbox.claim(name) {
        Ok(Some(c)) => journal_claim(sh, inbox, &c.path, &c.name, c.forced, None).await,
        Ok(None) => None,
        Err(e) => {
            warn!(inbox = ?inbox.name(), file = ?name, error = %e, "Cannot claim the file; trying again.");
            None
        }
    };
    sh.leases.release(&lease).await;
    id
}

/// Files in `processing/` that no run reads: claimed just before a daemon
/// died, before their run was journaled. Each becomes a run (once).
pub(super) async fn adopt_orphans(sh: &Shared, inboxes: &[FolderInbox]) -> Result<Vec<i64>, JournalError> {
    let mut known: Option<HashSet<PathBuf>> = None;
    let mut out = Vec::new();
    for inbox in inboxes {
        let Ok(found) = inbox.processing() else { continue };
        for c in found {
            let known = match &known {
                Some(k) => k,
                None => known.insert(sh.journal.unfiled_claims().await?),
            };
            if known.contains(&c.path) {
                continue;
            }
            let lease = file_lease(inbox.name(), &c.name);
            if !sh.leases.take(&lease, None).await? {
                continue;
            }
            // Under the lease: journaled by its claimer meanwhile, or filed away?
            let journaled = sh.journal.unfiled_claims().await?.contains(&c.path);
            if !journaled && c.path.exists() {
                if let Some(id) = journal_claim(sh, inbox, &c.path, &c.name, c.forced, None).await {
                    out.push(id);
                }
            }
            sh.leases.release(&lease).await;
        }
    }
    Ok(out)
}

/// Start every unfinished run no live daemon holds (this one's included).
pub(super) async fn take_over(sh: &Arc<Shared>, tasks: &mut JoinSet<()>) -> Result<(), JournalError> {
    let runs = sh.journal.unfinished_runs().await?;
    if runs.is_empty() {
        return Ok(());
    }
    let leases: HashMap<String, Lease> = sh
        .journal
        .leases()
        .await?
        .into_iter()
        .map(|l| (l.name.clone(), l))
        .collect();
    let me = sh.leases.owner();
    for r in runs {
        if sh.is_active(r.id) {
            continue;
        }
        match leases.get(&run_lease(r.id)) {
            Some(l) if l.live && !owner_is_dead(&l.owner, me) => continue,
            Some(l) if l.owner != me && !owner_is_dead(&l.owner, me) => {
                info!(run_id = r.id, inbox = ?r.inbox, file = ?r.file_name, state = r.state.as_str(), from = %l.owner, "Taking over an unfinished run: its daemon's hold lapsed.");
            }
            _ => {
                info!(run_id = r.id, inbox = ?r.inbox, file = ?r.file_name, state = r.state.as_str(), "Resuming an unfinished run.");
            }
        }
        tasks.spawn(process(Arc::clone(sh), r.id));
    }
    Ok(())
}
