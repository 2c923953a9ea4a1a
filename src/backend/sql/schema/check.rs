//! The catalogue checked against the mapping: every mapped table and column
//! exists with a type that fits its use (text, flag, time, password hash).

use super::super::{valid_identifier, PasswordScheme, SqlMapping};
use super::{Catalog, ColInfo, Kind};

/// What a mapped column is used for, and so which types fit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Text,
    Flag,
    Time,
    Password(usize),
}

fn fits(role: Role, c: &ColInfo) -> Result<(), String> {
    let ok = matches!(
        (role, &c.kind),
        (Role::Text | Role::Password(_), Kind::Text | Kind::UserDefined(_))
            | (Role::Flag, Kind::Bool | Kind::Int)
            | (Role::Time, Kind::Int | Kind::Time)
    );
    if !ok {
        let want = match role {
            Role::Text | Role::Password(_) => "a character type (text, varchar, char)",
            Role::Flag => "boolean or an integer (0/1)",
            Role::Time => "an integer (Unix seconds) or a timestamp",
        };
        return Err(format!("is {}, needs {want}", c.type_name));
    }
    if let (Role::Password(need), Some(max)) = (role, c.max_len) {
        if (max as usize) < need {
            return Err(format!(
                "is {} (at most {max} characters), but the password hashes are {need} characters long",
                c.type_name
            ));
        }
    }
    Ok(())
}

/// Length of the stored hash for the mapping's scheme and parameters.
fn hash_len(m: &SqlMapping) -> usize {
    match m.password_scheme {
        PasswordScheme::Bcrypt => 60,
        PasswordScheme::Argon2id => {
            format!(
                "$argon2id$v=19$m={},t={},p=1$",
                m.argon2_memory_kib, m.argon2_iterations
            )
            .len()
                + 22
                + 1
                + 43
        }
    }
}

