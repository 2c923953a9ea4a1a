//! Secrets named in the TOML (bind passwords, SMTP credentials, SFTP keys'
//! passphrases): read from a file or an environment variable, never written
//! inline. A leaf: config and every adapter may use it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::Secret;

/// A secret named in the TOML: read from a file or an environment variable,
/// never written inline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub file: Option<PathBuf>,
    pub env: Option<String>,
}

impl SecretRef {
    /// The secret, or `None` when neither a file nor a variable is named.
    pub fn read(&self, what: &str) -> Result<Option<Secret>, String> {
        read_secret(self.file.as_deref(), self.env.as_deref(), what)
    }
}

/// Read a secret from its file (trailing newline removed) or variable.
pub fn read_secret(file: Option<&Path>, env: Option<&str>, what: &str) -> Result<Option<Secret>, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err(format!("{what}: give a file or an environment variable, not both")),
        (Some(f), None) => match std::fs::read_to_string(f) {
            Ok(s) => Ok(Some(Secret::new(s.trim_end_matches(['\r', '\n'])))),
            Err(e) => Err(format!("{what}: cannot read {}: {e}", f.display())),
        },
        (None, Some(v)) => match std::env::var(v) {
            Ok(s) => Ok(Some(Secret::new(s))),
            Err(_) => Err(format!("{what}: environment variable {v} is not set")),
        },
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_secret_loses_its_line_end_and_both_sources_are_refused() {
        let dir = tempfile::tempdir().unwrap(); // ok: test
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\r\n").unwrap(); // ok: test
        let s = read_secret(Some(&f), None, "password_file").unwrap().unwrap(); // ok: test
        assert_eq!(s.expose(), "s3cret");
        assert!(read_secret(Some(&f), Some("X"), "password")
            .unwrap_err()
            .contains("not both"));
        assert!(read_secret(None, None, "password").unwrap().is_none()); // ok: test
        let missing = read_secret(Some(&dir.path().join("nope")), None, "password_file").unwrap_err();
        assert!(missing.starts_with("password_file: cannot read"), "{missing}");
    }
}
