//! The policy's mapping resolved against the database: attribute indexes,
//! quoted identifiers, column types; placeholders in the dialect's style;
//! how passwords are hashed.

use super::config::{PasswordScheme, SqlMapping};
use super::schema::{self, Kind};
use super::stmt::Bind;
use super::Dialect;
use crate::core::{Policy, Secret};

/// Builds placeholders in the dialect's style (`?` or `$n`).
pub(super) struct Params {
    dialect: Dialect,
    n: usize,
}

impl Params {
    pub(super) fn new(dialect: Dialect) -> Self {
        Params { dialect, n: 0 }
    }
    pub(super) fn next(&mut self) -> String {
        self.n += 1;
        match self.dialect {
            Dialect::Postgres => format!("${}", self.n),
            _ => "?".to_string(),
        }
    }
}

/// A mapped column: quoted name and what it holds.
#[derive(Clone, Debug)]
pub(super) struct Col {
    pub(super) q: String,
    pub(super) kind: Kind,
    /// The column's name as the policy gives it (for messages).
    pub(super) name: String,
    /// Longest value the column holds, in characters (varchar(n)).
    pub(super) max_len: Option<i64>,
}

/// How passwords are hashed.
#[derive(Clone, Copy, Debug)]
pub(super) enum Hashing {
    Argon2id { memory_kib: u32, iterations: u32 },
    Bcrypt { cost: u32 },
}

/// The mapping with attribute indexes resolved, identifiers quoted and
/// column types known.
pub(super) struct Resolved {
    pub(super) d: Dialect,
    pub(super) table: String,
    pub(super) key: Col,
    /// (attribute index, column)
    pub(super) columns: Vec<(usize, Col)>,
    /// Attributes dirsync never writes (`update = "never"`): read only.
    pub(super) never: Vec<usize>,
    pub(super) status: Option<Col>,
    pub(super) active_value: String,
    pub(super) leaver_value: String,
    pub(super) left_at: Option<Col>,
    pub(super) deleted_at: Option<Col>,
    pub(super) must_change: Option<Col>,
    pub(super) password: Option<Col>,
    pub(super) scope: Option<(Col, String)>,
    /// (table, user column, group column), quoted.
    pub(super) groups: Option<(String, String, String)>,
    pub(super) managed_groups: Vec<String>,
    pub(super) hashing: Hashing,
    pub(super) attr_count: usize,
    pub(super) raw: SqlMapping,
}

impl Resolved {
    /// The columns a new account's row is written with: every mapped one
    /// but those dirsync never writes.
    pub(super) fn created_columns(&self) -> impl Iterator<Item = &(usize, Col)> {
        self.columns.iter().filter(|(i, _)| !self.never.contains(i))
    }

    /// A parameter placed into a column of this kind (text cast to a
    /// PostgreSQL enum/domain; Unix seconds to a timestamp).
    pub(super) fn value_expr(&self, c: &Col, p: &str) -> String {
        match (&c.kind, self.d) {
            (Kind::UserDefined(t), Dialect::Postgres) => format!("CAST({p} AS {})", self.d.quote(t)),
            (Kind::Time, Dialect::Postgres) => format!("to_timestamp({p})"),
            (Kind::Time, Dialect::Mysql) => format!("FROM_UNIXTIME({p})"),
            _ => p.to_string(),
        }
    }
    /// The column read back as text (timestamps as Unix seconds).
    pub(super) fn read_expr(&self, c: &Col) -> String {
        match (&c.kind, self.d) {
            (Kind::Time, Dialect::Postgres) => {
                format!("CAST(CAST(EXTRACT(EPOCH FROM {}) AS BIGINT) AS TEXT)", c.q)
            }
            (Kind::Time, Dialect::Mysql) => format!("CAST(UNIX_TIMESTAMP({}) AS CHAR)", c.q),
            _ => self.d.as_text(&c.q),
        }
    }
    /// A flag value for a boolean or 0/1 column.
    pub(super) fn flag(&self, c: &Col, v: bool) -> Bind<'static> {
        match c.kind {
            Kind::Bool => Bind::Bool(v),
            _ => Bind::Int(Some(i64::from(v))),
        }
    }
}

/// Hash one password with the mapping's scheme.
pub(super) fn hash_with(h: Hashing, secret: &Secret) -> Result<String, String> {
    match h {
        Hashing::Argon2id { memory_kib, iterations } => hash_password(secret, memory_kib, iterations),
        Hashing::Bcrypt { cost } => {
            bcrypt::hash(secret.expose(), cost).map_err(|e| format!("hashing a password (bcrypt): {e}"))
        }
    }
}

/// An argon2id PHC string.
pub fn hash_password(secret: &Secret, memory_kib: u32, iterations: u32) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let params = argon2::Params::new(memory_kib, iterations, 1, None).map_err(|e| format!("argon2 parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut OsRng);
    a.hash_password(secret.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing a password: {e}"))
}

pub(super) fn resolve(m: &SqlMapping, policy: &Policy, d: Dialect, cat: &schema::Catalog) -> Resolved {
    let col = |table: &str, c: &str| Col {
        q: d.quote(c),
        kind: cat.column(table, c).map(|i| i.kind.clone()).unwrap_or(Kind::Text),
        name: format!("{table}.{c}"),
        max_len: cat.column(table, c).and_then(|i| i.max_len),
    };
    let t = m.table.as_str();
    let opt = |c: &Option<String>| c.as_deref().map(|c| col(t, c));
    Resolved {
        d,
        table: d.quote(&m.table),
        key: col(t, &m.key),
        columns: m
            .columns
            .iter()
            .filter_map(|(f, c)| policy.attribute_index(f).map(|i| (i, col(t, c))))
            .collect(),
        never: (0..policy.attributes.len())
            .filter(|i| !policy.attr_rule(*i).update.on_create())
            .collect(),
        status: opt(&m.status_column),
        active_value: m.active_value.clone(),
        leaver_value: m.leaver_value.clone(),
        left_at: opt(&m.left_at_column),
        deleted_at: opt(&m.deleted_at_column),
        must_change: opt(&m.must_change_column),
        password: opt(&m.password_column),
        scope: m.scope.as_ref().map(|s| (col(t, &s.column), s.value.clone())),
        groups: m
            .groups
            .as_ref()
            .map(|g| (d.quote(&g.table), d.quote(&g.user_column), d.quote(&g.group_column))),
        managed_groups: policy.groups.managed.clone(),
        hashing: match m.password_scheme {
            PasswordScheme::Argon2id => Hashing::Argon2id {
                memory_kib: m.argon2_memory_kib,
                iterations: m.argon2_iterations,
            },
            PasswordScheme::Bcrypt => Hashing::Bcrypt { cost: m.bcrypt_cost },
        },
        attr_count: policy.attributes.len(),
        raw: m.clone(),
    }
}
