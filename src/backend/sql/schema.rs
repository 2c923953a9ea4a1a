//! The mapped tables: read their column types from the database's catalogue,
//! check them against the mapping (check.rs: saying exactly what is missing
//! or incompatible), and create them only for a database dirsync owns.

use std::collections::HashMap;

use futures::TryStreamExt;

use super::stmt::{with_pool, Pool, TextRow};
use super::{sqlx_message, BackendError, Dialect, SqlMapping};

mod check;

pub(super) use check::check;

/// What a column can hold, as far as dirsync cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Character data (text, varchar, char; MySQL enum/set).
    Text,
    Bool,
    /// Integer or numeric (MySQL `tinyint(1)` is here).
    Int,
    /// Date/time types.
    Time,
    /// A PostgreSQL user-defined type (enum, domain, citext): text is cast to it.
    UserDefined(String),
    /// Anything else (json, uuid, bytea…), with the database's name for it.
    Other(String),
}

/// One column as the catalogue describes it.
#[derive(Clone, Debug)]
pub(super) struct ColInfo {
    pub kind: Kind,
    /// The type as the database names it (for messages).
    pub type_name: String,
    pub max_len: Option<i64>,
}

/// The columns of the mapped tables: table → (column name → info).
#[derive(Debug, Default)]
pub(super) struct Catalog {
    tables: HashMap<String, HashMap<String, ColInfo>>,
    /// MySQL compares column names case-insensitively.
    fold_case: bool,
}

impl Catalog {
    pub fn column(&self, table: &str, column: &str) -> Option<&ColInfo> {
        let cols = self.tables.get(table)?;
        if self.fold_case {
            cols.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(column))
                .map(|(_, c)| c)
        } else {
            cols.get(column)
        }
    }
}

fn classify_pg(data_type: &str, udt: &str) -> Kind {
    match data_type {
        "text" | "character varying" | "character" => Kind::Text,
        "boolean" => Kind::Bool,
        "smallint" | "integer" | "bigint" | "numeric" => Kind::Int,
        "timestamp with time zone" | "timestamp without time zone" | "date" => Kind::Time,
        "USER-DEFINED" => Kind::UserDefined(udt.to_string()),
        other => Kind::Other(other.to_string()),
    }
}

fn classify_mysql(data_type: &str) -> Kind {
    match data_type.to_ascii_lowercase().as_str() {
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => Kind::Text,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal" | "bit" => Kind::Int,
        "datetime" | "timestamp" | "date" => Kind::Time,
        other => Kind::Other(other.to_string()),
    }
}

/// SQLite's type affinity rules, roughly: it stores anything anywhere, so
/// only clear mismatches matter.
fn classify_sqlite(decl: &str) -> Kind {
    let d = decl.to_ascii_uppercase();
    if d.contains("BOOL") {
        Kind::Bool
    } else if d.contains("INT") {
        Kind::Int
    } else if d.contains("DATE") || d.contains("TIME") {
        Kind::Time
    } else {
        Kind::Text
    }
}

/// The tables a mapping uses.
fn tables(m: &SqlMapping) -> Vec<String> {
    let mut t = vec![m.table.clone()];
    if let Some(g) = &m.groups {
        if g.table != m.table {
            t.push(g.table.clone());
        }
    }
    t
}

