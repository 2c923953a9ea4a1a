//! The drop folders: made from the config, watched for renamed files, and
//! made again when SIGHUP reloads the config.

use std::collections::HashMap;
use std::sync::Arc;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::inboxes;
use super::services::notify_systemd;
use super::shared::Shared;
use crate::config::Config;
use crate::inbox::FolderInbox;

pub(super) type Events = mpsc::UnboundedReceiver<notify::Result<notify::Event>>;

pub(super) fn watch(inboxes: &[FolderInbox]) -> (Option<notify::RecommendedWatcher>, Events) {
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
            warn!(inbox = ?inbox.name(), folder = ?inbox.dir, error = %e, "Cannot watch the folder; scanning it instead.");
        }
    }
    (Some(watcher), rx)
}

pub(super) fn make_inboxes(config: &Config, old: Vec<FolderInbox>) -> Vec<FolderInbox> {
    let mut old: HashMap<String, FolderInbox> = old.into_iter().map(|i| (i.config.name.clone(), i)).collect();
    let mut out = Vec::new();
    for cfg in &inboxes::folder_inboxes(config) {
        let inbox = match old.remove(&cfg.name) {
            Some(i) if i.config == *cfg => i,
            _ => FolderInbox::new(cfg),
        };
        match inbox.prepare() {
            Ok(()) => {
                info!(inbox = ?inbox.name(), folder = ?inbox.dir, marker = cfg.marker, settle_s = cfg.settle_seconds, "Watching inbox.")
            }
            Err(e) => error!(inbox = ?inbox.name(), error = %e, "Inbox not usable; the others go on."),
        }
        out.push(inbox);
    }
    out
}

/// SIGHUP: load the config again; keep the old one if the new one is broken.
pub(super) fn reload(sh: &Shared, inboxes: Vec<FolderInbox>) -> Vec<FolderInbox> {
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
