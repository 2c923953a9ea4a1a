//! Bytes → [`Roster`]: decoding, delimiter sniffing, header aliases, typed
//! rows, and a precise reason for every row or file that is refused.
//!
//! Pure: it takes bytes, never a path, so tests pass `&[u8]`.
//!
//! - `decode`: bytes → text (BOM, UTF-16, Windows-1252).
//! - `records`: delimiter, header, records with their lines.
//! - `checks`: one record → a [`Person`] or its [`RowError`]s.
//! - `duplicates`: duplicate keys and email addresses across the file.
//! - `error`: [`FileError`] and [`RowError`].

mod checks;
mod decode;
mod duplicates;
mod error;
mod records;

pub use checks::is_email;
pub use decode::decode;
pub use error::{FileError, FileErrorKind, RowError, RowErrorKind};
pub use records::{records, RecordIter};

use super::policy::{Column, Policy};
use super::types::{Origin, Person, UserKey};
use checks::{key_of, parse_row};
use duplicates::reject_duplicates;
use error::file_error;
use records::{ends_inside_quotes, map_header, read_header, sniff};

/// One data record of the file, in input order.
#[derive(Clone, Debug)]
pub enum Entry {
    /// Index into [`Roster::persons`].
    Valid(usize),
    Rejected(Box<Rejection>),
}

/// A rejected row (boxed in [`Entry`]: rare, and the roster holds one entry per row).
#[derive(Clone, Debug)]
pub struct Rejection {
    pub origin: Origin,
    /// The key, when the row has a usable one: such an account is never
    /// treated as absent from the file.
    pub key: Option<UserKey>,
    pub errors: Vec<RowError>,
}

impl Entry {
    fn rejected(origin: Origin, key: Option<UserKey>, errors: Vec<RowError>) -> Entry {
        Entry::Rejected(Box::new(Rejection { origin, key, errors }))
    }
}

/// The parsed file.
#[derive(Debug)]
pub struct Roster {
    /// The decoded text (without BOM), kept so the results file can echo the
    /// input exactly.
    pub text: String,
    /// Byte offset in `text` where the CSV starts (after an Excel `sep=` line).
    pub body_start: usize,
    pub delimiter: u8,
    pub header: Vec<String>,
    pub columns: Vec<Column>,
    /// Per policy attribute: the file has a column for it.
    pub present: Vec<bool>,
    pub has_groups: bool,
    pub entries: Vec<Entry>,
    pub persons: Vec<Person>,
    pub warnings: Vec<String>,
}

impl Roster {
    pub fn rejected_count(&self) -> usize {
        self.entries.iter().filter(|e| matches!(e, Entry::Rejected(_))).count()
    }

    /// The data records again, as the file has them (for the results file).
    pub fn records(&self) -> RecordIter<'_> {
        records(&self.text[self.body_start..], self.delimiter, self.first_line())
    }

    fn first_line(&self) -> u64 {
        self.text[..self.body_start].matches('\n').count() as u64 + 1
    }
}