/// Every mapped table and column exists with a compatible type: say exactly
/// what is missing or wrong.
pub(in crate::backend::sql) fn check(cat: &Catalog, m: &SqlMapping) -> Result<(), String> {
    let mut wanted: Vec<(&str, &str, &str, Role)> = Vec::new();
    let t = m.table.as_str();
    wanted.push(("sql.key", t, &m.key, Role::Text));
    let cols: Vec<(String, &str)> = m
        .columns
        .iter()
        .map(|(f, c)| (format!("sql.columns.{f}"), c.as_str()))
        .collect();
    for (what, c) in &cols {
        wanted.push((what, t, c, Role::Text));
    }
    for (what, c, role) in [
        ("sql.status_column", &m.status_column, Role::Text),
        ("sql.left_at_column", &m.left_at_column, Role::Time),
        ("sql.must_change_column", &m.must_change_column, Role::Flag),
        ("sql.password_column", &m.password_column, Role::Password(hash_len(m))),
        ("sql.deleted_at_column", &m.deleted_at_column, Role::Time),
    ] {
        if let Some(c) = c {
            wanted.push((what, t, c, role));
        }
    }
    if let Some(s) = &m.scope {
        wanted.push(("sql.scope.column", t, &s.column, Role::Text));
    }
    if let Some(g) = &m.groups {
        wanted.push(("sql.groups.user_column", &g.table, &g.user_column, Role::Text));
        wanted.push(("sql.groups.group_column", &g.table, &g.group_column, Role::Text));
    }
    let mut problems = Vec::new();
    let mut missing_tables: Vec<&str> = Vec::new();
    for (what, table, column, role) in wanted {
        if !valid_identifier(table) || !valid_identifier(column) {
            problems.push(format!("{what}: {table}.{column} is not a plain name"));
            continue;
        }
        if !cat.tables.contains_key(table) {
            if !missing_tables.contains(&table) {
                missing_tables.push(table);
                let hint = cat
                    .tables
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(table))
                    .map(|k| format!(" (there is {k:?}: names are case-sensitive)"))
                    .unwrap_or_default();
                let mapped: Vec<String> = [(m.table.as_str(), m.key.as_str())]
                    .into_iter()
                    .chain(m.account_columns().into_iter().map(|(_, c)| (m.table.as_str(), c)))
                    .chain(m.groups.iter().flat_map(|g| {
                        [
                            (g.table.as_str(), g.user_column.as_str()),
                            (g.table.as_str(), g.group_column.as_str()),
                        ]
                    }))
                    .filter(|(t, _)| *t == table)
                    .map(|(t, c)| format!("{t}.{c}"))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                problems.push(format!(
                    "table {table} does not exist{hint} (mapped: {})",
                    mapped.join(", ")
                ));
            }
            continue;
        }
        match cat.column(table, column) {
            None => problems.push(format!("{what}: column {table}.{column} does not exist")),
            Some(info) => {
                if let Err(e) = fits(role, info) {
                    problems.push(format!("{what}: column {table}.{column} {e}"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}; dirsync never changes an application's tables: fix the schema or the policy's [sql] mapping",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mapping(extra: &str) -> SqlMapping {
        let text = format!(
            "table = \"users\"\nkey = \"login\"\nstatus_column = \"state\"\nmust_change_column = \"mc\"\n\
             password_column = \"pw\"\nleft_at_column = \"left_at\"\n{extra}\n[columns]\nemail = \"mail\"\n"
        );
        match toml::from_str(&text) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn col(kind: Kind, type_name: &str, max_len: Option<i64>) -> ColInfo {
        ColInfo {
            kind,
            type_name: type_name.into(),
            max_len,
        }
    }

    fn catalog(cols: &[(&str, ColInfo)]) -> Catalog {
        let mut t = HashMap::new();
        for (n, c) in cols {
            t.insert(n.to_string(), c.clone());
        }
        let mut tables = HashMap::new();
        tables.insert("users".to_string(), t);
        Catalog {
            tables,
            fold_case: false,
        }
    }

    fn good() -> Vec<(&'static str, ColInfo)> {
        vec![
            ("login", col(Kind::Text, "character varying", Some(64))),
            ("mail", col(Kind::Text, "text", None)),
            (
                "state",
                col(Kind::UserDefined("account_state".into()), "account_state", None),
            ),
            ("mc", col(Kind::Bool, "boolean", None)),
            ("pw", col(Kind::Text, "character varying", Some(255))),
            ("left_at", col(Kind::Time, "timestamp with time zone", None)),
        ]
    }

    #[test]
    fn a_matching_schema_passes() {
        assert!(check(&catalog(&good()), &mapping("")).is_ok());
    }

    #[test]
    fn missing_table_column_and_wrong_types_are_all_named() {
        let mut cols = good();
        cols.retain(|(n, _)| *n != "mail");
        cols.push(("mc", col(Kind::Text, "text", None)));
        cols.push(("pw", col(Kind::Text, "character varying", Some(60))));
        let m = mapping("[groups]\ntable = \"user_groups\"\nuser_column = \"login\"\ngroup_column = \"grp\"");
        let err = check(&catalog(&cols), &m).err().unwrap_or_default();
        assert!(
            err.contains("sql.columns.email: column users.mail does not exist"),
            "{err}"
        );
        assert!(
            err.contains("sql.must_change_column: column users.mc is text, needs boolean"),
            "{err}"
        );
        assert!(
            err.contains("users.pw is character varying (at most 60 characters)"),
            "{err}"
        );
        assert!(err.contains("table user_groups does not exist"), "{err}");
    }

    #[test]
    fn bcrypt_hashes_fit_a_short_column() {
        let mut cols = good();
        cols.push(("pw", col(Kind::Text, "character varying", Some(60))));
        assert!(check(&catalog(&cols), &mapping("password_scheme = \"bcrypt\"")).is_ok());
        assert_eq!(hash_len(&mapping("argon2_memory_kib = 8\nargon2_iterations = 1")), 93);
    }
}
