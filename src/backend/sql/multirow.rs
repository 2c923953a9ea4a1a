//! MariaDB/MySQL bulk writes (they have no array parameters): a batch's new
//! accounts and their memberships as multi-row `INSERT … VALUES (?, …), (?, …)`,
//! as many rows a statement as the placeholder limit allows; every other
//! change as its per-row statements, all in the batch's one transaction.

use super::rows::statements as row_statements;
use super::stmt::{Bind, Stmt};
use super::{Col, Params, Resolved};
use crate::backend::Op;
use crate::core::Change;

/// Most placeholders one statement may carry (MySQL allows 65,535).
const MAX_PARAMS: usize = 60_000;

/// New accounts and their memberships as multi-row INSERTs; everything else
/// as per-row statements (MariaDB/MySQL have no array parameters).
pub(super) fn statements(
    m: &Resolved,
    ops: &[Op<'_>],
    hashes: &[Option<String>],
    revive: &[Option<String>],
) -> Vec<Stmt<'static>> {
    let mut out = Vec::new();
    let mut singles = Vec::new();
    let mut adds = Vec::new();
    let mut memberships: Vec<Bind<'static>> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match (op.change, op.person, &revive[i]) {
            (Change::Add, Some(person), None) => {
                adds.push(i);
                for g in person.groups.iter().flatten() {
                    memberships.push(Bind::Text(Some(person.key.as_str().to_string())));
                    memberships.push(Bind::Text(Some(g.to_string())));
                }
            }
            _ => singles.extend(row_statements(m, op, hashes[i].as_deref(), revive[i].as_deref())),
        }
    }
    let with_password = m.password.is_some() && adds.iter().any(|&i| hashes[i].is_some());
    let mut cols = vec![&m.key];
    cols.extend(m.created_columns().map(|(_, c)| c));
    cols.extend(m.status.iter());
    cols.extend(m.must_change.iter());
    if with_password {
        cols.extend(m.password.iter());
    }
    cols.extend(m.scope.iter().map(|(c, _)| c));
    let per_stmt = (MAX_PARAMS / cols.len()).max(1);
    for chunk in adds.chunks(per_stmt) {
        let mut p = Params::new(m.d);
        let mut rows = Vec::with_capacity(chunk.len());
        let mut binds = Vec::with_capacity(chunk.len() * cols.len());
        for &i in chunk {
            let op = &ops[i];
            let Some(person) = op.person else { continue };
            let mut vals = Vec::with_capacity(cols.len());
            let mut push = |c: &Col, b: Bind<'static>| {
                vals.push(m.value_expr(c, &p.next()));
                binds.push(b);
            };
            push(&m.key, Bind::Text(Some(person.key.as_str().to_string())));
            for (attr, c) in m.created_columns() {
                push(c, Bind::Text(person.attrs.get(*attr).map(str::to_string)));
            }
            if let Some(c) = &m.status {
                push(c, Bind::Text(Some(m.active_value.clone())));
            }
            if let Some(c) = &m.must_change {
                push(c, m.flag(c, op.must_change));
            }
            if let (true, Some(c)) = (with_password, &m.password) {
                push(c, Bind::Text(hashes[i].clone()));
            }
            if let Some((c, v)) = &m.scope {
                push(c, Bind::Text(Some(v.clone())));
            }
            rows.push(format!("({})", vals.join(", ")));
        }
        let names: Vec<&str> = cols.iter().map(|c| c.q.as_str()).collect();
        out.push(Stmt {
            sql: format!(
                "INSERT INTO {} ({}) VALUES {}",
                m.table,
                names.join(", "),
                rows.join(", ")
            ),
            binds,
            expect_rows: Some(chunk.len() as u64),
        });
    }
    if let Some((t, u, g)) = &m.groups {
        for chunk in memberships.chunks(MAX_PARAMS) {
            let mut p = Params::new(m.d);
            let rows: Vec<String> = chunk
                .chunks(2)
                .map(|_| format!("({}, {})", p.next(), p.next()))
                .collect();
            out.push(Stmt {
                sql: format!("INSERT INTO {t} ({u}, {g}) VALUES {}", rows.join(", ")),
                binds: chunk.to_vec(),
                expect_rows: None,
            });
        }
    }
    out.append(&mut singles);
    out
}
