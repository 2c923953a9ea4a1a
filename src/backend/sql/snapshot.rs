//! The snapshot: the accounts in scope and their managed memberships, each
//! read with one streamed query (every column cast to text, timestamps as
//! Unix seconds). The embedded SQLite target is read by `lite` instead.

use std::collections::HashMap;

use futures::TryStreamExt;

use super::stmt::{with_pool, Bind, TextRow};
use super::{sqlx_message, BackendError, Params, Resolved, SqlBackend};
use crate::core::{Account, AccountState, Attrs, Snapshot, UserKey, Value};

/// A query and its text parameters.
pub(super) struct Query {
    pub sql: String,
    pub binds: Vec<Option<String>>,
}

/// Soft-deleted rows seen by a snapshot: key → the stored key.
pub(super) type Deleted = HashMap<UserKey, String>;

/// One row of the accounts query, taken apart.
pub(super) enum RowOf {
    Account(Account),
    /// A soft-deleted row: its stored key.
    Deleted(String),
    /// A row without a key.
    Skip,
}

/// `SELECT key, columns…, status, left_at, deleted FROM table WHERE scope`.
pub(super) fn accounts_query(m: &Resolved) -> Query {
    accounts_query_in(m, false)
}

/// [`accounts_query`], or with `outside` the rows outside the scope (`sync.adopt`).
pub(super) fn accounts_query_in(m: &Resolved, outside: bool) -> Query {
    let d = m.d;
    let mut select = vec![d.as_text(&m.key.q)];
    for (_, c) in &m.columns {
        select.push(m.read_expr(c));
    }
    let null = || "NULL".to_string();
    select.push(m.status.as_ref().map(|s| m.read_expr(s)).unwrap_or_else(null));
    select.push(m.left_at.as_ref().map(|s| m.read_expr(s)).unwrap_or_else(null));
    select.push(
        m.deleted_at
            .as_ref()
            .map(|c| format!("CASE WHEN {} IS NULL THEN NULL ELSE '1' END", c.q))
            .unwrap_or_else(null),
    );
    let mut p = Params::new(d);
    let mut binds = Vec::new();
    let scope = match outside {
        false => super::rows::scope_filter(m, &mut p, &mut binds),
        true => super::adopt::outside_filter(m, &mut p, &mut binds),
    };
    Query {
        sql: format!("SELECT {} FROM {} WHERE 1 = 1{scope}", select.join(", "), m.table),
        binds: binds
            .into_iter()
            .map(|b| match b {
                Bind::Text(v) => v,
                _ => None,
            })
            .collect(),
    }
}

/// `SELECT user, group FROM groups WHERE group IN (managed…)`; `None` when
/// the policy maps no group table or manages no group.
pub(super) fn memberships_query(m: &Resolved) -> Option<Query> {
    let (t, u, g) = m.groups.as_ref()?;
    if m.managed_groups.is_empty() {
        return None;
    }
    let d = m.d;
    let mut p = Params::new(d);
    let marks: Vec<String> = m.managed_groups.iter().map(|_| p.next()).collect();
    Some(Query {
        sql: format!(
            "SELECT {}, {} FROM {t} WHERE {g} IN ({})",
            d.as_text(u),
            d.as_text(g),
            marks.join(", ")
        ),
        binds: m.managed_groups.iter().map(|g| Some(g.clone())).collect(),
    })
}

/// An empty snapshot comparing the mapped attributes.
pub(super) fn empty_snapshot(m: &Resolved) -> Snapshot {
    let mut managed = vec![false; m.attr_count];
    for (i, _) in &m.columns {
        managed[*i] = true;
    }
    Snapshot::new(managed)
}

/// Add one row of the accounts query to the snapshot (or to `deleted`).
pub(super) fn take_row<R: TextRow>(
    m: &Resolved,
    row: &R,
    snap: &mut Snapshot,
    deleted: &mut Deleted,
) -> Result<(), BackendError> {
    match account_of(m, row)? {
        RowOf::Account(a) => snap.insert(a).map_err(BackendError::Other),
        RowOf::Deleted(key) => {
            deleted.insert(UserKey::new(&key), key);
            Ok(())
        }
        RowOf::Skip => Ok(()),
    }
}

/// One membership row: (user, group), both present.
pub(super) fn membership_of<R: TextRow>(row: &R) -> Result<Option<(UserKey, Value)>, BackendError> {
    Ok(match (row.str(0)?, row.str(1)?) {
        (Some(user), Some(group)) => Some((UserKey::new(user), Value::from(group))),
        _ => None,
    })
}

/// Turn one snapshot row into an account.
fn account_of<R: TextRow>(m: &Resolved, row: &R) -> Result<RowOf, BackendError> {
    let Some(key) = row.str(0)? else { return Ok(RowOf::Skip) };
    let n = m.columns.len();
    if row.str(n + 3)?.is_some() {
        return Ok(RowOf::Deleted(key.to_string()));
    }
    let mut values: Vec<Option<&str>> = vec![None; m.attr_count];
    for (j, (i, _)) in m.columns.iter().enumerate() {
        values[*i] = row.str(j + 1)?.filter(|s| !s.is_empty());
    }
    let attrs = Attrs::pack(values);
    let state = match row.str(n + 1)? {
        Some(s) if s.eq_ignore_ascii_case(&m.leaver_value) => AccountState::Leaver,
        _ => AccountState::Active,
    };
    let left_at = row
        .str(n + 2)?
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map(|f| f as i64);
    Ok(RowOf::Account(Account {
        key: UserKey::new(key),
        attrs,
        groups: Vec::new(),
        state,
        left_at,
        locator: None,
    }))
}

impl SqlBackend {
    /// The accounts in scope, in one streamed query through sqlx.
    pub(super) async fn read_accounts(&self) -> Result<(Snapshot, Deleted), BackendError> {
        self.read_accounts_in(false).await
    }

    /// [`Self::read_accounts`], or with `outside` the rows outside the scope.
    pub(super) async fn read_accounts_in(&self, outside: bool) -> Result<(Snapshot, Deleted), BackendError> {
        let m = &*self.map;
        let q = accounts_query_in(m, outside);
        let mut snap = empty_snapshot(m);
        let mut deleted = HashMap::new();
        let read_err = |e: sqlx::Error| BackendError::Other(format!("reading {}: {}", m.raw.table, sqlx_message(&e)));
        with_pool!(&self.pool, pool => {
            let mut query = sqlx::query(&q.sql);
            for t in &q.binds {
                query = query.bind(t.as_deref());
            }
            let mut rows = query.fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(read_err)? {
                take_row(m, &row, &mut snap, &mut deleted)?;
            }
        });
        Ok((snap, deleted))
    }

    /// Memberships in the managed groups, in one streamed query through sqlx.
    pub(super) async fn read_memberships(&self) -> Result<Vec<(UserKey, Value)>, BackendError> {
        let mut memberships: Vec<(UserKey, Value)> = Vec::new();
        let Some(q) = memberships_query(&self.map) else {
            return Ok(memberships);
        };
        let read_err = |e: sqlx::Error| BackendError::Other(format!("reading groups: {}", sqlx_message(&e)));
        with_pool!(&self.pool, pool => {
            let mut query = sqlx::query(&q.sql);
            for g in &q.binds {
                query = query.bind(g.as_deref());
            }
            let mut rows = query.fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(read_err)? {
                memberships.extend(membership_of(&row)?);
            }
        });
        Ok(memberships)
    }
}
