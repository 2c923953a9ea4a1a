//! Statements with bound parameters, and running them on each database's own
//! connection type. Values only ever travel as parameters; the SQL text holds
//! nothing but quoted identifiers and placeholders.

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{MySqlPool, PgPool, Row, SqlitePool};

use super::BackendError;

/// A connection pool of one of the three databases.
#[derive(Clone, Debug)]
pub(super) enum Pool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

/// Run `$body` with `$p` bound to the concrete pool (the body is compiled
/// once per database).
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::backend::sql::stmt::Pool::Pg($p) => $body,
            $crate::backend::sql::stmt::Pool::My($p) => $body,
            $crate::backend::sql::stmt::Pool::Lite($p) => $body,
        }
    };
}
pub(super) use with_pool;

/// A value to bind.
#[derive(Clone, Debug)]
pub(super) enum Bind<'a> {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    /// PostgreSQL arrays, for the bulk paths (`UNNEST`, `= ANY`).
    TextArray(Vec<Option<&'a str>>),
    IntArray(Vec<Option<i64>>),
    BoolArray(Vec<bool>),
}

/// One statement with its parameters.
#[derive(Clone, Debug)]
pub(super) struct Stmt<'a> {
    pub sql: String,
    pub binds: Vec<Bind<'a>>,
    /// Rows the statement must touch (an UPDATE of a row that vanished
    /// touches none); `None`: any count is fine.
    pub expect_rows: Option<u64>,
}

/// Rows streamed with `COPY … FROM STDIN` (PostgreSQL; see `copy.rs`).
#[derive(Clone, Debug)]
pub(super) struct CopyIn {
    pub sql: String,
    /// The rows in COPY's text format.
    pub data: Vec<u8>,
    /// Rows the COPY must write.
    pub rows: u64,
}

/// One step of a bulk transaction.
#[derive(Clone, Debug)]
pub(super) enum Step<'a> {
    Sql(Stmt<'a>),
    Copy(CopyIn),
}

impl Step<'_> {
    /// Rows the step must touch, if it says.
    pub(super) fn expect_rows(&self) -> Option<u64> {
        match self {
            Step::Sql(s) => s.expect_rows,
            Step::Copy(c) => Some(c.rows),
        }
    }
}

fn arrays_unsupported() -> sqlx::Error {
    sqlx::Error::Protocol("array parameters are only used with PostgreSQL".into())
}

macro_rules! bind_scalar {
    ($q:expr, $b:expr) => {
        match $b {
            Bind::Text(v) => $q.bind(v.as_deref()),
            Bind::Int(v) => $q.bind(*v),
            Bind::Bool(v) => $q.bind(*v),
            _ => return Err(arrays_unsupported()),
        }
    };
}

/// Running a [`Stmt`] on a connection (or a transaction, through deref).
pub(super) trait Exec {
    async fn exec(&mut self, s: &Stmt<'_>) -> Result<u64, sqlx::Error>;
    /// Stream rows with COPY; only PostgreSQL has it.
    async fn copy_in(&mut self, _c: &CopyIn) -> Result<u64, sqlx::Error> {
        Err(sqlx::Error::Protocol("COPY is only used with PostgreSQL".into()))
    }
    /// Run one step of a bulk transaction: rows touched.
    async fn step(&mut self, s: &Step<'_>) -> Result<u64, sqlx::Error> {
        match s {
            Step::Sql(s) => self.exec(s).await,
            Step::Copy(c) => self.copy_in(c).await,
        }
    }
}

impl Exec for PgConnection {
    async fn exec(&mut self, s: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let mut q = sqlx::query(&s.sql);
        for b in &s.binds {
            q = match b {
                Bind::TextArray(v) => q.bind(v.as_slice()),
                Bind::IntArray(v) => q.bind(v.as_slice()),
                Bind::BoolArray(v) => q.bind(v.as_slice()),
                other => bind_scalar!(q, other),
            };
        }
        Ok(q.execute(self).await?.rows_affected())
    }
    async fn copy_in(&mut self, c: &CopyIn) -> Result<u64, sqlx::Error> {
        let mut copy = self.copy_in_raw(&c.sql).await?;
        if let Err(e) = copy.send(c.data.as_slice()).await {
            let _ = copy.abort("dirsync: sending the rows failed").await;
            return Err(e);
        }
        copy.finish().await
    }
}

impl Exec for MySqlConnection {
    async fn exec(&mut self, s: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let mut q = sqlx::query(&s.sql);
        for b in &s.binds {
            q = bind_scalar!(q, b);
        }
        Ok(q.execute(self).await?.rows_affected())
    }
}

impl Exec for SqliteConnection {
    async fn exec(&mut self, s: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let mut q = sqlx::query(&s.sql);
        for b in &s.binds {
            q = bind_scalar!(q, b);
        }
        Ok(q.execute(self).await?.rows_affected())
    }
}

/// Reading every selected column as text (the snapshot casts them).
pub(super) trait TextRow {
    /// Column `i`, borrowed from the row.
    fn str(&self, i: usize) -> Result<Option<&str>, BackendError>;
    /// Column `i`, owned.
    fn text(&self, i: usize) -> Result<Option<String>, BackendError> {
        Ok(self.str(i)?.map(str::to_string))
    }
}

macro_rules! text_row {
    ($t:ty) => {
        impl TextRow for $t {
            fn str(&self, i: usize) -> Result<Option<&str>, BackendError> {
                self.try_get::<Option<&str>, _>(i)
                    .map_err(|e| BackendError::Other(format!("reading column {i}: {e}")))
            }
        }
    };
}
text_row!(PgRow);
text_row!(MySqlRow);
text_row!(SqliteRow);
