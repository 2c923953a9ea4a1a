//! `sync.adopt` on a SQL target: the accounts to adopt are the rows outside
//! `[sql.scope]` (scope column empty or another value); adopting one sets
//! the row's key and the scope value in one UPDATE that must touch exactly
//! that row, moves its memberships to the new key, and writes the row's
//! differences.

use super::rows::{group_deletes, group_inserts, key_of};
use super::stmt::{Bind, Stmt};
use super::{BackendError, Params, Resolved, SqlBackend};
use crate::backend::Op;
use crate::core::{Account, Diff, UserKey};

impl SqlBackend {
    /// The rows outside the scope, with their memberships in managed groups.
    pub(super) async fn adoptable(&self) -> Result<Vec<Account>, BackendError> {
        let m = &*self.map;
        if m.scope.is_none() {
            return Ok(Vec::new());
        }
        let (snap, _) = self.read_accounts_in(true).await?;
        let mut accounts = snap.accounts().to_vec();
        let at: std::collections::HashMap<UserKey, usize> =
            accounts.iter().enumerate().map(|(i, a)| (a.key.clone(), i)).collect();
        for (user, group) in self.read_memberships().await? {
            if let Some(&i) = at.get(&user) {
                accounts[i].groups.push(group);
            }
        }
        Ok(accounts)
    }
}

/// ` AND (scope_column IS NULL OR scope_column <> $n)`: the rows outside the scope.
pub(super) fn outside_filter(m: &Resolved, p: &mut Params, binds: &mut Vec<Bind<'_>>) -> String {
    match &m.scope {
        Some((col, val)) => {
            binds.push(Bind::Text(Some(val.clone())));
            let mark = p.next();
            format!(" AND ({c} IS NULL OR {c} <> {})", m.value_expr(col, &mark), c = col.q)
        }
        None => " AND 1 = 0".to_string(),
    }
}

/// The statements adopting `op.account` for the row `op.person`.
pub(super) fn statements(m: &Resolved, op: &Op<'_>, diff: &Diff) -> Vec<Stmt<'static>> {
    let (old, new) = (key_of(op), op.key.as_str().to_string());
    let mut p = Params::new(m.d);
    let mut sets = Vec::new();
    let mut binds: Vec<Bind<'static>> = Vec::new();
    let mut set = |c: &super::Col, b: Bind<'static>, p: &mut Params| {
        let mark = p.next();
        sets.push(format!("{} = {}", c.q, m.value_expr(c, &mark)));
        binds.push(b);
    };
    set(&m.key, Bind::Text(Some(new.clone())), &mut p);
    if let Some((col, val)) = &m.scope {
        set(col, Bind::Text(Some(val.clone())), &mut p);
    }
    if let Some(c) = &m.status {
        set(c, Bind::Text(Some(m.active_value.clone())), &mut p);
    }
    for c in &diff.attrs {
        if let Some((_, col)) = m.columns.iter().find(|(i, _)| *i == c.attr) {
            set(col, Bind::Text(c.new.as_ref().map(|v| v.to_string())), &mut p);
        }
    }
    let k = p.next();
    binds.push(Bind::Text(Some(old.clone())));
    let outside = outside_filter(m, &mut p, &mut binds);
    let mut out = vec![Stmt {
        sql: format!(
            "UPDATE {} SET {} WHERE {} = {k}{outside}",
            m.table,
            sets.join(", "),
            m.key.q
        ),
        binds,
        expect_rows: Some(1),
    }];
    if let (Some((t, u, _)), true) = (&m.groups, old != new) {
        let mut p = Params::new(m.d);
        let (a, b) = (p.next(), p.next());
        out.push(Stmt {
            sql: format!("UPDATE {t} SET {u} = {a} WHERE {u} = {b}"),
            binds: vec![Bind::Text(Some(new.clone())), Bind::Text(Some(old))],
            expect_rows: None,
        });
    }
    if !diff.groups_remove.is_empty() {
        out.extend(group_deletes(m, &new, Some(&diff.groups_remove)));
    }
    if !diff.groups_add.is_empty() {
        out.extend(group_inserts(m, &new, &diff.groups_add));
    }
    out
}
