//! The snapshot: the accounts in scope and their managed memberships, each
//! read with one streamed query (every column cast to text, timestamps as
//! Unix seconds).

use std::collections::HashMap;

use futures::TryStreamExt;

use super::stmt::{with_pool, Bind, TextRow};
use super::{sqlx_message, BackendError, Params, SqlBackend};
use crate::core::{Account, AccountState, Snapshot, UserKey, Value};

impl SqlBackend {
    /// The accounts in scope, in one streamed query.
    pub(super) async fn read_accounts(&self) -> Result<Snapshot, BackendError> {
        let m = &*self.map;
        let d = self.dialect;
        let mut managed = vec![false; m.attr_count];
        let mut select = vec![d.as_text(&m.key.q)];
        for (i, c) in &m.columns {
            managed[*i] = true;
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
        let scope = self.scope_filter(&mut p, &mut binds);
        let sql = format!("SELECT {} FROM {} WHERE 1 = 1{scope}", select.join(", "), m.table);
        let texts: Vec<Option<String>> = binds
            .into_iter()
            .map(|b| match b {
                Bind::Text(v) => v,
                _ => None,
            })
            .collect();
        let mut snap = Snapshot::new(managed);
        let mut deleted = HashMap::new();
        let read_err = |e: sqlx::Error| BackendError::Other(format!("reading {}: {}", m.raw.table, sqlx_message(&e)));
        with_pool!(&self.pool, pool => {
            let mut q = sqlx::query(&sql);
            for t in &texts {
                q = q.bind(t.as_deref());
            }
            let mut rows = q.fetch(pool);
            while let Some(row) = rows.try_next().await.map_err(read_err)? {
                match self.account_of(&row)? {
                    Some(Ok(a)) => snap.insert(a).map_err(BackendError::Other)?,
                    Some(Err(key)) => {
                        deleted.insert(UserKey::new(&key), key);
                    }
                    None => {}
                }
            }
        });
        *self.deleted.lock().unwrap_or_else(|p| p.into_inner()) = deleted;
        Ok(snap)
    }

    /// Memberships in the managed groups, in one streamed query.
    pub(super) async fn read_memberships(&self) -> Result<Vec<(UserKey, Value)>, BackendError> {
        let m = &*self.map;
        let d = self.dialect;
        let mut memberships: Vec<(UserKey, Value)> = Vec::new();
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
                let read_err = |e: sqlx::Error| BackendError::Other(format!("reading groups: {}", sqlx_message(&e)));
                with_pool!(&self.pool, pool => {
                    let mut q = sqlx::query(&sql);
                    for grp in &m.managed_groups {
                        q = q.bind(grp.as_str());
                    }
                    let mut rows = q.fetch(pool);
                    while let Some(row) = rows.try_next().await.map_err(read_err)? {
                        if let (Some(user), Some(group)) = (row.text(0)?, row.text(1)?) {
                            memberships.push((UserKey::new(&user), Value::from(group)));
                        }
                    }
                });
            }
        }
        Ok(memberships)
    }

    /// Turn one snapshot row into an account (`Err` on unreadable data);
    /// `Ok(Err(key))` for a soft-deleted row.
    fn account_of<R: TextRow>(&self, row: &R) -> Result<Option<Result<Account, String>>, BackendError> {
        let m = &*self.map;
        let Some(key) = row.text(0)? else { return Ok(None) };
        let n = m.columns.len();
        if row.text(n + 3)?.is_some() {
            return Ok(Some(Err(key)));
        }
        let mut attrs: Vec<Option<Value>> = vec![None; m.attr_count];
        for (j, (i, _)) in m.columns.iter().enumerate() {
            attrs[*i] = row.text(j + 1)?.filter(|s| !s.is_empty()).map(Value::from);
        }
        let state = match row.text(n + 1)? {
            Some(s) if s.eq_ignore_ascii_case(&m.leaver_value) => AccountState::Leaver,
            _ => AccountState::Active,
        };
        let left_at = row
            .text(n + 2)?
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(|f| f as i64);
        Ok(Some(Ok(Account {
            key: UserKey::new(&key),
            attrs,
            groups: Vec::new(),
            state,
            left_at,
            locator: None,
        })))
    }
}