/// Read the column types of the mapped tables from the catalogue.
pub(super) async fn inspect(pool: &Pool, d: Dialect, m: &SqlMapping) -> Result<Catalog, BackendError> {
    let names = tables(m);
    let mut cat = Catalog {
        tables: HashMap::new(),
        fold_case: d == Dialect::Mysql,
    };
    let read_err = |e: sqlx::Error| {
        if super::is_connection_error(&e) {
            BackendError::Connect(sqlx_message(&e))
        } else {
            BackendError::Other(format!("reading the catalogue: {}", sqlx_message(&e)))
        }
    };
    // (table, column, data type, PG udt name, max length)
    let mut rows: Vec<(String, String, String, String, Option<i64>)> = Vec::new();
    match d {
        Dialect::Postgres | Dialect::Mysql => {
            let mut p = super::Params::new(d);
            let marks: Vec<String> = names.iter().map(|_| p.next()).collect();
            let sql = if d == Dialect::Postgres {
                format!(
                    "SELECT table_name::text, column_name::text, data_type::text, udt_name::text, \
                     character_maximum_length::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name IN ({})",
                    marks.join(", ")
                )
            } else {
                format!(
                    "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), \
                     CAST(COLUMN_TYPE AS CHAR), CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR) \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({})",
                    marks.join(", ")
                )
            };
            with_pool!(pool, p => {
                let mut q = sqlx::query(&sql);
                for n in &names {
                    q = q.bind(n.as_str());
                }
                let mut s = q.fetch(p);
                while let Some(r) = s.try_next().await.map_err(read_err)? {
                    rows.push((
                        r.text(0)?.unwrap_or_default(),
                        r.text(1)?.unwrap_or_default(),
                        r.text(2)?.unwrap_or_default(),
                        r.text(3)?.unwrap_or_default(),
                        r.text(4)?.and_then(|s| s.trim().parse().ok()),
                    ));
                }
            });
        }
        Dialect::Sqlite => {
            for t in &names {
                with_pool!(pool, p => {
                    let mut s = sqlx::query("SELECT name, type FROM pragma_table_info(?)").bind(t.as_str()).fetch(p);
                    while let Some(r) = s.try_next().await.map_err(read_err)? {
                        rows.push((t.clone(), r.text(0)?.unwrap_or_default(), r.text(1)?.unwrap_or_default(), String::new(), None));
                    }
                });
            }
        }
    }
    for (table, column, data_type, udt, max_len) in rows {
        let (kind, type_name) = match d {
            Dialect::Postgres => (
                classify_pg(&data_type, &udt),
                if data_type == "USER-DEFINED" { udt } else { data_type },
            ),
            Dialect::Mysql => (classify_mysql(&data_type), udt),
            Dialect::Sqlite => (classify_sqlite(&data_type), data_type),
        };
        cat.tables.entry(table).or_default().insert(
            column,
            ColInfo {
                kind,
                type_name,
                max_len,
            },
        );
    }
    Ok(cat)
}

/// Create the mapped tables when missing (embedded SQLite default only).
pub(super) async fn create(pool: &Pool, d: Dialect, m: &SqlMapping) -> Result<(), sqlx::Error> {
    let q = |s: &str| d.quote(s);
    let nocase = if d == Dialect::Sqlite { " COLLATE NOCASE" } else { "" };
    let mut cols = vec![format!("{} VARCHAR(255){nocase} PRIMARY KEY", q(&m.key))];
    for c in m.columns.values() {
        cols.push(format!("{} TEXT", q(c)));
    }
    if let Some(c) = &m.status_column {
        cols.push(format!(
            "{} VARCHAR(32) NOT NULL DEFAULT '{}'",
            q(c),
            m.active_value.replace('\'', "''")
        ));
    }
    for c in [&m.left_at_column, &m.deleted_at_column].into_iter().flatten() {
        cols.push(format!("{} BIGINT", q(c)));
    }
    if let Some(c) = &m.must_change_column {
        cols.push(format!("{} BOOLEAN NOT NULL DEFAULT FALSE", q(c)));
    }
    if let Some(c) = &m.password_column {
        cols.push(format!("{} TEXT", q(c)));
    }
    if let Some(s) = &m.scope {
        cols.push(format!("{} VARCHAR(64)", q(&s.column)));
    }
    let mut ddl = vec![format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        q(&m.table),
        cols.join(", ")
    )];
    if let Some(g) = &m.groups {
        ddl.push(format!(
            "CREATE TABLE IF NOT EXISTS {} ({u} VARCHAR(255){nocase} NOT NULL, {gr} VARCHAR(255) NOT NULL, PRIMARY KEY ({u}, {gr}))",
            q(&g.table),
            u = q(&g.user_column),
            gr = q(&g.group_column)
        ));
    }
    for sql in ddl {
        with_pool!(pool, p => { sqlx::query(&sql).execute(p).await?; });
    }
    Ok(())
}
