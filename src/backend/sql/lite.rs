//! The embedded SQLite target's snapshot, read without sqlx.
//!
//! sqlx's SQLite driver runs every row through a worker thread and a
//! channel and copies each value (`sqlite3_value_dup`) on the way: on a
//! 100k-account target that made the read ≈ 14× slower than the `sqlite3`
//! client reading the same columns (BENCHMARKS.md, issue 16). Here the
//! same two queries run on a blocking thread through rusqlite, on a second,
//! read-only connection to the same file, in one read transaction (both
//! tables from the same state). A batch's writes go the same way, in one
//! transaction on their own connection: through sqlx each statement was a
//! round trip to its worker thread, ≈ 0.1 ms, so 1,500 changes cost a
//! quarter of a second. The catalogue check, the schema and single
//! password writes stay on sqlx.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};
use sqlx::sqlite::SqliteConnectOptions;

use super::snapshot::{accounts_query, empty_snapshot, membership_of, take_row, Deleted, Query};
use super::stmt::{Bind, Stmt, TextRow};
use super::{BackendError, BatchError, Resolved, VANISHED};
use crate::core::{Snapshot, UserKey, Value};

/// How long a read waits for another process's write lock (sqlx's default).
const BUSY: Duration = Duration::from_secs(5);

/// The database file of an `sqlite://` URL, when a second connection can
/// open it: not for in-memory databases, nor for URLs that choose a VFS or
/// `immutable` (those are read through sqlx, as before).
pub(super) fn file_of(url: &str) -> Option<PathBuf> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    if ["mode=memory", "vfs=", "immutable="].iter().any(|p| query.contains(p)) {
        return None;
    }
    let opts = SqliteConnectOptions::from_str(url).ok()?;
    let file = opts.get_filename();
    let name = file.to_str()?;
    if name.is_empty() || name.starts_with("file:") || name == ":memory:" {
        return None;
    }
    Some(file.to_path_buf())
}

/// Whether writes may go through rusqlite too: not for a database the URL
/// opens read-only (sqlx then refuses each write, as it should).
pub(super) fn writable(url: &str) -> bool {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    !query.split('&').any(|p| p == "mode=ro")
}

impl TextRow for rusqlite::Row<'_> {
    fn str(&self, i: usize) -> Result<Option<&str>, BackendError> {
        match self.get_ref(i) {
            Ok(ValueRef::Null) => Ok(None),
            Ok(ValueRef::Text(b)) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|e| BackendError::Other(format!("reading column {i}: {e}"))),
            Ok(other) => Err(BackendError::Other(format!(
                "reading column {i}: {:?} where text was expected",
                other.data_type()
            ))),
            Err(e) => Err(BackendError::Other(format!("reading column {i}: {e}"))),
        }
    }
}

/// What one read returns: the accounts, the soft-deleted rows, the memberships.
pub(super) type Read = (Snapshot, Deleted, Vec<(UserKey, Value)>);

/// Accounts, soft-deleted rows and memberships, read on the blocking pool.
pub(super) async fn read(file: PathBuf, map: Arc<Resolved>) -> Result<Read, BackendError> {
    tokio::task::spawn_blocking(move || read_blocking(&file, &map))
        .await
        .map_err(|e| BackendError::Other(format!("snapshot task: {e}")))?
}

fn read_blocking(file: &Path, m: &Resolved) -> Result<Read, BackendError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(file, flags)
        .map_err(|e| BackendError::Connect(format!("opening {}: {e}", file.display())))?;
    conn.busy_timeout(BUSY)
        .map_err(|e| BackendError::Connect(format!("opening {}: {e}", file.display())))?;
    let table_err = |e: rusqlite::Error| BackendError::Other(format!("reading {}: {e}", m.raw.table));
    let groups_err = |e: rusqlite::Error| BackendError::Other(format!("reading groups: {e}"));
    let tx = conn.transaction().map_err(table_err)?;

    let mut snap = empty_snapshot(m);
    let mut deleted = Deleted::new();
    each_row(&tx, &accounts_query(m), table_err, |row| {
        take_row(m, row, &mut snap, &mut deleted)
    })?;
    let mut memberships = Vec::new();
    if let Some(q) = super::snapshot::memberships_query(m) {
        each_row(&tx, &q, groups_err, |row| {
            memberships.extend(membership_of(row)?);
            Ok(())
        })?;
    }
    tx.commit().map_err(table_err)?;
    Ok((snap, deleted, memberships))
}

