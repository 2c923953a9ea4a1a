//! The SQL target: SQLite (embedded default), PostgreSQL and MariaDB/MySQL
//! through sqlx's `Any` driver. Values are always bound parameters;
//! identifiers come from the policy, are checked to be plain names, and are
//! quoted per database.

mod config;
mod schema;

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

pub use config::{redact_url, valid_identifier, SqlGroups, SqlMapping, SqlScope, SqlTarget};

use super::{Backend, BackendError, Op, OpResult};
use crate::core::{Account, AccountState, Change, Policy, Secret, Snapshot, UserKey, Value};

/// Which SQL dialect a URL speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    fn of(url: &str) -> Dialect {
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
            Dialect::Mysql => format!("`{ident}`"),
            _ => format!("\"{ident}\""),
        }
    }
    fn as_text(self, expr: &str) -> String {
        match self {
            Dialect::Mysql => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }
}

/// Builds placeholders in the dialect's style (`?` or `$n`).
struct Params {
    dialect: Dialect,
    n: usize,
}

impl Params {
    fn new(dialect: Dialect) -> Self {
        Params { dialect, n: 0 }
    }
    fn next(&mut self) -> String {
        self.n += 1;
        match self.dialect {
            Dialect::Postgres => format!("${}", self.n),
            _ => "?".to_string(),
        }
    }
}

/// A value to bind.
#[derive(Clone, Debug)]
enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

/// One statement with its parameters.
struct Stmt {
    sql: String,
    binds: Vec<Bind>,
    /// The statement must touch at least one row (an UPDATE of a row that vanished).
    expect_rows: bool,
}

impl Stmt {
    async fn run<'c, E>(&self, exec: E) -> Result<u64, sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        let mut q = sqlx::query(&self.sql);
        for b in &self.binds {
            q = match b {
                Bind::Text(v) => q.bind(v.clone()),
                Bind::Int(v) => q.bind(*v),
                Bind::Bool(v) => q.bind(*v),
            };
        }
        Ok(q.execute(exec).await?.rows_affected())
    }
}

/// The SQL backend for one (target, policy) pair.
pub struct SqlBackend {
    pool: AnyPool,
    dialect: Dialect,
    map: Arc<Resolved>,
    batch_size: usize,
}

/// The mapping with attribute indexes resolved and identifiers quoted.
struct Resolved {
    table: String,
    key: String,
    /// (attribute index, quoted column)
    columns: Vec<(usize, String)>,
    status: Option<String>,
    active_value: String,
    leaver_value: String,
    left_at: Option<String>,
    must_change: Option<String>,
    password: Option<String>,
    scope: Option<(String, String)>,
    groups: Option<(String, String, String)>,
    managed_groups: Vec<String>,
    argon2: (u32, u32),
    attr_count: usize,
    raw: SqlMapping,
}

fn sqlx_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    }
}

/// Errors that mean the database (not one row) is the problem.
fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
    )
}

