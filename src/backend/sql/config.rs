//! The SQL target's own config: the connection (`[targets.NAME]`, kind =
//! "sql") and the mapping onto a table (`[sql]` in a policy).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::Policy;
use crate::redact::redact_url;

/// `[targets.NAME]` with `kind = "sql"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTarget {
    /// `sqlite://PATH` (relative to the config file), `postgres://…` or `mysql://…`.
    pub url: String,
    /// File holding the database password (added to the URL at connect time).
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the database password.
    pub password_env: Option<String>,
    /// Create the mapped tables when missing. Only for a database dirsync
    /// owns (the embedded SQLite default); never for an application's schema.
    #[serde(default)]
    pub create_schema: bool,
    /// Rows written per transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Connections in the pool.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

const fn default_batch_size() -> usize {
    500
}
const fn default_max_connections() -> u32 {
    4
}

impl SqlTarget {
    pub(crate) fn resolved(mut self, dir: &Path) -> Result<SqlTarget, String> {
        if let Some(rest) = self.url.strip_prefix("sqlite://") {
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            if path != ":memory:" && !path.is_empty() && !Path::new(path).is_absolute() {
                let abs = dir.join(path);
                self.url = match query {
                    Some(q) => format!("sqlite://{}?{q}", abs.display()),
                    None => format!("sqlite://{}", abs.display()),
                };
            }
        } else if !(self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://")
            || self.url.starts_with("mysql://")
            || self.url.starts_with("mariadb://"))
        {
            return Err(format!(
                "url {:?}: use sqlite://, postgres:// or mysql:// (mariadb://)",
                redact_url(&self.url)
            ));
        }
        if url_has_password(&self.url) {
            return Err("url: do not put the password in the URL; use password_file or password_env".into());
        }
        for p in self.password_file.iter_mut() {
            *p = crate::paths::resolve(dir, p);
        }
        if self.batch_size == 0 {
            return Err("batch_size: at least 1".into());
        }
        Ok(self)
    }

    pub fn describe(&self) -> String {
        format!("sql {}", redact_url(&self.url))
    }
}

fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    authority
        .rsplit_once('@')
        .map(|(userinfo, _)| userinfo.contains(':'))
        .unwrap_or(false)
}

/// `[sql]` in a policy: which table and columns hold the accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlMapping {
    /// The accounts table.
    pub table: String,
    /// The key column (holds the username).
    pub key: String,
    /// Field name → column. Only mapped fields are read and written.
    pub columns: BTreeMap<String, String>,
    /// Column holding the account state.
    pub status_column: Option<String>,
    #[serde(default = "default_active")]
    pub active_value: String,
    #[serde(default = "default_leaver")]
    pub leaver_value: String,
    /// Column set to the time (Unix seconds) an account became a leaver.
    pub left_at_column: Option<String>,
    /// Column for "change password next time" (boolean / 0-1).
    pub must_change_column: Option<String>,
    /// Column for the password hash.
    pub password_column: Option<String>,
    /// How passwords are hashed: "argon2id" (PHC string, default) or
    /// "bcrypt" (`$2b$…`, for applications that expect it).
    #[serde(default)]
    pub password_scheme: PasswordScheme,
    /// bcrypt cost (log2 rounds), 4..=31. Default 12.
    #[serde(default = "default_bcrypt_cost")]
    pub bcrypt_cost: u32,
    /// Soft delete: a Delete sets this column to the time instead of deleting
    /// the row, and rows where it is set are out of scope. Optional.
    pub deleted_at_column: Option<String>,
    /// Argon2id cost: memory in KiB and iterations.
    #[serde(default = "default_argon2_memory")]
    pub argon2_memory_kib: u32,
    #[serde(default = "default_argon2_iterations")]
    pub argon2_iterations: u32,
    /// Only rows where this column has this value are managed; new rows get it.
    pub scope: Option<SqlScope>,
    /// Group memberships, for the policy's managed groups.
    pub groups: Option<SqlGroups>,
}

/// `sql.password_scheme`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordScheme {
    #[default]
    Argon2id,
    Bcrypt,
}

const fn default_bcrypt_cost() -> u32 {
    12
}

fn default_active() -> String {
    "active".into()
}
fn default_leaver() -> String {
    "leaver".into()
}
const fn default_argon2_memory() -> u32 {
    19_456
}
const fn default_argon2_iterations() -> u32 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlScope {
    pub column: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGroups {
    pub table: String,
    pub user_column: String,
    pub group_column: String,
}

impl SqlMapping {
    /// The optional columns that are set, with the key that names each.
    fn optional_columns(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("sql.status_column", &self.status_column),
            ("sql.left_at_column", &self.left_at_column),
            ("sql.must_change_column", &self.must_change_column),
            ("sql.password_column", &self.password_column),
            ("sql.deleted_at_column", &self.deleted_at_column),
        ]
        .into_iter()
        .filter_map(|(what, c)| c.as_deref().map(|c| (what, c)))
    }

    /// Every column of the accounts table the mapping names, with the key
    /// that names it.
    pub fn account_columns(&self) -> Vec<(String, &str)> {
        let mut out = vec![("sql.key".to_string(), self.key.as_str())];
        for (f, c) in &self.columns {
            out.push((format!("sql.columns.{f}"), c.as_str()));
        }
        for (what, c) in self.optional_columns() {
            out.push((what.to_string(), c));
        }
        if let Some(s) = &self.scope {
            out.push(("sql.scope.column".to_string(), s.column.as_str()));
        }
        out
    }
}

/// Identifiers come from the policy, never from a file; still, only plain
/// names are accepted so quoting is always safe.
pub fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SqlMapping {
    pub fn check(&self, policy: &Policy) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut idents: Vec<(&str, &str)> = vec![("sql.table", &self.table), ("sql.key", &self.key)];
        for (f, c) in &self.columns {
            if policy.attribute_index(f).is_none() {
                problems.push(format!(
                    "sql.columns.{f}: {f:?} is not a field of this policy (fields: {})",
                    policy.attributes.join(", ")
                ));
            }
            idents.push(("sql.columns", c));
        }
        for (what, c) in self.optional_columns() {
            idents.push((what, c));
        }
        if let Some(s) = &self.scope {
            idents.push(("sql.scope.column", &s.column));
        }
        if let Some(g) = &self.groups {
            idents.push(("sql.groups.table", &g.table));
            idents.push(("sql.groups.user_column", &g.user_column));
            idents.push(("sql.groups.group_column", &g.group_column));
            if policy.groups.managed.is_empty() {
                problems.push("sql.groups is set but groups.managed is empty: no group would ever be written".into());
            }
        }
        for (what, id) in idents {
            if !valid_identifier(id) {
                problems.push(format!("{what}: {id:?} is not a plain SQL name (letters, digits, '_')"));
            }
        }
        if self.status_column.is_none() {
            problems.push("sql.status_column: needed to mark leavers".into());
        }
        if self.argon2_memory_kib < 8 || self.argon2_iterations == 0 {
            problems.push("sql.argon2_memory_kib ≥ 8 and sql.argon2_iterations ≥ 1".into());
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            problems.push("sql.bcrypt_cost: between 4 and 31".into());
        }
        let mut seen = std::collections::BTreeMap::new();
        for (what, c) in self.account_columns() {
            if let Some(prev) = seen.insert(c.to_ascii_lowercase(), what.clone()) {
                problems.push(format!(
                    "{what} and {prev} both name the column {c:?}; give each its own column"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
