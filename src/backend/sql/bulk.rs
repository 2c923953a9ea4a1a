//! Bulk writes: a whole batch in a handful of statements, so a batch costs a
//! few round trips instead of one or more per row.
//!
//! - PostgreSQL: new accounts and new memberships streamed with `COPY`
//!   (`copy.rs`); every other change class as one statement whose values
//!   travel as array parameters (`UNNEST($1::text[], …)`, `= ANY($1)`).
//! - MariaDB/MySQL: new accounts and their memberships as multi-row
//!   `INSERT … VALUES (?, …), (?, …)` (`multirow.rs`); other changes as
//!   per-row statements in the same transaction.
//!
//! All or nothing: the statements run in one transaction (`transact.rs`);
//! when any fails, the caller replays the batch row by row to find and
//! report the bad row.

use std::collections::BTreeMap;

use super::rows::{key_ref, statements as row_statements};
use super::stmt::{Bind, Step, Stmt};
use super::{copy, multirow};
use super::{Col, Dialect, Params, Resolved};
use crate::backend::Op;
use crate::core::Change;

/// A text array parameter, or a flag array typed like its column.
fn flag_array(c: &Col, vals: Vec<bool>) -> (Bind<'static>, &'static str) {
    match c.kind {
        super::Kind::Bool => (Bind::BoolArray(vals), "boolean[]"),
        _ => (
            Bind::IntArray(vals.into_iter().map(|v| Some(i64::from(v))).collect()),
            "int8[]",
        ),
    }
}

/// Collects `UNNEST` columns: one array parameter each, named `x.aN`.
struct Unnest<'a> {
    p: Params,
    args: Vec<String>,
    names: Vec<String>,
    binds: Vec<Bind<'a>>,
}

impl<'a> Unnest<'a> {
    fn new(m: &Resolved) -> Self {
        Unnest {
            p: Params::new(m.d),
            args: Vec::new(),
            names: Vec::new(),
            binds: Vec::new(),
        }
    }
    /// Add an array; returns its column reference (`x.aN`).
    fn array(&mut self, b: Bind<'a>, ty: &str) -> String {
        let mark = self.p.next();
        let name = format!("a{}", self.names.len());
        self.args.push(format!("{mark}::{ty}"));
        self.names.push(name.clone());
        self.binds.push(b);
        format!("x.{name}")
    }
    fn text(&mut self, v: Vec<Option<&'a str>>) -> String {
        self.array(Bind::TextArray(v), "text[]")
    }
    /// A scalar parameter (the same for every row).
    fn scalar(&mut self, b: Bind<'a>) -> String {
        self.binds.push(b);
        self.p.next()
    }
    fn from(&self) -> String {
        format!("UNNEST({}) AS x({})", self.args.join(", "), self.names.join(", "))
    }
}

/// ` AND table.scope = $n`, qualified (the statements join other relations).
fn scope_filter(m: &Resolved, u: &mut Unnest<'_>) -> String {
    match &m.scope {
        Some((c, v)) => {
            let mark = u.scalar(Bind::Text(Some(v.clone())));
            format!(" AND {}.{} = {}", m.table, c.q, m.value_expr(c, &mark))
        }
        None => String::new(),
    }
}

