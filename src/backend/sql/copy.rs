//! PostgreSQL `COPY … FROM STDIN`: a batch's new accounts and its new
//! memberships streamed as text rows, which the server takes in a fraction
//! of what the same rows cost as `INSERT … SELECT FROM UNNEST(…)`.
//!
//! The data is COPY's text format: columns separated by tabs, rows by
//! newlines, `\N` for NULL and backslash escapes for the four characters
//! that would break the framing. The server converts each text value with
//! its column's input function, as it casts a text parameter, so enum and
//! domain columns take the same values as through `INSERT`. Timestamp
//! columns take Unix seconds only through `to_timestamp()`, so a mapping
//! with one keeps the `INSERT` path.
//!
//! A COPY is all or nothing like the statements around it: a bad row fails
//! the whole transaction and the batch is replayed row by row.

use super::stmt::CopyIn;
use super::{Kind, Resolved};
use crate::backend::Op;

/// A value in COPY's text format.
fn field(out: &mut Vec<u8>, v: Option<&str>) {
    let Some(v) = v else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for b in v.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// One row: its fields, tab-separated, newline-terminated.
fn row<'v>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'v str>>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        field(out, f);
    }
    out.push(b'\n');
}

/// A flag as COPY reads it for a boolean or a 0/1 column.
fn flag(kind: &Kind, v: bool) -> &'static str {
    match (kind, v) {
        (Kind::Bool, true) => "t",
        (Kind::Bool, false) => "f",
        (_, true) => "1",
        (_, false) => "0",
    }
}

/// The new accounts `adds` (indexes into `ops`) as one COPY, with the
/// columns and values `INSERT` would write; `None` when a written column is
/// a timestamp (its value needs `to_timestamp()`).
pub(super) fn accounts(m: &Resolved, ops: &[Op<'_>], hashes: &[Option<String>], adds: &[usize]) -> Option<CopyIn> {
    let attrs: Vec<_> = m.created_columns().collect();
    let time = |k: &Kind| matches!(k, Kind::Time);
    if attrs.iter().any(|(_, c)| time(&c.kind)) || m.scope.as_ref().is_some_and(|(c, _)| time(&c.kind)) {
        return None;
    }
    let with_password = m.password.is_some() && adds.iter().any(|&i| hashes[i].is_some());
    let mut cols = vec![m.key.q.as_str()];
    cols.extend(attrs.iter().map(|(_, c)| c.q.as_str()));
    cols.extend(m.status.iter().map(|c| c.q.as_str()));
    cols.extend(m.must_change.iter().map(|c| c.q.as_str()));
    if with_password {
        cols.extend(m.password.iter().map(|c| c.q.as_str()));
    }
    cols.extend(m.scope.iter().map(|(c, _)| c.q.as_str()));
    let mut data = Vec::with_capacity(adds.len() * 32 * cols.len());
    let mut fields: Vec<Option<&str>> = Vec::with_capacity(cols.len());
    for &i in adds {
        let op = &ops[i];
        fields.clear();
        fields.push(Some(op.person.map(|p| p.key.as_str()).unwrap_or(op.key.as_str())));
        for (attr, _) in &attrs {
            fields.push(op.person.and_then(|p| p.attrs.get(*attr)));
        }
        if m.status.is_some() {
            fields.push(Some(m.active_value.as_str()));
        }
        if let Some(c) = &m.must_change {
            fields.push(Some(flag(&c.kind, op.must_change)));
        }
        if with_password {
            fields.push(hashes[i].as_deref());
        }
        if let Some((_, v)) = &m.scope {
            fields.push(Some(v.as_str()));
        }
        row(&mut data, fields.iter().copied());
    }
    Some(CopyIn {
        sql: format!("COPY {} ({}) FROM STDIN", m.table, cols.join(", ")),
        data,
        rows: adds.len() as u64,
    })
}

/// Membership rows (user, group) as one COPY into the groups table.
pub(super) fn memberships(m: &Resolved, users: &[Option<&str>], groups: &[Option<&str>]) -> Option<CopyIn> {
    let (t, uc, gc) = m.groups.as_ref()?;
    let mut data = Vec::with_capacity(users.len() * 24);
    for (u, g) in users.iter().zip(groups) {
        row(&mut data, [*u, *g]);
    }
    Some(CopyIn {
        sql: format!("COPY {t} ({uc}, {gc}) FROM STDIN"),
        data,
        rows: users.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(fields: &[Option<&str>]) -> String {
        let mut out = Vec::new();
        row(&mut out, fields.iter().copied());
        String::from_utf8(out).expect("utf-8") // ok: test
    }

    #[test]
    fn values_are_escaped_for_the_text_format() {
        assert_eq!(text(&[Some("a"), None, Some("")]), "a\t\\N\t\n");
        assert_eq!(text(&[Some("R\\D"), Some("x\ty")]), "R\\\\D\tx\\ty\n");
        assert_eq!(text(&[Some("two\nlines\r")]), "two\\nlines\\r\n");
        // The word NULL and SQL-looking text travel as they are.
        assert_eq!(
            text(&[Some("NULL"), Some("'); DROP TABLE x;--")]),
            "NULL\t'); DROP TABLE x;--\n"
        );
        assert_eq!(text(&[Some("Zoë 名")]), "Zoë 名\n");
    }

    #[test]
    fn flags_follow_the_column_type() {
        assert_eq!(flag(&Kind::Bool, true), "t");
        assert_eq!(flag(&Kind::Bool, false), "f");
        assert_eq!(flag(&Kind::Int, true), "1");
        assert_eq!(flag(&Kind::Text, false), "0");
    }
}
