//! The folders the daemon runs files from: every `[[inbox]]` drop folder,
//! and a spool folder per `[[sftp_inbox]]` that is treated as one more
//! folder inbox (same name, policy and submitter).

use std::path::PathBuf;

use tracing::warn;

use crate::config::{Config, InboxConfig};
use crate::inbox::sftp::SftpInbox;

/// `{state_dir}/sftp/{name}/`: the spool folder of an SFTP inbox.
pub(super) fn spool_dir(config: &Config, name: &str) -> PathBuf {
    config.service.state_dir.join("sftp").join(name)
}

/// The folder inbox a `[[sftp_inbox]]`'s files run through.
pub(super) fn spool_inbox(config: &Config, s: &SftpInbox) -> InboxConfig {
    InboxConfig {
        name: s.name.clone(),
        folder: Some(spool_dir(config, &s.name)),
        policy: s.policy.clone(),
        submitter: s.submitter.clone(),
        settle_seconds: 5,
        marker: false,
    }
}

/// Every folder the daemon runs files from: the `[[inbox]]` drop folders,
/// then the spool folder of each `[[sftp_inbox]]` (created when missing).
pub(super) fn folder_inboxes(config: &Config) -> Vec<InboxConfig> {
    let mut out = config.inboxes.clone();
    for s in &config.sftp_inboxes {
        let cfg = spool_inbox(config, s);
        if let Some(dir) = &cfg.folder {
            if let Err(e) = std::fs::create_dir_all(dir) {
                warn!(inbox = ?s.name, folder = ?dir, error = %e,
                    "Cannot create the SFTP inbox's spool folder; check that the state folder is writable by dirsync.");
            }
        }
        out.push(cfg);
    }
    out
}

/// The folder inbox (drop folder or SFTP spool) called `name`.
pub(super) fn inbox_config(config: &Config, name: &str) -> Option<InboxConfig> {
    if let Some(i) = config.inboxes.iter().find(|i| i.name == name) {
        return Some(i.clone());
    }
    config
        .sftp_inboxes
        .iter()
        .find(|s| s.name == name)
        .map(|s| spool_inbox(config, s))
}