/// Run `q` and hand each row to `f`.
fn each_row(
    conn: &Connection,
    q: &Query,
    err: impl Fn(rusqlite::Error) -> BackendError,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    let mut stmt = conn.prepare(&q.sql).map_err(&err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(q.binds.iter())).map_err(&err)?;
    while let Some(row) = rows.next().map_err(&err)? {
        f(row)?;
    }
    Ok(())
}

/// Run the statements of the `pending` ops in one transaction, on the
/// blocking pool. Committed only while this process may still write
/// ([`crate::backend::guard`]).
pub(super) async fn write(
    file: PathBuf,
    pending: Vec<usize>,
    stmts: Arc<Vec<Vec<Stmt<'static>>>>,
) -> Result<(), BatchError> {
    let guard = crate::backend::guard::current();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            open_for_writes(&file).map_err(|e| BatchError::Conn(format!("opening {}: {e}", file.display())))?;
        let tx = conn.transaction().map_err(|e| whole(&e))?;
        for &i in &pending {
            for s in stmts.get(i).into_iter().flatten() {
                let mut st = tx.prepare_cached(&s.sql).map_err(|e| failure(i, &e))?;
                let n = st
                    .execute(rusqlite::params_from_iter(s.binds.iter().map(Param)))
                    .map_err(|e| failure(i, &e))?;
                if s.expect_rows.is_some_and(|want| (n as u64) < want) {
                    return Err(BatchError::Row(i, VANISHED.into()));
                }
            }
        }
        if !guard.is_none_or(|may| may()) {
            // Dropping the transaction rolls it back.
            return Err(BatchError::Fenced);
        }
        tx.commit().map_err(|e| whole(&e))
    })
    .await
    .map_err(|e| BatchError::Conn(format!("write task: {e}")))?
}

/// A connection for writes, set up as sqlx sets up its own.
fn open_for_writes(file: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file, flags)?;
    conn.busy_timeout(BUSY)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The database as a whole is the problem (not one row).
fn whole(e: &rusqlite::Error) -> BatchError {
    BatchError::Conn(e.to_string())
}

/// Op `i` failed, or the database did.
fn failure(i: usize, e: &rusqlite::Error) -> BatchError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::NotADatabase
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly,
        ) => whole(e),
        _ => BatchError::Row(
            i,
            match e {
                rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
                other => other.to_string(),
            },
        ),
    }
}

/// A bound value as rusqlite takes it (arrays are PostgreSQL's only).
struct Param<'a>(&'a Bind<'static>);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self.0 {
            Bind::Text(v) => v.to_sql(),
            Bind::Int(v) => v.to_sql(),
            Bind::Bool(v) => v.to_sql(),
            _ => Err(rusqlite::Error::ToSqlConversionFailure(
                "array parameters are only used with PostgreSQL".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_of;
    use std::path::Path;

    #[test]
    fn a_file_is_read_on_its_own_connection_and_memory_through_sqlx() {
        let file = file_of("sqlite:///var/lib/dirsync/directory.db");
        assert_eq!(file.as_deref(), Some(Path::new("/var/lib/dirsync/directory.db")));
        let ro = file_of("sqlite:///tmp/d.db?mode=ro");
        assert_eq!(ro.as_deref(), Some(Path::new("/tmp/d.db")));
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite:///tmp/d.db?mode=memory",
            "sqlite:///tmp/d.db?immutable=true",
            "sqlite:///tmp/d.db?vfs=unix-none",
        ] {
            assert_eq!(file_of(url), None, "{url}");
        }
    }
}
