//! Which files in the inbox folder to take: ignored names, and completeness
//! (stable across two polls, or a marker file).

use std::collections::{BTreeMap, BTreeSet};

use tracing::debug;

use super::config::Settle;

/// A file in the inbox folder, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    pub mtime: Option<u32>,
}

/// What the inbox folder looked like at the previous poll, to tell files
/// still being written from complete ones.
#[derive(Debug, Default, Clone)]
pub struct PollState {
    seen: BTreeMap<String, (u64, Option<u32>)>,
}

impl PollState {
    /// Files seen at the last poll.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.seen.keys().map(String::as_str)
    }

    /// Forget a file (claimed: it left the folder).
    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }
}

/// `staff.csv` → `staff.results.csv` (as `dirsync apply` names it).
pub fn results_name(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    format!("{stem}.results.csv")
}

/// Names never taken: hidden, partial and editor files, markers, results.
pub fn is_ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || name.ends_with('~')
        || [".part", ".tmp", ".filepart", ".swp", ".done"]
            .iter()
            .any(|s| lower.ends_with(s))
        || lower.ends_with(".results.csv")
}

/// Decide which listed files are complete, and remember this listing for
/// the next poll. `markers` are the names that have a `NAME.done` beside them.
pub fn complete_files(
    settle: Settle,
    state: &mut PollState,
    files: Vec<RemoteFile>,
    markers: &BTreeSet<String>,
) -> Vec<RemoteFile> {
    let previous = std::mem::take(&mut state.seen);
    let mut complete = Vec::new();
    for f in files {
        let now = (f.size, f.mtime);
        let done = match settle {
            Settle::Stable => previous.get(&f.name) == Some(&now),
            Settle::Marker => markers.contains(&f.name),
        };
        state.seen.insert(f.name.clone(), now);
        if done {
            complete.push(f);
        } else {
            debug!(file = ?f.name, size = f.size, "Not complete yet.");
        }
    }
    complete.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, size: u64, mtime: u32) -> RemoteFile {
        RemoteFile {
            name: name.into(),
            size,
            mtime: Some(mtime),
        }
    }

    #[test]
    fn stable_files_are_complete_on_the_second_identical_look() {
        let mut st = PollState::default();
        let none = BTreeSet::new();
        assert!(complete_files(Settle::Stable, &mut st, vec![f("a.csv", 10, 1)], &none).is_empty());
        // Grew: not yet.
        assert!(complete_files(Settle::Stable, &mut st, vec![f("a.csv", 20, 2)], &none).is_empty());
        let c = complete_files(
            Settle::Stable,
            &mut st,
            vec![f("a.csv", 20, 2), f("b.csv", 1, 1)],
            &none,
        );
        assert_eq!(c, vec![f("a.csv", 20, 2)]);
    }

    #[test]
    fn marker_files_need_their_marker() {
        let mut st = PollState::default();
        let markers: BTreeSet<String> = ["b.csv".to_string()].into();
        let c = complete_files(
            Settle::Marker,
            &mut st,
            vec![f("a.csv", 1, 1), f("b.csv", 1, 1)],
            &markers,
        );
        assert_eq!(c, vec![f("b.csv", 1, 1)]);
    }

    #[test]
    fn names() {
        assert_eq!(results_name("staff.csv"), "staff.results.csv");
        assert_eq!(results_name("export"), "export.results.csv");
        for n in [
            ".x.csv",
            "a.csv.part",
            "~$a.csv",
            "a.csv.done",
            "a.results.csv",
            "a.tmp",
            "a.csv~",
        ] {
            assert!(is_ignored(n), "{n}");
        }
        assert!(!is_ignored("staff.csv"));
    }
}