impl SqlBackend {
    /// Connect (lazily checked by `health`). `password` is spliced into the
    /// URL only in memory, never logged.
    pub async fn connect(
        target: &SqlTarget,
        mapping: &SqlMapping,
        policy: &Policy,
        password: Option<Secret>,
    ) -> Result<SqlBackend, BackendError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of(&target.url);
        let mut url = target.url.clone();
        if dialect == Dialect::Sqlite && target.create_schema {
            // The embedded default owns its folder: make it.
            let path = url.trim_start_matches("sqlite://").split('?').next().unwrap_or("");
            if let Some(parent) = std::path::Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| BackendError::Connect(format!("creating {}: {e}", parent.display())))?;
            }
        }
        if dialect == Dialect::Sqlite && target.create_schema && !url.contains("mode=") {
            url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
        }
        if let Some(pw) = &password {
            url = with_password(&url, pw.expose());
        }
        let url = url.replacen("mariadb://", "mysql://", 1);
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite {
                1
            } else {
                target.max_connections.max(1)
            })
            .acquire_timeout(std::time::Duration::from_secs(15))
            .connect(&url)
            .await
            .map_err(|e| BackendError::Connect(format!("{}: {}", redact_url(&target.url), sqlx_message(&e))))?;
        let map = Arc::new(resolve(mapping, policy, dialect));
        let backend = SqlBackend {
            pool,
            dialect,
            map,
            batch_size: target.batch_size,
        };
        if target.create_schema {
            schema::create(&backend.pool, dialect, &backend.map.raw, policy)
                .await
                .map_err(|e| BackendError::Schema(format!("creating tables: {}", sqlx_message(&e))))?;
        }
        Ok(backend)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn scope_filter(&self, p: &mut Params, binds: &mut Vec<Bind>) -> String {
        match &self.map.scope {
            Some((col, val)) => {
                binds.push(Bind::Text(Some(val.clone())));
                format!(" AND {}.{col} = {}", self.map.table, p.next())
            }
            None => String::new(),
        }
    }

    /// The statements for one op.
    fn statements(&self, op: &Op<'_>, hash: Option<&str>) -> Vec<Stmt> {
        let m = &*self.map;
        let key_value = op
            .account
            .map(|a| a.key.as_str())
            .unwrap_or(op.key.as_str())
            .to_string();
        let mut out = Vec::new();
        match op.change {
            Change::Add => {
                let Some(person) = op.person else { return out };
                let mut cols = vec![m.key.clone()];
                let mut binds = vec![Bind::Text(Some(person.key.as_str().to_string()))];
                for (i, col) in &m.columns {
                    cols.push(col.clone());
                    binds.push(Bind::Text(
                        person.attrs.get(*i).cloned().flatten().map(|v| v.to_string()),
                    ));
                }
                if let Some(s) = &m.status {
                    cols.push(s.clone());
                    binds.push(Bind::Text(Some(m.active_value.clone())));
                }
                if let Some(c) = &m.must_change {
                    cols.push(c.clone());
                    binds.push(Bind::Bool(op.must_change));
                }
                if let (Some(c), Some(h)) = (&m.password, hash) {
                    cols.push(c.clone());
                    binds.push(Bind::Text(Some(h.to_string())));
                }
                if let Some((c, v)) = &m.scope {
                    cols.push(c.clone());
                    binds.push(Bind::Text(Some(v.clone())));
                }
                let mut p = Params::new(self.dialect);
                let marks: Vec<String> = binds.iter().map(|_| p.next()).collect();
                out.push(Stmt {
                    sql: format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        m.table,
                        cols.join(", "),
                        marks.join(", ")
                    ),
                    binds,
                    expect_rows: true,
                });
                if let Some(groups) = &person.groups {
                    out.extend(self.group_inserts(person.key.as_str(), groups));
                }
            }
            Change::Update(diff) | Change::Rejoin(diff) => {
                let rejoin = matches!(op.change, Change::Rejoin(_));
                let mut p = Params::new(self.dialect);
                let mut sets = Vec::new();
                let mut binds = Vec::new();
                for c in &diff.attrs {
                    if let Some((_, col)) = m.columns.iter().find(|(i, _)| *i == c.attr) {
                        sets.push(format!("{col} = {}", p.next()));
                        binds.push(Bind::Text(c.new.as_ref().map(|v| v.to_string())));
                    }
                }
                if rejoin {
                    if let Some(s) = &m.status {
                        sets.push(format!("{s} = {}", p.next()));
                        binds.push(Bind::Text(Some(m.active_value.clone())));
                    }
                    if let Some(l) = &m.left_at {
                        sets.push(format!("{l} = {}", p.next()));
                        binds.push(Bind::Int(None));
                    }
                    if let Some(c) = &m.must_change {
                        if op.must_change {
                            sets.push(format!("{c} = {}", p.next()));
                            binds.push(Bind::Bool(true));
                        }
                    }
                }
                if !sets.is_empty() {
                    out.push(self.update(sets, binds, p, &key_value));
                }
                if !diff.groups_remove.is_empty() {
                    out.extend(self.group_deletes(&key_value, Some(&diff.groups_remove)));
                }
                if !diff.groups_add.is_empty() {
                    out.extend(self.group_inserts(&key_value, &diff.groups_add));
                }
            }
            Change::Leave => {
                let mut p = Params::new(self.dialect);
                let mut sets = Vec::new();
                let mut binds = Vec::new();
                if let Some(s) = &m.status {
                    sets.push(format!("{s} = {}", p.next()));
                    binds.push(Bind::Text(Some(m.leaver_value.clone())));
                }
                if let Some(l) = &m.left_at {
                    sets.push(format!("{l} = {}", p.next()));
                    binds.push(Bind::Int(Some(op.now)));
                }
                out.push(self.update(sets, binds, p, &key_value));
                out.extend(self.group_deletes(&key_value, None));
            }
            Change::Delete => {
                out.extend(self.group_deletes(&key_value, None));
                let mut p = Params::new(self.dialect);
                let mut binds = vec![Bind::Text(Some(key_value.clone()))];
                let k = p.next();
                let scope = self.scope_filter(&mut p, &mut binds);
                out.push(Stmt {
                    sql: format!("DELETE FROM {} WHERE {} = {k}{scope}", m.table, m.key),
                    binds,
                    expect_rows: true,
                });
            }
            Change::Unchanged | Change::Absent | Change::Reject(_) => {}
        }
        out
    }

    fn update(&self, sets: Vec<String>, mut binds: Vec<Bind>, mut p: Params, key: &str) -> Stmt {
        let k = p.next();
        binds.push(Bind::Text(Some(key.to_string())));
        let scope = self.scope_filter(&mut p, &mut binds);
        Stmt {
            sql: format!(
                "UPDATE {} SET {} WHERE {} = {k}{scope}",
                self.map.table,
                sets.join(", "),
                self.map.key
            ),
            binds,
            expect_rows: true,
        }
    }

    fn group_inserts(&self, user: &str, groups: &[Value]) -> Vec<Stmt> {
        let Some((t, u, g)) = &self.map.groups else {
            return Vec::new();
        };
        groups
            .iter()
            .map(|grp| {
                let mut p = Params::new(self.dialect);
                let (a, b) = (p.next(), p.next());
                Stmt {
                    sql: format!("INSERT INTO {t} ({u}, {g}) VALUES ({a}, {b})"),
                    binds: vec![Bind::Text(Some(user.to_string())), Bind::Text(Some(grp.to_string()))],
                    expect_rows: false,
                }
            })
            .collect()
    }

    /// Remove memberships: the given groups, or every managed group. Groups
    /// the policy does not manage are never touched.
    fn group_deletes(&self, user: &str, only: Option<&[Value]>) -> Vec<Stmt> {
        let Some((t, u, g)) = &self.map.groups else {
            return Vec::new();
        };
        let groups: Vec<String> = match only {
            Some(list) => list.iter().map(|v| v.to_string()).collect(),
            None => self.map.managed_groups.clone(),
        };
        if groups.is_empty() {
            return Vec::new();
        }
        let mut p = Params::new(self.dialect);
        let k = p.next();
        let marks: Vec<String> = groups.iter().map(|_| p.next()).collect();
        let mut binds = vec![Bind::Text(Some(user.to_string()))];
        binds.extend(groups.into_iter().map(|g| Bind::Text(Some(g))));
        vec![Stmt {
            sql: format!("DELETE FROM {t} WHERE {u} = {k} AND {g} IN ({})", marks.join(", ")),
            binds,
            expect_rows: false,
        }]
    }

    /// Hash the passwords of a batch on the blocking pool, in parallel.
    async fn hashes(&self, ops: &[Op<'_>]) -> Result<Vec<Option<String>>, BackendError> {
        if self.map.password.is_none() {
            return Ok(vec![None; ops.len()]);
        }
        let secrets: Vec<Option<Secret>> = ops.iter().map(|o| o.password.cloned()).collect();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(1);
        let chunk = secrets.len().div_ceil(workers).max(1);
        let (m, t) = self.map.argon2;
        let mut tasks = Vec::new();
        for part in secrets.chunks(chunk) {
            let part = part.to_vec();
            tasks.push(tokio::task::spawn_blocking(move || {
                part.iter()
                    .map(|s| s.as_ref().map(|s| hash_password(s, m, t)).transpose())
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
    async fn try_batch(&self, pending: &[usize], stmts: &[Vec<Stmt>]) -> Result<(), (Option<usize>, sqlx::Error)> {
        let mut tx = self.pool.begin().await.map_err(|e| (None, e))?;
        for &i in pending {
            for s in &stmts[i] {
                match s.run(&mut *tx).await {
                    Ok(0) if s.expect_rows => {
                        return Err((Some(i), sqlx::Error::RowNotFound));
                    }
                    Ok(_) => {}
                    Err(e) if is_connection_error(&e) => return Err((None, e)),
                    Err(e) => return Err((Some(i), e)),
                }
            }
        }
        tx.commit().await.map_err(|e| (None, e))
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

fn with_password(url: &str, pw: &str) -> String {
    // Percent-encode everything but unreserved characters.
    let enc: String = pw
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => format!("{scheme}://{user}:{enc}@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn resolve(m: &SqlMapping, policy: &Policy, d: Dialect) -> Resolved {
    Resolved {
        table: d.quote(&m.table),
        key: d.quote(&m.key),
        columns: m
            .columns
            .iter()
            .filter_map(|(f, c)| policy.attribute_index(f).map(|i| (i, d.quote(c))))
            .collect(),
        status: m.status_column.as_deref().map(|c| d.quote(c)),
        active_value: m.active_value.clone(),
        leaver_value: m.leaver_value.clone(),
        left_at: m.left_at_column.as_deref().map(|c| d.quote(c)),
        must_change: m.must_change_column.as_deref().map(|c| d.quote(c)),
        password: m.password_column.as_deref().map(|c| d.quote(c)),
        scope: m.scope.as_ref().map(|s| (d.quote(&s.column), s.value.clone())),
        groups: m
            .groups
            .as_ref()
            .map(|g| (d.quote(&g.table), d.quote(&g.user_column), d.quote(&g.group_column))),
        managed_groups: policy.groups.managed.clone(),
        argon2: (m.argon2_memory_kib, m.argon2_iterations),
        attr_count: policy.attributes.len(),
        raw: m.clone(),
    }
}

fn text(row: &AnyRow, i: usize) -> Result<Option<String>, BackendError> {
    row.try_get::<Option<String>, _>(i)
        .map_err(|e| BackendError::Other(format!("reading column {i}: {e}")))
}

#[async_trait]
impl Backend for SqlBackend {
    async fn health(&self) -> Result<(), BackendError> {
        schema::check(&self.pool, self.dialect, &self.map.raw).await
    }

    async fn snapshot(&self) -> Result<Snapshot, BackendError> {
        schema::check(&self.pool, self.dialect, &self.map.raw).await?;
        let m = &*self.map;
        let d = self.dialect;
        let mut managed = vec![false; m.attr_count];
        // Columns are table-qualified: SQLite reads an unknown unqualified
        // "name" as a string literal.
        let col = |c: &str| d.as_text(&format!("{}.{c}", m.table));
        let mut select = vec![col(&m.key)];
        for (i, c) in &m.columns {
            managed[*i] = true;
            select.push(col(c));
        }
        select.push(m.status.as_deref().map(col).unwrap_or_else(|| "NULL".into()));
        select.push(m.left_at.as_deref().map(col).unwrap_or_else(|| "NULL".into()));
        let mut p = Params::new(d);
        let mut binds = Vec::new();
        let scope = self.scope_filter(&mut p, &mut binds);
        let sql = format!("SELECT {} FROM {} WHERE 1 = 1{scope}", select.join(", "), m.table);
        let mut q = sqlx::query(&sql);
        for b in &binds {
            if let Bind::Text(v) = b {
                q = q.bind(v.clone());
            }
        }
        let mut snap = Snapshot::new(managed);
        let mut rows = q.fetch(&self.pool);
        let n = m.columns.len();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| BackendError::Other(format!("reading {}: {}", m.raw.table, sqlx_message(&e))))?
        {
            let Some(key) = text(&row, 0)? else { continue };
            let mut attrs: Vec<Option<Value>> = vec![None; m.attr_count];
            for (j, (i, _)) in m.columns.iter().enumerate() {
                attrs[*i] = text(&row, j + 1)?.filter(|s| !s.is_empty()).map(Value::from);
            }
            let status = text(&row, n + 1)?;
            let state = match status {
                Some(s) if s.eq_ignore_ascii_case(&m.leaver_value) => AccountState::Leaver,
                _ => AccountState::Active,
            };
            let left_at = text(&row, n + 2)?.and_then(|s| s.trim().parse::<i64>().ok());
            snap.insert(Account {
                key: UserKey::new(&key),
                attrs,
                groups: Vec::new(),
                state,
                left_at,
                locator: None,
            })
            .map_err(BackendError::Other)?;
        }
        drop(rows);
        if let Some((t, u, g)) = &m.groups {
            if !m.managed_groups.is_empty() {
                let mut p = Params::new(d);
                let marks: Vec<String> = m.managed_groups.iter().map(|_| p.next()).collect();
                let sql = format!(
                    "SELECT {}, {} FROM {t} WHERE {g} IN ({})",
                    d.as_text(u),
                    d.as_text(g),
                    marks.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for grp in &m.managed_groups {
                    q = q.bind(grp.clone());
                }
                let mut memberships: Vec<(UserKey, Value)> = Vec::new();
                let mut rows = q.fetch(&self.pool);
                while let Some(row) = rows
                    .try_next()
                    .await
                    .map_err(|e| BackendError::Other(format!("reading groups: {}", sqlx_message(&e))))?
                {
                    if let (Some(user), Some(group)) = (text(&row, 0)?, text(&row, 1)?) {
                        memberships.push((UserKey::new(&user), Value::from(group)));
                    }
                }
                drop(rows);
                snap.add_memberships(memberships);
            }
        }
        Ok(snap)
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn apply(&self, ops: &[Op<'_>]) -> Result<Vec<OpResult>, BackendError> {
        let hashes = self.hashes(ops).await?;
        let stmts: Vec<Vec<Stmt>> = ops
            .iter()
            .zip(&hashes)
            .map(|(o, h)| self.statements(o, h.as_deref()))
            .collect();
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
                    Err((Some(i), e)) => {
                        let msg = match &e {
                            sqlx::Error::RowNotFound => {
                                "the account is no longer in the target (changed since the snapshot); run again"
                                    .to_string()
                            }
                            other => sqlx_message(other),
                        };
                        results[i] = Err(msg);
                        failed_now.push(i);
                        failures += 1;
                        retry = g.len() > 1;
                    }
                    Err((None, e)) => return Err(BackendError::Connect(sqlx_message(&e))),
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
}
