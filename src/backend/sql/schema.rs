//! The mapped tables: read their column types from the database's catalogue,
//! check them against the mapping (saying exactly what is missing or
//! incompatible), and create them only for a database dirsync owns.

use std::collections::HashMap;

use futures::TryStreamExt;

use super::stmt::{with_pool, Pool, TextRow};
use super::{sqlx_message, valid_identifier, BackendError, Dialect, PasswordScheme, SqlMapping};

/// What a column can hold, as far as dirsync cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Character data (text, varchar, char; MySQL enum/set).
    Text,
    Bool,
    /// Integer or numeric (MySQL `tinyint(1)` is here).
    Int,
    /// Date/time types.
    Time,
    /// A PostgreSQL user-defined type (enum, domain, citext): text is cast to it.
    UserDefined(String),
    /// Anything else (json, uuid, bytea…), with the database's name for it.
    Other(String),
}

/// One column as the catalogue describes it.
#[derive(Clone, Debug)]
pub(super) struct ColInfo {
    pub kind: Kind,
    /// The type as the database names it (for messages).
    pub type_name: String,
    pub max_len: Option<i64>,
}

/// The columns of the mapped tables: table → (column name → info).
#[derive(Debug, Default)]
pub(super) struct Catalog {
    tables: HashMap<String, HashMap<String, ColInfo>>,
    /// MySQL compares column names case-insensitively.
    fold_case: bool,
}

impl Catalog {
    pub fn column(&self, table: &str, column: &str) -> Option<&ColInfo> {
        let cols = self.tables.get(table)?;
        if self.fold_case {
            cols.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(column))
                .map(|(_, c)| c)
        } else {
            cols.get(column)
        }
    }
}

fn classify_pg(data_type: &str, udt: &str) -> Kind {
    match data_type {
        "text" | "character varying" | "character" => Kind::Text,
        "boolean" => Kind::Bool,
        "smallint" | "integer" | "bigint" | "numeric" => Kind::Int,
        "timestamp with time zone" | "timestamp without time zone" | "date" => Kind::Time,
        "USER-DEFINED" => Kind::UserDefined(udt.to_string()),
        other => Kind::Other(other.to_string()),
    }
}

fn classify_mysql(data_type: &str) -> Kind {
    match data_type.to_ascii_lowercase().as_str() {
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" => Kind::Text,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal" | "bit" => Kind::Int,
        "datetime" | "timestamp" | "date" => Kind::Time,
        other => Kind::Other(other.to_string()),
    }
}

/// SQLite's type affinity rules, roughly: it stores anything anywhere, so
/// only clear mismatches matter.
fn classify_sqlite(decl: &str) -> Kind {
    let d = decl.to_ascii_uppercase();
    if d.contains("BOOL") {
        Kind::Bool
    } else if d.contains("INT") {
        Kind::Int
    } else if d.contains("DATE") || d.contains("TIME") {
        Kind::Time
    } else {
        Kind::Text
    }
}

/// The tables a mapping uses.
fn tables(m: &SqlMapping) -> Vec<String> {
    let mut t = vec![m.table.clone()];
    if let Some(g) = &m.groups {
        if g.table != m.table {
            t.push(g.table.clone());
        }
    }
    t
}

