//! Checking (and, for a database dirsync owns, creating) the mapped tables.

use sqlx::AnyPool;

use super::{valid_identifier, BackendError, Dialect, SqlMapping};
use crate::core::Policy;

/// Every mapped table and column exists: say exactly what is missing.
pub(super) async fn check(pool: &AnyPool, d: Dialect, m: &SqlMapping) -> Result<(), BackendError> {
    let mut wanted: Vec<(&str, &str)> = vec![(&m.table, &m.key)];
    for c in m.columns.values() {
        wanted.push((&m.table, c));
    }
    for c in [
        &m.status_column,
        &m.left_at_column,
        &m.must_change_column,
        &m.password_column,
    ]
    .into_iter()
    .flatten()
    {
        wanted.push((&m.table, c));
    }
    if let Some(s) = &m.scope {
        wanted.push((&m.table, &s.column));
    }
    if let Some(g) = &m.groups {
        wanted.push((&g.table, &g.user_column));
        wanted.push((&g.table, &g.group_column));
    }
    let mut missing = Vec::new();
    for (t, c) in wanted {
        if !valid_identifier(t) || !valid_identifier(c) {
            missing.push(format!("{t}.{c} (not a plain name)"));
            continue;
        }
        // Table-qualified: SQLite reads an unknown unqualified "name" as a
        // string literal, which would make a missing column look present.
        let sql = format!("SELECT {}.{} FROM {} WHERE 1 = 0", d.quote(t), d.quote(c), d.quote(t));
        if let Err(e) = sqlx::query(&sql).fetch_optional(pool).await {
            if super::is_connection_error(&e) {
                return Err(BackendError::Connect(super::sqlx_message(&e)));
            }
            missing.push(format!("{t}.{c} ({})", super::sqlx_message(&e)));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BackendError::Schema(format!(
            "missing or unreadable: {}; create them or fix the policy's [sql] mapping",
            missing.join(", ")
        )))
    }
}

/// Create the mapped tables when missing (embedded SQLite default only).
pub(super) async fn create(pool: &AnyPool, d: Dialect, m: &SqlMapping, _policy: &Policy) -> Result<(), sqlx::Error> {
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
    if let Some(c) = &m.left_at_column {
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
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        q(&m.table),
        cols.join(", ")
    ))
    .execute(pool)
    .await?;
    if let Some(g) = &m.groups {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({u} VARCHAR(255){nocase} NOT NULL, {gr} VARCHAR(255) NOT NULL, PRIMARY KEY ({u}, {gr}))",
            q(&g.table),
            u = q(&g.user_column),
            gr = q(&g.group_column)
        ))
        .execute(pool)
        .await?;
    }
    Ok(())
}
