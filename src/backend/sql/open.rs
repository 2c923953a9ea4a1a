//! Opening a SQL target: the sqlx pool per dialect, which errors mean the
//! database rather than a row, and whether opening would create anything.

use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::stmt::Pool;
use super::{lite, Dialect, SqlTarget};
use crate::core::Secret;

pub(super) fn sqlx_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    }
}

/// Errors that mean the database (not one row) is the problem.
pub(super) fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

pub(super) async fn open_pool(
    target: &SqlTarget,
    dialect: Dialect,
    password: Option<&Secret>,
) -> Result<Pool, sqlx::Error> {
    let timeout = std::time::Duration::from_secs(15);
    let max = target.max_connections.max(1);
    match dialect {
        Dialect::Postgres => {
            let mut o = PgConnectOptions::from_str(&target.url)?;
            if let Some(pw) = password {
                o = o.password(pw.expose());
            }
            let pool = PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(timeout)
                .connect_with(o)
                .await?;
            Ok(Pool::Pg(pool))
        }
        Dialect::Mysql => {
            let url = target.url.replacen("mariadb://", "mysql://", 1);
            let mut o = MySqlConnectOptions::from_str(&url)?;
            if let Some(pw) = password {
                o = o.password(pw.expose());
            }
            let pool = MySqlPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(timeout)
                .connect_with(o)
                .await?;
            Ok(Pool::My(pool))
        }
        Dialect::Sqlite => {
            let mut o = SqliteConnectOptions::from_str(&target.url)?;
            if target.create_schema {
                o = o.create_if_missing(true);
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeout)
                .connect_with(o)
                .await?;
            Ok(Pool::Lite(pool))
        }
    }
}

/// Whether opening `target` may create something: its tables
/// (`create_schema`), or the embedded SQLite file itself. A run reads such a
/// target only once its file is known to be good.
pub fn creates_on_open(target: &SqlTarget) -> bool {
    if !target.create_schema {
        return false;
    }
    match (Dialect::of(&target.url), lite::file_of(&target.url)) {
        (Dialect::Sqlite, Some(file)) => !file.exists(),
        _ => true,
    }
}
