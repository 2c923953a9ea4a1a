//! Per-op statements: what one change writes, as plain INSERT / UPDATE /
//! DELETE statements with bound parameters. Used on every database, and on
//! PostgreSQL when a bulk batch failed and the failing row must be found.

use super::stmt::{Bind, Stmt};
use super::{Params, Resolved};
use crate::backend::Op;
use crate::core::{Change, Value};

/// ` AND scope_column = $n` when the policy scopes the table.
pub(super) fn scope_filter(m: &Resolved, p: &mut Params, binds: &mut Vec<Bind<'_>>) -> String {
    match &m.scope {
        Some((col, val)) => {
            binds.push(Bind::Text(Some(val.clone())));
            let mark = p.next();
            format!(" AND {} = {}", col.q, m.value_expr(col, &mark))
        }
        None => String::new(),
    }
}

/// The key of the row an op writes: the target's own spelling when the
/// account exists (PostgreSQL compares case-sensitively).
pub(super) fn key_of(op: &Op<'_>) -> String {
    key_ref(op).to_string()
}

/// [`key_of`], borrowed.
pub(super) fn key_ref<'a>(op: &Op<'a>) -> &'a str {
    op.account.map(|a| a.key.as_str()).unwrap_or(op.key.as_str())
}

/// Column = value pairs, collected with their placeholders.
struct Sets<'m> {
    m: &'m Resolved,
    p: Params,
    sets: Vec<String>,
    binds: Vec<Bind<'static>>,
}

impl<'m> Sets<'m> {
    fn new(m: &'m Resolved) -> Self {
        Sets {
            m,
            p: Params::new(m.d),
            sets: Vec::new(),
            binds: Vec::new(),
        }
    }
    fn set(&mut self, c: &super::Col, b: Bind<'static>) {
        let mark = self.p.next();
        self.sets.push(format!("{} = {}", c.q, self.m.value_expr(c, &mark)));
        self.binds.push(b);
    }
    fn set_null(&mut self, c: &super::Col) {
        self.sets.push(format!("{} = NULL", c.q));
    }
    /// `UPDATE … SET … WHERE key = $k [AND scope]`, which must touch one row.
    fn update(mut self, key: &str) -> Option<Stmt<'static>> {
        if self.sets.is_empty() {
            return None;
        }
        let m = self.m;
        let k = self.p.next();
        self.binds.push(Bind::Text(Some(key.to_string())));
        let scope = scope_filter(m, &mut self.p, &mut self.binds);
        Some(Stmt {
            sql: format!(
                "UPDATE {} SET {} WHERE {} = {k}{scope}",
                m.table,
                self.sets.join(", "),
                m.key.q
            ),
            binds: self.binds,
            expect_rows: Some(1),
        })
    }
}

/// Set one account's password hash (the activation page) and clear its
/// "must change" flag: must touch one row in scope.
pub(super) fn password_statement(m: &Resolved, key: &str, hash: &str) -> Option<Stmt<'static>> {
    let mut s = Sets::new(m);
    s.set(m.password.as_ref()?, Bind::Text(Some(hash.to_string())));
    if let Some(c) = &m.must_change {
        s.set(c, m.flag(c, false));
    }
    s.update(key)
}

