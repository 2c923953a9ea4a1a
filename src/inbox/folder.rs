//! A drop folder: which files are complete, claiming them, and filing them
//! away after their run.
//!
//! A file is complete when it was renamed into the folder (the writer wrote
//! it elsewhere, or under a `.part`/`.tmp` name), when its marker
//! `NAME.done` is beside it, or when its size and modification time have
//! not changed for the inbox's `settle_seconds`. An inbox with `marker =
//! true` waits for the marker alone. A `NAME.force` marker dropped before
//! the file makes dirsync apply it even if an identical file was applied
//! before.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::InboxConfig;

pub const PROCESSING: &str = "processing";
pub const ARCHIVE: &str = "archive";
pub const REJECTED: &str = "rejected";
const DONE_MARKER: &str = ".done";
const FORCE_MARKER: &str = ".force";

/// Names that are never taken: hidden files, partial and temporary files,
/// Office lock files, markers, and results files.
pub fn ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || name.ends_with('~')
        || [
            ".part",
            ".tmp",
            ".swp",
            ".crdownload",
            DONE_MARKER,
            FORCE_MARKER,
            ".results.csv",
        ]
        .iter()
        .any(|s| lower.ends_with(s))
}

/// `NAME.results.csv` beside `path` (the same rule as `sync::default_results_path`).
pub fn results_beside(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "roster".into());
    path.with_file_name(format!("{stem}.results.csv"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// What a file looked like when last seen.
struct Seen {
    size: u64,
    mtime: SystemTime,
    /// Since when (size, mtime) has been as it is.
    stable_since: Instant,
}

/// A claimed file, now in `processing/`.
#[derive(Debug, Clone)]
pub struct Claim {
    pub name: String,
    pub path: PathBuf,
    /// A `NAME.force` marker came with it.
    pub forced: bool,
}

/// One drop folder and what the daemon has seen in it.
pub struct FolderInbox {
    pub config: InboxConfig,
    pub dir: PathBuf,
    /// `dir` with symlinks and `.` resolved, as the watcher reports paths.
    canonical: Option<PathBuf>,
    seen: HashMap<String, Seen>,
    renamed: HashSet<String>,
}

impl FolderInbox {
    pub fn new(config: &InboxConfig) -> FolderInbox {
        FolderInbox {
            dir: config.folder.clone().unwrap_or_default(),
            canonical: config.folder.as_ref().and_then(|f| f.canonicalize().ok()),
            config: config.clone(),
            seen: HashMap::new(),
            renamed: HashSet::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Make `processing/`, `archive/` and `rejected/`.
    pub fn prepare(&self) -> io::Result<()> {
        if !self.dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the drop folder {} does not exist; create it (writable by dirsync) or fix the inbox's folder",
                    self.dir.display()
                ),
            ));
        }
        for sub in [PROCESSING, ARCHIVE, REJECTED] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        Ok(())
    }

    /// The watcher saw `path` renamed into the folder: it is complete.
    pub fn note_renamed(&mut self, path: &Path) {
        let parent = path.parent();
        if parent == Some(self.dir.as_path()) || (parent.is_some() && parent == self.canonical.as_deref()) {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                self.renamed.insert(name.to_string());
            }
        }
    }

    /// Scan the folder; the names of files complete and ready to claim, oldest first.
    pub fn ready(&mut self, now: Instant) -> io::Result<Vec<String>> {
        let settle = Duration::from_secs(self.config.settle_seconds);
        let mut present = HashSet::new();
        let mut ready: Vec<(SystemTime, String)> = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Ok(ft) = entry.file_type() else { continue };
            if !ft.is_file() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue; // not UTF-8: cannot be journaled faithfully; left alone
            };
            if ignored(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            present.insert(name.clone());
            if self.dir.join(PROCESSING).join(&name).exists() {
                continue; // a file of that name is still in its run
            }
            let path = self.dir.join(&name);
            let marker = with_suffix(&path, DONE_MARKER).exists();
            let complete = if self.config.marker {
                marker
            } else if marker || self.renamed.contains(&name) {
                true
            } else {
                // Untouched since its mtime; count that, but at most `settle`.
                let age = SystemTime::now().duration_since(mtime).unwrap_or(Duration::ZERO);
                let since = now.checked_sub(age.min(settle)).unwrap_or(now);
                match self.seen.get_mut(&name) {
                    Some(s) if s.size == meta.len() && s.mtime == mtime => now.duration_since(s.stable_since) >= settle,
                    Some(s) => {
                        *s = Seen {
                            size: meta.len(),
                            mtime,
                            stable_since: now,
                        };
                        false
                    }
                    None => {
                        self.seen.insert(
                            name.clone(),
                            Seen {
                                size: meta.len(),
                                mtime,
                                stable_since: since,
                            },
                        );
                        false
                    }
                }
            };
            if complete {
                ready.push((mtime, name));
            }
        }
        self.seen.retain(|n, _| present.contains(n));
        self.renamed.retain(|n| present.contains(n));
        ready.sort();
        Ok(ready.into_iter().map(|(_, n)| n).collect())
    }

    /// Claim a file by renaming it into `processing/`, with its markers.
    /// `None` when it vanished meanwhile.
    pub fn claim(&mut self, name: &str) -> io::Result<Option<Claim>> {
        let from = self.dir.join(name);
        let to = self.dir.join(PROCESSING).join(name);
        self.seen.remove(name);
        self.renamed.remove(name);
        if to.exists() {
            return Ok(None);
        }
        // The folder may have been created after the daemon started.
        std::fs::create_dir_all(self.dir.join(PROCESSING))?;
        // The force marker goes first: once the file is in processing/ its
        // run may look for it.
        let force_from = with_suffix(&from, FORCE_MARKER);
        let forced = match std::fs::rename(&force_from, with_suffix(&to, FORCE_MARKER)) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        match std::fs::rename(with_suffix(&from, DONE_MARKER), with_suffix(&to, DONE_MARKER)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Some(Claim {
            name: name.to_string(),
            path: to,
            forced,
        }))
    }

    /// Files in `processing/` (claimed before a crash), with whether a force
    /// marker is beside them.
    pub fn processing(&self) -> io::Result<Vec<Claim>> {
        let dir = self.dir.join(PROCESSING);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if ignored(&name) {
                continue;
            }
            let path = dir.join(&name);
            out.push(Claim {
                forced: with_suffix(&path, FORCE_MARKER).exists(),
                name,
                path,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Where a finished file goes: `archive/YYYY-MM-DD/NAME`, or
    /// `rejected/NAME`; `STEM-runID.EXT` when that name is taken.
    pub fn destination(&self, run_id: i64, file_name: &str, rejected: bool, finished_ms: i64) -> PathBuf {
        let dir = if rejected {
            self.dir.join(REJECTED)
        } else {
            self.dir.join(ARCHIVE).join(day(finished_ms))
        };
        let plain = dir.join(file_name);
        if !plain.exists() && !results_beside(&plain).exists() {
            return plain;
        }
        let p = Path::new(file_name);
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match p.extension() {
            Some(ext) => format!("{stem}-run{run_id}.{}", ext.to_string_lossy()),
            None => format!("{stem}-run{run_id}"),
        };
        dir.join(name)
    }
}

/// Move a claimed file, its results and its markers to `dest`. Idempotent:
/// what was moved before a crash is not looked for again.
pub fn file_away(claimed: &Path, dest: &Path) -> io::Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let pairs = [
        (results_beside(claimed), results_beside(dest)),
        (with_suffix(claimed, DONE_MARKER), with_suffix(dest, DONE_MARKER)),
        (with_suffix(claimed, FORCE_MARKER), with_suffix(dest, FORCE_MARKER)),
        (claimed.to_path_buf(), dest.to_path_buf()),
    ];
    for (from, to) in pairs {
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `YYYY-MM-DD` (UTC) of a Unix-milliseconds time.
pub fn day(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "unknown-date".into(),
    }
}

/// `NAME` in `dir`, or `STEM-TAGn.EXT` (n = 2, 3, …) when a file of that
/// name is there: a free place for a file dirsync puts into `processing/`
/// itself (a console upload, a scheduled re-run's copy).
pub fn free_name(dir: &Path, name: &str, tag: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s, format!(".{e}")),
        None => (name, String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem}-{tag}{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_taken_name_gets_a_tag_and_a_counter() {
        let dir = tempfile::tempdir().expect("temp dir"); // ok: test
        assert_eq!(
            super::free_name(dir.path(), "hr.csv", "upload"),
            dir.path().join("hr.csv")
        );
        std::fs::write(dir.path().join("hr.csv"), "x").expect("write"); // ok: test
        assert_eq!(
            super::free_name(dir.path(), "hr.csv", "upload"),
            dir.path().join("hr-upload2.csv")
        );
        std::fs::write(dir.path().join("hr-upload2.csv"), "x").expect("write"); // ok: test
        assert_eq!(
            super::free_name(dir.path(), "hr.csv", "upload"),
            dir.path().join("hr-upload3.csv")
        );
    }

    use super::*;

    #[test]
    fn partial_hidden_and_marker_names_are_never_taken() {
        for n in [
            ".staff.csv",
            "staff.csv.part",
            "staff.csv.tmp",
            "~$staff.xlsx",
            "staff.csv.done",
            "staff.csv.force",
            "staff.results.csv",
            "staff.csv~",
        ] {
            assert!(ignored(n), "{n} should be ignored");
        }
        for n in ["staff.csv", "HR export 2026-11-21.csv", "roster"] {
            assert!(!ignored(n), "{n} should be taken");
        }
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(1_795_000_000_000), "2026-11-18");
    }
}
