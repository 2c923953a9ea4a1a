//! A run's file: read, and checked against the SHA-256 the run was
//! journaled with (a file changed or gone since is refused, never run).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::SyncError;
use crate::journal::RunRecord;

/// A run's file as read, with its SHA-256 (hex): the command line reads and
/// hashes it to journal the run, and hands it on.
pub struct FileBytes {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Read the run's file and check it is the file the run started with.
pub(super) fn read_file(run: &RunRecord, path: &Path) -> Result<Vec<u8>, SyncError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SyncError::FileGone {
            id: run.id,
            path: path.to_path_buf(),
        },
        _ => SyncError::FileRead {
            id: run.id,
            path: path.to_path_buf(),
            source,
        },
    })?;
    if hex::encode(Sha256::digest(&bytes)) != run.sha256 {
        return Err(SyncError::FileChanged {
            id: run.id,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}