/// The statements for one op. `revive`: the stored key of a soft-deleted
/// row this Add brings back.
pub(super) fn statements(m: &Resolved, op: &Op<'_>, hash: Option<&str>, revive: Option<&str>) -> Vec<Stmt<'static>> {
    let key = key_of(op);
    let mut out = Vec::new();
    match op.change {
        Change::Add => {
            let Some(person) = op.person else { return out };
            if let Some(stored) = revive {
                // A soft-deleted row with this key: bring it back with the
                // row's values instead of inserting a duplicate key.
                let mut s = Sets::new(m);
                for (i, col) in m.created_columns() {
                    s.set(col, Bind::Text(person.attrs.get(*i).map(str::to_string)));
                }
                if let Some(c) = &m.status {
                    s.set(c, Bind::Text(Some(m.active_value.clone())));
                }
                if let Some(c) = &m.left_at {
                    s.set_null(c);
                }
                if let Some(c) = &m.deleted_at {
                    s.set_null(c);
                }
                if let Some(c) = &m.must_change {
                    s.set(c, m.flag(c, op.must_change));
                }
                if let Some(c) = &m.password {
                    s.set(c, Bind::Text(hash.map(str::to_string)));
                }
                out.extend(s.update(stored));
                out.extend(group_deletes(m, stored, None));
                if let Some(groups) = &person.groups {
                    out.extend(group_inserts(m, stored, groups));
                }
                return out;
            }
            let mut p = Params::new(m.d);
            let mut cols = vec![m.key.q.clone()];
            let mut vals = vec![p.next()];
            let mut binds = vec![Bind::Text(Some(person.key.as_str().to_string()))];
            let mut push = |c: &super::Col, b: Bind<'static>, cols: &mut Vec<String>, vals: &mut Vec<String>| {
                cols.push(c.q.clone());
                vals.push(m.value_expr(c, &p.next()));
                binds.push(b);
            };
            for (i, col) in m.created_columns() {
                let v = person.attrs.get(*i).map(str::to_string);
                push(col, Bind::Text(v), &mut cols, &mut vals);
            }
            if let Some(c) = &m.status {
                push(c, Bind::Text(Some(m.active_value.clone())), &mut cols, &mut vals);
            }
            if let Some(c) = &m.must_change {
                push(c, m.flag(c, op.must_change), &mut cols, &mut vals);
            }
            if let (Some(c), Some(h)) = (&m.password, hash) {
                push(c, Bind::Text(Some(h.to_string())), &mut cols, &mut vals);
            }
            if let Some((c, v)) = &m.scope {
                push(c, Bind::Text(Some(v.clone())), &mut cols, &mut vals);
            }
            out.push(Stmt {
                sql: format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    m.table,
                    cols.join(", "),
                    vals.join(", ")
                ),
                binds,
                expect_rows: Some(1),
            });
            if let Some(groups) = &person.groups {
                out.extend(group_inserts(m, person.key.as_str(), groups));
            }
        }
        Change::Update(diff) | Change::Rejoin(diff) | Change::Reset(diff) => {
            let rejoin = matches!(op.change, Change::Rejoin(_));
            let mut s = Sets::new(m);
            for c in &diff.attrs {
                if let Some((_, col)) = m.columns.iter().find(|(i, _)| *i == c.attr) {
                    s.set(col, Bind::Text(c.new.as_ref().map(|v| v.to_string())));
                }
            }
            // A reset's new password (none when an activation link was sent).
            if let (Change::Reset(_), Some(c), Some(h)) = (op.change, &m.password, hash) {
                s.set(c, Bind::Text(Some(h.to_string())));
                if let Some(c) = &m.must_change {
                    s.set(c, m.flag(c, op.must_change));
                }
            }
            if rejoin {
                if let Some(c) = &m.status {
                    s.set(c, Bind::Text(Some(m.active_value.clone())));
                }
                if let Some(c) = &m.left_at {
                    s.set_null(c);
                }
                if let Some(c) = &m.must_change {
                    if op.must_change {
                        s.set(c, m.flag(c, true));
                    }
                }
            }
            out.extend(s.update(&key));
            if !diff.groups_remove.is_empty() {
                out.extend(group_deletes(m, &key, Some(&diff.groups_remove)));
            }
            if !diff.groups_add.is_empty() {
                out.extend(group_inserts(m, &key, &diff.groups_add));
            }
        }
        Change::Leave => {
            let mut s = Sets::new(m);
            if let Some(c) = &m.status {
                s.set(c, Bind::Text(Some(m.leaver_value.clone())));
            }
            if let Some(c) = &m.left_at {
                s.set(c, Bind::Int(Some(op.now)));
            }
            out.extend(s.update(&key));
            out.extend(group_deletes(m, &key, None));
        }
        Change::Delete => {
            out.extend(group_deletes(m, &key, None));
            if let Some(c) = &m.deleted_at {
                let mut s = Sets::new(m);
                s.set(c, Bind::Int(Some(op.now)));
                out.extend(s.update(&key));
            } else {
                let mut p = Params::new(m.d);
                let mut binds = vec![Bind::Text(Some(key.clone()))];
                let k = p.next();
                let scope = scope_filter(m, &mut p, &mut binds);
                out.push(Stmt {
                    sql: format!("DELETE FROM {} WHERE {} = {k}{scope}", m.table, m.key.q),
                    binds,
                    expect_rows: Some(1),
                });
            }
        }
        Change::Adopt(diff) => out.extend(super::adopt::statements(m, op, diff)),
        Change::Unchanged | Change::Absent | Change::Reject(_) | Change::Scheduled => {}
    }
    out
}

