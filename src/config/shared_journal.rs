//! Two configs on one host sharing one SQLite journal: two daemons would
//! claim and resume each other's runs, which only a PostgreSQL journal (with
//! its leases) can make safe. `dirsync serve` notes its config beside the
//! SQLite journal (`journal.db.configs`); `dirsync config check` and the
//! next `serve` warn when another config that still names the same journal
//! is noted there.

use std::path::{Path, PathBuf};

use super::Config;

/// The SQLite journal file of `config`, if its journal is SQLite.
fn sqlite_journal(config: &Config) -> Option<PathBuf> {
    let url = config.service.journal_url();
    let path = url.strip_prefix("sqlite://")?;
    let path = path.split('?').next().unwrap_or(path);
    Some(std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path)))
}

fn notes(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_os_string();
    s.push(".configs");
    PathBuf::from(s)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Other configs noted beside this config's SQLite journal that still
/// exist and still name the same journal.
pub fn other_configs(config: &Config) -> Vec<PathBuf> {
    let Some(journal) = sqlite_journal(config) else {
        return Vec::new();
    };
    let me = canonical(&config.path);
    let text = std::fs::read_to_string(notes(&journal)).unwrap_or_default();
    text.lines()
        .map(PathBuf::from)
        .filter(|p| canonical(p) != me && p.is_file())
        .filter(|p| {
            Config::load(p)
                .ok()
                .and_then(|other| sqlite_journal(&other))
                .is_some_and(|j| j == journal)
        })
        .collect()
}

/// Note `config` beside its SQLite journal (once).
pub fn note_config(config: &Config) -> std::io::Result<()> {
    let Some(journal) = sqlite_journal(config) else {
        return Ok(());
    };
    let path = notes(&journal);
    let me = canonical(&config.path);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.lines().any(|l| canonical(Path::new(l)) == me) {
        return Ok(());
    }
    let mut out = text;
    out.push_str(&format!("{}\n", me.display()));
    std::fs::write(&path, out)
}

/// The warning for `others`, or `None`.
pub fn warning(config: &Config, others: &[PathBuf]) -> Option<String> {
    let journal = sqlite_journal(config)?;
    let first = others.first()?;
    Some(format!(
        "the SQLite journal {} is also used by {}: two `dirsync serve` on one SQLite journal would take each \
         other's runs. Give each config its own [service] state_dir, or share a PostgreSQL journal \
         ([service] journal = \"postgres://…\")",
        journal.display(),
        first.display()
    ))
}