/// Read the column types of the mapped tables from the catalogue.
pub(super) async fn inspect(pool: &Pool, d: Dialect, m: &SqlMapping) -> Result<Catalog, BackendError> {
    let names = tables(m);
    let mut cat = Catalog {
        tables: HashMap::new(),
        fold_case: d == Dialect::Mysql,
    };
    let read_err = |e: sqlx::Error| {
        if super::is_connection_error(&e) {
            BackendError::Connect(sqlx_message(&e))
        } else {
            BackendError::Other(format!("reading the catalogue: {}", sqlx_message(&e)))
        }
    };
    // (table, column, data type, PG udt name, max length)
    let mut rows: Vec<(String, String, String, String, Option<i64>)> = Vec::new();
    match d {
        Dialect::Postgres | Dialect::Mysql => {
            let mut p = super::Params::new(d);
            let marks: Vec<String> = names.iter().map(|_| p.next()).collect();
            let sql = if d == Dialect::Postgres {
                format!(
                    "SELECT table_name::text, column_name::text, data_type::text, udt_name::text, \
                     character_maximum_length::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name IN ({})",
                    marks.join(", ")
                )
            } else {
                format!(
                    "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), \
                     CAST(COLUMN_TYPE AS CHAR), CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR) \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({})",
                    marks.join(", ")
                )
            };
            with_pool!(pool, p => {
                let mut q = sqlx::query(&sql);
                for n in &names {
                    q = q.bind(n.as_str());
                }
                let mut s = q.fetch(p);
                while let Some(r) = s.try_next().await.map_err(read_err)? {
                    rows.push((
                        r.text(0)?.unwrap_or_default(),
                        r.text(1)?.unwrap_or_default(),
                        r.text(2)?.unwrap_or_default(),
                        r.text(3)?.unwrap_or_default(),
                        r.text(4)?.and_then(|s| s.trim().parse().ok()),
                    ));
                }
            });
        }
        Dialect::Sqlite => {
            for t in &names {
                with_pool!(pool, p => {
                    let mut s = sqlx::query("SELECT name, type FROM pragma_table_info(?)").bind(t.as_str()).fetch(p);
                    while let Some(r) = s.try_next().await.map_err(read_err)? {
                        rows.push((t.clone(), r.text(0)?.unwrap_or_default(), r.text(1)?.unwrap_or_default(), String::new(), None));
                    }
                });
            }
        }
    }
    for (table, column, data_type, udt, max_len) in rows {
        let (kind, type_name) = match d {
            Dialect::Postgres => (
                classify_pg(&data_type, &udt),
                if data_type == "USER-DEFINED" { udt } else { data_type },
            ),
            Dialect::Mysql => (classify_mysql(&data_type), udt),
            Dialect::Sqlite => (classify_sqlite(&data_type), data_type),
        };
        cat.tables.entry(table).or_default().insert(
            column,
            ColInfo {
                kind,
                type_name,
                max_len,
            },
        );
    }
    Ok(cat)
}

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
pub(super) fn check(cat: &Catalog, m: &SqlMapping) -> Result<(), String> {
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

/// Create the mapped tables when missing (embedded SQLite default only).
pub(super) async fn create(pool: &Pool, d: Dialect, m: &SqlMapping) -> Result<(), sqlx::Error> {
    let q = |s: &str| d.quote(s);
    let nocase = if d == Dialect::Sqlite { " COLLATE NOCASE" } else { "" };
    let mut cols = vec![format!("{} VARCHAR(255){nocase} PRIMARY KEY", q(&m.key))];
    for c in m.columns.values() {
        cols.push(format!("{} TEXT", q(c)));
    }
    if let Some(c) = &m.status_column {
        cols.push(format!(
            "{} VARCHAR(32) NOT NULL DEFAULT '{}'",
            q(c),
            m.active_value.replace('\'', "''")
        ));
    }
    for c in [&m.left_at_column, &m.deleted_at_column].into_iter().flatten() {
        cols.push(format!("{} BIGINT", q(c)));
    }
    if let Some(c) = &m.must_change_column {
        cols.push(format!("{} BOOLEAN NOT NULL DEFAULT FALSE", q(c)));
    }
    if let Some(c) = &m.password_column {
        cols.push(format!("{} TEXT", q(c)));
    }
    if let Some(s) = &m.scope {
        cols.push(format!("{} VARCHAR(64)", q(&s.column)));
    }
    let mut ddl = vec![format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        q(&m.table),
        cols.join(", ")
    )];
    if let Some(g) = &m.groups {
        ddl.push(format!(
            "CREATE TABLE IF NOT EXISTS {} ({u} VARCHAR(255){nocase} NOT NULL, {gr} VARCHAR(255) NOT NULL, PRIMARY KEY ({u}, {gr}))",
            q(&g.table),
            u = q(&g.user_column),
            gr = q(&g.group_column)
        ));
    }
    for sql in ddl {
        with_pool!(pool, p => { sqlx::query(&sql).execute(p).await?; });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