pub(super) fn group_inserts(m: &Resolved, user: &str, groups: &[Value]) -> Vec<Stmt<'static>> {
    let Some((t, u, g)) = &m.groups else {
        return Vec::new();
    };
    groups
        .iter()
        .map(|grp| {
            let mut p = Params::new(m.d);
            let (a, b) = (p.next(), p.next());
            Stmt {
                sql: format!("INSERT INTO {t} ({u}, {g}) VALUES ({a}, {b})"),
                binds: vec![Bind::Text(Some(user.to_string())), Bind::Text(Some(grp.to_string()))],
                expect_rows: None,
            }
        })
        .collect()
}

/// Remove memberships: the given groups, or every managed group. Groups
/// the policy does not manage are never touched.
pub(super) fn group_deletes(m: &Resolved, user: &str, only: Option<&[Value]>) -> Vec<Stmt<'static>> {
    let Some((t, u, g)) = &m.groups else {
        return Vec::new();
    };
    let groups: Vec<String> = match only {
        Some(list) => list.iter().map(|v| v.to_string()).collect(),
        None => m.managed_groups.clone(),
    };
    if groups.is_empty() {
        return Vec::new();
    }
    let mut p = Params::new(m.d);
    let k = p.next();
    let marks: Vec<String> = groups.iter().map(|_| p.next()).collect();
    let mut binds = vec![Bind::Text(Some(user.to_string()))];
    binds.extend(groups.into_iter().map(|g| Bind::Text(Some(g))));
    vec![Stmt {
        sql: format!("DELETE FROM {t} WHERE {u} = {k} AND {g} IN ({})", marks.join(", ")),
        binds,
        expect_rows: None,
    }]
}

/// Values of an op longer than their column holds, as one message.
pub(super) fn too_long(m: &Resolved, op: &Op<'_>) -> Option<String> {
    let mut values: Vec<(&super::Col, &str)> = Vec::new();
    match op.change {
        Change::Add => {
            let person = op.person?;
            values.push((&m.key, person.key.as_str()));
            for (i, col) in m.created_columns() {
                if let Some(v) = person.attrs.get(*i) {
                    values.push((col, v));
                }
            }
        }
        Change::Update(diff) | Change::Rejoin(diff) | Change::Reset(diff) => {
            for c in &diff.attrs {
                if let (Some((_, col)), Some(v)) = (m.columns.iter().find(|(i, _)| *i == c.attr), &c.new) {
                    values.push((col, v.as_str()));
                }
            }
        }
        _ => {}
    }
    let problems: Vec<String> = values
        .into_iter()
        .filter_map(|(col, v)| {
            let max = col.max_len?;
            let n = v.chars().count();
            (n as i64 > max).then(|| format!("{n} characters for column {}, which holds at most {max}", col.name))
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}
