//! A run from the command line: `check` and `apply` journal the file as a
//! run of the pseudo-inbox `(cli)`; the command then drives it like any
//! other (holding the run and its target: see `cli_run.rs`). `apply` of
//! a file whose earlier run did not finish (killed, or the target failed)
//! resumes that run: the journal knows it by content hash and policy.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::file::FileBytes;
use super::pipeline::{Ctx, Finish};
use super::SyncError;
use crate::clock::now_ms;
use crate::config::LoadedPolicy;
use crate::journal::{NewRun, CLI_INBOX};

/// What the command line asked for.
pub struct CliRun<'a> {
    pub file: &'a Path,
    pub policy: &'a LoadedPolicy,
    /// `check`: plan and validate, write nothing.
    pub preview: bool,
    pub allow_over_limit: bool,
    /// `--results`; default beside the file.
    pub results: Option<PathBuf>,
    /// `--mail-to`: who gets the results mail.
    pub submitter: Option<&'a str>,
}

/// How the command line's run was found.
pub struct Started {
    pub run_id: i64,
    /// An unfinished run of the same file was resumed.
    pub resumed: bool,
    pub finish: Finish,
}

/// Journal the file as a run, or find its unfinished one: `(id, resumed)`,
/// and the file as read (so the run does not read and hash it again).
pub async fn journal_cli_run(ctx: &Ctx<'_>, r: &CliRun<'_>) -> Result<(i64, bool, FileBytes), SyncError> {
    let path = std::path::absolute(r.file).unwrap_or_else(|_| r.file.to_path_buf());
    let bytes = std::fs::read(&path).map_err(|source| SyncError::FileRead {
        id: 0,
        path: path.clone(),
        source,
    })?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let read = FileBytes { bytes, sha256: sha };
    let sha = &read.sha256;
    let existing = if r.preview {
        None
    } else {
        ctx.journal.unfinished_cli_run(sha, &r.policy.name).await?
    };
    let results = r
        .results
        .clone()
        .map(|p| std::path::absolute(&p).unwrap_or(p))
        .unwrap_or_else(|| super::default_results_path(&path));
    let (run_id, resumed) = match existing {
        Some(run) => {
            tracing::info!(run_id = run.id, "Resuming the unfinished run of this file.");
            // The results go where this command asks for them.
            ctx.journal.set_results(run.id, &results).await?;
            (run.id, true)
        }
        None => {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            let id = ctx
                .journal
                .create_run(&NewRun {
                    inbox: CLI_INBOX,
                    file_name: &file_name,
                    claimed: &path,
                    sha256: sha,
                    policy: &r.policy.name,
                    target: &r.policy.target,
                    forced: false,
                    allow_over_limit: r.allow_over_limit,
                    preview: r.preview,
                    results: Some(&results),
                    submitter: r.submitter,
                    now_ms: now_ms(),
                })
                .await?;
            (id, false)
        }
    };
    Ok((run_id, resumed, read))
}
