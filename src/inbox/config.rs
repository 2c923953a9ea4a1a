//! `[[inbox]]` in dirsync.toml: a drop folder and who submits there.

use std::path::PathBuf;

use serde::Deserialize;

/// `[[inbox]]`: a drop folder watched by `dirsync serve`. Each inbox names
/// one policy (and so one target) and who submits there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// A short name, shown in logs and `dirsync runs`.
    pub name: String,
    /// The drop folder (relative to the config file). dirsync creates
    /// `processing/`, `archive/` and `rejected/` inside it.
    pub folder: Option<PathBuf>,
    /// The policy (a key of `[policies]`) files here are run with.
    pub policy: String,
    /// Who submits here: results go back to this address.
    pub submitter: Option<String>,
    /// A file written in place is taken once its size and modification time
    /// have not changed for this many seconds. A file renamed into the folder
    /// is taken at once.
    #[serde(default = "default_settle_seconds")]
    pub settle_seconds: u64,
    /// Take a file only once a marker `NAME.done` sits beside it.
    #[serde(default)]
    pub marker: bool,
}

const fn default_settle_seconds() -> u64 {
    5
}
