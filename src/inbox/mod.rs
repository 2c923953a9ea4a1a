//! Inboxes: where files come from. Each inbox names one policy and one
//! submitter. A folder inbox is a drop folder on this machine; an SFTP inbox
//! is a folder on a remote server. Either claims a complete file by an atomic
//! rename into `processing/`, hands its bytes to the run, and after the run
//! moves it to `archive/DATE/` (or `rejected/`) with its results file beside
//! it. Nothing is ever deleted.

pub mod config;
pub mod folder;
pub mod sftp;

pub use config::InboxConfig;
pub use folder::{Claim, FolderInbox};
