//! The SQL target: SQLite (embedded default), PostgreSQL and MariaDB/MySQL,
//! chosen by the URL, each through its own sqlx driver. Values are always
//! bound parameters; identifiers come from the policy, are checked to be
//! plain names, and are quoted per database. The mapping is checked against
//! the database's catalogue (names and types) when connecting.
//!
//! Writes: per batch, PostgreSQL and MariaDB first try a few bulk statements
//! (see `bulk`) in one transaction; when that fails (and on SQLite) every op
//! runs as its own statements inside one transaction, and an op whose write
//! fails is reported with the database's message while the rest of the batch
//! is retried without it.

mod adopt;
mod bulk;
mod config;
mod copy;
mod lite;
mod mapping;
mod multirow;
mod open;
mod password;
mod rows;
mod schema;
mod snapshot;
mod stmt;
mod transact;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

pub use crate::redact::redact_url;
pub use config::{valid_identifier, PasswordScheme, SqlGroups, SqlMapping, SqlScope, SqlTarget};

use super::{Backend, BackendError, Op, OpResult};
use crate::core::{Policy, Secret, Snapshot, UserKey};
pub use mapping::hash_password;
use mapping::{hash_with, resolve, Col, Params, Resolved};
pub use open::creates_on_open;
use open::{is_connection_error, open_pool, sqlx_message};
use schema::Kind;

/// Why one transaction of a batch did not commit.
enum BatchError {
    /// Op `.0` failed (the database's message); the others may go again without it.
    Row(usize, String),
    /// The connection failed: the target as a whole.
    Conn(String),
    /// This process lost its hold on the run ([`crate::backend::guard`]).
    Fenced,
}
use stmt::{with_pool, Exec, Pool, Stmt};

/// An update whose row is gone.
const VANISHED: &str = "the account is no longer in the target (changed since the snapshot); run again";

/// The smallest part of a batch written as its own concurrent transaction.
const MIN_PART: usize = 250;

/// Which SQL dialect a URL speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn of(url: &str) -> Dialect {
        if url.starts_with("postgres") {
            Dialect::Postgres
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            Dialect::Mysql
        } else {
            Dialect::Sqlite
        }
    }
    fn quote(self, ident: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", ident.replace('`', "``")),
            _ => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }
    fn as_text(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }
}

/// The SQL backend for one (target, policy) pair.
pub struct SqlBackend {
    pool: Pool,
    dialect: Dialect,
    map: Arc<Resolved>,
    batch_size: usize,
    /// Pooled connections (concurrent transactions per batch).
    connections: u32,
    /// What the catalogue check found wrong with the mapping, at connect.
    schema_error: Option<String>,
    /// Soft-deleted rows seen by the last snapshot (key → stored key): an
    /// Add of one of them revives the row instead of inserting a second.
    deleted: Mutex<HashMap<UserKey, String>>,
    /// The embedded SQLite file, when the snapshot can read it on its own
    /// connection (see `lite`).
    lite_file: Option<std::path::PathBuf>,
    /// Batches are written to `lite_file` through rusqlite too.
    lite_writes: bool,
    /// New rows go in with COPY (PostgreSQL) until the database refuses a
    /// COPY whose rows it then takes as INSERTs (row-level security).
    copy: AtomicBool,
}

