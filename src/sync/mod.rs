//! THE pipeline: every run — `check`, `apply`, a dropped file, an SFTP file,
//! an approval — goes through [`drive`]: parse → read the target → plan →
//! guard → apply in batches with intents and outcomes journaled → results →
//! mail. The only module that joins the core and the adapters.
//!
//! - [`start`]: a run from the command line (new, or the unfinished run of
//!   the same file resumed).
//! - [`pipeline`]: [`drive`], the one run loop; `batch.rs` applies one batch,
//!   `ending.rs` ends a pass (state, mails, passwords forgotten).
//! - [`resume`]: a fresh plan merged with what the journal already holds.
//! - [`approve`]: approving or rejecting held changes.
//! - [`activation`]: activation links journaled, mailed, resent;
//!   [`activate`]: a link used (the console's page).
//! - `generated`: generated values restored, assigned and journaled.
//! - [`writes`]: passwords, ops and notes of the writes.
//! - `file`: a run's file read and checked against its journaled hash;
//!   `read`: the file parsed while the target is read.
//! - [`results`]: the results file; [`mails`]: the run's mails; [`target`]:
//!   opening the backend.

pub mod activate;
pub mod activation;
pub mod approve;
mod batch;
mod ending;
mod file;
mod generated;
mod mails;
mod missing;
pub mod pipeline;
mod read;
mod report;
mod results;
mod resume;
pub mod start;
mod target;
mod writes;

use std::path::PathBuf;

pub use approve::{approve, reject, Approved};
pub use file::FileBytes;
pub use mails::MailOut;
pub use pipeline::{drive, drive_read, Ctx, Finish};
pub use report::{Credential, RunReport};
pub use results::{default_results_path, write_atomically};
pub use start::{journal_cli_run, CliRun, Started};
pub use target::{generate_password, open_backend};

/// What went wrong with a run as a whole (the target's failures are not
/// errors: they end the run in state `failed` with a results file).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Config(String),
    #[error("writing results to {path}: {source}")]
    Results { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Journal(#[from] crate::journal::JournalError),
    #[error("run {0} is not in the journal; `dirsync runs` lists them")]
    NoRun(i64),
    #[error("the file of run {id} is gone from {path}; the run cannot go on")]
    FileGone { id: i64, path: PathBuf },
    #[error("cannot read the file of run {id} at {path}: {source}")]
    FileRead {
        id: i64,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the file of run {id} at {path} has changed since the run started (its sha256 differs); run the new file as a new run")]
    FileChanged { id: i64, path: PathBuf },
    #[error("run {id} is {state}: {why}")]
    State { id: i64, state: &'static str, why: String },
}

/// Open the journal `[service]` names (the daemon's and the command line's alike).
pub async fn open_journal(
    config: &crate::config::Config,
) -> Result<crate::journal::Journal, crate::journal::JournalError> {
    crate::journal::Journal::open(&crate::journal::JournalLocation {
        url: config.service.journal_url(),
        key_file: config.service.state_dir.join("journal.key"),
    })
    .await
}
