//! SFTP inboxes: dirsync connects out to an SFTP server, takes complete HR
//! exports from a folder there and puts the results back.
//!
//! - [`SftpInbox`]: the `[[sftp_inbox]]` config (host key pin required).
//! - [`SftpClient`]: one connection: `connect`, `list_complete`, `claim`
//!   (atomic rename into `processing/`), `download`, `upload_results`,
//!   `finish` (to `archive/` or `rejected/`).
//! - [`run_sftp_inbox`]: the poll loop, with backoff and resume, handing
//!   each file to a [`FileHandler`] (the daemon's journal + sync).
//!
//! The server is the source of truth: a file in `processing/` was claimed
//! and is not finished; on start it is resumed (downloaded and run again).

mod client;
mod config;
mod error;
mod hostkey;
mod listing;
mod poll;
mod session;

pub use client::{ClaimedFile, Outcome, RemoteDirs, SftpClient};
pub use config::{parse_sftp_url, Auth, HostKeyPin, Settle, SftpInbox, SftpUrl};
pub use error::SftpError;
pub use hostkey::{check_host_key, fingerprint};
pub use listing::{complete_files, is_ignored, results_name, PollState, RemoteFile};
pub use poll::{poll_once, run_sftp_inbox, FileHandler, PollReport, Poller, Processed};