/// Parse a whole file. `Err` means the file is refused as a whole.
pub fn parse_roster(bytes: &[u8], policy: &Policy) -> Result<Roster, FileError> {
    let text = decode(bytes, policy.roster.encoding)?;
    let (body_start, delimiter) = sniff(&text);
    let body = &text[body_start..];
    let first_line = text[..body_start].matches('\n').count() as u64 + 1;

    if ends_inside_quotes(body) {
        return Err(file_error(
            FileErrorKind::Truncated,
            "the file ends inside a quoted field (an opening \" is never closed); the export was cut off or a quote is unbalanced: export it again",
        ));
    }

    let header = read_header(body, delimiter, first_line)?;
    let columns = map_header(&header, policy).map_err(|e| e.at_line(first_line))?;
    let mut warnings = Vec::new();
    for (h, c) in header.iter().zip(&columns) {
        if *c == Column::Unknown {
            warnings.push(format!(
                "column {h:?} is not known to policy {:?}; it is carried into the results and not synced (add it as an alias under [fields] if it should be)",
                policy.name
            ));
        }
    }
    let mut present = vec![false; policy.attributes.len()];
    for c in &columns {
        if let Column::Attribute(i) = c {
            present[*i] = true;
        }
    }
    let has_groups = columns.contains(&Column::Groups) || !policy.groups.default.is_empty();

    // Rows.
    let ends_with_newline = body.ends_with('\n') || body.ends_with('\r');
    // Sized up front: growing by doubling would copy, and briefly hold,
    // two copies of a million rows.
    let lines = body.as_bytes().iter().filter(|b| **b == b'\n').count() + 1;
    let mut entries = Vec::with_capacity(lines);
    let mut persons = Vec::with_capacity(lines);
    let mut all = records(body, delimiter, first_line);
    let mut row = 0usize;
    // (line, fields) of the last record when it is short: a cut-off file.
    let mut last_short: Option<(u64, usize)> = None;
    while let Some(rec) = all.advance() {
        row += 1;
        last_short = None;
        let line = match rec {
            Ok(line) => line,
            Err((line, msg)) => {
                entries.push(Entry::rejected(
                    Origin { row, line },
                    None,
                    vec![RowError::in_row(RowErrorKind::Unreadable { reason: msg })],
                ));
                continue;
            }
        };
        let record = all.current();
        let origin = Origin { row, line };
        if record.len() != header.len() {
            if record.len() < header.len() {
                last_short = Some((line, record.len()));
            }
            entries.push(Entry::rejected(
                origin,
                key_of(record, &columns),
                vec![RowError::in_row(RowErrorKind::FieldCount {
                    found: record.len(),
                    expected: header.len(),
                    delimiter: delimiter as char,
                })],
            ));
            continue;
        }
        match parse_row(origin, record, &header, &columns, policy) {
            Ok(p) => {
                entries.push(Entry::Valid(persons.len()));
                persons.push(p);
            }
            Err((key, errors)) => entries.push(Entry::rejected(origin, key, errors)),
        }
    }
    if let (Some((line, n)), false) = (last_short, ends_with_newline) {
        return Err(file_error(
            FileErrorKind::Truncated,
            format!(
                "the last record (line {line}) has {n} of {} fields and no line end: the file was cut off mid-row; export it again",
                header.len()
            ),
        )
        .at_line(line));
    }
    if entries.is_empty() {
        return Err(file_error(
            FileErrorKind::HeaderOnly,
            "the file has a header but no data rows; nothing to do",
        ));
    }
    if let Some(max) = policy.roster.max_rows {
        if entries.len() > max {
            return Err(file_error(
                FileErrorKind::TooManyRows,
                format!(
                    "the file has {} rows; policy {:?} accepts at most {max} per file (roster.max_rows): split the file or raise the limit",
                    entries.len(),
                    policy.name
                ),
            ));
        }
    }
    let mut roster = Roster {
        text: String::new(),
        body_start,
        delimiter,
        header,
        columns,
        present,
        has_groups,
        entries,
        persons,
        warnings,
    };
    reject_duplicates(&mut roster, policy);
    roster.text = text;
    Ok(roster)
}

