//! The results file: written atomically, beside the input by default.

use std::path::{Path, PathBuf};

use super::SyncError;
use crate::core::report::write_rejection;
use crate::core::{FileError, Policy};

/// Where the results go by default: beside the input as `NAME.results.csv`.
pub fn default_results_path(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "roster".into());
    input.with_file_name(format!("{stem}.results.csv"))
}

/// Write the results atomically: a temp file beside it, then rename.
pub fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), SyncError> {
    let err = |source| SyncError::Results {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("csv.tmp");
    let file = std::fs::File::create(&tmp).map_err(err)?;
    // 256 KiB at a time: a 100k-row results file (12 MB) in ≈ 50 writes
    // instead of 1,500.
    let mut w = std::io::BufWriter::with_capacity(256 << 10, file);
    f(&mut w).map_err(err)?;
    let file = w.into_inner().map_err(|e| err(e.into_error()))?;
    file.sync_all().map_err(err)?;
    // A daemon that lost its hold on the run leaves the results to the one
    // that took it over.
    if !crate::backend::guard::may_write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(SyncError::Journal(crate::journal::JournalError::LeaseLost(format!(
            "the run (its results file {} was not written)",
            path.display()
        ))));
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// The results of a file refused as a whole, or of a run the target never
/// let start: every readable row with the reason.
pub(super) fn write_refusal(bytes: &[u8], policy: &Policy, results: &Path, e: &FileError) -> Result<(), SyncError> {
    let text = crate::core::roster::readable_text(bytes, policy);
    write_atomically(results, |w| write_rejection(w, text.as_deref().map(|t| (t, policy)), e))
}