/// The bulk statements for a batch, in a safe order: inserts, revivals,
/// updates, leavers, membership removals, membership additions, deletes.
/// `copy`: new rows with COPY (PostgreSQL), else with `INSERT`.
pub(super) fn statements<'a>(
    m: &'a Resolved,
    ops: &[Op<'a>],
    hashes: &'a [Option<String>],
    revive: &[Option<String>],
    copy: bool,
) -> Vec<Step<'a>> {
    if m.d != Dialect::Postgres {
        return multirow::statements(m, ops, hashes, revive)
            .into_iter()
            .map(Step::Sql)
            .collect();
    }
    let mut out = Vec::new();
    let mut singles = Vec::new();
    let mut adds: Vec<usize> = Vec::new();
    // (attribute columns set, rejoin, must-change) → ops
    let mut updates: BTreeMap<(Vec<usize>, bool, bool), Vec<usize>> = BTreeMap::new();
    let mut leaves: Vec<&'a str> = Vec::new();
    let mut deletes: Vec<&'a str> = Vec::new();
    type Pairs<'a> = (Vec<Option<&'a str>>, Vec<Option<&'a str>>);
    let mut group_rm: Pairs<'a> = (Vec::new(), Vec::new());
    let mut group_add: Pairs<'a> = (Vec::new(), Vec::new());
    let all_managed = |user: &'a str, rm: &mut Pairs<'a>| {
        for g in &m.managed_groups {
            rm.0.push(Some(user));
            rm.1.push(Some(g.as_str()));
        }
    };
    for (i, op) in ops.iter().enumerate() {
        let key = key_ref(op);
        match op.change {
            Change::Add if revive[i].is_some() => {
                singles.extend(row_statements(m, op, hashes[i].as_deref(), revive[i].as_deref()));
            }
            Change::Adopt(_) | Change::Reset(_) => {
                singles.extend(row_statements(m, op, hashes[i].as_deref(), revive[i].as_deref()));
            }
            Change::Add => {
                adds.push(i);
                if let Some(groups) = op.person.and_then(|p| p.groups.as_ref()) {
                    for g in groups {
                        group_add.0.push(Some(op.key.as_str()));
                        group_add.1.push(Some(g.as_str()));
                    }
                }
            }
            Change::Update(diff) | Change::Rejoin(diff) => {
                let rejoin = matches!(op.change, Change::Rejoin(_));
                let cols: Vec<usize> = m
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, (attr, _))| diff.attrs.iter().any(|c| c.attr == *attr))
                    .map(|(j, _)| j)
                    .collect();
                let mc = rejoin && op.must_change && m.must_change.is_some();
                if !cols.is_empty() || (rejoin && (m.status.is_some() || m.left_at.is_some() || mc)) {
                    updates.entry((cols, rejoin, mc)).or_default().push(i);
                }
                for g in &diff.groups_remove {
                    group_rm.0.push(Some(key));
                    group_rm.1.push(Some(g.as_str()));
                }
                for g in &diff.groups_add {
                    group_add.0.push(Some(key));
                    group_add.1.push(Some(g.as_str()));
                }
            }
            Change::Leave => {
                all_managed(key, &mut group_rm);
                leaves.push(key);
            }
            Change::Delete => {
                all_managed(key, &mut group_rm);
                deletes.push(key);
            }
            Change::Unchanged | Change::Absent | Change::Reject(_) | Change::Scheduled => {}
        }
    }
    if !adds.is_empty() {
        out.push(match copy.then(|| copy::accounts(m, ops, hashes, &adds)).flatten() {
            Some(c) => Step::Copy(c),
            None => Step::Sql(insert_accounts(m, ops, hashes, &adds)),
        });
    }
    out.extend(singles.into_iter().map(Step::Sql));
    for ((cols, rejoin, mc), idx) in &updates {
        out.push(Step::Sql(update_accounts(m, ops, idx, cols, *rejoin, *mc)));
    }
    if !leaves.is_empty() {
        let mut u = Unnest::new(m);
        let mut sets = Vec::new();
        if let Some(c) = &m.status {
            let v = u.scalar(Bind::Text(Some(m.leaver_value.clone())));
            sets.push(format!("{} = {}", c.q, m.value_expr(c, &v)));
        }
        if let Some(c) = &m.left_at {
            let v = u.scalar(Bind::Int(Some(ops[0].now)));
            sets.push(format!("{} = {}", c.q, m.value_expr(c, &v)));
        }
        out.push(Step::Sql(by_keys(m, u, &sets, leaves)));
    }
    if let Some((t, uc, gc)) = &m.groups {
        if !group_rm.0.is_empty() {
            let mut u = Unnest::new(m);
            let (xu, xg) = (u.text(group_rm.0), u.text(group_rm.1));
            out.push(Step::Sql(Stmt {
                sql: format!(
                    "DELETE FROM {t} USING {} WHERE {t}.{uc} = {xu} AND {t}.{gc} = {xg}",
                    u.from()
                ),
                binds: u.binds,
                expect_rows: None,
            }));
        }
        if !group_add.0.is_empty() && copy {
            out.extend(copy::memberships(m, &group_add.0, &group_add.1).map(Step::Copy));
        } else if !group_add.0.is_empty() {
            let mut u = Unnest::new(m);
            let (xu, xg) = (u.text(group_add.0), u.text(group_add.1));
            out.push(Step::Sql(Stmt {
                sql: format!("INSERT INTO {t} ({uc}, {gc}) SELECT {xu}, {xg} FROM {}", u.from()),
                binds: u.binds,
                expect_rows: None,
            }));
        }
    }
    if !deletes.is_empty() {
        let mut u = Unnest::new(m);
        if let Some(c) = &m.deleted_at {
            let v = u.scalar(Bind::Int(Some(ops[0].now)));
            let set = format!("{} = {}", c.q, m.value_expr(c, &v));
            out.push(Step::Sql(by_keys(m, u, &[set], deletes)));
        } else {
            let n = deletes.len() as u64;
            let k = u.scalar(Bind::TextArray(deletes.into_iter().map(Some).collect()));
            let scope = scope_filter(m, &mut u);
            out.push(Step::Sql(Stmt {
                sql: format!(
                    "DELETE FROM {} WHERE {}.{} = ANY({k}){scope}",
                    m.table, m.table, m.key.q
                ),
                binds: u.binds,
                expect_rows: Some(n),
            }));
        }
    }
    out
}