impl SqlBackend {
    /// Connect, then check the mapping against the database's catalogue: a
    /// missing or incompatible table or column is an error here, before any
    /// read or write. The password is handed to the driver, never put in a URL.
    pub async fn connect(
        target: &SqlTarget,
        mapping: &SqlMapping,
        policy: &Policy,
        password: Option<Secret>,
    ) -> Result<SqlBackend, BackendError> {
        let dialect = Dialect::of(&target.url);
        if dialect == Dialect::Sqlite && target.create_schema {
            // The embedded default owns its folder: make it.
            let path = target
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap_or("");
            // It holds password hashes: 0600 (its folder 0700), not the umask's mode.
            if !path.is_empty() && !path.starts_with(":memory:") {
                crate::private_files::create_file(std::path::Path::new(path))
                    .map_err(|e| BackendError::Connect(format!("creating {path}: {e}")))?;
            }
        }
        let pool = open_pool(target, dialect, password.as_ref()).await.map_err(|e| {
            BackendError::Connect(format!(
                "{}: {}; check the URL, that the server runs, and the password file/variable",
                redact_url(&target.url),
                sqlx_message(&e)
            ))
        })?;
        if target.create_schema {
            schema::create(&pool, dialect, mapping)
                .await
                .map_err(|e| BackendError::Schema(format!("creating tables: {}", sqlx_message(&e))))?;
        }
        // A mapping that does not fit the schema is reported by `health`
        // and `snapshot` (so a run still ends with a results file), before
        // anything is read or written.
        let catalog = schema::inspect(&pool, dialect, mapping).await?;
        let schema_error = schema::check(&catalog, mapping).err();
        let map = Arc::new(resolve(mapping, policy, dialect, &catalog));
        Ok(SqlBackend {
            pool,
            dialect,
            map,
            batch_size: target.batch_size,
            connections: target.max_connections.max(1),
            schema_error,
            deleted: Mutex::new(HashMap::new()),
            lite_file: (dialect == Dialect::Sqlite)
                .then(|| lite::file_of(&target.url))
                .flatten(),
            lite_writes: dialect == Dialect::Sqlite && lite::writable(&target.url),
            copy: AtomicBool::new(dialect == Dialect::Postgres),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Hash the passwords of a batch on the blocking pool, in parallel.
    async fn hashes(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        if self.map.password.is_none() || ops.iter().all(|o| o.password.is_none()) {
            return Ok(vec![None; ops.len()]);
        }
        let secrets: Vec<Option<Secret>> = ops.iter().map(|o| o.password.cloned()).collect();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(1);
        let chunk = secrets.len().div_ceil(workers).max(1);
        let hashing = self.map.hashing;
        let mut tasks = Vec::new();
        for part in secrets.chunks(chunk) {
            let part = part.to_vec();
            tasks.push(tokio::task::spawn_blocking(move || {
                part.iter()
                    .map(|s| s.as_ref().map(|s| hash_with(hashing, s)).transpose())
                    .collect::<Result<Vec<_>, String>>()
            }));
        }
        let mut out = Vec::with_capacity(ops.len());
        for t in tasks {
            let part = t
                .await
                .map_err(|e| BackendError::Other(format!("hashing task: {e}")))?
                .map_err(BackendError::Other)?;
            out.extend(part);
        }
        Ok(out)
    }

    /// Run the statements of `pending` ops in one transaction. On a row
    /// error, report which op failed so the caller can retry without it.
    async fn try_batch(&self, pending: &[usize], stmts: &Arc<Vec<Vec<Stmt<'static>>>>) -> Result<(), BatchError> {
        if let (Some(file), true) = (&self.lite_file, self.lite_writes) {
            return lite::write(file.clone(), pending.to_vec(), Arc::clone(stmts)).await;
        }
        let conn = |e: sqlx::Error| BatchError::Conn(sqlx_message(&e));
        with_pool!(&self.pool, p => {
            let mut tx = p.begin().await.map_err(conn)?;
            for &i in pending {
                for s in &stmts[i] {
                    match Exec::exec(&mut *tx, s).await {
                        Ok(n) if s.expect_rows.is_some_and(|want| n < want) => {
                            return Err(BatchError::Row(i, VANISHED.into()));
                        }
                        Ok(_) => {}
                        Err(e) if is_connection_error(&e) => return Err(conn(e)),
                        Err(e) => return Err(BatchError::Row(i, sqlx_message(&e))),
                    }
                }
            }
            if !crate::backend::guard::may_write() {
                let _ = tx.rollback().await;
                return Err(BatchError::Fenced);
            }
            tx.commit().await.map_err(conn)
        })
    }

    /// Every op as its own statements, in transactions, retrying without a
    /// failed op.
    async fn apply_rows(&self, ops: &[Op<'_>], hashes: &[Option<String>]) -> Result<Vec<OpResult>, BackendError> {
        let revive = self.revivable(ops);
        let stmts: Arc<Vec<Vec<Stmt<'static>>>> = Arc::new(
            ops.iter()
                .zip(hashes)
                .zip(&revive)
                .map(|((o, h), r)| rows::statements(&self.map, o, h.as_deref(), r.as_deref()))
                .collect(),
        );
        let mut results: Vec<OpResult> = vec![Ok(()); ops.len()];
        let mut pending: Vec<usize> = (0..ops.len()).filter(|i| !stmts[*i].is_empty()).collect();
        let mut failures = 0usize;
        while !pending.is_empty() {
            // After a few failures in one batch, go one op per transaction:
            // each retry without the failed op costs a whole batch otherwise.
            let groups: Vec<Vec<usize>> = if failures >= 3 {
                pending.iter().map(|i| vec![*i]).collect()
            } else {
                vec![pending.clone()]
            };
            let mut failed_now = Vec::new();
            let mut retry = false;
            for g in groups {
                match self.try_batch(&g, &stmts).await {
                    Ok(()) => {}
                    Err(BatchError::Row(i, msg)) => {
                        results[i] = Err(msg);
                        failed_now.push(i);
                        failures += 1;
                        retry = g.len() > 1;
                    }
                    Err(BatchError::Fenced) => return Err(BackendError::Fenced),
                    Err(BatchError::Conn(e)) => return Err(BackendError::Connect(e)),
                }
            }
            if retry {
                pending.retain(|i| !failed_now.contains(i));
            } else {
                break;
            }
        }
        Ok(results)
    }

    /// One transaction of bulk statements; row by row when it fails.
    async fn apply_bulk(&self, ops: &[Op<'_>], hashes: &[Option<String>]) -> Result<Vec<OpResult>, BackendError> {
        let revive = self.revivable(ops);
        let copy = self.copy.load(Ordering::Relaxed);
        let stmts = bulk::statements(&self.map, ops, hashes, &revive, copy);
        match transact::run(&self.pool, &stmts).await? {
            transact::Ran::Committed => return Ok(vec![Ok(()); ops.len()]),
            transact::Ran::RolledBack { copy_refused: true } => {
                // The table refuses COPY (row-level security, a view): the
                // same batch as INSERTs, and INSERTs from now on if they go.
                let stmts = bulk::statements(&self.map, ops, hashes, &revive, false);
                if let transact::Ran::Committed = transact::run(&self.pool, &stmts).await? {
                    if self.copy.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            table = %self.map.table,
                            "PostgreSQL refused COPY into the table where INSERT works (row-level security?); new rows go in as INSERTs from now on"
                        );
                    }
                    return Ok(vec![Ok(()); ops.len()]);
                }
            }
            transact::Ran::RolledBack { copy_refused: false } => {}
        }
        self.apply_rows(ops, hashes).await
    }

    /// For each op: the stored key of a soft-deleted row an Add revives.
    fn revivable(&self, ops: &[Op<'_>]) -> Vec<Option<String>> {
        if self.map.deleted_at.is_none() {
            return vec![None; ops.len()];
        }
        let deleted = self.deleted.lock().unwrap_or_else(|p| p.into_inner());
        ops.iter()
            .map(|o| match o.change {
                crate::core::Change::Add => deleted.get(o.key).cloned(),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl Backend for SqlBackend {
    async fn health(&self) -> Result<(), BackendError> {
        let cat = schema::inspect(&self.pool, self.dialect, &self.map.raw).await?;
        schema::check(&cat, &self.map.raw).map_err(BackendError::Schema)
    }

    async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        if let Some(e) = &self.schema_error {
            return Err(BackendError::Schema(e.clone()));
        }
        let (mut snap, deleted, memberships) = if let Some(file) = &self.lite_file {
            lite::read(file.clone(), self.map.clone()).await?
        } else if self.dialect == Dialect::Sqlite {
            // One connection: one query after the other.
            let (snap, deleted) = self.read_accounts().await?;
            (snap, deleted, self.read_memberships().await?)
        } else {
            let ((snap, deleted), memberships) = tokio::try_join!(self.read_accounts(), self.read_memberships())?;
            (snap, deleted, memberships)
        };
        *self.deleted.lock().unwrap_or_else(|p| p.into_inner()) = deleted;
        snap.add_memberships(memberships);
        Ok(snap)
    }

    async fn outside(&self) -> Result<Vec<crate::core::Account>, BackendError> {
        self.adoptable().await
    }

    /// What a dry run can tell without writing: values longer than their
    /// column (`varchar(n)`) would be refused by the database.
    async fn validate(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        Ok(ops.iter().map(|op| rows::too_long(&self.map, op)).collect())
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn set_password(&self, key: &UserKey, password: &Secret, _new_account: bool) -> Result<(), BackendError> {
        self.set_one_password(key, password).await
    }

    async fn apply(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError> {
        let hashes = self.hashes(ops).await?;
        if self.dialect == Dialect::Sqlite || ops.len() < 2 {
            return self.apply_rows(ops, &hashes).await;
        }
        // A large batch is written as a few concurrent transactions (one per
        // pooled connection, at least MIN_PART ops each), so the server
        // works on several cores while dirsync prepares the next part.
        let parts = (self.connections as usize).min(ops.len().div_ceil(MIN_PART)).max(1);
        let per = ops.len().div_ceil(parts);
        let results = futures::future::try_join_all(
            ops.chunks(per)
                .zip(hashes.chunks(per))
                .map(|(o, h)| self.apply_bulk(o, h)),
        )
        .await?;
        Ok(results.into_iter().flatten().collect())
    }
}