/// Shared by the unit tests of this folder.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::core::policy::{FieldRule, GroupRules, Limits, PasswordRules, RosterRules, SyncRules};
    use std::collections::BTreeMap;

    pub const HEAD: &str = "username,firstname,surname,email\n";

    pub fn policy() -> Policy {
        let mut fields = BTreeMap::new();
        fields.insert(
            "user_type".to_string(),
            FieldRule {
                allowed: Some(vec!["Standard".into(), "Privileged".into()]),
                default: Some("Standard".into()),
                ..Default::default()
            },
        );
        fields.insert(
            "title".to_string(),
            FieldRule {
                max_len: Some(10),
                ..Default::default()
            },
        );
        Policy::compile(
            "t",
            RosterRules::default(),
            fields,
            SyncRules {
                protected: vec!["admin".into()],
                ..Default::default()
            },
            PasswordRules::default(),
            Limits::default(),
            GroupRules {
                managed: vec!["staff".into(), "vpn".into()],
                default: vec![],
            },
        )
        .unwrap()
    }

    pub fn parse(s: &str) -> Result<Roster, FileError> {
        parse_roster(s.as_bytes(), &policy())
    }

    /// (row, line, errors) of each rejected row.
    pub fn rejected_errors(r: &Roster) -> Vec<(usize, u64, Vec<RowError>)> {
        r.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Rejected(r) => Some((r.origin.row, r.origin.line, r.errors.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn rejected(r: &Roster) -> Vec<(usize, u64, String)> {
        r.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Rejected(r) => Some((
                    r.origin.row,
                    r.origin.line,
                    r.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" | "),
                )),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn simple_file_parses_with_trimming_and_defaults() {
        let r = parse(&format!("{HEAD} jsmith , Jane ,Smith,jane@example.org\n")).unwrap();
        assert_eq!(r.persons.len(), 1);
        let p = &r.persons[0];
        assert_eq!(p.key.as_str(), "jsmith");
        assert_eq!(p.attrs[0].as_deref(), Some("Jane"));
        let ut = policy().attribute_index("user_type").unwrap();
        assert_eq!(p.attrs[ut].as_deref(), Some("Standard"));
        assert_eq!(p.origin, Origin { row: 1, line: 2 });
    }

    #[test]
    fn whole_file_rejections() {
        let cases: Vec<(&[u8], FileErrorKind)> = vec![
            (b"", FileErrorKind::Empty),
            (&[0xEF, 0xBB, 0xBF], FileErrorKind::Empty),
            (b"\n\n", FileErrorKind::Empty),
            (HEAD.as_bytes(), FileErrorKind::HeaderOnly),
            (
                b"username,firstname,surname,email\na,A,B,a@example.org\nb,B",
                FileErrorKind::Truncated,
            ),
            (
                b"username,firstname,surname,email\na,A,\"B,a@example.org\n",
                FileErrorKind::Truncated,
            ),
            (b"username,firstname,email\na,A,a@example.org\n", FileErrorKind::Header),
            (b"username,login,firstname,surname,email\n", FileErrorKind::Header),
        ];
        for (bytes, kind) in cases {
            let e = parse_roster(bytes, &policy()).unwrap_err();
            assert_eq!(e.kind, kind, "{:?}: {e}", String::from_utf8_lossy(bytes));
        }
        let e = parse("username,firstname,email\na,A,a@example.org\n").unwrap_err();
        assert!(e.message.contains("surname"), "{e}");
        assert_eq!(e.line, Some(1));
        let e = parse("sep=,\nUsername,Login,firstname,surname,email\n").unwrap_err();
        assert!(e.message.contains("\"Username\" and \"Login\""), "{e}");
        assert_eq!((e.line, e.column.as_deref()), (Some(2), Some("Login")));
        let e = parse("username,firstname,surname,email\na,A,B,a@example.org\nb,B").unwrap_err();
        assert_eq!((e.kind, e.line), (FileErrorKind::Truncated, Some(3)));
    }

    #[test]
    fn max_rows_rejects_the_file() {
        let mut p = policy();
        p.roster.max_rows = Some(1);
        let e = parse_roster(b"username,firstname,surname,email\na,A,B,a@x.org\nb,B,C,b@x.org\n", &p).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::TooManyRows);
    }

    #[test]
    fn unknown_columns_warn_and_ignored_columns_are_silent() {
        let r =
            parse("username,firstname,surname,email,Shoe size,Creation date\na,A,B,a@example.org,9,2020\n").unwrap();
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("Shoe size"));
        assert_eq!(r.persons.len(), 1);
    }
}