/// `UPDATE t SET … WHERE key = ANY($k)` for a list of keys.
fn by_keys<'a>(m: &Resolved, mut u: Unnest<'a>, sets: &[String], keys: Vec<&'a str>) -> Stmt<'a> {
    let n = keys.len() as u64;
    let k = u.scalar(Bind::TextArray(keys.into_iter().map(Some).collect()));
    let scope = scope_filter(m, &mut u);
    Stmt {
        sql: format!(
            "UPDATE {} SET {} WHERE {}.{} = ANY({k}::text[]){scope}",
            m.table,
            sets.join(", "),
            m.table,
            m.key.q
        ),
        binds: u.binds,
        expect_rows: Some(n),
    }
}

fn insert_accounts<'a>(m: &'a Resolved, ops: &[Op<'a>], hashes: &'a [Option<String>], adds: &[usize]) -> Stmt<'a> {
    let mut u = Unnest::new(m);
    let mut cols = vec![m.key.q.clone()];
    let keys = adds
        .iter()
        .map(|&i| Some(ops[i].person.map(|p| p.key.as_str()).unwrap_or(ops[i].key.as_str())))
        .collect();
    let mut exprs = vec![u.text(keys)];
    for (attr, c) in m.created_columns() {
        let vals = adds
            .iter()
            .map(|&i| ops[i].person.and_then(|p| p.attrs.get(*attr)))
            .collect();
        let x = u.text(vals);
        cols.push(c.q.clone());
        exprs.push(m.value_expr(c, &x));
    }
    if let Some(c) = &m.status {
        let v = u.scalar(Bind::Text(Some(m.active_value.clone())));
        cols.push(c.q.clone());
        exprs.push(m.value_expr(c, &v));
    }
    if let Some(c) = &m.must_change {
        let (b, ty) = flag_array(c, adds.iter().map(|&i| ops[i].must_change).collect());
        let x = u.array(b, ty);
        cols.push(c.q.clone());
        exprs.push(x);
    }
    if let Some(c) = &m.password {
        if adds.iter().any(|&i| hashes[i].is_some()) {
            let x = u.text(adds.iter().map(|&i| hashes[i].as_deref()).collect());
            cols.push(c.q.clone());
            exprs.push(x);
        }
    }
    if let Some((c, v)) = &m.scope {
        let s = u.scalar(Bind::Text(Some(v.clone())));
        cols.push(c.q.clone());
        exprs.push(m.value_expr(c, &s));
    }
    Stmt {
        sql: format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            m.table,
            cols.join(", "),
            exprs.join(", "),
            u.from()
        ),
        binds: u.binds,
        expect_rows: Some(adds.len() as u64),
    }
}

fn update_accounts<'a>(
    m: &Resolved,
    ops: &[Op<'a>],
    idx: &[usize],
    cols: &[usize],
    rejoin: bool,
    mc: bool,
) -> Stmt<'a> {
    let mut u = Unnest::new(m);
    let xk = u.text(idx.iter().map(|&i| Some(key_ref(&ops[i]))).collect());
    let mut sets = Vec::new();
    for &j in cols {
        let (attr, c) = &m.columns[j];
        let vals = idx
            .iter()
            .map(|&i| match ops[i].change {
                Change::Update(d) | Change::Rejoin(d) => {
                    d.attrs.iter().find(|a| a.attr == *attr).and_then(|a| a.new.as_deref())
                }
                _ => None,
            })
            .collect();
        let x = u.text(vals);
        sets.push(format!("{} = {}", c.q, m.value_expr(c, &x)));
    }
    if rejoin {
        if let Some(c) = &m.status {
            let v = u.scalar(Bind::Text(Some(m.active_value.clone())));
            sets.push(format!("{} = {}", c.q, m.value_expr(c, &v)));
        }
        if let Some(c) = &m.left_at {
            sets.push(format!("{} = NULL", c.q));
        }
    }
    if let (true, Some(c)) = (mc, &m.must_change) {
        let v = u.scalar(m.flag(c, true));
        sets.push(format!("{} = {v}", c.q));
    }
    let scope = scope_filter(m, &mut u);
    Stmt {
        sql: format!(
            "UPDATE {t} SET {} FROM {} WHERE {t}.{} = {xk}{scope}",
            sets.join(", "),
            u.from(),
            m.key.q,
            t = m.table
        ),
        binds: u.binds,
        expect_rows: Some(idx.len() as u64),
    }
}
